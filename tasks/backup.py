"""Back up a hub's state to the controller, and restore it onto a host (a rebuilt one).

    pyinfra inventory.py tasks.backup.backup
    pyinfra inventory.py deploy.py                      # on a fresh host, first
    pyinfra inventory.py tasks.backup.restore --data jh_restore_archive=backups/<host>/<archive>

The archive holds the hub database (users, groups, roles, API tokens; copied with
SQLite's backup API while the hub runs), the secrets (so browser sessions and
tokens stay valid), the config (for reference: the deploy writes it from the
settings), and with jh_backup_home_dirs the hub users' home directories.
Unix accounts come from the settings (jh_users) on the restored host.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import PurePosixPath

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.files import Link, Sha256File
from pyinfra.operations import files, server

from tasks.settings import FILES, Settings, SettingsError, current_settings

REMOTE_DIR = PurePosixPath("/var/backups/jupyterhub-deploy")


def upload_script(settings: Settings, name: str) -> PurePosixPath:
    script = settings.install_root / "share" / name
    files.put(name=f"Script {name}", src=str(FILES / "backup" / name), dest=str(script),
              user="root", group="root", mode="755")
    return script


def require_installed_hub(settings: Settings, operation: str) -> None:
    if not host.get_fact(Link, path=str(settings.venv)):
        raise PyinfraError(f"{host.name}: no hub is installed here ({settings.venv} is missing); "
                           f"run deploy.py before {operation}")


@deploy("Back up the hub's state to the controller")
def backup() -> None:
    settings = current_settings()
    require_installed_hub(settings, "a backup")
    name = f"{host.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.tar.gz"
    remote = REMOTE_DIR / name
    local = (settings.backup_dir / host.name / name).resolve()
    files.directory(name=f"Backup staging {REMOTE_DIR}", path=str(REMOTE_DIR), user="root", group="root", mode="700")
    script = upload_script(settings, "archive-hub-state")
    homes = "yes" if settings.backup_home_dirs else "no"
    server.shell(name=f"Archive the hub's state as {remote}",
                 commands=[f"{script} {remote} {settings.install_root} {settings.users_group} {homes}"])
    files.get(name=f"Copy the archive to the controller: {local}", src=str(remote), dest=str(local),
              create_local_dir=True)
    files.file(name=f"Remove {remote} from the host", path=str(remote), present=False)


@deploy("Restore the hub's state from an archive")
def restore() -> None:
    settings = current_settings()
    archive = settings.restore_archive
    if archive is None:
        raise SettingsError("tasks.backup.restore needs jh_restore_archive: an archive made by tasks.backup.backup "
                            "(--data jh_restore_archive=backups/<host>/<archive>.tar.gz)")
    require_installed_hub(settings, "a restore")
    # Restoring the same archive again changes nothing.
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    stamp = settings.state_dir / ".restored-archive-sha256"
    if host.get_fact(Sha256File, path=str(stamp)) == hashlib.sha256(f"{digest}\n".encode()).hexdigest():
        return
    remote = REMOTE_DIR / "restore.tar.gz"
    files.directory(name=f"Backup staging {REMOTE_DIR}", path=str(REMOTE_DIR), user="root", group="root", mode="700")
    files.put(name=f"Upload {archive.name}", src=str(archive), dest=str(remote), user="root", group="root", mode="600")
    script = upload_script(settings, "restore-hub-state")
    server.shell(
        name=f"Restore the hub's database and secrets from {archive.name} (the hub restarts)",
        commands=[
            f"{script} {remote} {settings.install_root} {settings.hub_user} {settings.local_url}hub/health",
            f"echo {digest} > {stamp}",
            f"rm -f {remote}",
        ],
    )
