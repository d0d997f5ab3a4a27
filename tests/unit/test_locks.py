"""Every package set has a lock for the Python every supported target builds its venvs from,
and the server Python is chosen per release from the locks there are."""

import pytest

from tasks.locks import lock_for
from tasks.platform import CONDA_SERVER_PYTHON, RELEASES, Platform, UnsupportedTarget, server_platform
from tasks.settings import FILES, Settings


def platforms(release_name: str) -> list[Platform]:
    """What each supported release builds venvs from, for a server release (jh_server_python = auto)."""
    settings = Settings.from_data({"jh_server_release": release_name})
    return [
        server_platform(Platform(d, r, release.python3, release.python3), release, settings)
        for (d, r), release in RELEASES.items()
    ]


TARGETS = [*platforms("jupyterhub-6"), *platforms("jupyterhub-5")]
KERNEL_SETS = [path.parent for path in sorted((FILES / "kernels").glob("*/requirements.in"))]


@pytest.mark.parametrize("package_set", KERNEL_SETS, ids=lambda p: p.name)
@pytest.mark.parametrize("platform", TARGETS, ids=lambda p: f"{p.label}-py{p.python}")
def test_every_kernel_set_has_a_lock_that_pins_everything(package_set, platform):
    lock = lock_for(package_set, platform, "setting")
    lines = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    assert lines and all("==" in line for line in lines)


@pytest.mark.parametrize(
    ("release_name", "expected"),
    [
        (
            "jupyterhub-6",
            {"16.04": "conda", "18.04": "conda", "20.04": "conda", "22.04": "python3", "24.04": "python3",
             "11": "conda", "12": "python3", "13": "python3"},
        ),
        (
            "jupyterhub-5",
            {"16.04": "conda", "18.04": "conda", "20.04": "python3.9", "22.04": "python3", "24.04": "python3",
             "11": "python3", "12": "python3", "13": "python3"},
        ),
    ],
)  # fmt: skip
def test_auto_chooses_the_newest_system_python_the_release_has_a_lock_for(release_name, expected):
    chosen = {p.release: "conda" if p.conda_server else p.python_command for p in platforms(release_name)}
    assert chosen == expected
    focal = next(p for p in platforms(release_name) if p.release == "20.04")
    if not focal.conda_server:
        assert (focal.python, focal.python_packages) == ("3.9", ["python3.9", "python3.9-venv"])
    else:
        assert focal.python == CONDA_SERVER_PYTHON and focal.python_packages == []


def test_system_python_without_a_lock_refuses_the_target_naming_the_fix():
    settings = Settings.from_data({"jh_server_python": "system"})
    release = RELEASES[("Debian", "11")]
    with pytest.raises(UnsupportedTarget, match="jupyterhub-5 runs on Python 3.9"):
        server_platform(Platform("Debian", "11", "3.9", "3.9"), release, settings)


def test_missing_lock_refuses_the_target():
    with pytest.raises(
        UnsupportedTarget, match="jh_server_release: files/server/jupyterhub-6 has no lock for Python 3.9"
    ):
        lock_for(FILES / "server" / "jupyterhub-6", Platform("Debian", "11", "3.9", "3.9"), "jh_server_release")


def test_conda_server_python_matches_its_environment_file():
    text = (FILES / "conda" / "server-python.yml").read_text()
    assert f"  - python={CONDA_SERVER_PYTHON}\n" in text
    assert "  - nodejs=" in text
