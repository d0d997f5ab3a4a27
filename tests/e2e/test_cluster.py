"""A Slurm cluster behind the hub: one hub and two nodes (Ubuntu 24.04), deployed by one pyinfra
run, users' servers as Slurm jobs picked on the spawn page; then a third node. Monitoring is on
(jh_monitoring): each node's node exporter read by the hub's Prometheus alone, and a node's services
stopped, a node drained and Slurm's controller stopped reach a webhook run by the test, and resolve.

The shared /home is one folder of this machine mounted at /home in every container: it stands
in for NFS (docs/cluster.md). Tests run in file order."""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import threading
import time

import pytest
import requests

from tests.e2e.alerts import WEBHOOK_PORT, Webhook, prometheus, refused, wait_alerts
from tests.e2e.conftest import USERS, plain_hub, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient

NAMES = {"hub": "jhd-test-cluster-hub", "node1": "jhd-test-cluster-n1", "node2": "jhd-test-cluster-n2"}
THIRD = "jhd-test-cluster-n3"
PROFILES = [
    {"key": "hub", "display": "On the hub server", "where": "hub"},
    {"key": "small", "display": "Cluster: 1 CPU, 1 GB, 1 h", "where": "cluster", "memory": "1G", "minutes": 60},
    {"key": "brief", "display": "Cluster: 1 CPU, 512 MB, 1 min", "where": "cluster", "memory": "512M", "minutes": 1},
]
SETTINGS = {
    "jh_cluster": True,
    "jh_firewall": True,
    "jh_spawn_profiles": PROFILES,
    "jh_idle_timeout": 90,
    "jh_idle_check_interval": 10,
}
TIMES: dict[str, float] = {}


class Cluster:
    def __init__(self, hosts, workdir, **extra):
        """extra: settings every host gets in every deploy (monitoring)."""
        self.hosts, self.workdir, self.extra = hosts, workdir, extra

    @property
    def hub(self):
        return self.hosts["hub"]

    def settings(self, role: str, **overrides) -> dict:
        host = self.hosts[role]
        return plain_hub(host, **{**SETTINGS, **self.extra, "jh_cluster_address": host.address, **overrides})

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


def as_user(host, user: str, command: str, check: bool = True) -> str:
    return host.sh(f"runuser -u {user} -- {command}", check=check)


def submit(cluster, user: str, *options: str, wrap: str = "sleep 300") -> str:
    """A job of the user's own, submitted from their terminal on the hub; its id."""
    argv = ["sbatch", "--parsable", "--mem=32M", "--time=10", "--output=/dev/null", *options, "--wrap", wrap]
    return as_user(cluster.hub, user, shlex.join(argv)).strip().split(";")[0]


def wait_for(what: str, ready, timeout: float = 120, every: float = 1):
    deadline = time.monotonic() + timeout
    while not (value := ready()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(every)
    return value


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
def webhook(bridge_gateway):
    # A port of its own: test_operations' receiver may run in the same session.
    receiver = Webhook(bridge_gateway, WEBHOOK_PORT + 1)
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def cluster(start, workdir, webhook):
    home = workdir / "cluster-home"
    home.mkdir(exist_ok=True)
    hosts = {role: start("noble", name, volumes={str(home): "/home"}) for role, name in NAMES.items()}
    cluster = Cluster(hosts, workdir, jh_monitoring={"webhook_url": webhook.url})
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


def node_targets(cluster) -> dict[str, str]:
    """The nodes' node exporters as the hub's Prometheus reads them: host label -> health."""
    targets = prometheus(cluster, "targets")["activeTargets"]
    return {t["labels"]["host"]: t["health"] for t in targets if t["labels"].get("node")}


def test_each_node_s_exporter_is_read_by_the_hub_s_prometheus_alone(cluster):
    nodes = [cluster.hosts[r] for r in ("node1", "node2")]
    wait_for("the nodes' exporters up", lambda: node_targets(cluster) == {n.name: "up" for n in nodes}, timeout=90)
    node = nodes[0]
    url = f"http://{node.address}:9100/metrics"
    listening = node.sh("ss -Hltn 'sport = :9100'")
    assert {line.split()[3] for line in listening.splitlines()} == {f"{node.address}:9100"}, listening
    assert "node_memory_MemAvailable_bytes" in node.sh(f"curl -sf {url}")
    # alice runs jobs on the node: its exporter is not hers to read; nor another node's, nor the
    # world's (this machine), nor a person's terminal on the hub (which has the hub's address).
    assert refused(node, url, user="alice")
    assert refused(nodes[1], url)
    began = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=10)
    assert time.monotonic() - began < 5  # reset at once, before ufw would drop it
    assert refused(cluster.hub, url, user="bob")
    assert "node_memory_MemAvailable_bytes" in cluster.hub.sh(f"curl -sf {url}")
    # Slurm's view, from the hub's metrics.
    states = wait_for(
        "Slurm's node states in Prometheus",
        lambda: {
            r["metric"]["node"]: r["metric"]["state"]
            for r in prometheus(cluster, "query", query="jupyterhub_slurm_node_state")["result"]
        },
        timeout=90,
    )
    assert states == {NAMES["node1"]: "idle", NAMES["node2"]: "idle"}, states


def test_a_node_down_a_node_drained_and_slurm_down_reach_the_webhook_and_resolve(cluster, webhook):
    """Each within its rule's time (1 min) plus a scrape, the metrics timer (30 s) and Alertmanager's
    group_wait (30 s): node1's slurmd and node exporter stopped, node2 drained by an admin; then
    both back, and Slurm's controller stopped."""
    node1, node2 = NAMES["node1"], NAMES["node2"]
    down = {"alertname": "NodeDown", "node": node1, "host": cluster.hosts["node1"].name, "severity": "critical"}
    drained = {"alertname": "NodeDrained", "node": node2, "host": cluster.hosts["node2"].name, "state": "drained"}
    since = len(webhook.posts)
    cluster.hosts["node1"].sh("systemctl stop slurmd prometheus-node-exporter")
    cluster.hub.sh(f"scontrol update nodename={node2} state=drain reason='disk check'")
    _, alert = wait_alerts(webhook, cluster, "firing", since, [down, drained], seconds=210)
    assert alert["labels"]["reason"] == "disk check", alert
    since = len(webhook.posts)
    cluster.hosts["node1"].sh("systemctl start slurmd prometheus-node-exporter")
    cluster.hub.sh(f"scontrol update nodename={node2} state=resume")
    # Prometheus sees both back before Slurm's controller goes.
    wait_for(
        "both nodes back in Prometheus",
        lambda: (
            node_targets(cluster)[cluster.hosts["node1"].name] == "up"
            and not prometheus(
                cluster, "query", query=f'jupyterhub_slurm_node_state{{node="{node2}",state="drained"}}'
            )["result"]
        ),
        timeout=90,
    )
    cluster.hub.sh("systemctl stop slurmctld")
    slurm_down = {"alertname": "SlurmDown", "host": cluster.hub.name}
    wait_alerts(webhook, cluster, "resolved", since, [down, drained], seconds=120)
    wait_alerts(webhook, cluster, "firing", since, [slurm_down], seconds=210)
    since = len(webhook.posts)
    cluster.hub.sh("systemctl start slurmctld")
    wait_alerts(webhook, cluster, "resolved", since, [slurm_down], seconds=120)
    wait_for(
        "both nodes idle again",
        lambda: cluster.hub.sh("sinfo -h -N -o '%N %t'").split() == [node1, "idle", node2, "idle"],
        timeout=120,
    )


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
    """The job leaves Slurm's queue and the hub has the server stopped (the two are not at once: the
    hub's stop returns once the job is gone)."""
    deadline = time.monotonic() + 240
    while any(job[1] == "alice" for job in cluster.squeue()):
        assert time.monotonic() < deadline, cluster.squeue()
        time.sleep(5)
    alice = cluster.user("alice")  # logged in only now: her activity is the culler's to judge
    while alice.server() is not None:
        assert time.monotonic() < deadline, alice.server()
        time.sleep(2)


def test_a_job_at_its_time_limit_shows_as_stopped(cluster):
    bob = cluster.user("bob")
    bob.start_server(timeout=300, options={"profile": "brief"})
    job = next(job for job in cluster.squeue() if job[1] == "bob")
    # Kept busy, so that the culler has no reason to stop it: only the time limit ends it.
    deadline = time.monotonic() + 240
    while bob.server() is not None:
        assert time.monotonic() < deadline, (bob.server(), cluster.squeue())
        # The job may end between the look and the report: the hub then refuses the report.
        with contextlib.suppress(requests.HTTPError):
            bob.report_activity()
        time.sleep(5)
    # Slurm's accounting says why the job ended (slurmctld's journal came back empty once in CI).
    deadline = time.monotonic() + 60
    while (state := cluster.hub.sh(f"sacct -j {job[0]} -X -n -o State").strip()) != "TIMEOUT":
        assert time.monotonic() < deadline, (state, cluster.hub.journal("slurmctld"))
        time.sleep(2)


# A student's process on a node (a job of theirs) that reads their own server job's token from
# /proc as the job starts, and posts what batchspawner's handler set as spawner attributes: the
# exec_prefix the hub ran through /bin/sh as its own account at its next start (issue 23).
CANARY = "/opt/jupyter/state/pwned-by-bob"
WATCHER = f"""
import json, os, time, urllib.error, urllib.request
planted = "touch {CANARY};"
bodies = [
    {{"child_config": {{"exec_prefix": planted}}}},
    {{"port": 40123, "child_config": {{"exec_prefix": planted}}}},
    {{"exec_prefix": planted}},
    {{"batch_submit_cmd": planted}},
    {{"batch_query_cmd": planted}},
    {{"cmd": ["/bin/sh", "-c", planted]}},
    {{"env_keep": ["PATH", "LD_PRELOAD"]}},
    {{"req_partition": "jupyter; " + planted}},
    {{"port": 10 ** 9}},
    {{"port": "40123"}},
]
deadline, me = time.time() + 240, os.getuid()
while time.time() < deadline:
    for pid in os.listdir("/proc"):
        try:
            if not pid.isdigit() or os.stat("/proc/" + pid).st_uid != me:
                continue
            environ = open("/proc/" + pid + "/environ").read().split("\\0")
        except OSError:
            continue
        env = dict(item.split("=", 1) for item in environ if "=" in item)
        if "JUPYTERHUB_API_TOKEN" not in env or "JUPYTERHUB_API_URL" not in env:
            continue
        with open(os.path.expanduser("~/attack.log"), "a") as log:
            for path in ("/job-port", "/batchspawner"):
                for body in bodies:
                    request = urllib.request.Request(
                        env["JUPYTERHUB_API_URL"] + path,
                        data=json.dumps(body).encode(),
                        headers={{"Authorization": "token " + env["JUPYTERHUB_API_TOKEN"], "Content-Type": "application/json"}},
                        method="POST",
                    )
                    try:
                        code = urllib.request.urlopen(request, timeout=10).status
                    except urllib.error.HTTPError as error:
                        code = error.code
                    log.write(json.dumps({{"path": path, "body": body, "code": code, "at": time.time()}}) + "\\n")
        raise SystemExit(0)
    time.sleep(0.01)
"""


def test_a_student_s_job_token_sets_nothing_in_the_hub(cluster):
    """bob's own jobs on both nodes watch for his server's job and post, with its token, what
    batchspawner's handler would have kept: every post is refused, nothing runs as the hub's
    account through a restart and a re-deploy, and the hub still finds bob's server."""
    bob = cluster.user("bob")
    cluster.hub.sh(f"rm -f /home/bob/attack.log {CANARY}")
    cluster.hub.sh(f"cat > /home/bob/watch.py <<'PY'\n{WATCHER}\nPY\nchown bob: /home/bob/watch.py")
    watchers = [
        submit(cluster, "bob", f"--nodelist={NAMES[node]}", wrap="python3 /home/bob/watch.py")
        for node in ("node1", "node2")
    ]
    wait_for("bob's watchers running", lambda: all(j[2] == "RUNNING" for j in cluster.squeue() if j[0] in watchers))
    with in_use(bob):
        assert bob.start_server(timeout=300, options={"profile": "small"})["ready"]
        text = wait_for(
            "the watcher's posts",
            lambda: (log := cluster.hub.sh("cat /home/bob/attack.log 2>/dev/null || true")).count("\n") >= 20 and log,
        )
        posts = [json.loads(line) for line in text.splitlines()]
        assert len(posts) == 20, posts
        # Refused: a body other than a port (400) while the server starts, a token whose server
        # has reported (403) after it; batchspawner's own path is not there (404).
        assert {p["code"] for p in posts if p["path"] == "/job-port"} <= {400, 403}, posts
        assert {p["code"] for p in posts if p["path"] == "/batchspawner"} == {404}, posts
        while_starting = sum(1 for p in posts if p["code"] == 400)
        print(f"\ncluster: the student's posts during the start: {while_starting} of 10 refused as bodies (400)")
        cluster.hub.sh("systemctl restart jupyterhub && /opt/jupyter/libexec/wait-healthy 90")
        result = cluster.deploy("after-attack", list(NAMES), jh_idle_timeout=95)
        assert result.returncode == 0, result.stderr[-6000:]
        assert "JupyterHub running and enabled" in result.changed_operations()
    assert cluster.hub.sh(f"test -e {CANARY} && echo planted || echo absent").strip() == "absent"
    assert bob.server()["ready"]
    assert bob.run_code("import socket; print(socket.gethostname())").strip() in (NAMES["node1"], NAMES["node2"])
    bob.stop_server()
    cluster.hub.sh(f"scancel {' '.join(watchers)}")


def test_people_see_their_own_jobs_alone_and_are_held_to_their_share(cluster):
    """With one job running and two queued per person: alice's second job waits for her first,
    her third is refused at sbatch; squeue shows each person their own jobs alone."""
    limits = {"jobs": 1, "queued": 2, "cpus": 2, "memory": "2G"}
    result = cluster.deploy("limits", list(NAMES), jh_slurm_user_limits=limits)
    assert result.returncode == 0, result.stderr[-6000:]
    assert any("Slurm's limits of alice, bob" in op for op in result.changed_operations()), result.changed_operations()
    bobs = submit(cluster, "bob")
    first, second = submit(cluster, "alice"), submit(cluster, "alice")
    wait_for("alice's first job running", lambda: [j[2] for j in cluster.squeue() if j[0] == first] == ["RUNNING"])
    reason = cluster.hub.sh(f"squeue -h -j {second} -o '%T %r'").split()
    assert reason == ["PENDING", "AssocMaxJobsLimit"], reason
    third = as_user(cluster.hub, "alice", "sbatch --parsable --mem=32M --wrap 'sleep 300' 2>&1", check=False)
    assert "Job violates accounting/QOS policy" in third, third
    mine = as_user(cluster.hub, "alice", "squeue -h -o %u").split()
    assert set(mine) == {"alice"} and len(mine) == 2, mine
    assert bobs in cluster.hub.sh("squeue -h -o %i").split()  # root sees everyone's
    cluster.hub.sh(f"scancel {first} {second} {bobs}")


def test_ssh_to_a_node_lands_only_in_one_s_own_job_there(cluster, tmp_path):
    key = tmp_path / "alice-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cluster.hub.sh(
        f"install -d -m 700 -o alice -g alice /home/alice/.ssh && echo {shlex.quote(key.with_suffix('.pub').read_text().strip())}"
        " > /home/alice/.ssh/authorized_keys && chown alice: /home/alice/.ssh/authorized_keys"
        " && chmod 600 /home/alice/.ssh/authorized_keys"
    )
    node = cluster.hosts["node1"]

    def ssh(command: str, user: str = "alice", identity=key) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                "ssh", "-i", str(identity), "-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
                "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                f"{user}@{node.address}", command,
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    refused = ssh("true")
    assert refused.returncode != 0, refused
    said = refused.stderr + node.sh("journalctl -u ssh --no-pager -n 50", check=False)
    assert "pam_slurm_adopt" in said and "no active jobs" in said, said[-2000:]
    job = submit(cluster, "alice", f"--nodelist={NAMES['node1']}")
    wait_for("alice's job on node1", lambda: [j[2] for j in cluster.squeue() if j[0] == job] == ["RUNNING"])
    inside = ssh("cat /proc/self/cgroup")
    assert inside.returncode == 0, inside.stderr
    assert f"job_{job}" in inside.stdout, inside.stdout
    # The administrators still get in without a job.
    assert ssh("echo in", user="root", identity=node.target.ssh_key).stdout == "in\n"
    cluster.hub.sh(f"scancel {job}")


def test_the_hub_api_on_the_cluster_network_is_the_api_alone_for_the_nodes_alone(cluster):
    hub_address = cluster.hub.address
    node = cluster.hosts["node1"]
    code = "curl -s -o /dev/null -w '%{http_code}' --max-time 10 "
    assert node.sh(code + f"http://{hub_address}:8081/hub/api/") == "200"
    assert node.sh(code + f"http://{hub_address}:8081/hub/login") == "404"
    # The hub itself listens on loopback; from anywhere but the nodes the port is closed.
    listening = cluster.hub.sh("ss -Hltn 'sport = :8081'")
    assert "127.0.0.1:8081" in listening and f"{hub_address}:8081" in listening, listening
    with pytest.raises(requests.RequestException):
        requests.get(f"http://{hub_address}:8081/hub/api/", timeout=5)


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
    assert "jh_slurm_user_limits: 8 cores and 32G memory cannot run the profile huge (64 cores, 2G)" in result.stderr
    limits = {"jobs": 4, "queued": 16, "cpus": 64, "memory": "32G"}
    result = cluster.deploy("too-big-for-nodes", list(NAMES), jh_spawn_profiles=huge, jh_slurm_user_limits=limits)
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
    # Off-boarding with a node out of reach stops too, naming the person.
    leaving = [{"name": "alice", "password_hash": "$6$x$y"}, {"name": "bob", "state": "absent"}]
    hub_data = {**cluster.settings("hub"), "jh_users": leaving}
    inventory = write_inventory(cluster.workdir / "ghost-offboard.py", [(cluster.hub.name, hub_data)], nodes=nodes)
    result = run_pyinfra(inventory)
    assert result.returncode != 0
    assert "off-boarding bob must reach every host of the cluster, and ghost.example.org cannot be reached" in (
        result.stderr
    )
    assert {role: cluster.hosts[role].snapshot(*watched) for role in NAMES} == before


def test_off_boarding_cancels_the_person_s_jobs_and_removes_them_from_every_host(cluster):
    """bob, with jobs of his own, a crontab on one node and an at job on the other, is set absent:
    his jobs end, and his account and processes are gone from the hub and both nodes."""
    for role, package in (("node1", "cron"), ("node2", "at")):
        cluster.hosts[role].sh(f"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {package} >/dev/null")
    # Installed after the deploy, they run no hub user's job from the start (apt's hook).
    for role, service in (("node1", "cron"), ("node2", "atd")):
        assert "pam_access.so accessfile=/etc/security/access-jupyterhub-jobs.conf" in (
            cluster.hosts[role].sh(f"cat /etc/pam.d/{service}")
        ), role
    cluster.hosts["node1"].sh("echo '* * * * * sleep 1' | crontab -u bob -")
    cluster.hosts["node2"].sh("echo 'sleep 1' | runuser -u bob -- at now + 1 hour 2>/dev/null")
    jobs = [submit(cluster, "bob", f"--nodelist={NAMES[node]}") for node in ("node1", "node2")]
    wait_for("bob's jobs running", lambda: all(j[2] == "RUNNING" for j in cluster.squeue() if j[0] in jobs))
    users = [{"name": "alice", "password_hash": cluster.hub.data["jh_users"][0]["password_hash"]}]
    users.append({"name": "bob", "state": "absent"})
    result = cluster.deploy("offboard-bob", list(NAMES), jh_users=users)
    assert result.returncode == 0, result.stderr[-6000:]
    # (squeue -u bob would say "Invalid user": bob's account is gone.)
    assert "bob" not in cluster.hub.sh("squeue -h -o %u").split()
    for role in NAMES:
        host = cluster.hosts[role]
        assert host.sh("getent passwd bob || echo gone").strip() == "gone", role
        assert host.sh("pgrep -u 2>/dev/null bob || echo none").strip() == "none", role
    assert (
        cluster.hosts["node1"].sh("ls /var/spool/cron/crontabs/ 2>/dev/null | grep -x bob || echo none").strip()
        == "none"
    )
    assert cluster.hosts["node2"].sh("atq").strip() == ""
    assert "bob" not in cluster.hub.sh("sacctmgr -nP show assoc format=user")
    again = cluster.deploy("offboard-bob-again", list(NAMES), jh_users=users)
    assert again.returncode == 0 and again.totals["success"] == 0, again.changed_operations()
