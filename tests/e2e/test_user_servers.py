"""Users' servers as systemd units of their own, on a real Ubuntu 24.04 hub: they outlive hub
restarts, config re-deploys and a server upgrade (JupyterHub 5.5 -> 6); per-user memory, CPU and
process limits hold, with a group's larger limit; and the hub's one privilege cannot be bent.

Tests run in file order on one host; the figures they print are the closing note's."""

from __future__ import annotations

import shlex
import subprocess
import threading
import time

import pytest
import requests

from tests.e2e.conftest import USERS, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient
from tests.e2e.polling import KeepAsking

WEB = ("jh_domain", "jh_services", "jh_acme_email", "jh_acme_directory_url")
HELPER = "/opt/jupyter/libexec/user-server"
LIMITS = {
    "jh_user_memory_limit": "256M",
    "jh_user_cpu_limit": 0.5,
    "jh_user_tasks_limit": 256,
    "jh_group_limits": {"ml-2026": {"memory": "1G", "cpu": 1}},
}
MiB = 1024**2


def unit(name: str) -> str:
    return f"jupyter-singleuser@{name}.service"


def deploy(host, workdir, name: str, *args: str, **overrides):
    data = {key: value for key, value in host.data.items() if key not in WEB}
    settings = {
        **data,
        "jh_public_ip": "0.0.0.0",
        "jh_allow_public_http": True,
        "jh_nltk_packages": [],
        "jh_kernels": [{"name": "python3", "display_name": "Python 3", "packages": "minimal"}],
        # Nothing here may be culled while the tests run.
        "jh_idle_timeout": 3600,
        "jh_idle_check_interval": 60,
        "jh_server_release": "jupyterhub-5",
        **LIMITS,
        **overrides,
    }
    return run_pyinfra(write_inventory(workdir / f"{name}.py", [(host.name, settings)]), *args)


def logged_in(host, name: str) -> HubClient:
    user = HubClient(f"http://{host.address}:8000")
    assert user.login(name, USERS[name]).status_code == 302, host.journal()
    user.create_token()
    return user


def show(host, name: str, *properties: str) -> dict[str, str]:
    args = " ".join(f"-p {p}" for p in properties)
    return dict(line.split("=", 1) for line in host.sh(f"systemctl show {args} {unit(name)}").splitlines() if line)


class Heartbeat:
    """A notebook tab's traffic: code sent every 0.1 s over one open kernel websocket; the
    longest wait for an answer is the stall a user would see."""

    def __init__(self, user: HubClient, kernel_id: str):
        self.connection = user.connect(kernel_id)
        self.answered: list[float] = [time.monotonic()]
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                assert self.connection.execute("print(1)", timeout=120) == "1\n"
                self.answered.append(time.monotonic())
            except Exception as error:  # noqa: BLE001 - any failure is the finding
                self.errors.append(repr(error))
                return
            time.sleep(0.1)

    def gaps(self) -> tuple[float, float]:
        """The longest and the median time between two answers (0.1 s of it is the pause)."""
        ends = [*self.answered, time.monotonic()]
        gaps = sorted(b - a for a, b in zip(ends, ends[1:], strict=False))
        return gaps[-1], gaps[len(gaps) // 2]

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def servers(start, workdir):
    """A hub on JupyterHub 5.5 with limits; bob in the group with the larger limit; both servers running."""
    host = start("noble", "jhd-test-servers")
    host.sh("groupadd ml-2026")
    # A real server has cron and at: what people may (not) do with them is under test.
    host.sh("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cron at >/dev/null")
    result = deploy(host, workdir, "servers-5")
    assert result.returncode == 0, result.stderr[-4000:]
    host.sh("usermod -aG ml-2026 bob")
    host.users = {name: logged_in(host, name) for name in USERS}
    for name, user in host.users.items():
        try:
            user.start_server()
        except (TimeoutError, AssertionError) as error:
            pytest.fail(f"{error}\n{host.journal(lines=150)}\n{host.journal(unit(name), lines=60)}")
    return host


def server_url(host, name: str) -> str:
    """The address the hub gave name's server (root reads it from the server's environment)."""
    pid = show(host, name, "MainPID")["MainPID"]
    environ = host.sh(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    return next(line.split("=", 1)[1] for line in environ.splitlines() if line.startswith("JUPYTERHUB_SERVICE_URL="))


def test_on_ports_another_person_cannot_reach_a_server_nor_take_its_port(servers):
    """JupyterHub 5 (servers on TCP ports): bob's kernel cannot connect to alice's server (its port
    is the proxy's and root's alone), and a port he listens on first is never alice's route: root's
    helper refuses to start her server there."""
    alice, bob = servers.users["alice"], servers.users["bob"]
    port = int(server_url(servers, "alice").split(":")[2].split("/")[0])
    assert 20000 <= port < 30000
    tried = bob.run_code(
        f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=5)\n    print('connected')\n"
        "except OSError as error:\n    print(type(error).__name__)"
    )
    assert tried.strip() == "ConnectionRefusedError", tried
    assert servers.sh(f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/user/alice/api") == "200"
    # bob listens on a port of the servers' range; the hub's helper is asked to start alice's server there.
    squatter = bob.start_kernel()
    free = bob.execute(
        squatter,
        "import socket\nsquat = socket.socket()\nsquat.bind(('127.0.0.1', 0))\nfor p in range(25000, 29999):\n"
        "    try:\n        squat = socket.socket(); squat.bind(('127.0.0.1', p)); break\n    except OSError:\n        pass\n"
        "squat.listen(8)\nprint(p)",
    ).strip()
    alice.stop_server()
    deadline = time.monotonic() + 60
    while alice.server() is not None:
        assert time.monotonic() < deadline
        time.sleep(1)
    variables = f"JUPYTERHUB_API_TOKEN=x\nJUPYTERHUB_SERVICE_URL=http://127.0.0.1:{free}/user/alice/\n"
    out = servers.sh(
        f"printf '{variables}' | runuser -u jupyter -- sudo -n {HELPER} start alice 2>&1; echo exit=$?", check=False
    )
    assert f"port {free} is taken by another process" in out and "exit=1" in out, out
    assert servers.sh(f"systemctl is-active {unit('alice')}", check=False).strip() != "active"
    bob.delete_kernel(squatter)
    assert alice.start_server()["ready"]
    assert alice.run_code("import getpass; print(getpass.getuser())") == "alice\n"


def test_servers_outlive_hub_restart_redeploy_and_upgrade(servers, workdir, capsys):
    alice, bob = servers.users["alice"], servers.users["bob"]
    kernel = alice.start_kernel()
    assert alice.execute(kernel, "x = 41; import os; print(os.getpid())").strip().isdigit()
    before = {name: show(servers, name, "MainPID", "ExecMainStartTimestamp") for name in USERS}
    started = alice.server()["started"]
    heartbeat_kernel = bob.start_kernel()
    figures = []

    def check(step: str, action) -> None:
        health = KeepAsking(lambda: requests.get(f"http://{servers.address}:8000/hub/health", timeout=2).ok, 0.1)
        with Heartbeat(bob, heartbeat_kernel) as heartbeat, health:
            action()
            # Until the new hub answers, and a little after: the old one answers while it stops.
            done = time.monotonic()
            while not any(health.answers_since(done)) and time.monotonic() < done + 90:
                time.sleep(0.2)
            time.sleep(1)
        assert heartbeat.errors == [], f"{step}: bob's kernel websocket broke: {heartbeat.errors}"
        assert alice.execute(kernel, "print(x + 1)") == "42\n", step
        for name in USERS:
            assert show(servers, name, "MainPID", "ExecMainStartTimestamp") == before[name], f"{step}: {name} respawned"
        assert alice.server()["started"] == started, f"{step}: alice's server was spawned again"
        figures.append((step, health.longest_outage(bool), *heartbeat.gaps()))

    check("systemctl restart jupyterhub", lambda: servers.sh("systemctl restart jupyterhub"))

    def redeploy() -> None:
        result = deploy(servers, workdir, "servers-5-config", jh_admin_users=["alice", "bob"])
        assert result.returncode == 0, result.stderr[-4000:]
        assert any(name.startswith("Hub configuration") for name in result.changed_operations())

    check("re-deploy with a changed config", redeploy)

    def upgrade() -> None:
        result = deploy(
            servers, workdir, "servers-6", jh_admin_users=["alice", "bob"], jh_server_release="jupyterhub-6"
        )
        assert result.returncode == 0, result.stderr[-4000:]

    check("server upgrade 5.5 -> 6.1", upgrade)
    assert requests.get(f"http://{servers.address}:8000/hub/api/", timeout=10).json()["version"] == "6.1.1"
    # Each server keeps the environment it started from, which stays while it runs.
    pid = before["alice"]["MainPID"]
    assert "/opt/jupyter/envs/jupyterhub-5-" in servers.sh(f"tr '\\0' ' ' < /proc/{pid}/cmdline")
    steps = servers.sh("journalctl -t jupyterhub-upgrade -o cat").strip().splitlines()[-1]
    with capsys.disabled():
        print()
        print(f"[servers] the upgrade's steps: {steps.split(': ', 1)[1]}")
        for step, outage, longest, median in figures:
            print(
                f"[servers] {step}: hub API unavailable {outage:.1f} s; bob's open kernel websocket answered "
                f"every {median:.2f} s (median), longest gap {longest:.2f} s"
            )


def test_a_group_gives_its_members_their_larger_limits(servers):
    assert show(servers, "alice", "MemoryMax", "CPUQuotaPerSecUSec", "TasksMax") == {
        "MemoryMax": str(256 * MiB),
        "CPUQuotaPerSecUSec": "500ms",
        "TasksMax": "256",
    }
    assert show(servers, "bob", "MemoryMax", "CPUQuotaPerSecUSec") == {
        "MemoryMax": str(1024 * MiB),
        "CPUQuotaPerSecUSec": "1s",
    }
    # JupyterLab's memory indicator (jupyter-resource-usage) shows the limit the unit enforces.
    for name, limit in (("alice", 256 * MiB), ("bob", 1024 * MiB)):
        metrics = servers.users[name].api("GET", f"/user/{name}/api/metrics/v1")
        assert metrics.ok, metrics.text
        assert metrics.json()["limits"]["memory"]["rss"] == limit
    # The users' slice leaves the system its reserve.
    total = int(servers.sh("awk '/^MemTotal:/ {print $2 * 1024}' /proc/meminfo"))
    slice_limit = int(servers.sh("systemctl show -p MemoryMax --value jupyterhub-users.slice"))
    assert slice_limit == total - max(1024 * MiB, total // 10)


def test_a_kernel_over_its_memory_limit_is_killed_and_restarted_alone(servers):
    alice, bob = servers.users["alice"], servers.users["bob"]
    bob_kernel = bob.start_kernel()
    assert bob.execute(bob_kernel, "y = 1; print(y)") == "1\n"
    kernel = alice.start_kernel()
    server_pid = show(servers, "alice", "MainPID")
    with alice.connect(kernel) as connection:
        assert connection.execute("z = 'kept?'; print(1)") == "1\n"
        deadline = time.monotonic() + 120
        connection.send("big = b'x' * (1024**3)", deadline)
        states = []
        for message in connection.messages(deadline, "status 'restarting' or 'dead' after the kill"):
            if message["msg_type"] == "status":
                states.append(message["content"]["execution_state"])
            if {"restarting", "dead"} & set(states):
                break
    # The user is told their kernel died; it restarts, empty.
    assert {"restarting", "dead"} & set(states), states
    deadline = time.monotonic() + 60
    while True:
        try:
            assert alice.execute(kernel, "print('z' in dir())", timeout=20) == "False\n"
            break
        except (TimeoutError, AssertionError, OSError):
            assert time.monotonic() < deadline, servers.journal(unit("alice"))
            time.sleep(2)
    # Her server, bob's kernel, the hub and the proxy lived on.
    assert show(servers, "alice", "MainPID", "ActiveState") == {**server_pid, "ActiveState": "active"}
    assert bob.execute(bob_kernel, "print(y + 1)") == "2\n"
    assert requests.get(f"http://{servers.address}:8000/hub/health", timeout=5).ok
    assert servers.sh("systemctl is-active jupyterhub jupyterhub-proxy").split() == ["active", "active"]


def unit_cpu_seconds(host, name: str) -> tuple[float, str]:
    """CPU time the unit's processes used: systemd's accounting where it has it (cgroup v2), else
    the sum over the processes in the unit's cgroup (this lab's cgroup v1, where systemd 255 keeps
    no cpuacct per unit)."""
    usage = show(host, name, "CPUUsageNSec")["CPUUsageNSec"]
    if usage.isdigit():
        return int(usage) / 1e9, "the unit's CPUUsageNSec"
    cgroup = show(host, name, "ControlGroup")["ControlGroup"]
    ticks = host.sh(
        f"for pid in $(cat /sys/fs/cgroup/unified{cgroup}/cgroup.procs /sys/fs/cgroup{cgroup}/cgroup.procs 2>/dev/null);"
        " do cut -d' ' -f14,15 /proc/$pid/stat 2>/dev/null; done | awk '{t += $1 + $2} END {print t + 0}'"
    )
    return float(ticks) / int(host.sh("getconf CLK_TCK")), "the CPU time of the unit's processes"


def test_a_cpu_burner_is_held_near_its_limit(servers, capsys):
    alice = servers.users["alice"]
    kernel = alice.start_kernel()
    # Two busy processes would take two cores; alice has half of one.
    alice.execute(
        kernel,
        "import subprocess, sys\n"
        "burners = [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(2)]",
    )
    try:
        time.sleep(2)
        first, source = unit_cpu_seconds(servers, "alice")
        started = time.monotonic()
        time.sleep(10)
        cores = (unit_cpu_seconds(servers, "alice")[0] - first) / (time.monotonic() - started)
    finally:
        alice.execute(kernel, "[b.kill() for b in burners]")
    with capsys.disabled():
        print(f"\n[servers] CPU burner, limit 0.5 cores: used {cores:.2f} cores over 10 s ({source})")
    # Other work on this machine can only lower it.
    assert 0.2 <= cores <= 0.6


def test_a_fork_bomb_is_stopped_by_the_process_limit(servers):
    alice = servers.users["alice"]
    kernel = alice.start_kernel()
    assert show(servers, "alice", "TasksMax")["TasksMax"] == "256"
    # Sent, not waited for: at its limit the server itself can start no thread to answer.
    with alice.connect(kernel) as connection:
        connection.send("import subprocess; subprocess.Popen(['bash', '-c', ':(){ :|:& };:'])", time.monotonic() + 60)
        time.sleep(2)
    try:
        time.sleep(10)
        # Her tasks (threads included), whether her server survived the bomb or ended with it.
        assert int(servers.sh("ps -L -u alice --no-headers | wc -l")) <= 256
        # The machine still answers SSH, and the hub its health check.
        ssh = subprocess.run(
            [
                "ssh", "-i", servers.target.ssh_key, "-o", f"UserKnownHostsFile={servers.target.known_hosts}",
                "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                f"root@{servers.address}", "echo alive",
            ],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert ssh.stdout.strip() == "alive", ssh.stderr
        assert requests.get(f"http://{servers.address}:8000/hub/health", timeout=5).ok
    finally:
        servers.sh(f"systemctl kill -s KILL {unit('alice')}", check=False)


@pytest.mark.parametrize(
    "command",
    [
        f"{HELPER} start root",
        f"{HELPER} start daemon",
        f"{HELPER} start jupyter",
        f"{HELPER} start mallory",
        f"{HELPER} start ../bob",
        f"{HELPER} start bob.service",
        f"{HELPER} start 'bob ssh'",
        f"{HELPER} start bob extra",
        f"{HELPER} status bob",
        f"{HELPER} stop root",
        f"{HELPER} stop sshd",
        "/usr/bin/systemctl stop ssh",
        "/usr/bin/systemctl start jupyter-singleuser@bob.service",
        "/usr/bin/systemd-run --uid=root /bin/true",
    ],
)
def test_the_hub_user_can_start_nothing_else(servers, command):
    servers.sh("id mallory >/dev/null 2>&1 || useradd -m mallory")
    out = servers.sh(f"runuser -u jupyter -- sudo -n {command} </dev/null 2>&1; echo exit=$?", check=False)
    assert "exit=0" not in out, out
    loaded = servers.sh("systemctl list-units --all --plain --no-legend 'jupyter-singleuser@*' | cut -d' ' -f1")
    assert set(loaded.split()) <= {unit("alice"), unit("bob")}
    assert servers.sh("systemctl is-active ssh").strip() == "active"


def test_the_helper_takes_only_the_hubs_variables(servers):
    # What the hub sends for a member is checked: no PATH, no LD_PRELOAD, no quote that ends a value.
    for variables in ("LD_PRELOAD=/tmp/x.so", "JUPYTERHUB_API_TOKEN=x'\nPATH=/tmp", "JUPYTERHUB_API_TOKEN=$(id)"):
        out = servers.sh(
            f"printf '%s\\n' {shlex.quote(variables)} | runuser -u jupyter -- sudo -n {HELPER} start alice 2>&1;"
            " echo exit=$?",
            check=False,
        )
        assert "refused" in out and "exit=0" not in out, out
    assert servers.sh(f"systemctl is-active {unit('alice')}", check=False).strip() != "active"


def test_on_a_socket_nobody_else_reaches_a_server_nor_takes_its_place(servers):
    """JupyterHub 6: alice's server listens on a Unix socket in a folder of hers the hub's group
    may enter. bob holds every free port of the servers' range meanwhile: her server starts all the
    same, and the proxy serves it; bob cannot enter the folder nor connect to the socket."""
    alice, bob = servers.users["alice"], servers.users["bob"]
    alice.stop_server()
    deadline = time.monotonic() + 60
    while alice.server() is not None:
        assert time.monotonic() < deadline
        time.sleep(1)
    hog = bob.start_kernel()
    held = bob.execute(
        hog,
        "import resource, socket\nresource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)\n"
        "held = []\nfor p in range(20000, 30000):\n    s = socket.socket()\n    try:\n        s.bind(('127.0.0.1', p)); s.listen(1); held.append(s)\n"
        "    except OSError:\n        s.close()\nprint(len(held))",
        timeout=120,
    )
    assert int(held) > 9000, held
    assert alice.start_server()["ready"]
    assert alice.run_code("import getpass; print(getpass.getuser())") == "alice\n"
    folder = "/run/jupyterhub-servers/alice"
    assert f"--ServerApp.sock={folder}/server.sock" in servers.sh(f"systemctl show -p ExecStart {unit('alice')}")
    assert servers.sh(f"stat -c '%U %G %a' {folder}").split() == ["alice", "jupyter", "2750"]
    assert servers.sh(f"stat -c '%U %G %a %F' {folder}/server.sock").split()[:3] == ["alice", "jupyter", "660"]
    tried = bob.execute(
        hog,
        f"import os, socket\nfor attempt in (lambda: os.listdir({folder!r}),"
        f" lambda: socket.socket(socket.AF_UNIX).connect({folder + '/server.sock'!r})):\n"
        "    try:\n        attempt(); print('allowed')\n    except OSError as error:\n        print(type(error).__name__)",
    )
    assert tried.split() == ["PermissionError", "PermissionError"], tried
    bob.delete_kernel(hog)


def test_a_person_runs_nothing_outside_their_server(servers, tmp_path):
    """No crontab, at job, user manager or SSH login for bob; a crontab root made for him never
    runs; and once his server stops, no process of his is left."""
    bob = servers.users["bob"]
    # A crontab of bob's from before (cron.deny refuses `crontab` to him, and to root for him).
    spool = "/var/spool/cron/crontabs"
    servers.sh(
        f"echo '* * * * * touch /tmp/cron-ran-for-bob' > {spool}/bob && chown bob:crontab {spool}/bob"
        f" && chmod 600 {spool}/bob && touch {spool}"
    )
    since = time.monotonic()
    tries = bob.run_code(
        "import subprocess\nfor argv, text in ((['crontab', '-'], '* * * * * true\\n'), (['at', 'now + 1 hour'], 'true\\n'),"
        " (['systemd-run', '--user', 'true'], '')):\n"
        "    r = subprocess.run(argv, input=text, capture_output=True, text=True)\n    print(argv[0], r.returncode)"
    )
    assert all(line.split()[1] != "0" for line in tries.splitlines()), tries
    key = tmp_path / "bob-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = key.with_suffix(".pub").read_text().strip()
    bob.run_code(
        "import os\nos.makedirs(os.path.expanduser('~/.ssh'), mode=0o700, exist_ok=True)\n"
        f"open(os.path.expanduser('~/.ssh/authorized_keys'), 'w').write({public!r} + '\\n')"
    )
    login = subprocess.run(
        [
            "ssh", "-i", str(key), "-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            f"bob@{servers.address}", "echo in",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert login.returncode != 0 and "in" not in login.stdout.split(), login
    bob.run_code("import subprocess; subprocess.Popen(['setsid', 'sleep', '1000'], start_new_session=True)")
    assert servers.sh("pgrep -u bob -x sleep").strip()
    bob.stop_server()
    deadline = time.monotonic() + 60
    while servers.sh("pgrep -u bob || true").strip():
        assert time.monotonic() < deadline, servers.sh("ps -u bob -o pid,cmd")
        time.sleep(1)
    # A crontab root made for him: cron's PAM check refuses to run it.
    time.sleep(max(0.0, 75 - (time.monotonic() - since)))
    assert servers.sh("test -e /tmp/cron-ran-for-bob && echo ran || echo never").strip() == "never"
    servers.sh(f"rm -f {spool}/bob")
    assert bob.start_server()["ready"]


def test_rerun_changes_nothing_and_uninstall_stops_the_servers(servers, workdir):
    bob = servers.users["bob"]
    settings = {"jh_admin_users": ["alice", "bob"], "jh_server_release": "jupyterhub-6"}
    result = deploy(servers, workdir, "servers-6", **settings)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.totals["success"] == 0, result.changed_operations()
    assert servers.sh(f"systemctl is-active {unit('bob')}").strip() == "active"
    assert bob.server() is not None
    inventory = workdir / "servers-6.py"
    removed = run_pyinfra(inventory, deploy="tasks.uninstall.remove")
    assert removed.returncode == 0, removed.stderr[-3000:]
    assert servers.sh("systemctl list-units --all --plain --no-legend 'jupyter-singleuser@*'").strip() == ""
    assert "jupyterhub-singleuser" not in servers.sh("ps -eo args")
