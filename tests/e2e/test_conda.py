"""Conda: the installer is verified before it runs, and (where the installer and the
conda-forge channel can be reached) Ubuntu 16.04 and 24.04 deploy completely with
the server's Python and Node.js from conda and a kernel from an environment file.

This machine's network reaches neither, so the full test skips here and says why;
.github/workflows/e2e.yml runs it on a public CI service.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tasks.settings import MINIFORGE_URL
from tests.e2e.conftest import USERS, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient

WATCHED = ("/etc", "/opt", "/usr/local", "/var/cache")
VOLATILE = ("/etc/machine-id", "/etc/mtab", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts")
CONDA_KERNELS = [
    {"name": "python3", "display_name": "Python 3 (conda)", "environment": "teaching.yml"},
    {"name": "minimal", "display_name": "Python 3 (venv)", "packages": "minimal"},
]


def test_a_hub_without_conda_kernels_installs_no_conda(hubs):
    for hub in hubs.values():
        assert hub.sh("test -e /opt/miniconda3 && echo present || echo absent").strip() == "absent"


@pytest.mark.parametrize("suite", ["xenial", "bionic"])
def test_installer_is_checked_against_its_sha256_before_it_runs(start, workdir, file_server, suite):
    """Ubuntu 16.04 and 18.04 need conda for the server's Python; a tampered installer never runs."""
    host = start(suite, f"jhd-test-{suite}-conda")
    served, base_url = file_server
    (served / "conda").mkdir(exist_ok=True)
    (served / "conda" / "Miniforge3-tampered.sh").write_text("#!/bin/sh\ntouch /tmp/tampered-installer-ran\n")
    data = {
        **host.data,
        "jh_kernels": CONDA_KERNELS,
        "jh_conda_installer_url": f"{base_url}/conda/Miniforge3-tampered.sh",
    }
    inventory = write_inventory(workdir / f"{suite}-conda.py", [(host.name, data)])

    before = host.snapshot(*WATCHED, exclude=VOLATILE)
    preview = run_pyinfra(inventory, "--dry")
    assert preview.returncode == 0, preview.stderr[-3000:]
    planned = preview.planned_operations()
    for step in (
        "Conda channels and trust store /opt/miniconda3/.condarc",
        f"Conda installer: download {base_url}/conda/Miniforge3-tampered.sh",
        "Conda: install into /opt/miniconda3",
        "Server Python and Node.js: conda environment /opt/miniconda3/envs/jupyterhub-server from server-python.yml",
        "Kernel python3: conda environment /opt/jupyter/kernels/python3 from teaching.yml",
    ):
        assert step in planned, f"{step!r} not in the plan: {planned}"
    assert host.snapshot(*WATCHED, exclude=VOLATILE) == before, "--dry changed the host"

    result = run_pyinfra(inventory)
    assert result.returncode != 0
    assert "SHA256 did not match!" in result.stdout + result.stderr
    assert (
        host.sh("ls /tmp/tampered-installer-ran /opt/miniconda3/bin /etc/sudoers.d/jupyterhub 2>&1 || true").count(
            "No such file"
        )
        == 3
    )


@pytest.fixture(scope="module")
def conda_hubs(start, workdir) -> dict:
    try:
        requests.head(MINIFORGE_URL, timeout=15, allow_redirects=True).raise_for_status()
    except requests.RequestException as error:
        # Where the channels are known to be reachable (the public CI workflow), not running is a failure.
        give_up = pytest.fail if os.environ.get("JHD_REQUIRE_CONDA") else pytest.skip
        give_up(
            f"SKIPPED the full conda deploy (Ubuntu 16.04 and 24.04): the pinned Miniforge installer "
            f"{MINIFORGE_URL} cannot be reached from this machine ({type(error).__name__}). It needs that "
            "download and the conda-forge channel; it runs in .github/workflows/e2e.yml."
        )
    with ThreadPoolExecutor(2) as pool:
        hosts = dict(
            zip(
                ["xenial", "noble"],
                pool.map(lambda s: start(s, f"jhd-test-{s}-conda-full"), ["xenial", "noble"]),
                strict=True,
            )
        )
    # Ubuntu 16.04 gets conda's Python because its own is 3.5 (auto); 24.04 because it is asked to.
    entries = [
        (h.name, {**h.data, "jh_kernels": CONDA_KERNELS, **({"jh_server_python": "conda"} if suite == "noble" else {})})
        for suite, h in hosts.items()
    ]
    inventory = write_inventory(workdir / "conda-hubs.py", entries)
    result = run_pyinfra(inventory, timeout=2400)
    assert result.returncode == 0, result.stderr[-6000:]
    for host in hosts.values():
        host.inventory = inventory
    return hosts


@pytest.fixture(params=["xenial", "noble"])
def conda_hub(request, conda_hubs):
    return conda_hubs[request.param]


def test_server_runs_on_condas_python_and_node(conda_hub):
    python = conda_hub.sh("readlink -f /opt/jupyter/.venv/bin/python").strip()
    assert python == "/opt/miniconda3/envs/jupyterhub-server/bin/python3.12"
    assert "/opt/miniconda3/envs/jupyterhub-server/bin/node" in conda_hub.sh("ps -eo args")


def test_conda_and_venv_kernels_run_code_through_the_hub(conda_hub):
    user = HubClient(f"https://{conda_hub.domain}", verify=conda_hub.ca_bundle)
    assert user.login("alice", USERS["alice"]).status_code == 302
    user.create_token()
    user.start_server()
    out = user.run_code("import sys, numpy, regex; print(sys.prefix, numpy.arange(3).sum())", kernel_name="python3")
    assert out == "/opt/jupyter/kernels/python3 3\n"
    assert user.run_code("print(6*7)", kernel_name="minimal") == "42\n"


def test_conda_rerun_changes_nothing(conda_hubs):
    result = run_pyinfra(next(iter(conda_hubs.values())).inventory)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.totals["success"] == 0, result.changed_operations()
