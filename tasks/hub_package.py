"""The hub's Python package (hubside/): built into a wheel here, installed into every server venv.

uv builds the wheel offline with its own backend, byte for byte the same from the same sources,
so the wheel's sha256 says whether a venv has this build (a copy of the wheel kept in the venv
as a stamp), as a lock does (tasks/locks.py). It goes into the venv being built and into the
one in use: the hub may run on either, whatever an upgrade's rollback decides.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path, PurePosixPath

from tasks.locks import install_from_lock, uv_binary
from tasks.platform import Platform
from tasks.settings import REPO, Settings

PACKAGE = REPO / "hubside"
# In each venv: the wheel last installed there (install-wheel compares with it).
STAMP = ".installed-hubside.whl"
# The hub's configuration file: the same on every host (hub.json beside it holds the data).
HUB_CONFIG = PACKAGE / "src" / "hubside" / "jupyterhub_config.py"


@functools.cache
def wheel() -> Path:
    """The package's wheel, built once per run."""
    uv = Path(sys.executable).with_name("uv")
    out = Path(tempfile.mkdtemp(prefix="hubside-wheel-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    subprocess.run(
        [
            str(uv if uv.exists() else "uv"),
            "build",
            "--wheel",
            "--offline",
            "--quiet",
            "--out-dir",
            str(out),
            str(PACKAGE),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("hubside-*.whl")
    return built


def install(settings: Settings, platform: Platform, env: PurePosixPath) -> bool:
    """The package in the venv env (over an earlier build); returns whether it is installed now."""
    built = wheel()
    uv = uv_binary(settings, platform) if platform.uv else ""
    return install_from_lock(
        f"Hub package {built.name} in {env.name}",
        settings,
        built,
        env / built.name,
        env / STAMP,
        "install-wheel",
        env,
        env / built.name,
        env / STAMP,
        uv,
        settings.layout.uv_cache if uv else "",
    )
