"""Back up a hub's state to the controller, and restore it onto a host (a rebuilt one).

    pyinfra inventory.py tasks.backup.backup
    pyinfra inventory.py deploy.py                      # on a fresh host, first
    pyinfra inventory.py tasks.backup.restore --data jh_restore_archive=backups/<host>/<archive>
    pyinfra inventory.py tasks.backup.restore --data jh_restore_snapshot=latest   # jh_nightly_backup's

The archive holds the hub database (users, groups, roles, API tokens; copied with
SQLite's backup API while the hub runs), the secrets (so browser sessions and
tokens stay valid), an OAuth hub's name bindings (a restore adds them to the
host's: a name stays with the provider's account that held it), the config (for
reference: the deploy writes it from the settings), and with jh_backup_home_dirs
the hub users' home directories.
Unix accounts come from the settings (jh_users) on the restored host. The nightly backup
(jh_nightly_backup, tasks/nightly_backup.py) keeps the same state in a restic repository;
jh_restore_snapshot takes it from there.

Archives hold secrets: on the host they exist only in a directory only root can
enter, and on the controller they are written 0600 in a 0700 folder.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.files import Link, Sha256File
from pyinfra.operations import files, server

from tasks import layout
from tasks.ops import private_transfer, root_directory, root_file, script, ship_scripts
from tasks.settings import Settings, SettingsError, current_settings

RESTORED_STAMP = layout.BACKUP_STAGING / "restored-archive-sha256"
RESTORED_SNAPSHOT_STAMP = layout.BACKUP_STAGING / "restored-snapshot"


def require_installed_hub(settings: Settings, operation: str) -> None:
    if not host.get_fact(Link, path=str(settings.layout.venv)):
        raise PyinfraError(
            f"{host.name}: no hub is installed here ({settings.layout.venv} is missing); "
            f"run deploy.py before {operation}"
        )


def prepare(settings: Settings) -> None:
    ship_scripts(settings)
    root_directory(f"Backup staging {layout.BACKUP_STAGING}", layout.BACKUP_STAGING, mode="700")


@deploy("Back up the hub's state to the controller")
def backup() -> None:
    settings = current_settings()
    paths = settings.layout
    require_installed_hub(settings, "a backup")
    name = f"{host.name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.tar.gz"
    remote = layout.BACKUP_STAGING / name
    local_dir = (settings.backup_dir / host.name).resolve()
    # Everything this run writes on the controller is private: folders 0700, files 0600.
    os.umask(0o077)
    local_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    local_dir.chmod(0o700)
    prepare(settings)
    server.shell(
        name=f"Archive the hub's state as {remote}",
        commands=[
            script(paths, "archive-hub-state", remote, "yes" if settings.backup_home_dirs else "no"),
        ],
    )
    files.get(
        name=f"Copy the archive to the controller: {local_dir / name}",
        src=str(remote),
        dest=str(local_dir / name),
        **private_transfer(),
    )
    files.file(name=f"Remove {remote} from the host", path=str(remote), present=False)


@deploy("Restore the hub's state from an archive")
def restore() -> None:
    settings = current_settings()
    paths = settings.layout
    archive = settings.restore_archive
    if archive is None and settings.restore_snapshot is None:
        raise SettingsError(
            "tasks.backup.restore needs jh_restore_archive: an archive made by tasks.backup.backup "
            "(--data jh_restore_archive=backups/<host>/<archive>.tar.gz), or jh_restore_snapshot: latest or "
            "a snapshot of jh_nightly_backup's repository"
        )
    require_installed_hub(settings, "a restore")
    if archive is None:
        prepare(settings)
        server.shell(
            name=f"Restore the hub's state from the backup {settings.restore_snapshot} of "
            f"{settings.nightly_backup.repository} (the hub restarts)",
            commands=[script(paths, "restore-from-repository", settings.restore_snapshot, RESTORED_SNAPSHOT_STAMP)],
        )
        return
    # Restoring the same archive again changes nothing.
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if host.get_fact(Sha256File, path=str(RESTORED_STAMP)) == hashlib.sha256(f"{digest}\n".encode()).hexdigest():
        return
    prepare(settings)
    remote = layout.BACKUP_STAGING / "restore.tar.gz"
    root_file(f"Upload {archive.name}", archive, remote, mode="600", **private_transfer())
    server.shell(
        name=f"Restore the hub's database and secrets from {archive.name} (the hub restarts)",
        commands=[
            script(paths, "restore-hub-state", remote),
            f"echo {digest} > {RESTORED_STAMP}",
            f"rm -f {remote}",
        ],
    )
