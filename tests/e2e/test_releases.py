"""The releases beside Ubuntu 24.04 and Debian 12, each with the newest system Python its server
release has a lock for: Ubuntu 22.04 (3.10) and Debian 13 (3.13) on JupyterHub 6; Ubuntu 20.04
(python3.9 from its archive) and Debian 11 (3.9) on JupyterHub 5.5, without conda, Debian 11
behind nginx with a certificate from Pebble. A deploy of all four in one run, a login, a spawn,
code in a kernel, JupyterLab without its news pop-up, and a re-run that changes nothing."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import USERS, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient

WEB = ("jh_domain", "jh_services", "jh_acme_email", "jh_acme_directory_url")
# suite: (its server release, the Python the venvs are built from, the command that runs it)
SUITES = {
    "jammy": ("jupyterhub-6", "3.10", "python3"),
    "trixie": ("jupyterhub-6", "3.13", "python3"),
    "focal": ("jupyterhub-5", "3.9", "python3.9"),
    "bullseye": ("jupyterhub-5", "3.9", "python3"),
}
WITH_WEB_FRONT = "bullseye"


def settings(host, suite: str) -> dict:
    data = {**host.data} if suite == WITH_WEB_FRONT else {k: v for k, v in host.data.items() if k not in WEB}
    return {
        **data,
        **({} if suite == WITH_WEB_FRONT else {"jh_public_ip": "0.0.0.0", "jh_allow_public_http": True}),
        "jh_server_release": SUITES[suite][0],
        "jh_nltk_packages": [],
        "jh_kernels": [{"name": "python3", "display_name": "Python 3", "packages": "minimal"}],
    }


@pytest.fixture(scope="module")
def release_hubs(start, workdir):
    with ThreadPoolExecutor(len(SUITES)) as pool:
        hosts = dict(zip(SUITES, pool.map(lambda s: start(s, f"jhd-test-{s}"), SUITES), strict=True))
    inventory = write_inventory(workdir / "releases.py", [(h.name, settings(h, s)) for s, h in hosts.items()])
    started = time.monotonic()
    result = run_pyinfra(inventory)
    cold = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-6000:]
    return hosts, inventory, result, cold


def client(host, suite: str) -> HubClient:
    if suite == WITH_WEB_FRONT:
        return HubClient(f"https://{host.domain}", verify=host.ca_bundle)
    return HubClient(f"http://{host.address}:8000")


@pytest.mark.parametrize("suite", SUITES)
def test_hub_serves_users_on_the_release(release_hubs, suite):
    hosts, _, result, _ = release_hubs
    host = hosts[suite]
    release, python, command = SUITES[suite]
    # The run said which Python it chose.
    assert f"{host.name}: server Python {python}: {command} of " in result.stderr
    user = client(host, suite)
    assert user.login("bob", USERS["bob"]).status_code == 302, host.journal()
    user.create_token()
    user.start_server()
    assert user.run_code("import sys; print('%d.%d' % sys.version_info[:2], 6*7)") == f"{python} 42\n"
    assert host.sh("/opt/jupyter/.venv/bin/python -c 'import sys; print(sys.version_info[:2])'").strip() == str(
        tuple(map(int, python.split(".")))
    )
    assert f"/opt/jupyter/envs/{release}-" in host.sh("readlink /opt/jupyter/.venv")
    # JupyterLab asks nobody whether to fetch Jupyter news (the deploy's overrides.json).
    schema = user.api("GET", "/user/bob/lab/api/settings/@jupyterlab/apputils-extension:notification")
    assert schema.ok, schema.text
    assert schema.json()["schema"]["properties"]["fetchNews"]["default"] == "false"
    user.stop_server()


def test_releases_converge_and_print_their_times(release_hubs, capsys):
    hosts, inventory, _, cold = release_hubs
    started = time.monotonic()
    result = run_pyinfra(inventory)
    rerun = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.totals["success"] == 0, result.changed_operations()
    with capsys.disabled():
        print(f"\n[releases] {', '.join(SUITES)} in one run: cold deploy {cold:.0f} s, no-op re-run {rerun:.1f} s")
