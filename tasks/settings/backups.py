"""The nightly backup's settings (jh_nightly_backup): where restic keeps the hub's state, when, and for
how long. Its docstring and fields' descriptions are the settings reference's text (docs/settings.md)."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictInt, StrictStr, model_validator

from tasks.settings.constants import DOMAIN, NOT_FOR_ARCHIVES
from tasks.settings.network import Port
from tasks.settings.parts import Strict
from tasks.settings.types import Kind, _path_problem, at_or_below, whole

# sftp:USER@HOST:/PATH (restic's own form), or /PATH: a folder on the hub server (another disk).
SFTP_REPOSITORY = re.compile(r"sftp:(?P<user>[a-z_][a-z0-9_-]{0,31})@(?P<host>[^:@]+):(?P<path>/.*)")
HOST_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "ssh-rsa",
)
BACKUP_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")


def repository_path(repository: str) -> PurePosixPath:
    """The folder of a repository: on the SFTP host, or on the hub server."""
    match = SFTP_REPOSITORY.fullmatch(repository)
    return PurePosixPath(match["path"] if match else repository)


def _repository(value: str) -> str:
    match = SFTP_REPOSITORY.fullmatch(value)
    if value.startswith("sftp:") and not match:
        raise ValueError(
            "must be sftp:USER@HOST:/PATH (USER a Unix name, HOST a DNS name or IPv4 address, PATH absolute)"
        )
    if match and not DOMAIN.fullmatch(match["host"]):
        raise ValueError(f"{match['host']!r} is not a DNS name or IPv4 address")
    path = repository_path(value)
    if problem := _path_problem(str(path)):
        raise ValueError(f"the repository's folder {problem}")
    if not match:
        for tree in NOT_FOR_ARCHIVES:
            if at_or_below(path, tree):
                raise ValueError(f"a folder on the hub server must not be {tree} or below it (e.g. /mnt/backup/hub)")
    if len(path.parts) < 3:
        raise ValueError("the repository's folder must be one of its own, two levels down at least (/srv/backup/hub)")
    return value


def _host_key(value: str) -> str:
    """'TYPE BASE64' of an SSH host key (a comment after it is dropped), its type checked against the key's own."""
    words = value.strip().split()
    if "\n" in value.strip() or len(words) < 2 or words[0] not in HOST_KEY_TYPES:
        raise ValueError(
            "must be an SSH host public key as the SFTP server's /etc/ssh/ssh_host_ed25519_key.pub holds it "
            f"({' or '.join(HOST_KEY_TYPES[:2])}..., then the key)"
        )
    try:
        blob = base64.b64decode(words[1], validate=True)
    except binascii.Error:
        raise ValueError("the key after its type is not base64") from None
    size = int.from_bytes(blob[:4], "big")
    embedded = blob[4 : 4 + size].decode(errors="replace")
    if embedded != ("ssh-rsa" if words[0].startswith("rsa-") else words[0]):
        raise ValueError(f"the key is of type {embedded!r}, not {words[0]!r}")
    return f"{words[0]} {words[1]}"


Repository = Annotated[StrictStr, AfterValidator(_repository), Kind("restic repository")]
HostKey = Annotated[StrictStr, AfterValidator(_host_key), Kind("SSH host key")]
BackupTime = Annotated[StrictStr, whole(BACKUP_TIME, "must be HH:MM, 00:00 to 23:59"), Kind("HH:MM")]


class NightlyBackup(Strict):
    """A restic repository the hub server backs its state up to every night (a systemd timer): the
    database, secrets and config, and with `jh_backup_home_dirs` each hub user's home (read by its
    user). The repository's password and the SSH key that reaches an SFTP repository are made once on
    the controller, in `jh_backup_dir`/restic/ (0600: keep them safe, a lost hub does not lose them),
    and copied to the hub server (root's alone). Authorize the key's `.pub` on the SFTP host. Restic
    comes from the distribution (Ubuntu 20.04 or newer, Debian 11 or newer)."""

    repository: Repository = Field(
        description="Where: `sftp:USER@HOST:/PATH` (an SFTP host; USER's `authorized_keys` holds the "
        "deploy's key) or `/PATH`, a folder on the hub server (another disk, mounted there).",
        examples=["sftp:backup@backup.example.org:/srv/restic/hub"],
    )
    sftp_host_key: HostKey | None = Field(
        None,
        description="The SFTP host's public host key (needed with sftp:): its "
        "`/etc/ssh/ssh_host_ed25519_key.pub`. Only a host that proves it holds this key gets the backups.",
        examples=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI..."],
    )
    sftp_port: Port = Field(22, description="The SFTP host's SSH port.")
    time: BackupTime = Field("03:15", description="When the backup runs each night (the hub server's local time).")
    check_day: Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] = Field(
        "Sun",
        description="The day whose backup is followed by `restic check` (and reads a quarter of the data back).",
    )
    keep_daily: StrictInt = Field(7, ge=1, le=366, description="How many daily backups are kept.")
    keep_weekly: StrictInt = Field(
        5, ge=0, le=520, description="How many weekly backups are kept (the last of a week)."
    )
    keep_monthly: StrictInt = Field(12, ge=0, le=600, description="How many monthly backups are kept.")

    @model_validator(mode="after")
    def _sftp_needs_its_host_key(self) -> NightlyBackup:
        sftp = self.repository.startswith("sftp:")
        if sftp and self.sftp_host_key is None:
            raise ValueError("sftp_host_key: an SFTP repository needs its host's key (ssh_host_ed25519_key.pub)")
        if not sftp and (self.sftp_host_key is not None or self.sftp_port != 22):
            raise ValueError("sftp_host_key and sftp_port are for an sftp: repository only")
        return self

    @property
    def sftp_target(self) -> tuple[str, str] | None:
        """(user, host) of an SFTP repository."""
        match = SFTP_REPOSITORY.fullmatch(self.repository)
        return (match["user"], match["host"]) if match else None

    @property
    def known_hosts(self) -> str:
        """The line of ssh's known_hosts that names the SFTP host with its key."""
        _, name = self.sftp_target
        where = name if self.sftp_port == 22 else f"[{name}]:{self.sftp_port}"
        return f"{where} {self.sftp_host_key}\n"

    @property
    def folder(self) -> PurePosixPath:
        return repository_path(self.repository)


RestoreSnapshot = Annotated[
    StrictStr,
    whole(re.compile(r"latest|[0-9a-f]{8}|[0-9a-f]{64}"), "must be latest or a snapshot's id (8 or 64 hex digits)"),
    Kind("latest or a snapshot id"),
]
