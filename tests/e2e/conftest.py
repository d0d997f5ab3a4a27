"""Real targets for end-to-end tests: systemd containers reached by pyinfra over SSH."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import targets as harness

REPO = harness.REPO
# What the deployed targets run with: short idle timeout so the culler test is quick,
# the proxy on all addresses so the tests reach it from this machine.
USERS = {"alice": "alice-password", "bob": "bob-password"}
TEST_SETTINGS = {
    "jh_public_ip": "0.0.0.0",
    "jh_idle_timeout": 60,
    "jh_idle_check_interval": 10,
    "jh_admin_users": ["alice"],
}


@dataclass
class DeployResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)

    @property
    def totals(self) -> dict:
        return self.json["results"]["totals"]

    def changed_operations(self) -> list[str]:
        return [op["name"] for op in self.json["results"]["operations"] if op["success"]]


def write_inventory(path: Path, hosts: list[tuple[str, dict]]) -> Path:
    """A pyinfra inventory file holding these hosts in the group `hubs`."""
    path.write_text(
        "import json\n"
        f"hubs = [tuple(h) for h in json.loads({json.dumps(json.dumps(hosts))})]\n"
    )
    return path


def run_pyinfra(inventory: Path, *args: str, deploy: str = "deploy.py", timeout: int = 1200) -> DeployResult:
    """Run the deploy the way an admin does, non-interactively, with JSON results."""
    command = [sys.executable, "-m", "pyinfra", "-y", "--json", str(inventory), *args, deploy]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    return DeployResult(result.returncode, result.stdout, result.stderr)


class Host:
    """A started target, with helpers to look inside it."""

    def __init__(self, engine, target: harness.Target, data: dict):
        self.engine = engine
        self.target = target
        self.data = data
        self.container = engine.client.containers.get(target.container_id)

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def address(self) -> str:
        return self.target.address

    def sh(self, command: str, check: bool = True) -> str:
        code, output = self.container.exec_run(["sh", "-c", command])
        text = output.decode(errors="replace")
        if check and code != 0:
            raise AssertionError(f"{self.name}: `{command}` exited {code}:\n{text}")
        return text

    def journal(self, unit: str = "jupyterhub", lines: int = 60) -> str:
        return self.sh(f"journalctl -u {unit} --no-pager -n {lines}", check=False)

    def snapshot(self, *paths: str, exclude: str = r"\.sqlite$|\.pid$") -> str:
        """Owners, modes, sizes, mtimes and checksums of every file below paths."""
        find = f"find {' '.join(paths)} -xdev \\( -type f -o -type l \\)"
        keep = f"grep -Ev '{exclude}'"
        return self.sh(
            f"{find} -printf '%p %u %g %m %s %T@\\n' | {keep} | sort;"
            f" {find} -type f -exec sha256sum {{}} + | {keep} | sort"
        )


@pytest.fixture(scope="session")
def engine():
    engine = harness.Engine()
    yield engine
    for container in engine.client.containers.list(all=True, filters={"label": harness.LABEL}):
        if container.name != harness.DEMO_NAME:
            container.remove(force=True)
    engine.stop()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("targets")


@pytest.fixture(scope="session")
def start(engine, workdir):
    """start(suite, name) -> Host: boot a target from its (cached) image."""
    harness.ensure_images(engine.client, ["noble", "bookworm", "xenial"])
    users = [{"name": n, "password_hash": harness.password_hash(p)} for n, p in USERS.items()]

    def _start(suite: str, name: str) -> Host:
        target = harness.start_target(engine.client, suite, name, workdir)
        data = {
            **target.inventory_data(),
            **TEST_SETTINGS,
            "jh_users": users,
            # The targets must trust what this machine trusts (its egress is re-signed).
            "jh_extra_ca_certificates": harness.controller_ca_certificates(),
        }
        return Host(engine, target, data)

    return _start


@pytest.fixture(scope="session")
def hubs(start, workdir) -> dict[str, Host]:
    """Ubuntu 24.04 and Debian 12 targets after one full deploy to both."""
    with ThreadPoolExecutor(2) as pool:
        hosts = dict(zip(["noble", "bookworm"], pool.map(lambda s: start(s, f"jhd-test-{s}"), ["noble", "bookworm"])))
    inventory = write_inventory(workdir / "hubs.py", [(h.name, h.data) for h in hosts.values()])
    result = run_pyinfra(inventory)
    if result.returncode != 0:
        journals = "\n".join(h.journal() for h in hosts.values())
        pytest.fail(f"deploy failed:\n{result.stderr[-6000:]}\n{journals}")
    for host in hosts.values():
        host.inventory = inventory
        host.first_deploy = result
    return hosts


@pytest.fixture(params=["noble", "bookworm"])
def hub(request, hubs) -> Host:
    return hubs[request.param]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
