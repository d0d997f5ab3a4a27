"""Every package set has a lock for the Python every supported target builds its venvs from."""

import pytest

from tasks.locks import lock_for
from tasks.platform import CONDA_SERVER_PYTHON, MIN_SERVER_PYTHON, SYSTEM_PYTHON, Platform, UnsupportedTarget
from tasks.settings import FILES


def base_python(system_python: str) -> str:
    """The system's python3 where it is new enough, else conda's (jh_server_python = auto)."""
    return system_python if tuple(map(int, system_python.split("."))) >= MIN_SERVER_PYTHON else CONDA_SERVER_PYTHON


TARGETS = [Platform(d, r, p, base_python(p)) for (d, r), p in SYSTEM_PYTHON.items()]
PACKAGE_SETS = [
    path.parent for kind in ("server", "kernels") for path in sorted((FILES / kind).glob("*/requirements.in"))
]


@pytest.mark.parametrize("package_set", PACKAGE_SETS, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("platform", TARGETS, ids=lambda p: p.label)
def test_lock_exists_and_pins_everything(package_set, platform):
    lock = lock_for(package_set, platform, "setting")
    lines = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    assert lines and all("==" in line for line in lines)


def test_missing_lock_refuses_the_target():
    with pytest.raises(
        UnsupportedTarget, match="jh_server_release: files/server/jupyterhub-6 has no lock for Python 3.9"
    ):
        lock_for(FILES / "server" / "jupyterhub-6", Platform("Debian", "11", "3.9", "3.9"), "jh_server_release")


def test_conda_server_python_matches_its_environment_file():
    text = (FILES / "conda" / "server-python.yml").read_text()
    assert f"  - python={CONDA_SERVER_PYTHON}\n" in text
    assert "  - nodejs=" in text
