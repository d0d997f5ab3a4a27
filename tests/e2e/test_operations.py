"""Unattended operations on Ubuntu 24.04. The nightly backup (jh_nightly_backup) into a restic repository
on an SFTP host (a Debian 12 target): the key the SFTP host must accept, a host that is not the SFTP host
refused, the repository and timer made, a run that holds the state and each home (a planted link stored
as a link), a run killed half-way and the next one whole. Monitoring (jh_monitoring): every listener on
loopback, the hub's metrics for the metrics token alone, alerts made to fire on the target (three
servers that fail to start, the hub and the proxy stopped, the backup a day old, a kernel killed for
memory three times, a file system of its own filled) reaching a webhook run by the test and the
admin's jh_notify_command, and resolving; the usage report in Chromium. Last, the hub rebuilt on a
new host from the repository.

Tests run in file order; the module's three targets: the hub, the SFTP host, the new host."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests import harness
from tests.browser import browser_page
from tests.e2e.alerts import Webhook
from tests.e2e.conftest import USERS, plain_hub, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient

SFTP_USER, FOLDER = "restic", "/srv/restic/hub"
RESTIC = "/opt/jupyter/libexec/restic-run"
NOTES = "notes of alice, kept\n"
RESTORED = "/var/backups/jupyterhub-deploy/restored-snapshot"
MEMORY_LIMIT = "512M"
NOTIFIER, RECORDED = "/usr/local/bin/record-alert", "/var/log/alerts-recorded"
# A small file system of its own in the hub (ext4, 20 MB), filled for DiskAlmostFull.
SMALL_DISK = "/srv/small-disk"


def nightly(sftp, host_key: str | None = None) -> dict:
    key = host_key or sftp.sh("cat /etc/ssh/ssh_host_ed25519_key.pub").strip()
    return {"repository": f"sftp:{SFTP_USER}@{sftp.address}:{FOLDER}", "sftp_host_key": key}


def deploy(host, sftp, workdir, name: str, entry: str = "deploy.py", host_key: str | None = None, **overrides):
    settings = plain_hub(
        host,
        jh_nightly_backup=nightly(sftp, host_key),
        jh_backup_home_dirs=True,
        jh_backup_dir=str(workdir / "nightly-backups"),
        jh_notify_on_failure=True,
        **overrides,
    )
    return run_pyinfra(write_inventory(workdir / f"{name}.py", [(host.name, settings)]), deploy=entry)


def snapshots(host, tag: str) -> list[dict]:
    return json.loads(host.sh(f"{RESTIC} snapshots --json --tag {tag} 2>/dev/null"))


def run_backup(host) -> float:
    """A night's backup now, as its timer starts it (its journal if it fails); how long it took."""
    began = time.monotonic()
    started = host.sh("systemctl start jupyterhub-backup.service", check=False)
    took = time.monotonic() - began
    result = host.sh("systemctl show -p Result --value jupyterhub-backup.service").strip()
    assert result == "success", f"{started}\n{host.journal('jupyterhub-backup', 80)}"
    return took


def repository_size(sftp) -> int:
    return int(sftp.sh(f"du -sb {FOLDER}").split()[0])


def newest_state(host) -> dict:
    return max(snapshots(host, "jupyterhub-state"), key=lambda s: s["time"])


def token_owner(host, token: str) -> str | None:
    response = requests.get(
        f"http://{host.address}:8000/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=10
    )
    return response.json()["name"] if response.status_code == 200 else None


@pytest.fixture(scope="module")
def sftp(start):
    """An SFTP host: the account restic, whose authorized_keys the test fills, owns the repository's parent."""
    host = start("bookworm", "jhd-test-sftp")
    host.sh(
        f"useradd -m -s /bin/sh {SFTP_USER} && usermod -p '*' {SFTP_USER}"
        f" && install -d -o {SFTP_USER} -g {SFTP_USER} -m 700 /srv/restic /home/{SFTP_USER}/.ssh"
    )
    return host


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory):
    """An ext4 file system of this machine's (a loop device: the container may not mount one), bound
    into the hub as its own mount."""
    folder = tmp_path_factory.mktemp("small-disk")
    image, mounted = folder / "disk.img", folder / "mounted"
    mounted.mkdir()
    subprocess.run(["truncate", "-s", "20M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mounted)], check=True)
    yield mounted
    subprocess.run(["umount", "-l", str(mounted)], check=False)


@pytest.fixture(scope="module")
def hub(start, sftp, workdir, small_disk):
    host = start("noble", "jhd-test-backups", volumes={str(small_disk): SMALL_DISK})
    result = deploy(host, sftp, workdir, "backups-first")
    host.first_deploy = result
    return host


def test_the_first_deploy_names_the_key_the_sftp_host_must_accept(hub, sftp, workdir):
    output = hub.first_deploy.stdout + hub.first_deploy.stderr
    assert hub.first_deploy.returncode != 0
    [folder] = (workdir / "nightly-backups" / "restic").iterdir()
    assert f"the SFTP host must accept {folder / 'ssh-key.pub'}" in output, output[-4000:]
    assert "restic can neither open nor make the repository" in output
    assert sorted(path.name for path in folder.iterdir()) == ["password", "ssh-key", "ssh-key.pub"]
    assert {oct(folder.joinpath(name).stat().st_mode & 0o777) for name in ("password", "ssh-key")} == {"0o600"}
    assert hub.sh("stat -c '%U %a' /etc/jupyterhub-deploy/restic/password").split() == ["root", "600"]
    # The admin authorizes the key on the SFTP host.
    public = (folder / "ssh-key.pub").read_text()
    sftp.sh(f"echo '{public.strip()}' > /home/{SFTP_USER}/.ssh/authorized_keys")
    sftp.sh(f"chown {SFTP_USER}: /home/{SFTP_USER}/.ssh/authorized_keys")


def test_a_host_that_cannot_prove_the_sftp_host_key_gets_nothing(hub, sftp, workdir):
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    result = deploy(hub, sftp, workdir, "backups-stranger", host_key=stranger.decode())
    assert result.returncode != 0
    assert "Host key verification failed" in result.stdout + result.stderr, result.stderr[-4000:]
    assert sftp.sh(f"test -e {FOLDER} && echo made || echo none").strip() == "none"


def test_the_deploy_makes_the_repository_and_the_timer_and_a_rerun_changes_nothing(hub, sftp, workdir):
    result = deploy(hub, sftp, workdir, "backups")
    assert result.returncode == 0, result.stderr[-6000:]
    assert sftp.sh(f"stat -c %U {FOLDER}/config").strip() == SFTP_USER
    assert hub.sh("systemctl is-enabled jupyterhub-backup.timer").strip() == "enabled"
    assert hub.sh("systemctl show -p NextElapseUSecRealtime --value jupyterhub-backup.timer").strip()
    rerun = deploy(hub, sftp, workdir, "backups-rerun")
    assert rerun.returncode == 0 and rerun.totals["success"] == 0, rerun.changed_operations()


def test_a_night_s_backup_holds_the_state_and_each_home_read_by_its_person(hub, sftp):
    alice = HubClient(f"http://{hub.address}:8000")
    assert alice.login("alice", USERS["alice"]).status_code == 302, hub.journal()
    hub.token = alice.create_token()
    hub.sh(f"runuser -u alice -- sh -c 'printf \"{NOTES}\" > ~/notes.txt'")
    # bob plants a link to a file only root reads: the backup keeps the link, never the file.
    hub.sh("runuser -u bob -- ln -s /etc/shadow /home/bob/shadow")
    first = run_backup(hub)
    size = repository_size(sftp)
    [state] = snapshots(hub, "jupyterhub-state")
    assert "homes-2" in state["tags"] and state["hostname"] == hub.name
    homes = snapshots(hub, "jupyterhub-home")
    assert sorted(tag for s in homes for tag in s["tags"] if tag.startswith("user-")) == ["user-alice", "user-bob"]
    [bob] = [s for s in homes if "user-bob" in s["tags"]]
    listing = hub.sh(f"{RESTIC} dump {bob['id']} /home-bob.tar | tar -tvf -")
    assert "./shadow -> /etc/shadow" in listing, listing
    assert hub.sh(f"{RESTIC} dump {bob['id']} /home-bob.tar | grep -ac '^root:' || true").strip() == "0"
    # The next night, little changed: what it takes and adds (figures, not assertions).
    hub.sh("runuser -u alice -- sh -c 'date >> ~/notes-2.txt'")
    second = run_backup(hub)
    added = repository_size(sftp) - size
    print(
        f"[nightly backup] first {first:.1f} s, repository {size / 2**20:.1f} MiB; next, little changed: "
        f"{second:.1f} s, +{added / 2**10:.0f} KiB"
    )


def test_a_backup_killed_half_way_leaves_the_repository_whole_and_the_next_completes(hub):
    before = newest_state(hub)
    # Killed while it stores bob's home, after alice's: hers is of a run that never completes.
    hub.sh("runuser -u bob -- sh -c 'head -c 400M /dev/urandom > ~/big.bin'")
    hub.sh("systemctl start --no-block jupyterhub-backup.service")
    deadline = time.monotonic() + 60
    while "home-bob.tar" not in hub.sh("pgrep -af 'restic.*home-bob.tar' || true"):
        assert time.monotonic() < deadline, hub.journal("jupyterhub-backup")
        time.sleep(0.2)
    time.sleep(1)
    hub.sh("systemctl kill -s KILL jupyterhub-backup.service")
    hub.sh("while systemctl is-active -q jupyterhub-backup.service; do sleep 0.2; done")
    assert hub.sh("systemctl show -p Result --value jupyterhub-backup.service").strip() == "signal"
    assert newest_state(hub) == before
    # The failure reached the notifier (jh_notify_on_failure).
    notified = (
        "while ! journalctl -t jupyterhub-notify | grep -q 'jupyterhub-backup.service failed'; do sleep 0.5; done"
    )
    hub.sh(f'timeout 30 sh -c "{notified}"')
    hub.sh("rm /home/bob/big.bin")
    run_backup(hub)
    # A night's snapshots replace the same day's earlier ones (keep_daily): a newer one is there.
    assert newest_state(hub)["time"] > before["time"]
    # alice's home of the killed run went with the next run's clean-up: every home belongs to a whole run.
    runs = {tag for s in snapshots(hub, "jupyterhub-state") for tag in s["tags"] if tag.startswith("run-")}
    assert {tag for s in snapshots(hub, "jupyterhub-home") for tag in s["tags"] if tag.startswith("run-")} <= runs
    check = hub.sh(f"{RESTIC} check 2>&1")
    assert "no errors were found" in check, check


@pytest.fixture(scope="module")
def webhook(bridge_gateway):
    receiver = Webhook(bridge_gateway)
    yield receiver
    receiver.server.shutdown()


def test_monitoring_listens_on_loopback_alone_and_a_rerun_changes_nothing(hub, sftp, workdir, webhook):
    # The admin's own notifier records what it is given (root's file): alerts reach it too.
    hub.sh(f"printf '#!/bin/sh\\necho \"$*\" >> {RECORDED}\\n' > {NOTIFIER} && chmod 755 {NOTIFIER}")
    monitored = {
        "jh_monitoring": {"webhook_url": webhook.url},
        "jh_user_memory_limit": MEMORY_LIMIT,
        "jh_notify_command": NOTIFIER,
    }
    began = time.monotonic()
    result = deploy(hub, sftp, workdir, "monitoring", **monitored)
    # Full from now on: DiskAlmostFull fires after its 5 minutes (test_alerts_reach_the_webhook_and_resolve).
    hub.sh(f"dd if=/dev/zero of={SMALL_DISK}/fill bs=1M 2>/dev/null || true")
    took = time.monotonic() - began
    assert result.returncode == 0, result.stderr[-6000:]
    hub.monitored = monitored
    listening = hub.sh("ss -Hltnp | grep -E 'prometheus|alertmanager|node-exporter'")
    addresses = {line.split()[3] for line in listening.splitlines()}
    assert addresses == {"127.0.0.1:9090", "127.0.0.1:9093", "127.0.0.1:9100"}, listening
    # On loopback, a student's terminal could silence alerts or read the webhook: refused for all
    # but root and the daemons' own account.
    # The alerts' socket for the notifier (systemd's) and the proxy's metrics: loopback too.
    for port in (9095, 8003):
        assert hub.sh(f"ss -Hltn 'sport = :{port}'").split()[3] == f"127.0.0.1:{port}", port
    for port in (9090, 9093, 9100, 9095, 8003):
        url = f"http://127.0.0.1:{port}/"
        assert hub.sh(f"runuser -u bob -- curl -s -o /dev/null {url}; echo $?").split()[-1] in ("7", "56"), port
        if port != 9095:  # the notifier's socket answers Alertmanager's posts alone
            assert hub.sh(f"curl -s -o /dev/null -w '%{{http_code}}' {url}").strip() in ("200", "302", "404"), port
    print(f"[monitoring] memory just after the deploy (MiB): {monitoring_memory(hub)}")
    began = time.monotonic()
    rerun = deploy(hub, sftp, workdir, "monitoring-rerun", **monitored)
    print(f"[monitoring] turning it on: {took:.1f} s; a re-run: {time.monotonic() - began:.1f} s")
    assert rerun.returncode == 0 and rerun.totals["success"] == 0, rerun.changed_operations()


def test_the_hub_s_metrics_are_for_the_metrics_token_alone(hub):
    url = f"http://{hub.address}:8000/hub/metrics"
    # bob is no admin (admins may read the metrics).
    bob = HubClient(f"http://{hub.address}:8000")
    assert bob.login("bob", USERS["bob"]).status_code == 302
    plain_token = bob.create_token()
    assert requests.get(url, timeout=10).status_code == 403
    assert requests.get(url, headers={"Authorization": f"token {plain_token}"}, timeout=10).status_code == 403
    token = hub.sh("cat /etc/prometheus/jupyterhub-metrics.token").strip()
    response = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=10)
    assert response.status_code == 200 and "jupyterhub_" in response.text
    assert hub.sh("stat -c '%U %G %a' /etc/prometheus/jupyterhub-metrics.token").split() == [
        "root",
        "prometheus",
        "640",
    ]
    # Prometheus reads every target (the hub with that token).
    deadline = time.monotonic() + 90
    while True:
        targets = json.loads(hub.sh("curl -s 127.0.0.1:9090/api/v1/targets"))["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        jobs = {"prometheus", "alertmanager", "node", "jupyterhub", "proxy"}
        if set(health.values()) == {"up"} and set(health) == jobs:
            break
        assert time.monotonic() < deadline, targets
        time.sleep(3)


def monitoring_memory(host) -> dict[str, float]:
    units = ("prometheus", "prometheus-alertmanager", "prometheus-node-exporter")
    return {unit: round(int(host.sh(f"systemctl show -p MemoryCurrent --value {unit}")) / 2**20, 1) for unit in units}


def kill_a_kernel_for_memory(user: HubClient) -> None:
    """A kernel that outgrows the server's memory limit, killed by the kernel's OOM killer; then shut
    down (its restarted self would hold memory the next one needs)."""
    kernel = user.start_kernel()
    with user.connect(kernel) as connection:
        deadline = time.monotonic() + 120
        connection.send("big = b'x' * (1024**3)", deadline)
        for message in connection.messages(deadline, "status 'restarting' or 'dead' after the kill"):
            if message["msg_type"] == "status" and message["content"]["execution_state"] in ("restarting", "dead"):
                break
    # Shut down once it has restarted (while it restarts, the server answers 500).
    deadline = time.monotonic() + 60
    while user.api("DELETE", f"/user/{user.user}/api/kernels/{kernel}").status_code not in (204, 404):
        assert time.monotonic() < deadline, f"kernel {kernel} was not shut down"
        time.sleep(1)


def test_alerts_reach_the_webhook_and_resolve(hub, webhook):
    alice = HubClient(f"http://{hub.address}:8000")
    assert alice.login("alice", USERS["alice"]).status_code == 302
    alice.create_token()
    alice.start_server()
    # Her server's counter is read at 0 first: the alert is about kills that happen later.
    time.sleep(50)
    for _ in range(3):
        kill_a_kernel_for_memory(alice)
    assert hub.sh("systemctl is-active jupyter-singleuser@alice").strip() == "active"
    fail_three_spawns(hub)
    # Read from the running hub (a scrape after the third failure): then the hub goes down.
    spawns = webhook.wait_for("firing", {"SpawnsFailing"}, hub, seconds=120)["SpawnsFailing"]
    assert spawns["labels"]["host"] == hub.name and "3 times" in spawns["annotations"]["summary"], spawns
    hub.sh("systemctl stop jupyterhub jupyterhub-proxy")
    hub.sh("echo 1 > /etc/jupyterhub-deploy/restic/last-success")
    down = {"HubDown", "ProxyDown", "HubHealthFailing"}
    fired = webhook.wait_for("firing", {*down, "BackupTooOld", "RepeatedOOMKills", "DiskAlmostFull"}, hub)
    assert fired["DiskAlmostFull"]["labels"]["mountpoint"] == SMALL_DISK, fired["DiskAlmostFull"]
    assert {alert["labels"]["host"] for alert in fired.values()} == {hub.name}
    assert fired["RepeatedOOMKills"]["labels"]["user"] == "alice"
    assert fired["HubDown"]["labels"]["severity"] == "critical"
    # The admin's notifier got each, as one argument.
    recorded = hub.sh(f"cat {RECORDED}")
    assert f"alert HubDown firing on {hub.name}: The hub on {hub.name} is down" in recorded.splitlines(), recorded
    # The proxy restarted for its metrics (the monitoring deploy): a planned stop, no failure reported.
    assert "jupyterhub-proxy.service" not in recorded, recorded
    hub.sh("systemctl start jupyterhub-proxy jupyterhub && /opt/jupyter/libexec/wait-healthy 90")
    run_backup(hub)
    hub.sh(f"rm {SMALL_DISK}/fill")
    webhook.wait_for("resolved", {*down, "BackupTooOld", "DiskAlmostFull"}, hub)
    assert f"alert HubDown resolved on {hub.name}" in hub.sh(f"cat {RECORDED}")
    # The night's size and the repository's, for the metrics.
    deadline = time.monotonic() + 60
    while True:
        metrics = hub.sh("cat /var/lib/jupyterhub-metrics/jupyterhub.prom").splitlines()
        sizes = {line.split()[0]: int(line.split()[1]) for line in metrics if line.startswith("jupyterhub_backup_")}
        if len(sizes) == 3:  # its time, its size, the repository's
            break
        assert time.monotonic() < deadline, metrics
        time.sleep(2)
    assert sizes["jupyterhub_backup_last_size_bytes"] > 0 and sizes["jupyterhub_backup_repository_size_bytes"] > 0
    print(f"[monitoring] memory after the alerts (MiB): {monitoring_memory(hub)}")


def fail_three_spawns(hub) -> None:
    """bob's server cannot start (his own configuration raises), three times over."""
    config = "~/.jupyter/jupyter_server_config.py"
    hub.sh(f"runuser -u bob -- sh -c 'mkdir -p ~/.jupyter && echo \"raise SystemExit(3)\" > {config}'")
    bob = HubClient(f"http://{hub.address}:8000")
    assert bob.login("bob", USERS["bob"]).status_code == 302
    bob.create_token()
    for _ in range(3):
        # A start that fails within the hub's first ten seconds fails the request itself (500); one
        # that fails just as they end may answer 201. What counts is that no server is left.
        response = bob.api("POST", "/hub/api/users/bob/server")
        assert response.status_code in (201, 202, 500), response.text
        deadline = time.monotonic() + 180
        while (server := bob.server()) is not None and server.get("pending"):
            assert time.monotonic() < deadline, server
            time.sleep(1)
        assert server is None, server
    hub.sh(f"runuser -u bob -- sh -c 'rm {config}'")


def prometheus_value(host, query: str) -> float | None:
    """An instant query's single value on the hub (None: no series)."""
    answer = json.loads(host.sh(f"curl -s --get --data-urlencode 'query={query}' 127.0.0.1:9090/api/v1/query"))
    results = answer["data"]["result"]
    return max(float(result["value"][1]) for result in results) if results else None


def test_the_usage_report_shows_who_logged_in_and_the_kills_for_memory(hub, workdir):
    # The hub counts active users hourly and when it starts (the alerts' test restarted it).
    deadline = time.monotonic() + 120
    while (prometheus_value(hub, 'jupyterhub_active_users{period="24h"}') or 0) < 2:
        assert time.monotonic() < deadline, hub.sh("curl -s 127.0.0.1:9090/api/v1/targets", check=False)
        time.sleep(5)
    # alice's kernels killed for memory in the alerts' test, as her server's counter has them (from 0).
    killed = prometheus_value(hub, 'jupyterhub_user_oom_kills_total{user="alice"}')
    assert killed is not None and killed >= 3, killed
    reports = workdir / "reports"
    # Two days: the kills of the alerts' test are in them even just after midnight (UTC). alice is in a
    # group, bob in none.
    settings = plain_hub(
        hub,
        **hub.monitored,
        jh_notify_on_failure=True,
        jh_report_days=2,
        jh_report_dir=str(reports),
        jh_groups={"class-a": ["alice"]},
    )
    inventory = write_inventory(workdir / "report.py", [(hub.name, settings)])
    for args in (["--dry"], []):
        result = run_pyinfra(inventory, *args, deploy="tasks.status.report")
        assert result.returncode == 0, result.stderr[-4000:]
        # The page's path, then pyinfra's plan and results: nothing for the host, nothing changed.
        output = json.loads(result.stdout.splitlines()[-1])
        assert output["plan"] == [] and (args or output["results"]["totals"]["success"] == 0), result.stdout
    [page] = reports.iterdir()
    assert page.name.startswith(f"{hub.name}-") and page.name.endswith(".html") and f"{page}" in result.stdout
    assert oct(page.stat().st_mode & 0o777) == "0o600" and oct(reports.stat().st_mode & 0o777) == "0o700"
    with browser_page() as browser:
        browser.goto(page.as_uri())
        today = browser.locator("[data-plot=active-users] rect[data-series='active users']").last
        assert int(today.get_attribute("data-value")) >= 2, today.inner_html()
        assert "active users" in today.locator("title").text_content()
        alice = browser.locator("[data-table=people] tr[data-user=alice] td").all_inner_texts()
        assert alice[:2] == ["alice", "class-a"] and alice[-1] == f"{killed:.0f}", alice
        group = browser.locator("[data-table=groups] tr[data-group=class-a] td").all_inner_texts()
        assert group[-1] == f"{killed:.0f}", group
        kills = browser.locator("[data-plot=oom-kills] rect[data-series=class-a]")
        assert sum(int(value) for value in kills.evaluate_all("bars => bars.map(b => b.dataset.value)")) == killed
        disks = browser.locator("[data-table=disk] tbody tr").all_inner_texts()
        assert disks and all("." in row for row in disks), disks
        assert browser.locator("[data-plot=disk] circle").count() > 0
        servers = browser.locator("[data-plot=running-servers] circle").evaluate_all(
            "dots => dots.map(d => Number(d.dataset.value))"
        )
        assert max(servers) >= 1, servers
        print(f"[report] {page.name}: alice {alice}, disks {disks}")


def test_a_new_host_is_the_hub_again_from_the_repository(hub, sftp, start, workdir, engine):
    newest = newest_state(hub)
    # The hub is lost; a new host gets the same settings, then the backup.
    engine.client.containers.get(hub.name).stop(timeout=5)
    new = start("noble", "jhd-test-restored")
    result = deploy(new, sftp, workdir, "backups-new-host")
    assert result.returncode == 0, result.stderr[-6000:]
    restore = deploy(new, sftp, workdir, "backups-restore", "tasks.backup.restore", jh_restore_snapshot=newest["id"])
    assert restore.returncode == 0, restore.stderr[-6000:]
    assert new.sh(f"cat {RESTORED}").strip() == newest["id"]
    assert token_owner(new, hub.token) == "alice"
    assert new.sh("cat /home/alice/notes.txt") == NOTES
    assert new.sh("stat -c %U /home/alice/notes.txt").strip() == "alice"
    assert new.sh("readlink /home/bob/shadow").strip() == "/etc/shadow"
    alice = HubClient(f"http://{new.address}:8000")
    assert alice.login("alice", USERS["alice"]).status_code == 302, new.journal()
    again = deploy(new, sftp, workdir, "backups-restore-again", "tasks.backup.restore", jh_restore_snapshot="latest")
    assert again.returncode != 0
    assert f"the repository holds no backup of {new.name} (backups of: {hub.name})" in again.stdout + again.stderr
    hub_pid = new.sh("systemctl show -p MainPID --value jupyterhub").strip()
    same = deploy(new, sftp, workdir, "backups-restore-same", "tasks.backup.restore", jh_restore_snapshot=newest["id"])
    assert same.returncode == 0, same.stderr[-4000:]
    assert new.sh("systemctl show -p MainPID --value jupyterhub").strip() == hub_pid
    harness.remove_container(engine.client, hub.name)
