"""Ubuntu 22.04 (Python 3.10) and Debian 13 (Python 3.13), the oldest and newest system Pythons
the server venv is built from: a deploy, a login, a spawn, code in a kernel, a re-run that changes nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import harness
from tests.e2e.conftest import USERS, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient

SUITES = ["jammy", "trixie"]
WEB = ("jh_domain", "jh_services", "jh_acme_email", "jh_acme_directory_url")


@pytest.fixture(scope="module")
def release_hubs(engine, start, workdir):
    harness.ensure_images(engine.client, SUITES)
    with ThreadPoolExecutor(2) as pool:
        hosts = list(pool.map(lambda s: start(s, f"jhd-test-{s}"), SUITES))
    entries = [
        (
            h.name,
            {
                **{k: v for k, v in h.data.items() if k not in WEB},
                "jh_public_ip": "0.0.0.0",
                "jh_nltk_packages": [],
                "jh_kernels": [{"name": "python3", "display_name": "Python 3", "packages": "minimal"}],
            },
        )
        for h in hosts
    ]
    inventory = write_inventory(workdir / "releases.py", entries)
    result = run_pyinfra(inventory)
    assert result.returncode == 0, result.stderr[-6000:]
    return dict(zip(SUITES, hosts, strict=True)), inventory


@pytest.mark.parametrize("suite", SUITES)
def test_hub_serves_users_on_the_release(release_hubs, suite):
    host = release_hubs[0][suite]
    user = HubClient(f"http://{host.address}:8000")
    assert user.login("bob", USERS["bob"]).status_code == 302, host.journal()
    user.create_token()
    user.start_server()
    assert user.run_code("import sys; print(sys.version_info[:2] >= (3, 10), 6*7)") == "True 42\n"


def test_rerun_changes_nothing_on_either_release(release_hubs):
    result = run_pyinfra(release_hubs[1])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.totals["success"] == 0, result.changed_operations()
