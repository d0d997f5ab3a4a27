"""Install from lock files exactly once per lock.

A lock is "installed" when a stamp (a copy of the lock written after a
successful install) matches the controller's lock. The comparison uses a fact at
plan time, so a re-run with the same lock plans nothing, an install that failed
half-way is retried on the next run, and --dry shows what would run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

from pyinfra import host
from pyinfra.facts.files import Sha256File
from pyinfra.operations import files, server


def install_from_lock(
    name: str, lock: Path, remote_dir: PurePosixPath, stamp: PurePosixPath, commands: list[str]
) -> bool:
    """Upload ``lock`` into ``remote_dir`` and run ``commands`` there unless ``stamp`` matches it.

    Returns whether anything will be installed.
    """
    desired = hashlib.sha256(lock.read_bytes()).hexdigest()
    if host.get_fact(Sha256File, path=str(stamp)) == desired:
        return False
    files.put(
        name=f"{name}: upload {lock.name}",
        src=str(lock),
        dest=str(remote_dir / lock.name),
        user="root", group="root", mode="644",
    )
    server.shell(
        name=name,
        # One shell: pyinfra runs each command in a new one, and cd must carry.
        commands=[" && ".join([f"cd {remote_dir}", *commands, f"cp {lock.name} {stamp}"])],
    )
    return True
