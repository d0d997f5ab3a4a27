"""The base system: trusted CAs, packages, the hub's account, the hub users, the deploy's scripts."""

from __future__ import annotations

from pyinfra.operations import server
from pyinfra.operations.util import any_changed

from tasks import layout
from tasks.facts import GroupEntries
from tasks.ops import directory, packages, root_directory, root_file, ship_scripts
from tasks.platform import Platform
from tasks.preflight import host_accounts
from tasks.settings import FILES, Settings
from tasks.snapshot import fact

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


def accounts(settings: Settings) -> None:
    """The hub's account and the hub users; server.user/server.group only for what differs."""
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
            # PAM's unix_chkpwd needs it when the hub is not root (README: Security model).
            groups=[layout.SHADOW_GROUP],
            system=True,
            home=str(settings.install_root),
            shell=HUB_SHELL,
            ensure_home=False,
        )
    if settings.users_group not in groups:
        server.group(name=f"Group {settings.users_group} of hub users", group=settings.users_group)
    for user in settings.present_users:
        account = existing.get(user.name)
        if (
            not account
            or settings.users_group not in account["groups"]
            or account["shell"] != USER_SHELL
            or (user.password_hash is not None and account.get("password") != user.password_hash)
        ):
            server.user(
                name=f"Hub user {user.name}",
                user=user.name,
                groups=[settings.users_group],
                append=True,
                shell=USER_SHELL,
                create_home=True,
                password=user.password_hash,
            )
        # Private whatever the release's login.defs says (Debian 12 makes homes 0755).
        # A new account gets a group of its own name (USERGROUPS_ENAB) and a home in /home.
        account = account or {"home": f"/home/{user.name}", "group": user.name}
        directory(f"Home of {user.name}: private", account["home"], "700", user.name, account["group"])
    root_file("PAM service for hub logins", FILES / "pam" / "jupyterhub", layout.PAM_SERVICE)


def apply(settings: Settings, platform: Platform) -> None:
    trust_extra_cas(settings)
    install_packages(platform)
    accounts(settings)
    ship_scripts(settings.layout)
    root_directory(f"Shared files {settings.install_root / 'share'}", settings.install_root / "share")
