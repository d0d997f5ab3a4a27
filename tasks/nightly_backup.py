"""The nightly backup (jh_nightly_backup): restic from the distribution, the repository's password and
SSH key (made once on the controller, kept there and on the hub server, root's alone), the SFTP
host's key, the repository made or opened, and a timer that runs files/bin/nightly-backup.

The controller keeps the secrets of each repository in jh_backup_dir/restic/<repository>/: a hub that
has them and a controller that has not (another admin's) gets them copied back to the controller; a
hub whose secrets for the same repository differ from the controller's stops the run (one of them
was made anew: which is the repository's, only the admin knows).
"""

from __future__ import annotations

import hashlib
import os
import re
from io import StringIO
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyinfra import host
from pyinfra.api.exceptions import PyinfraError
from pyinfra.operations import files, server, systemd

from tasks import layout
from tasks.ops import packages, private_transfer, root_directory, root_file, root_template, script, service
from tasks.platform import Platform
from tasks.settings import Settings
from tasks.settings.backups import NightlyBackup
from tasks.snapshot import Managed, entry, is_state, unit_state

UNITS = (layout.BACKUP_SERVICE, layout.BACKUP_TIMER)
# Releases whose restic is older than 0.9.6, the oldest the scripts are written for.
OLD_RESTIC = {("Ubuntu", "16.04"): "none", ("Ubuntu", "18.04"): "0.8.3"}
# The repository once made or opened, as init-backup-repository records it.
REPOSITORY_STAMP = layout.RESTIC_DIR / "repository"


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    return Managed(hashed=(layout.RESTIC_DIR.parent, layout.RESTIC_DIR), listed=(layout.BACKUP_STAGING.parent,))


def check(settings: Settings, platform: Platform) -> None:
    """Refuse a nightly backup where the distribution's restic is too old, before any change."""
    release = (platform.distribution, platform.release)
    if settings.nightly_backup and release in OLD_RESTIC:
        raise PyinfraError(
            f"host {host.name}: jh_nightly_backup needs restic 0.9.6 or newer; {' '.join(release)} has "
            f"{OLD_RESTIC[release]} (no host was changed)"
        )


def controller_folder(settings: Settings, nightly: NightlyBackup) -> Path:
    """Where the controller keeps a repository's password and SSH key."""
    name = re.sub(r"[^A-Za-z0-9.@-]+", "_", nightly.repository).strip("_")
    digest = hashlib.sha256(nightly.repository.encode()).hexdigest()[:8]
    return settings.backup_dir / "restic" / f"{name}-{digest}"


def _write_private(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(content)


def controller_secrets(folder: Path, make: bool) -> None:
    """The repository's password and an SSH key pair in folder (0700), made if missing and make."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    if not make:
        return
    if not (folder / "password").exists():
        _write_private(folder / "password", os.urandom(32).hex().encode() + b"\n")
    if not (folder / "ssh-key").exists():
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        (folder / "ssh-key.pub").unlink(missing_ok=True)
        _write_private(folder / "ssh-key", private)
        (folder / "ssh-key.pub").write_bytes(public + f" jupyterhub-backup@{host.name}\n".encode())


def secrets(settings: Settings, nightly: NightlyBackup) -> Path:
    """The controller's secrets put on the hub, or the hub's copied to a controller that has none."""
    folder = controller_folder(settings, nightly)
    same_repository = is_state(REPOSITORY_STAMP, "f", "644", "root", "root", _digest(f"{nightly.repository}\n"))
    on_host = {name: entry(layout.RESTIC_DIR / name) for name in ("password", "ssh-key")}
    fetch = same_repository and all(on_host.values()) and not (folder / "password").exists()
    if fetch:
        # What pyinfra writes on the controller from here on is private (the copies below).
        os.umask(0o077)
    controller_secrets(folder, make=not fetch)
    for name in ("password", "ssh-key"):
        remote = layout.RESTIC_DIR / name
        if fetch:
            files.get(
                name=f"Copy the backup's {name} to the controller: {folder / name}",
                src=str(remote),
                dest=str(folder / name),
                **private_transfer(),
            )
            continue
        found = entry(remote, hashed=True)
        if same_repository and found and found[5] != _file(folder / name):
            raise PyinfraError(
                f"host {host.name}: its {remote} differs from the controller's {folder / name} for the same "
                f"repository {nightly.repository}; keep the one the repository was made with (restic-run "
                "snapshots opens it) in both places (no host was changed)"
            )
        root_file(f"The backup's {name} {remote}", folder / name, remote, mode="600", **private_transfer())
    return folder


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def apply(settings: Settings) -> None:
    nightly = settings.nightly_backup
    if nightly is None:
        remove()
        return
    packages("restic and ssh (the nightly backup)", ["restic", "openssh-client"])
    root_directory(f"Deploy folder {layout.RESTIC_DIR.parent}", layout.RESTIC_DIR.parent)
    root_directory(f"The backup's keys {layout.RESTIC_DIR}", layout.RESTIC_DIR, mode="700")
    root_directory(f"Backup staging {layout.BACKUP_STAGING}", layout.BACKUP_STAGING, mode="700")
    folder = secrets(settings, nightly)
    known_hosts = layout.RESTIC_DIR / "known_hosts"
    if nightly.sftp_target:
        root_file(f"The SFTP host's key {known_hosts}", StringIO(nightly.known_hosts), known_hosts)
    if not is_state(REPOSITORY_STAMP, "f", "644", "root", "root", _digest(f"{nightly.repository}\n")):
        reach = f"; the SFTP host must accept {folder / 'ssh-key.pub'}" if nightly.sftp_target else ""
        server.shell(
            name=f"Open or make the restic repository {nightly.repository}{reach}",
            commands=[script(settings.layout, "init-backup-repository")],
        )
    units = [
        root_template(
            f"systemd unit {unit}",
            f"{unit}.j2",
            layout.UNIT_DIR / unit,
            settings,
            nightly=nightly,
            hub_service=layout.HUB_SERVICE,
        )
        for unit in UNITS
    ]
    if any(op.will_change for op in units):
        systemd.daemon_reload(name="Reload systemd units")
    service("The nightly backup's timer", layout.BACKUP_TIMER, restarted=units[1].will_change)


def remove() -> None:
    """No nightly backup: its timer, units and keys gone (the controller keeps its copies)."""
    if not any(entry(layout.UNIT_DIR / unit) for unit in UNITS) and not entry(layout.RESTIC_DIR):
        return
    if unit_state(layout.BACKUP_TIMER)[1] == "enabled":
        systemd.service(name="No nightly backup timer", service=layout.BACKUP_TIMER, running=False, enabled=False)
    for unit in UNITS:
        if entry(layout.UNIT_DIR / unit):
            files.file(name=f"No unit {unit}", path=str(layout.UNIT_DIR / unit), present=False)
    if entry(layout.RESTIC_DIR):
        files.directory(name=f"No backup keys {layout.RESTIC_DIR}", path=str(layout.RESTIC_DIR), present=False)
    systemd.daemon_reload(name="Reload systemd units")
