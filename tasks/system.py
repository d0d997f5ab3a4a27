"""The base system: trusted CAs, packages, the hub's account, the hub users, the deploy's scripts."""

from __future__ import annotations

from pyinfra.operations import server
from pyinfra.operations.util import any_changed

from tasks import layout
from tasks.cluster_plan import NO_CLUSTER, NODES, ClusterPlan, role
from tasks.facts import GroupEntries
from tasks.ops import directory, packages, root_directory, root_file, ship_scripts
from tasks.platform import Platform
from tasks.preflight import host_accounts
from tasks.settings import FILES, Settings
from tasks.snapshot import Managed, fact

# curl: downloads (the conda installer) and the hub's health checks.
PACKAGES = ["python3-venv", "sudo", "ca-certificates", "curl"]
HUB_SHELL = "/usr/sbin/nologin"
USER_SHELL = "/bin/bash"


def trust_extra_cas(settings: Settings) -> None:
    """Install extra CA certificates first, so apt, pip and npm can reach their indexes."""
    uploads = [
        root_file(f"Trust CA certificate {certificate.name}", certificate, layout.CA_DIR / f"{certificate.stem}.crt")
        for certificate in settings.extra_ca_certificates
    ]
    if any(upload.will_change for upload in uploads):
        server.shell(name="Rebuild the system CA store", commands=["update-ca-certificates"], _if=any_changed(*uploads))


def install_packages(platform: Platform) -> None:
    packages("Install system packages", [*PACKAGES, *platform.python_packages])


def accounts(settings: Settings, homes: bool = True, cluster_plan: ClusterPlan = NO_CLUSTER) -> None:
    """The hub's account and the hub users; server.user/server.group only for what differs.

    homes: make and keep the users' homes (a cluster's nodes share the hub's /home instead).
    cluster_plan: in a cluster, the ids of the hub users and their group on every host."""
    existing, groups = host_accounts(settings), fact(GroupEntries)
    if settings.hub_user not in groups:
        server.group(name=f"Group {settings.hub_user}", group=settings.hub_user, system=True)
    hub = existing.get(settings.hub_user)
    wanted = (settings.hub_user, str(settings.install_root), HUB_SHELL)
    if not hub or (hub["group"], hub["home"], hub["shell"]) != wanted or layout.SHADOW_GROUP not in hub["groups"]:
        server.user(
            name=f"System user {settings.hub_user} that runs the hub",
            user=settings.hub_user,
            group=settings.hub_user,
            # PAM's unix_chkpwd needs it when the hub is not root (docs/security.md).
            groups=[layout.SHADOW_GROUP],
            system=True,
            home=str(settings.install_root),
            shell=HUB_SHELL,
            ensure_home=False,
        )
    # In a cluster, the same ids on every host (tasks/cluster_plan.py picks them).
    same_ids = settings.cluster
    if settings.users_group not in groups:
        server.group(
            name=f"Group {settings.users_group} of hub users",
            group=settings.users_group,
            gid=cluster_plan.group_id(settings.users_group) if same_ids else None,
        )
    for user in settings.present_users:
        account = existing.get(user.name)
        uid, gid = cluster_plan.user_ids(user.name) if same_ids else (None, None)
        if same_ids and not account and user.name not in groups:
            server.group(name=f"Group {user.name} of hub user {user.name}", group=user.name, gid=gid)
        if (
            not account
            or settings.users_group not in account["groups"]
            or account["shell"] != USER_SHELL
            or (user.password_hash is not None and account.get("password") != user.password_hash)
        ):
            server.user(
                name=f"Hub user {user.name}",
                user=user.name,
                uid=uid if not account else None,
                group=user.name if same_ids and not account else None,
                groups=[settings.users_group],
                append=True,
                shell=USER_SHELL,
                create_home=homes,
                password=user.password_hash,
            )
        # Private whatever the release's login.defs says (Debian 12 makes homes 0755).
        # A new account gets a group of its own name (USERGROUPS_ENAB) and a home in /home.
        if not homes:
            continue
        account = account or {"home": f"/home/{user.name}", "group": user.name}
        directory(f"Home of {user.name}: private", account["home"], "700", user.name, account["group"])
    root_file("PAM service for hub logins", FILES / "pam" / "jupyterhub", layout.PAM_SERVICE)


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    """The install root, its scripts and shared files, the CAs, the PAM service; the homes and
    / (listed: preflight checks who may change the folders above the install root)."""
    paths = settings.layout
    root_owned = (paths.install_root.parent, paths.install_root, paths.libexec, paths.install_root / "share")
    return Managed(hashed=(*root_owned, layout.CA_DIR, layout.PAM_SERVICE.parent), listed=("/home", "/"))


def apply(settings: Settings, platform: Platform, cluster_plan: ClusterPlan) -> None:
    trust_extra_cas(settings)
    install_packages(platform)
    accounts(settings, homes=role() != NODES, cluster_plan=cluster_plan)
    ship_scripts(settings)
    root_directory(f"Shared files {settings.install_root / 'share'}", settings.install_root / "share")
