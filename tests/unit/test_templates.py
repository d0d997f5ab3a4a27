"""Rendered templates, checked by their own tools where the tool exists here."""

import json
import shutil
import subprocess

import pytest

from tasks import hub, hub_data, layout
from tasks.ops import render
from tasks.platform import Platform
from tasks.settings import FILES, Settings

NOBLE = Platform("Ubuntu", "24.04", "3.12", "3.12")
XENIAL = Platform("Ubuntu", "16.04", "3.5", "3.12", "/opt/miniconda3/envs/jupyterhub-server/bin/python3.12")
CUSTOM = {
    "jh_install_root": "/srv/hub",
    "jh_hub_user": "hubd",
    "jh_users_group": "students",
    "jh_admin_users": ["teacher"],
    "jh_notify_on_failure": True,
    "jh_notify_command": "/usr/local/bin/page-admin --urgent",
}


def visudo(path) -> subprocess.CompletedProcess:
    binary = shutil.which("visudo") or "/usr/sbin/visudo"
    return subprocess.run([binary, "-c", "-f", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("data", [{}, CUSTOM], ids=["defaults", "custom"])
def test_sudoers_rule_passes_visudo(tmp_path, data):
    settings = Settings.from_data(data)
    rule = tmp_path / "rule"
    rule.write_text(hub.sudoers_rule(settings))
    result = visudo(rule)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sudoers_rule_allows_only_the_user_server_helper():
    rule = hub.sudoers_rule(Settings.from_data(CUSTOM))
    grants = [line for line in rule.splitlines() if line.startswith("hubd ")]
    assert grants == ["hubd ALL=(root) NOPASSWD: JUPYTERHUB_USER_SERVERS"]
    helper = "/srv/hub/libexec/user-server"
    assert f"Cmnd_Alias JUPYTERHUB_USER_SERVERS = {helper} start *, {helper} stop *" in rule


def test_visudo_rejects_a_broken_rule(tmp_path):
    rule = tmp_path / "rule"
    rule.write_text("jupyter ALL=(ALL NOPASSWD: /bin/true\n")
    assert visudo(rule).returncode != 0


def hub_data_of(settings: Settings, node_addresses: dict[str, str] | None = None) -> dict:
    """hub.json for these settings, as the deploy writes it (the hub package's tests apply it)."""
    return json.loads(hub_data.hub_json(settings, NOBLE, 1000, node_addresses or {}))


def test_hub_data(tmp_path):
    data = hub_data_of(Settings.from_data(CUSTOM))
    assert data["state_dir"] == "/srv/hub/state"
    assert data["urls"] == {
        "bind_url": "http://127.0.0.1:8000/",
        "hub_bind_url": "http://127.0.0.1:8081",
        "subdomain_host": None,
    }
    assert data["proxy"] == {"api_url": "http://127.0.0.1:8001", "token_file": "proxy.env"}
    assert data["login"] == {
        "kind": "pam",
        "options": {"service": "jupyterhub", "allowed_groups": ["students"]},
        "allowed_users": None,
        "admin_users": ["teacher"],
    }
    assert data["servers"]["helper"] == "/srv/hub/libexec/user-server"
    assert data["servers"]["unit_prefix"] == "jupyter-singleuser@"
    assert data["servers"]["profiles"] == [] and data["servers"]["create_accounts"] is False
    culler, deploy = data["services"]
    assert culler["token_file"] == "idle_culler.env"
    assert "admin" not in str(culler["scopes"]) and "delete:servers" in culler["scopes"]
    # Groups and off-boarding; not servers' or tokens' admin.
    assert deploy == {"name": "deploy", "token_file": "deploy.env", "scopes": ["admin:users", "admin:groups"]}
    # Root's helper's part: the hub reads it, never writes it (the file is root's).
    assert data["user_servers"]["hub_user"] == "hubd" and data["user_servers"]["users_group"] == "students"


def render_unit(name: str, settings: Settings, **context) -> str:
    proxy = {"proxy_command": ["/srv/hub/.venv/node", "/srv/hub/.venv/chp"], "proxy_digest": "0123456789ab"}
    return render(f"{name}.j2", settings, **hub.UNIT_CONTEXT, **proxy, **context)


MONITORED = {"jh_domain": "hub.example.org", "jh_monitoring": {"webhook_url": "https://chat.example.org/hooks/1"}}


def test_proxy_unit_runs_configurable_http_proxy_with_its_token_read_as_the_hub_user():
    unit = render_unit("jupyterhub-proxy.service", Settings.from_data(CUSTOM))
    # Its exit on SIGTERM (status 2) is no failure: a restart reports none.
    assert "\nSuccessExitStatus=2\n" in unit
    assert (
        "ExecStart=/srv/hub/libexec/with-secret /srv/hub/state/proxy.env CONFIGPROXY_AUTH_TOKEN "
        "/srv/hub/.venv/node /srv/hub/.venv/chp --ip 127.0.0.1 --port 8000 --api-ip 127.0.0.1 --api-port 8001 "
        "--error-target http://127.0.0.1:8081/hub/error\n"
    ) in unit
    # The command's line ends where it should, with or without metrics: systemd restarts the proxy.
    monitored = render_unit("jupyterhub-proxy.service", Settings.from_data({**CUSTOM, **MONITORED}))
    assert "--metrics-port 8003\nRestart=always\n" in monitored and "\nRestart=always\n" in unit
    assert "User=hubd" in unit and "EnvironmentFile" not in unit
    # A new Node.js or proxy lock changes the unit, which restarts the proxy (and only then).
    assert "0123456789ab" in unit


@pytest.mark.parametrize("platform", [NOBLE, XENIAL], ids=["systemd-255", "systemd-229"])
def test_users_slice_leaves_the_system_its_reserve(platform):
    limit, reserve = hub.slice_memory(24 * 1024**3)
    assert reserve == int(2.4 * 1024**3) // 1 or reserve == 24 * 1024**3 // 10
    assert limit == 24 * 1024**3 - reserve
    assert hub.slice_memory(4 * 1024**3) == (3 * 1024**3, 1024**3)
    settings = Settings.from_data({})
    unit = render_unit(
        "jupyterhub-users.slice",
        settings,
        slice_memory=limit,
        reserve="x",
        memory_property=platform.memory_property,
        reserved_ports=layout.reserved_ports(settings, platform),
    )
    assert f"{platform.memory_property}={limit}" in unit
    # Nobody's process takes the port of the proxy or a monitoring daemon while it restarts.
    denied = [line.removeprefix("SocketBindDeny=tcp:") for line in unit.splitlines() if "SocketBindDeny" in line]
    expected = ["8000", "8001", "8003", "8081", "9090", "9093", "9095", "9100"]
    assert denied == (expected if platform.systemd >= 249 else [])
    # Nor that of a service nginx sends its visitors to on this host (another host's is not ours).
    services = [
        {"path": "/rstudio/", "upstream": "http://127.0.0.1:8787/"},
        {"path": "/docs/", "upstream": "http://docs.example.org:8788/"},
    ]
    with_services = Settings.from_data({"jh_domain": "hub.example.org", "jh_services": services})
    ports = layout.reserved_ports(with_services, platform)
    assert ports == (sorted([*map(int, expected), 8787]) if platform.systemd >= 249 else [])


def test_units_without_notifier_have_no_onfailure():
    settings = Settings.from_data({})
    for unit in ("jupyterhub.service", "jupyterhub-idle-culler.service"):
        text = render_unit(unit, settings)
        assert "OnFailure" not in text
        assert "User=jupyter" in text


def test_units_with_notifier():
    settings = Settings.from_data(CUSTOM)
    hub_unit = render_unit("jupyterhub.service", settings)
    assert "OnFailure=jupyterhub-notify-failure@%n.service" in hub_unit
    assert "ExecStart=/srv/hub/.venv/bin/hubside-hub --config /srv/hub/jupyterhub_config.py" in hub_unit
    notifier = render_unit("jupyterhub-notify-failure@.service", settings)
    assert "ExecStart=/usr/local/bin/page-admin --urgent %i" in notifier


def test_culler_unit_uses_the_settings():
    unit = render_unit(
        "jupyterhub-idle-culler.service", Settings.from_data({"jh_idle_timeout": 900, "jh_idle_check_interval": 60})
    )
    assert "--url=http://127.0.0.1:8081/hub/api --timeout=900 --cull-every=60" in unit


@pytest.mark.parametrize("timeout, interval", [(60, 15), (900, 225), (3600, 300), (86400, 300)])
def test_activity_is_reported_well_within_the_idle_timeout(tmp_path, timeout, interval):
    """The culler stops a server on the activity the hub last heard of: with JupyterHub's
    5 minutes between reports, an idle timeout of 1 minute would stop servers in use."""
    settings = Settings.from_data({"jh_idle_timeout": timeout, "jh_idle_check_interval": 10})
    data = hub_data_of(settings)
    assert data["servers"]["activity_interval"] == interval
    environment = data["user_servers"]["environment"]
    assert environment["JUPYTERHUB_ACTIVITY_INTERVAL"] == str(interval)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed here")
def test_units_parse_with_systemd_analyze(tmp_path):
    """systemd-analyze verify, minus its complaints about binaries that exist only on a target."""
    settings = Settings.from_data(CUSTOM)
    units = (*layout.SERVICES, layout.NOTIFY_UNIT, layout.USERS_SLICE, "jupyterhub-server-ports.service")
    for unit in units:
        (tmp_path / unit).write_text(
            render_unit(
                unit,
                settings,
                slice_memory=2**30,
                reserve="1 GiB",
                memory_property="MemoryMax",
                first=20000,
                last=29999,
                proxy_user="hubd",
                reserved_ports=[8000, 9090],
            )
        )
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / unit) for unit in units if "@" not in unit)],
        capture_output=True,
        text=True,
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip()
        and "is not executable" not in line
        and "No such file" not in line
        and "Failed to prepare filename" not in line
        and "Unit is bound to inactive unit" not in line
        and "Command " not in line
    ]
    assert problems == []


def test_the_servers_ports_rule_lets_the_proxy_and_root_alone_connect():
    unit = render(
        "jupyterhub-server-ports.service.j2", Settings.from_data(CUSTOM), first=20000, last=29999, proxy_user="hubd"
    )
    assert "ExecStart=/srv/hub/libexec/server-ports-firewall start hubd 20000 29999" in unit
    script = (FILES / "bin" / "server-ports-firewall").read_text()
    assert "--uid-owner 0 -j RETURN" in script and '--uid-owner "$hub_user" -j RETURN' in script
    assert "REJECT --reject-with tcp-reset" in script


def test_ssh_session_limits_follow_the_server_limits():
    from tasks.confinement import slice_limits

    settings = Settings.from_data(
        {"jh_user_memory_limit": "1G", "jh_user_cpu_limit": 1, "jh_group_limits": {"ml": {"memory": "4G"}}}
    )
    assert slice_limits(settings, {"ml"}) == {"memory": 4 * 1024**3, "cpu": 1, "tasks": 1024}
    assert slice_limits(settings, {"other"}) == {"memory": 1024**3, "cpu": 1, "tasks": 1024}
    text = render(
        "user-slice-limits.conf.j2",
        settings,
        limits=slice_limits(settings, {"ml"}),
        memory_property="MemoryMax",
        reserved_ports=[8000, 9090],
    )
    assert "[Slice]\nMemoryMax=4294967296\nCPUQuota=100%\nTasksMax=1024\n" in text
    assert text.endswith("SocketBindDeny=tcp:8000\nSocketBindDeny=tcp:9090\n")


def test_cron_and_at_are_confined_where_installed_and_by_apt_once_installed_later():
    from tasks.confinement import ACCESS_JOBS, deny_lists

    settings = Settings.from_data(CUSTOM)
    assert {path for path, _ in deny_lists(settings, {"/etc/pam.d/cron"})} == {"/etc/cron.deny"}
    assert deny_lists(settings, set()) == []
    hook = render(
        "apt-jobs-pam-access.conf.j2", settings, script="/srv/hub/libexec/jobs-pam-access", access_file=ACCESS_JOBS
    )
    assert (
        'DPkg::Post-Invoke { "if [ -x /srv/hub/libexec/jobs-pam-access ]; then '
        '/srv/hub/libexec/jobs-pam-access /etc/security/access-jupyterhub-jobs.conf; fi"; };'
    ) in hook


def test_servers_start_one_per_core_and_gib_unless_set():
    gib = 1024**3
    assert hub_data.start_slots(Settings.from_data({}), cores=8, memory=4 * gib) == 4
    assert hub_data.start_slots(Settings.from_data({}), cores=2, memory=24 * gib) == 2
    assert hub_data.start_slots(Settings.from_data({}), cores=1, memory=gib // 2) == 1
    assert hub_data.start_slots(Settings.from_data({"jh_start_slots": 6}), cores=2, memory=gib) == 6
