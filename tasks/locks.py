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
from pyinfra.operations import pip, server

from tasks import layout
from tasks.ops import root_file, script
from tasks.platform import Platform, UnsupportedTarget
from tasks.settings import FILES, Settings


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


def installed(lock: Path, stamp: PurePosixPath) -> bool:
    """Whether the stamp on the host is this lock."""
    return host.get_fact(Sha256File, path=str(stamp)) == hashlib.sha256(lock.read_bytes()).hexdigest()


def install_from_lock(
    name: str,
    settings: Settings,
    lock: Path,
    dest: PurePosixPath,
    stamp: PurePosixPath,
    install_script: str,
    *args: object,
) -> bool:
    """Upload ``lock`` as ``dest`` and run files/bin/``install_script`` with ``args`` unless ``stamp`` matches it.

    Returns whether anything will be installed.
    """
    if installed(lock, stamp):
        return False
    root_file(f"{name}: upload {lock.name}", lock, dest)
    server.shell(name=name, commands=[script(settings.layout, install_script, *args)])
    return True


def venv_from_lock(name: str, settings: Settings, env: PurePosixPath, lock: Path, python: str) -> bool:
    """A venv from ``python`` with exactly the lock's packages. Returns whether it changes."""
    pip.venv(name=f"{name}: venv {env}", path=str(env), python=python)
    stamp = env / ".installed-requirements.txt"
    return install_from_lock(
        f"{name}: install {lock.parent.name}/{lock.name}",
        settings,
        lock,
        env / lock.name,
        stamp,
        "install-venv-lock",
        env,
        env / lock.name,
        stamp,
        layout.SYSTEM_CA_BUNDLE,
        settings.pip_index_url or "",
    )
