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
from pyinfra.operations import files, pip, server

from tasks.platform import Platform, UnsupportedTarget
from tasks.settings import FILES


def lock_for(package_set: Path, platform: Platform, setting: str) -> Path:
    """<package_set>/py3.X.txt for the Python the target's venvs are built from, or refuse the target."""
    lock = package_set / f"py{platform.python}.txt"
    if not lock.is_file():
        shown = package_set.relative_to(FILES.parent) if package_set.is_relative_to(FILES) else package_set
        raise UnsupportedTarget(
            f"{setting}: {shown} has no lock for Python {platform.python} "
            f"({platform.label}); generate it with `make locks`"
        )
    return lock


def install_from_lock(
    name: str, lock: Path, remote_dir: PurePosixPath, stamp: PurePosixPath, commands: list[str],
    upload_as: str | None = None,
) -> bool:
    """Upload ``lock`` into ``remote_dir`` (as ``upload_as``) and run ``commands`` there unless ``stamp`` matches it.

    Returns whether anything will be installed.
    """
    desired = hashlib.sha256(lock.read_bytes()).hexdigest()
    if host.get_fact(Sha256File, path=str(stamp)) == desired:
        return False
    uploaded = upload_as or lock.name
    files.put(
        name=f"{name}: upload {lock.name}",
        src=str(lock),
        dest=str(remote_dir / uploaded),
        user="root", group="root", mode="644",
    )
    server.shell(
        name=name,
        # One shell: pyinfra runs each command in a new one, and cd must carry.
        commands=[" && ".join([f"cd {remote_dir}", *commands, f"cp {uploaded} {stamp}"])],
    )
    return True


def venv_from_lock(name: str, env: PurePosixPath, lock: Path, index_url: object | None, python: str) -> bool:
    """A venv from ``python`` with exactly the lock's packages. Returns whether it changes."""
    pip.venv(name=f"{name}: venv {env}", path=str(env), python=python)
    index = f" --index-url {index_url}" if index_url else ""
    return install_from_lock(
        name=f"{name}: install {lock.parent.name}/{lock.name}",
        lock=lock,
        remote_dir=env,
        stamp=env / ".installed-requirements.txt",
        commands=[
            f"{env}/bin/pip install --no-deps --disable-pip-version-check{index} -r {lock.name}",
            f"{env}/bin/pip check",
        ],
    )
