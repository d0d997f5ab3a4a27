"""The base system: trusted CAs, packages, the hub's account and the hub users."""

from __future__ import annotations

from pyinfra.operations import apt, files, server
from pyinfra.operations.util import any_changed

from tasks.settings import FILES, Settings

CA_DIR = "/usr/local/share/ca-certificates/jupyterhub-deploy"

# curl: downloads (the conda installer).
PACKAGES = ["python3-venv", "sudo", "ca-certificates", "curl"]


def trust_extra_cas(settings: Settings) -> None:
    """Install extra CA certificates first, so apt, pip and npm can reach their indexes."""
    uploads = [
        files.put(
            name=f"Trust CA certificate {certificate.name}",
            src=str(certificate),
            dest=f"{CA_DIR}/{certificate.stem}.crt",
            user="root", group="root", mode="644",
        )
        for certificate in settings.extra_ca_certificates
    ]
    if uploads:
        server.shell(
            name="Rebuild the system CA store",
            commands=["update-ca-certificates"],
            _if=any_changed(*uploads),
        )


def install_packages() -> None:
    apt.packages(
        name="Install system packages",
        packages=PACKAGES,
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
        # shadow: PAM's unix_chkpwd check needs it when the hub is not root.
        groups=["shadow"],
        system=True,
        home=str(settings.install_root),
        shell="/usr/sbin/nologin",
        ensure_home=False,
    )
    server.group(name=f"Group {settings.users_group} of hub users", group=settings.users_group)
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
    files.put(
        name="PAM service for hub logins",
        src=str(FILES / "pam" / "jupyterhub"),
        dest="/etc/pam.d/jupyterhub",
        user="root", group="root", mode="644",
    )


def apply(settings: Settings) -> None:
    trust_extra_cas(settings)
    install_packages()
    accounts(settings)
