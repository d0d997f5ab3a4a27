"""A Slurm cluster behind the hub: one hub and two nodes (Ubuntu 24.04), deployed by one pyinfra
run, users' servers as Slurm jobs picked on the spawn page; then a third node.

The shared /home is one folder of this machine mounted at /home in every container: it stands
in for NFS (README, "A cluster"). Tests run in file order."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
import requests

from tests.e2e.conftest import USERS, plain_hub, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient

NAMES = {"hub": "jhd-test-cluster-hub", "node1": "jhd-test-cluster-n1", "node2": "jhd-test-cluster-n2"}
THIRD = "jhd-test-cluster-n3"
PROFILES = [
    {"key": "hub", "display": "On the hub server", "where": "hub"},
    {"key": "small", "display": "Cluster: 1 CPU, 1 GB, 1 h", "where": "cluster", "memory": "1G", "minutes": 60},
    {"key": "brief", "display": "Cluster: 1 CPU, 512 MB, 1 min", "where": "cluster", "memory": "512M", "minutes": 1},
]
SETTINGS = {"jh_cluster": True, "jh_spawn_profiles": PROFILES, "jh_idle_timeout": 90, "jh_idle_check_interval": 10}
TIMES: dict[str, float] = {}


class Cluster:
    def __init__(self, hosts, workdir):
        self.hosts, self.workdir = hosts, workdir

    @property
    def hub(self):
        return self.hosts["hub"]

    def settings(self, role: str, **overrides) -> dict:
        host = self.hosts[role]
        return plain_hub(host, **{**SETTINGS, "jh_cluster_address": host.address, **overrides})

    def inventory(self, name: str, roles: list[str], **overrides):
        nodes = [(self.hosts[r].name, self.settings(r, **overrides)) for r in roles if r != "hub"]
        return write_inventory(
            self.workdir / f"{name}.py", [(self.hub.name, self.settings("hub", **overrides))], nodes=nodes
        )

    def deploy(self, name: str, roles: list[str], *args: str, **overrides):
        started = time.monotonic()
        result = run_pyinfra(self.inventory(name, roles, **overrides), *args)
        TIMES[name] = time.monotonic() - started
        return result

    def squeue(self) -> list[list[str]]:
        out = self.hub.sh("squeue -h -o '%i %u %T %N %j'")
        return [line.split() for line in out.splitlines() if line.strip()]

    def user(self, name: str) -> HubClient:
        client = HubClient(f"http://{self.hub.address}:8000")
        assert client.login(name, USERS[name]).status_code == 302, self.hub.journal()
        client.create_token()
        return client


@contextlib.contextmanager
def in_use(user: HubClient):
    """The user's server reports activity, as it would while they work: the culler (90 s here)
    must not stop it while a long deploy runs."""
    done = threading.Event()

    def report():
        while not done.wait(10):
            # The hub restarts during a deploy that changes its config: the next report gets through.
            with contextlib.suppress(requests.RequestException):
                user.report_activity()

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        yield user
    finally:
        done.set()
        reporter.join()


@pytest.fixture(scope="module")
def cluster(start, workdir):
    home = workdir / "cluster-home"
    home.mkdir(exist_ok=True)
    hosts = {role: start("noble", name, volumes={str(home): "/home"}) for role, name in NAMES.items()}
    cluster = Cluster(hosts, workdir)
    result = cluster.deploy("cold", list(NAMES))
    assert result.returncode == 0, result.stderr[-6000:]
    print(f"\ncluster: cold deploy of hub + 2 nodes {TIMES['cold']:.0f} s")
    return cluster


def test_slurm_runs_with_one_key_and_every_node(cluster):
    sinfo = cluster.hub.sh("sinfo -h -N -o '%N %t'").split()
    assert sinfo == [NAMES["node1"], "idle", NAMES["node2"], "idle"], sinfo
    digests = {cluster.hosts[r].sh("sha256sum /etc/munge/munge.key").split()[0] for r in NAMES}
    assert len(digests) == 1
    for role in NAMES:
        assert cluster.hosts[role].sh("stat -c '%U %G %a' /etc/munge/munge.key").strip() == "munge munge 400"
    ids = {cluster.hosts[r].sh("id alice; id bob") for r in NAMES}
    assert len(ids) == 1, ids


def test_a_rerun_changes_nothing(cluster):
    result = cluster.deploy("rerun", list(NAMES))
    assert result.returncode == 0, result.stderr[-4000:]
    changed = [op for op in result.changed_operations()]
    assert result.totals["success"] == 0, changed
    print(f"\ncluster: no-op re-run of hub + 2 nodes {TIMES['rerun']:.1f} s")


def test_a_server_runs_as_a_job_on_a_node_and_shares_the_home(cluster):
    alice = cluster.user("alice")
    started = time.monotonic()
    server = alice.start_server(timeout=300, options={"profile": "small"})
    assert server["ready"]
    jobs = [job for job in cluster.squeue() if job[1] == "alice"]
    assert len(jobs) == 1 and jobs[0][2] == "RUNNING", jobs
    node = jobs[0][3]
    assert node in (NAMES["node1"], NAMES["node2"])
    hostname = alice.run_code("import socket; print(socket.gethostname())").strip()
    print(f"\ncluster: start -> kernel answering on {node}: {time.monotonic() - started:.1f} s")
    assert hostname == node
    alice.run_code("open('from-the-node.txt', 'w').write('written on ' + __import__('socket').gethostname())")
    assert cluster.hub.sh("cat /home/alice/from-the-node.txt") == f"written on {node}"
    assert cluster.hub.sh("stat -c %U /home/alice/from-the-node.txt").strip() == "alice"


def test_the_idle_culler_cancels_the_job(cluster):
    deadline = time.monotonic() + 240
    while any(job[1] == "alice" for job in cluster.squeue()):
        assert time.monotonic() < deadline, cluster.squeue()
        time.sleep(5)
    assert cluster.user("alice").server() is None


def test_a_job_at_its_time_limit_shows_as_stopped(cluster):
    bob = cluster.user("bob")
    bob.start_server(timeout=300, options={"profile": "brief"})
    job = next(job for job in cluster.squeue() if job[1] == "bob")
    # Kept busy, so that the culler has no reason to stop it: only the time limit ends it.
    deadline = time.monotonic() + 240
    while bob.server() is not None:
        assert time.monotonic() < deadline, (bob.server(), cluster.squeue())
        bob.report_activity()
        time.sleep(5)
    log = cluster.hub.sh("journalctl -u slurmctld --no-pager")
    assert f"JobId={job[0]} " in log and "time limit" in log.lower(), log[-2000:]


def test_a_third_node_joins_and_takes_jobs(cluster, start, workdir):
    home = workdir / "cluster-home"
    cluster.hosts["node3"] = start("noble", THIRD, volumes={str(home): "/home"})
    alice = cluster.user("alice")
    roles = [*NAMES, "node3"]
    partitions = {"jupyter": [cluster.hosts[r].name for r in roles if r != "hub"], "extra": [THIRD]}
    profiles = [*PROFILES, {"key": "extra", "display": "The new node", "where": "cluster", "partition": "extra"}]

    def watched() -> dict[str, str]:
        common = ("/etc/passwd", "/etc/group", "/etc/systemd/system")
        return {
            r: cluster.hosts[r].snapshot(*common, *(() if r == "node3" else ("/etc/slurm", "/etc/munge")))
            for r in roles
        }

    # A server runs through the change (in use meanwhile, as its user would keep it).
    alice.start_server(timeout=300, options={"profile": "small"})
    before = [job for job in cluster.squeue() if job[1] == "alice"]
    with in_use(alice):
        # --dry first: the plan, and not one host changed.
        snapshots = watched()
        dry = cluster.deploy("third-dry", roles, "--dry", jh_slurm_partitions=partitions, jh_spawn_profiles=profiles)
        assert dry.returncode == 0, dry.stderr[-6000:]
        assert "Slurm configuration" in dry.planned_operations()
        assert watched() == snapshots
        assert cluster.hosts["node3"].sh("test -e /opt/jupyter || echo absent").strip() == "absent"
        result = cluster.deploy("third", roles, jh_slurm_partitions=partitions, jh_spawn_profiles=profiles)
        assert result.returncode == 0, result.stderr[-6000:]
        print(f"\ncluster: adding a third node {TIMES['third']:.0f} s")
        assert [job for job in cluster.squeue() if job[1] == "alice"] == before
    assert alice.run_code("print(6 * 7)").strip() == "42"
    alice.stop_server()
    bob = cluster.user("bob")
    bob.start_server(timeout=300, options={"profile": "extra"})
    assert bob.run_code("import socket; print(socket.gethostname())").strip() == THIRD


def test_a_node_leaving_the_inventory_is_drained_until_its_jobs_end(cluster):
    """bob's server runs on the third node when it leaves the inventory, its profile and partition
    with it: the node is drained and kept while the job runs, and the hub, restarted without that
    profile, still knows the server as the job it is (and cancels it when bob stops it)."""
    bob = cluster.user("bob")
    with in_use(bob):
        [job] = [j[0] for j in cluster.squeue() if j[1] == "bob"]
        result = cluster.deploy("leaving", list(NAMES))
        assert result.returncode == 0, result.stderr[-6000:]
        assert f"Slurm node {THIRD} left the inventory but runs jobs: drained" in result.stdout + result.stderr
        assert cluster.hub.sh(f"sinfo -h -N -n {THIRD} -o %t").strip().startswith("drng")
        assert [j[2:4] for j in cluster.squeue() if j[0] == job] == [["RUNNING", THIRD]]
        assert bob.run_code("import socket; print(socket.gethostname())").strip() == THIRD
        # Drained: no new job lands there.
        alice = cluster.user("alice")
        alice.start_server(timeout=300, options={"profile": "small"})
        assert [j[3] for j in cluster.squeue() if j[1] == "alice"] != [THIRD]
    with in_use(alice):
        assert cluster.deploy("leaving-again", list(NAMES)).totals["success"] == 0
        bob.stop_server()
        deadline = time.monotonic() + 60
        while any(j[0] == job for j in cluster.squeue()):
            assert time.monotonic() < deadline, cluster.squeue()
            time.sleep(2)
        result = cluster.deploy("left", list(NAMES))
        assert result.returncode == 0, result.stderr[-6000:]
        assert THIRD not in cluster.hub.sh("sinfo -h -N -o %N")
        assert THIRD not in cluster.hub.sh("cat /etc/slurm/slurm.conf")
    assert alice.run_code("print(6 * 7)").strip() == "42"


def test_a_cluster_that_cannot_work_is_refused_before_any_host_changes(cluster):
    watched = ("/etc/slurm", "/etc/munge", "/opt/jupyter/libexec", "/etc/passwd", "/etc/group")
    before = {role: cluster.hosts[role].snapshot(*watched) for role in NAMES}
    huge = [*PROFILES, {"key": "huge", "display": "Huge", "where": "cluster", "cpus": 64}]
    result = cluster.deploy("too-big", list(NAMES), jh_spawn_profiles=huge)
    assert result.returncode != 0
    assert "huge asks for 64 CPUs and 2G, more than any node of partition jupyter has" in result.stderr
    result = cluster.deploy("unknown-node", list(NAMES), jh_slurm_partitions={"jupyter": ["nowhere.example.org"]})
    assert result.returncode != 0
    assert "jh_slurm_partitions[jupyter]: nowhere.example.org not in the inventory's nodes" in result.stderr
    # The hub listed as a node too.
    nodes = [(cluster.hosts[r].name, cluster.settings(r)) for r in ("hub", "node1")]
    inventory = write_inventory(
        cluster.workdir / "hub-as-node.py", [(cluster.hub.name, cluster.settings("hub"))], nodes=nodes
    )
    result = run_pyinfra(inventory)
    assert result.returncode != 0
    assert f"{cluster.hub.name}: in both `hubs` and `nodes`" in result.stderr
    # A node nobody answers for (TEST-NET-1: never routed).
    ghost_data = {**cluster.settings("node1"), "ssh_hostname": "192.0.2.1", "jh_cluster_address": "192.0.2.1"}
    ghost = ("ghost.example.org", ghost_data)
    nodes = [(cluster.hosts[r].name, cluster.settings(r)) for r in ("node1", "node2")] + [ghost]
    inventory = write_inventory(
        cluster.workdir / "ghost.py", [(cluster.hub.name, cluster.settings("hub"))], nodes=nodes
    )
    result = run_pyinfra(inventory)
    assert result.returncode != 0
    assert "ghost.example.org: cannot be reached over SSH; a cluster is deployed as a whole" in result.stderr
    assert {role: cluster.hosts[role].snapshot(*watched) for role in NAMES} == before
