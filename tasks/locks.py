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
from pyinfra.operations import server

from tasks import layout
from tasks.ops import root_directory, root_file, script
from tasks.platform import Platform, UnsupportedTarget
from tasks.settings import FILES, Settings
from tasks.snapshot import entry

# uv, pinned like everything else; hosts whose uv this run already plans.
UV_LOCK = FILES / "uv" / "requirements.txt"
_UV_PLANNED: set[str] = set()
# A venv's copy of the lock it was last filled from, written once the install succeeded.
VENV_STAMP = ".installed-requirements.txt"


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
    found = entry(stamp, hashed=True)
    return found is not None and found[5] == hashlib.sha256(lock.read_bytes()).hexdigest()


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


def venv_from_lock(
    name: str, settings: Settings, platform: Platform, env: PurePosixPath, lock: Path, background: str = ""
) -> bool:
    """A venv of the platform's Python with exactly the lock's packages. Returns whether it changes.

    With ``background`` (a unit's name), the install runs as that transient unit beside the rest
    of the deploy (files/bin/background-install), and ``await_venv`` waits for it.
    """
    stamp = env / VENV_STAMP
    if installed(lock, stamp):
        return False
    args = installer_args(settings, platform, env, env / lock.name, stamp)
    what = f"{name}: install {lock.parent.name}/{lock.name}"
    if not background:
        return install_from_lock(what, settings, lock, env / lock.name, stamp, "install-venv-lock", *args)
    root_file(f"{name}: upload {lock.name}", lock, env / lock.name)
    start = script(settings.layout, "background-install", "start", background, "install-venv-lock", *args)
    server.shell(name=f"{what} (in the background, as {background})", commands=[start])
    return True


def await_venv(name: str, settings: Settings, env: PurePosixPath, lock: Path, background: str) -> None:
    """The end of the background install ``venv_from_lock`` started, if it started one; fails if it failed."""
    if not installed(lock, env / VENV_STAMP):
        wait = script(settings.layout, "background-install", "wait", background, env / lock.name, env / VENV_STAMP)
        server.shell(name=f"{name}: wait for its install ({background})", commands=[wait])


def installer_args(
    settings: Settings, platform: Platform, env: PurePosixPath, lock: PurePosixPath, stamp: PurePosixPath
) -> list[object]:
    """files/bin/install-venv-lock's arguments to install ``lock`` (on the host) into ``env``."""
    paths = settings.layout
    uv, cache = (uv_binary(settings, platform), paths.uv_cache) if platform.uv else ("", "")
    index = settings.pip_index_url or ""
    return [platform.python_command, env, lock, stamp, layout.SYSTEM_CA_BUNDLE, uv, cache, index]


def uv_binary(settings: Settings, platform: Platform) -> PurePosixPath:
    """uv, in a venv of its own (made with pip); planned once per host and run."""
    tool = settings.layout.uv_tool
    if host.name not in _UV_PLANNED:
        _UV_PLANNED.add(host.name)
        # Root's alone: uv keeps lock files there that anyone could write (0666).
        root_directory(f"uv's cache {settings.layout.uv_cache}", settings.layout.uv_cache, mode="700")
        stamp = tool / ".installed-requirements.txt"
        install_from_lock(
            f"uv {UV_LOCK.read_text().strip()} (installs the venvs)",
            settings,
            UV_LOCK,
            tool / UV_LOCK.name,
            stamp,
            "install-venv-lock",
            *[platform.python_command, tool, tool / UV_LOCK.name, stamp, layout.SYSTEM_CA_BUNDLE, "", ""],
            settings.pip_index_url or "",
        )
    return tool / "bin" / "uv"
