"""The base system: trusted CAs, packages, the hub's account, the hub users, the deploy's scripts."""

from __future__ import annotations

from pyinfra import host
from pyinfra.facts.server import Users
from pyinfra.operations import apt, files, server
from pyinfra.operations.util import any_changed

from tasks import layout
from tasks.ops import root_directory, root_file, ship_scripts
from tasks.platform import Platform
from tasks.settings import FILES, Settings

# curl: downloads (the conda installer) and the hub's health checks.
PACKAGES = ["python3-venv", "sudo", "ca-certificates", "curl"]


def trust_extra_cas(settings: Settings) -> None:
    """Install extra CA certificates first, so apt, pip and npm can reach their indexes."""
    uploads = [
        root_file(f"Trust CA certificate {certificate.name}", certificate, layout.CA_DIR / f"{certificate.stem}.crt")
        for certificate in settings.extra_ca_certificates
    ]
    if uploads:
        server.shell(name="Rebuild the system CA store", commands=["update-ca-certificates"], _if=any_changed(*uploads))


def install_packages(platform: Platform) -> None:
    apt.packages(
        name="Install system packages",
        packages=[*PACKAGES, *platform.python_packages],
        no_recommends=True,
        update=True,
        cache_time=24 * 3600,
    )


def accounts(settings: Settings) -> None:
    server.group(name=f"Group {settings.hub_user}", group=settings.hub_user, system=True)
    server.user(
        name=f"System user {settings.hub_user} that runs the hub",
        user=settings.hub_user,
        group=settings.hub_user,
        # PAM's unix_chkpwd needs it when the hub is not root (README: Security model).
        groups=[layout.SHADOW_GROUP],
        system=True,
        home=str(settings.install_root),
        shell="/usr/sbin/nologin",
        ensure_home=False,
    )
    server.group(name=f"Group {settings.users_group} of hub users", group=settings.users_group)
    existing = host.get_fact(Users)
    for user in settings.users:
        server.user(
            name=f"Hub user {user.name}",
            user=user.name,
            groups=[settings.users_group],
            append=True,
            shell="/bin/bash",
            create_home=True,
            password=user.password_hash,
        )
        # Private whatever the release's login.defs says (Debian 12 makes homes 0755).
        # A new account gets a group of its own name (USERGROUPS_ENAB) and a home in /home.
        account = existing.get(user.name) or {"home": f"/home/{user.name}", "group": user.name}
        files.directory(
            name=f"Home of {user.name}: private",
            path=account["home"],
            user=user.name,
            group=account["group"],
            mode="700",
        )
    root_file("PAM service for hub logins", FILES / "pam" / "jupyterhub", layout.PAM_SERVICE)


def apply(settings: Settings, platform: Platform) -> None:
    trust_extra_cas(settings)
    install_packages(platform)
    accounts(settings)
    ship_scripts(settings.layout)
    root_directory(f"Shared files {settings.install_root / 'share'}", settings.install_root / "share")
