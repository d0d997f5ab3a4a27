"""Remove what the deploy installed, and say what was removed.

    pyinfra inventory.py tasks.uninstall.remove --dry   # lists what would go
    pyinfra inventory.py tasks.uninstall.remove

Stops users' servers; removes the hub's units, sudoers rule, PAM service, nginx site, certificate
renewal hook, self-signed/manual certificates, trusted extra CAs, the install root
(server venvs, kernels, state: take a backup first) and the hub's system account.
Kept unless asked: the conda installation (jh_uninstall_conda), the hub users'
accounts and home directories (jh_uninstall_users). Kept always: system packages
(nginx, certbot, ...), Let's Encrypt certificates (certbot owns them), the
firewall rules (ufw's) and the pam_access rules that keep hub users from cron, at and SSH
(tasks/confinement.py: they hold for the people as long as they are there). A second run
finds nothing left and changes nothing.
"""

from __future__ import annotations

import sys

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import Directory, File, Link
from pyinfra.facts.server import Groups, Users, Which
from pyinfra.operations import files, server, systemd

from tasks import layout
from tasks.facts import UserServerUnits
from tasks.ops import command
from tasks.preflight import check_accounts
from tasks.settings import Settings, current_settings


def exists(path: str) -> bool:
    return bool(host.get_fact(File, path=path) or host.get_fact(Directory, path=path) or host.get_fact(Link, path=path))


def remove_path(path, removed: list[str]) -> bool:
    """Remove a file, link or directory if it exists (never through a link); returns whether it did."""
    path = str(path)
    if not exists(path):
        return False
    if host.get_fact(Link, path=path):
        files.link(name=f"Remove {path}", path=path, present=False)
    elif host.get_fact(Directory, path=path):
        files.directory(name=f"Remove {path}", path=path, present=False)
    else:
        files.file(name=f"Remove {path}", path=path, present=False)
    removed.append(path)
    return True


def services(removed: list[str]) -> None:
    running = host.get_fact(UserServerUnits, prefix=layout.USER_UNIT_PREFIX)
    if running:
        # Transient units: stopped, they are gone.
        server.shell(
            name=f"Stop users' servers: {', '.join(running)}",
            commands=[
                command("systemctl", "stop", *running),
                command("systemctl", "reset-failed", *running) + " || true",
            ],
        )
        removed += running
    remove_path(layout.USER_ENV_DIR, removed)
    # The ports' firewall rule goes with its unit (its stop removes the rule).
    units = (*layout.UNITS, layout.SERVER_PORTS_SERVICE)
    for unit in (*layout.SERVICES, layout.SERVER_PORTS_SERVICE):
        if host.get_fact(File, path=str(layout.UNIT_DIR / unit)):
            systemd.service(name=f"Stop and disable {unit}", service=unit, running=False, enabled=False)
    if any([remove_path(layout.UNIT_DIR / unit, removed) for unit in units]):
        systemd.daemon_reload(name="Reload systemd units")
    # apt's hook runs a script of the install root, which goes.
    remove_path(layout.APT_JOBS_HOOK, removed)


def web_front(removed: list[str]) -> None:
    site = layout.NGINX_SITE
    paths = (
        layout.NGINX_SITE_ENABLED,
        site,
        f"{site}.previous",
        layout.NGINX_ACME_SITE_ENABLED,
        layout.NGINX_ACME_SITE,
    )
    site_removed = any([remove_path(path, removed) for path in paths])
    remove_path(layout.RENEW_HOOK, removed)
    remove_path(layout.TLS_DIR, removed)
    if site_removed and host.get_fact(Which, command="nginx"):
        server.shell(
            name="Reload nginx without the hub's site",
            commands=["nginx -t && (systemctl reload nginx || ! systemctl is-active -q nginx)"],
        )
    if remove_path(layout.CA_DIR, removed):
        server.shell(name="Rebuild the system CA store", commands=["update-ca-certificates --fresh"])


def accounts(settings: Settings, removed: list[str]) -> None:
    users = host.get_fact(Users)
    if settings.hub_user in users:
        # Nothing of the hub's account runs later: its crontab and at jobs go with it.
        server.shell(
            name=f"Remove the crontab and at jobs of {settings.hub_user}",
            commands=[
                command(
                    "sh",
                    "-c",
                    'crontab -r -u "$1" 2>/dev/null; atq 2>/dev/null | awk -v u="$1" \'$NF == u {print $1}\' | xargs -r atrm; true',
                    "jobs",
                    settings.hub_user,
                )
            ],
        )
        server.user(name=f"Remove the hub's account {settings.hub_user}", user=settings.hub_user, present=False)
        removed.append(f"user {settings.hub_user}")
    groups = host.get_fact(Groups)
    if settings.hub_user in groups:
        server.group(name=f"Remove group {settings.hub_user}", group=settings.hub_user, present=False)
        removed.append(f"group {settings.hub_user}")
    if not settings.uninstall_users:
        return
    for user in settings.users:
        if user.name in users:
            server.user(name=f"Remove hub user {user.name}", user=user.name, present=False)
            removed.append(f"user {user.name}")
            remove_path(users[user.name]["home"], removed)
    if settings.users_group in groups:
        server.group(name=f"Remove group {settings.users_group}", group=settings.users_group, present=False)
        removed.append(f"group {settings.users_group}")


@deploy("Uninstall the hub")
def remove() -> None:
    settings = current_settings()
    # Never remove an account the deploy did not make (jh_hub_user = "mail" by mistake).
    check_accounts(settings)
    removed: list[str] = []
    services(removed)
    for path in (layout.SUDOERS_RULE, f"{layout.SUDOERS_RULE}.staged", layout.PAM_SERVICE):
        remove_path(path, removed)
    web_front(removed)
    for path in (settings.install_root, layout.INSTALLER_CACHE, layout.BACKUP_STAGING):
        remove_path(path, removed)
    if settings.uninstall_conda:
        remove_path(settings.conda_prefix, removed)
    accounts(settings, removed)
    listing = "\n".join(f"  {item}" for item in removed) or "  nothing: the hub is not installed here"
    # stderr, beside pyinfra's own progress (stdout stays clean for --json).
    print(f"--> {host.name}: uninstall removes\n{listing}", file=sys.stderr, flush=True)
