"""Every package set has a lock for every supported target's Python."""

import pytest

from tasks.locks import lock_for
from tasks.platform import MIN_SERVER_PYTHON, SYSTEM_PYTHON, Platform, UnsupportedTarget
from tasks.settings import FILES

TARGETS = [Platform(d, r, p) for (d, r), p in SYSTEM_PYTHON.items()
           if tuple(map(int, p.split("."))) >= MIN_SERVER_PYTHON]
PACKAGE_SETS = [f"{kind}/{path.parent.name}" for kind in ("server", "kernels")
                for path in sorted((FILES / kind).glob("*/requirements.in"))]


@pytest.mark.parametrize("package_set", PACKAGE_SETS)
@pytest.mark.parametrize("platform", TARGETS, ids=lambda p: p.label)
def test_lock_exists_and_pins_everything(package_set, platform):
    lock = lock_for(package_set, platform, "setting")
    lines = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    assert lines and all("==" in line for line in lines)


def test_missing_lock_refuses_the_target():
    with pytest.raises(UnsupportedTarget, match="jh_server_release: files/server/jupyterhub-6 has no lock for Python 3.9"):
        lock_for("server/jupyterhub-6", Platform("Debian", "11", "3.9"), "jh_server_release")
