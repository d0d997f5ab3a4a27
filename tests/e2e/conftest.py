"""Real targets for end-to-end tests: systemd containers reached by pyinfra over SSH."""

from __future__ import annotations

import faulthandler
import functools
import hashlib
import http.server
import io
import ipaddress
import json
import secrets
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import harness
from tests.pebble import PORT_OFFSET, Pebble

REPO = harness.REPO
# A session stopped from outside (tests/e2e.sh's budget) says where every thread was.
faulthandler.register(signal.SIGTERM, all_threads=True, chain=True)
# What the deployed targets run with: a short idle timeout so the culler test is
# quick, nginx with a certificate from Pebble, and a sub-path service.
USERS = {"alice": "alice-password", "bob": "bob-password"}
DOMAIN = "{name}.test"  # one per container: Pebble's DNS must not mix them up
ECHO_PORT = 9999
# Where Host.sh keeps a command's output until it is read (root's; not a tmpfs, which docker cp cannot read).
SH_OUTPUT_DIR = "/var/lib/jhd-test-sh"
TEST_SETTINGS = {
    "jh_idle_timeout": 60,
    "jh_idle_check_interval": 10,
    "jh_admin_users": ["alice"],
    "jh_acme_email": "admin@jhd.test",
    "jh_services": [{"path": "/echo/", "upstream": f"http://127.0.0.1:{ECHO_PORT}/", "websockets": True}],
    "jh_kernels": [
        {"name": "python3", "display_name": "Python 3 (teaching)", "packages": "teaching"},
        {"name": "minimal", "display_name": "Python 3 (minimal)", "packages": "minimal"},
    ],
    "jh_nltk_packages": ["jhd_test_corpus"],
    # The NLTK index this machine serves the targets, on the tests' own bridge network.
    "jh_allow_plain_http_downloads": True,
}
FILE_SERVER_PORT = 8071 + PORT_OFFSET
# A hub for tests of what is not the web front: the proxy on the container's address over plain
# HTTP, one small kernel, nothing culled while the tests run.
WEB_SETTINGS = ("jh_domain", "jh_services", "jh_acme_email", "jh_acme_directory_url")
PLAIN_HUB = {
    "jh_public_ip": "0.0.0.0",
    # The tests' own bridge network, closed to the world.
    "jh_allow_public_http": True,
    "jh_nltk_packages": [],
    "jh_kernels": [{"name": "python3", "display_name": "Python 3", "packages": "minimal"}],
    "jh_idle_timeout": 3600,
}


def plain_hub(host, **settings) -> dict:
    """The host's settings for a PLAIN_HUB, with these on top."""
    return {**{k: v for k, v in host.data.items() if k not in WEB_SETTINGS}, **PLAIN_HUB, **settings}


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

    def planned_operations(self) -> list[str]:
        """The operations a run (or a --dry preview) planned, by name."""
        return [op["name"] for op in self.json["plan"]]


def write_inventory(path: Path, hosts: list[tuple[str, dict]], nodes: list[tuple[str, dict]] = ()) -> Path:
    """A pyinfra inventory file holding these hosts in the group `hubs` (and `nodes`, a cluster's)."""
    text = f"import json\nhubs = [tuple(h) for h in json.loads({json.dumps(json.dumps(hosts))})]\n"
    if nodes:
        text += f"nodes = [tuple(h) for h in json.loads({json.dumps(json.dumps(list(nodes)))})]\n"
    path.write_text(text)
    return path


def run_pyinfra(inventory: Path, *args: str, deploy: str = "deploy.py", timeout: int = 1200) -> DeployResult:
    """Run the deploy the way an admin does, non-interactively, with JSON results."""
    command = [sys.executable, "-m", "pyinfra", "-y", "--json", str(inventory), *args, deploy]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    return DeployResult(result.returncode, result.stdout, result.stderr)


class Host:
    """A started target, with helpers to look inside it."""

    def __init__(self, engine, target: harness.Target, data: dict, domain: str, ca_bundle: str):
        self.engine = engine
        self.target = target
        self.data = data
        self.domain = domain
        # What verifies the certificates the target serves (Pebble's roots).
        self.ca_bundle = ca_bundle
        self.container = engine.client.containers.get(target.container_id)

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def address(self) -> str:
        return self.target.address

    def sh(self, command: str, check: bool = True) -> str:
        """Run command as root in the target; its output (stdout and stderr).

        Docker now and then loses the output of an exec (moby#27289, docker-py#2042), so the
        command's output and status also go to files, read back when the end marker is missing.
        """
        token = secrets.token_hex(8)
        path = f"{SH_OUTPUT_DIR}/{token}"
        marker = f"[jhd-sh {token} status]"
        script = (
            f"mkdir -p -m 0700 {SH_OUTPUT_DIR} || exit 125; ( {command}\n) >{path} 2>&1; echo $? >{path}.status;"
            f" cat {path}; printf '{marker}%s' \"$(cat {path}.status)\""
        )
        _, output = self.container.exec_run(["sh", "-c", script])
        text, found, status = output.decode(errors="replace").rpartition(marker)
        if not found:
            text, status = (self._read_back(f"{path}{suffix}") for suffix in ("", ".status"))
        self.container.exec_run(["rm", "-f", path, f"{path}.status"], detach=True)
        code = int(status)
        if check and code != 0:
            raise AssertionError(f"{self.name}: `{command}` exited {code}:\n{text}")
        return text

    def _read_back(self, path: str) -> str:
        stream, _ = self.container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.extractfile(archive.getmembers()[0])
            return member.read().decode(errors="replace")

    def journal(self, unit: str = "jupyterhub", lines: int = 60) -> str:
        return self.sh(f"journalctl -u {unit} --no-pager -n {lines}", check=False)

    def failure_journals(self) -> str:
        """The hub's, the proxy's and the users' servers' last lines (what a failed test waited on),
        and Slurm's daemons' where there are."""
        units = "-u jupyterhub -u jupyterhub-proxy -u 'jupyter-singleuser@*' -u slurmctld -u slurmdbd -u slurmd"
        try:
            return self.sh(f"journalctl {units} --no-pager -n 200 -o short-precise", check=False)
        except Exception as error:  # a container gone or wedged: the report still goes out
            return f"(no journal: {error!r})"

    def snapshot(self, *paths: str, exclude: tuple[str, ...] = ("*.sqlite", "*.sqlite-*", "*.pid")) -> str:
        """Owners, modes, sizes, mtimes and checksums of every file below paths (but `exclude` globs)."""
        skip = " ".join(f"! -path '{pattern}'" for pattern in exclude)
        find = f"find {' '.join(paths)} -xdev \\( -type f -o -type l \\) {skip}"
        return self.sh(f"{find} -printf '%p %u %g %m %s %T@\\n' | sort; {find} -type f -exec sha256sum {{}} + | sort")


@pytest.fixture(scope="session")
def engine():
    engine = harness.Engine()
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("targets")


@pytest.fixture(scope="session")
def pebble(workdir, bridge_gateway):
    """A real ACME server on the Docker bridge's gateway address."""
    server = Pebble(workdir, bridge_gateway).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bridge_gateway(engine) -> str:
    """This machine's address on the Docker bridge, which the targets reach."""
    ipam = engine.client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    # Docker gives the bridge the subnet's first address unless told otherwise.
    return ipam.get("Gateway") or str(ipaddress.ip_network(ipam["Subnet"])[1])


@pytest.fixture(scope="session")
def file_server(workdir, bridge_gateway) -> tuple[Path, str]:
    """(folder, its URL): files this machine serves to the targets over HTTP."""
    root = workdir / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer((bridge_gateway, FILE_SERVER_PORT), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://{bridge_gateway}:{FILE_SERVER_PORT}"
    httpd.shutdown()


@pytest.fixture(scope="session")
def nltk_index(file_server):
    """A small NLTK data index with one package, served to the targets' downloader."""
    served, base_url = file_server
    root, base = served / "nltk", f"{base_url}/nltk"
    (root / "packages" / "corpora").mkdir(parents=True)
    package = root / "packages" / "corpora" / "jhd_test_corpus.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("jhd_test_corpus/README", "a corpus served by the tests\n")
    (root / "index.xml").write_text(
        '<?xml version="1.0"?>\n<nltk_data><packages>\n'
        f'<package id="jhd_test_corpus" name="Test corpus" subdir="corpora" unzip="1"'
        f' url="{base}/packages/corpora/jhd_test_corpus.zip" size="{package.stat().st_size}"'
        f' unzipped_size="29" checksum="{hashlib.md5(package.read_bytes()).hexdigest()}" />\n'
        "</packages><collections /></nltk_data>\n"
    )
    return f"{base}/index.xml"


@pytest.fixture(scope="session")
def resolver():
    """Name -> address for the targets' test domains, like curl --resolve, for requests and websockets."""
    names: dict[str, str] = {}
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return original(names.get(host, host), *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    yield names
    socket.getaddrinfo = original


@pytest.fixture(scope="session")
def start(engine, workdir, pebble, resolver, nltk_index):
    """start(suite, name) -> Host: boot a target from its (cached) image, named in DNS for Pebble."""
    harness.ensure_images(engine.client, ["noble", "bookworm", "xenial"])
    users = [{"name": n, "password_hash": harness.password_hash(p)} for n, p in USERS.items()]
    roots = str(pebble.root_certificates())

    started = []

    def _start(suite: str, name: str, volumes: dict | None = None) -> Host:
        harness.ensure_images(engine.client, [suite])
        target = harness.start_target(engine.client, suite, name, workdir, volumes=volumes)
        started.append(name)
        domain = DOMAIN.format(name=name)
        pebble.add_name(domain, target.address)
        resolver[domain] = target.address
        data = {
            **target.inventory_data(),
            **TEST_SETTINGS,
            "jh_users": users,
            "jh_domain": domain,
            "jh_acme_directory_url": pebble.directory_url,
            "jh_nltk_index_url": nltk_index,
            # The targets must trust what this machine trusts (its egress is re-signed),
            # and the test ACME server's own TLS certificate.
            "jh_extra_ca_certificates": [*harness.controller_ca_certificates(), str(pebble.tls_ca)],
        }
        return Host(engine, target, data, domain, roots)

    yield _start
    # Only this session's containers: another session may share the engine.
    for name in started:
        harness.remove_container(engine.client, name)


@pytest.fixture(scope="session")
def hubs(start, workdir) -> dict[str, Host]:
    """Ubuntu 24.04 and Debian 12 targets after one full deploy to both."""
    suites = ["noble", "bookworm"]
    with ThreadPoolExecutor(2) as pool:
        hosts = dict(zip(suites, pool.map(lambda s: start(s, f"jhd-test-{s}"), suites), strict=True))
    for host in hosts.values():
        # Monitoring with everything else on: its pages for the admins through the site
        # (test_web.py). Its alerts are test_operations.py's: here they go where nothing listens.
        host.data["jh_monitoring"] = {"webhook_url": "http://127.0.0.1:9/alerts"}
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


def hosts_in(value, depth: int = 3):
    """The targets a test's fixture values hold: a Host, or Hosts in dicts, tuples and objects."""
    if isinstance(value, Host):
        yield value
    elif depth:
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list | tuple):
            children = value
        else:
            children = getattr(value, "__dict__", {}).values()
        for child in children:
            yield from hosts_in(child, depth - 1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed or timed-out e2e test shows what the hub and the users' servers said meanwhile."""
    report = yield
    if report.failed and call.when in ("setup", "call") and "/e2e/" in str(item.fspath):
        seen = set()
        for host in hosts_in(getattr(item, "funcargs", {})):
            if host.name not in seen:
                seen.add(host.name)
                report.sections.append((f"journals on {host.name}", host.failure_journals()))
    return report


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def origins_site(start, pebble, bridge_gateway, resolver) -> Host:
    """The hub of per-user origins' target, named in BIND's zone, not deployed yet (tests/e2e/origins.py)."""
    from tests.e2e import origins

    host = start("bookworm", origins.NAME)
    origins.prepare(host, pebble, bridge_gateway, resolver)
    return host


@pytest.fixture(scope="session")
def origins_hub(origins_site, workdir) -> Host:
    """That target deployed with per-user origins, sharing and collaboration."""
    from tests.e2e import origins

    origins.per_user_origins(origins_site, workdir)
    return origins_site
