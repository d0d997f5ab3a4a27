"""Ubuntu 16.04 (Python 3.5) told to use its own python3: the deploy refuses before it changes anything."""

from tests.e2e.conftest import run_pyinfra, write_inventory

WATCHED = ("/etc", "/opt", "/usr/local")
VOLATILE = ("/etc/machine-id", "/etc/mtab", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts")


def test_xenial_is_refused_before_any_change(start, workdir):
    host = start("xenial", "jhd-test-xenial")
    before = host.snapshot(*WATCHED, exclude=VOLATILE)
    packages_before = host.sh("dpkg-query -W | wc -l")
    inventory = write_inventory(workdir / "xenial.py", [(host.name, {**host.data, "jh_server_python": "system"})])

    result = run_pyinfra(inventory)

    assert result.returncode != 0
    assert "Ubuntu 16.04 ships Python 3.5, and JupyterHub 6 needs Python 3.10 or newer" in result.stderr
    assert "Nothing was changed. Fix:" in result.stderr
    assert host.snapshot(*WATCHED, exclude=VOLATILE) == before
    assert host.sh("dpkg-query -W | wc -l") == packages_before
