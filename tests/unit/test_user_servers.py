"""Users' servers as units: the limits settings, root's helper config, and the helper's checks.

The helper (files/bin/user-server) runs as root on the hub's behalf; here its checks
meet hostile input without root or systemd (the e2e suite runs it for real).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import os
import re
import subprocess
from types import SimpleNamespace

import pytest

from tasks import hub_data
from tasks.platform import Platform
from tasks.preflight import limit_problems
from tasks.settings import FILES, Settings, SettingsError

NOBLE = Platform("Ubuntu", "24.04", "3.12", "3.12")
XENIAL = Platform("Ubuntu", "16.04", "3.5", "3.12", "/opt/miniconda3/envs/jupyterhub-server/bin/python3.12")
GROUPS = {"ml-2026": (1500, ["alice"]), "jupyterhub-users": (1001, [])}


def load_helper():
    path = str(FILES / "bin" / "user-server")
    loader = importlib.machinery.SourceFileLoader("user_server", path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("user_server", loader))
    loader.exec_module(module)
    return module


helper = load_helper()


def helper_config(data: dict, platform: Platform = NOBLE) -> dict:
    return hub_data.user_servers(Settings.from_data(data), platform, 1000)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("jh_user_memory_limit", "256", "at least 64M"),
        ("jh_user_memory_limit", "2 G", "memory size"),
        ("jh_user_memory_limit", "2GB", "memory size"),
        ("jh_user_memory_limit", "2G\n", "memory size"),
        ("jh_user_memory_limit", 2048, "valid string"),
        ("jh_user_cpu_limit", 0, "greater than or equal to 0.01"),
        ("jh_user_cpu_limit", 1.234, "two decimals"),
        ("jh_user_cpu_limit", "2", "valid"),
        ("jh_user_tasks_limit", 8, "greater than or equal to 32"),
        ("jh_group_limits", {"ml 2026": {"memory": "8G"}}, "Unix group name"),
        ("jh_group_limits", {"ml": {}}, "at least one of memory, cpu, tasks"),
        ("jh_group_limits", {"ml": {"memroy": "8G"}}, "unknown key"),
        ("jh_group_limits", {"ml": {"memory": "8G;"}}, "memory size"),
    ],
)
def test_bad_limits_are_refused_naming_the_setting(key, value, expected):
    with pytest.raises(SettingsError) as error:
        Settings.from_data({key: value})
    assert key in str(error.value) and expected in str(error.value)


@pytest.mark.parametrize("platform", [NOBLE, XENIAL], ids=["systemd-255", "systemd-229"])
def test_helper_config_holds_limits_in_systemd_units(platform):
    config = helper_config(
        {
            "jh_user_memory_limit": "256M",
            "jh_user_cpu_limit": 1.5,
            "jh_group_limits": {"ml-2026": {"memory": "8G", "cpu": 4}},
        },
        platform,
    )
    assert config["limits"] == {
        "default": {"memory": 256 * 1024**2, "cpu": 1.5, "tasks": 1024},
        "groups": {"ml-2026": {"memory": 8 * 1024**3, "cpu": 4}},
    }
    assert config["memory_property"] == ("MemoryMax" if platform is NOBLE else "MemoryLimit")
    assert config["oom_policy"] is (platform is NOBLE)
    assert config["server_env_link"] == "/opt/jupyter/.venv"
    assert config["environment"] == {
        "JUPYTER_PATH": "/opt/jupyter/share/jupyter",
        "NLTK_DATA": "/opt/jupyter/nltk_data",
        "JUPYTERHUB_ACTIVITY_INTERVAL": "300",
        "JHD_SERVER_PORTS": "20000-29999",
    }
    assert config["server_ports"] == [20000, 30000]


def entry(name="alice", uid=1001, gid=1001, home="/home/alice", shell="/bin/bash"):
    return SimpleNamespace(pw_name=name, pw_uid=uid, pw_gid=gid, pw_dir=home, pw_shell=shell)


def test_the_most_generous_group_wins_each_limit(monkeypatch):
    config = helper_config(
        {
            "jh_user_memory_limit": "1G",
            "jh_group_limits": {"small": {"memory": "2G", "cpu": 1}, "big": {"memory": "8G"}, "other": {"cpu": 8}},
        }
    )
    monkeypatch.setattr(helper, "group_names", lambda _entry: {"alice", "small", "big", "jupyterhub-users"})
    assert helper.user_limits(config, entry()) == {"memory": 8 * 1024**3, "cpu": 1, "tasks": 1024}
    monkeypatch.setattr(helper, "group_names", lambda _entry: {"alice"})
    assert helper.user_limits(config, entry()) == {"memory": 1024**3, "tasks": 1024}


@pytest.mark.parametrize(
    "name",
    ["root", "../alice", "alice/../root", "Alice", "alice bob", "alice\n", "-alice", "a" * 33, "", "alice.service"],
)
def test_the_helper_refuses_names_that_are_not_user_names(name):
    with pytest.raises(helper.Refused):
        helper.account(helper_config({}), name, member_required=True)


def test_the_helper_refuses_root_system_accounts_the_hub_and_non_members(monkeypatch):
    config = helper_config({})
    accounts = {
        "root": entry("root", 0, 0),
        "daemon": entry("daemon", 1, 1),
        "jupyter": entry("jupyter", 1500, 1500),
        "mallory": entry("mallory", 1002, 1002),
        "alice": entry(),
        # A member an admin has since put in sudo, or given root's group.
        "oscar": entry("oscar", 1003, 1003),
        "rooty": entry("rooty", 1004, 0),
    }
    groups = {"alice": {"jupyterhub-users"}, "oscar": {"jupyterhub-users", "sudo"}, "rooty": {"jupyterhub-users"}}
    accounts["deployer"] = entry("deployer", 1005, 1005)
    groups["deployer"] = {"jupyterhub-users"}
    monkeypatch.setattr(helper.pwd, "getpwnam", lambda name: accounts[name])
    monkeypatch.setattr(helper, "group_names", lambda e: {e.pw_name} | groups.get(e.pw_name, set()))
    # deployer: a member with a NOPASSWD rule of its own in sudoers.d (no sudo group), as sudo lists it.
    monkeypatch.setattr(helper, "sudo_rights", lambda name: ["(ALL) NOPASSWD: ALL"] if name == "deployer" else [])
    for name in ("root", "daemon", "jupyter", "mallory", "oscar", "rooty", "deployer", "nosuchuser"):
        with pytest.raises(helper.Refused):
            helper.account(config, name, member_required=True)
    assert helper.account(config, "alice", member_required=True).pw_name == "alice"
    # Stopping needs no membership (a user removed from the group is still stopped), but a user account.
    assert helper.account(config, "mallory", member_required=False).pw_name == "mallory"
    with pytest.raises(helper.Refused):
        helper.account(config, "root", member_required=False)


@pytest.mark.parametrize(
    "text",
    [
        "PATH=/tmp/evil\nJUPYTERHUB_API_TOKEN=x\n",
        "LD_PRELOAD=/tmp/evil.so\nJUPYTERHUB_API_TOKEN=x\n",
        "JUPYTERHUB_API_TOKEN=x' \nJUPYTERHUB_USER=alice\n",
        "JUPYTERHUB_API_TOKEN=$(reboot)\n",
        "JUPYTERHUB_API_TOKEN=a\\\n",
        "JUPYTERHUB_API_TOKEN=`id`\n",
        "JUPYTERHUB_API_TOKEN=x\rMEM_LIMIT=0\n",
        "JUPYTERHUB_API_TOKEN=x\x00\n",
        "JUPYTERHUB_USER=alice\n",
        "jupyterhub_api_token=x\n",
        "JUPYTERHUB_API_TOKEN\n",
        "JUPYTERHUB_API_TOKEN=" + "x" * 70000 + "\n",
    ],
)
def test_the_helper_refuses_variables_it_does_not_expect(text):
    with pytest.raises(helper.Refused):
        helper.read_environment(io.StringIO(text))


def test_the_environment_file_quotes_every_value_and_sets_what_root_decides():
    config = helper_config({"jh_user_memory_limit": "512M"})
    hub_variables = helper.read_environment(
        io.StringIO(
            "JUPYTERHUB_API_TOKEN=abc123\n"
            'JUPYTERHUB_OAUTH_SCOPES=["access:servers!server=alice/", "access:servers!user=alice"]\n'
            # The hub cannot set what root sets: these are overwritten.
            "JUPYTERHUB_SERVICE_URL=http://127.0.0.1:41234/user/alice/\n"
        )
    )
    limits = helper.user_limits(config, entry())
    text = helper.environment_file(config, entry(shell=""), hub_variables, limits, "/opt/jupyter/envs/x")
    lines = dict(line.split("=", 1) for line in text.splitlines())
    assert lines["JUPYTERHUB_OAUTH_SCOPES"] == """'["access:servers!server=alice/", "access:servers!user=alice"]'"""
    assert lines["PATH"] == "'/opt/jupyter/envs/x/bin:/usr/local/bin:/usr/bin:/bin'"
    assert lines["MEM_LIMIT"] == f"'{512 * 1024**2}'"
    assert lines["SHELL"] == "'/bin/sh'"
    assert lines["NLTK_DATA"] == "'/opt/jupyter/nltk_data'"


@pytest.mark.parametrize("platform", [NOBLE, XENIAL], ids=["systemd-255", "systemd-229"])
def test_unit_properties_follow_the_platform(platform):
    config = helper_config({"jh_user_memory_limit": "256M", "jh_user_cpu_limit": 1.5}, platform)
    properties = helper.unit_properties(config, entry(), helper.user_limits(config, entry()), "/run/x/alice.env")
    memory = "MemoryMax" if platform is NOBLE else "MemoryLimit"
    assert f"{memory}={256 * 1024**2}" in properties
    assert "CPUQuota=150%" in properties and "TasksMax=1024" in properties
    assert ("OOMPolicy=continue" in properties) is (platform is NOBLE)


@pytest.mark.parametrize(
    "argv",
    [
        ["user-server"],
        ["user-server", "status", "alice"],
        ["user-server", "start"],
        ["user-server", "start", "alice", "ml-students", "--extra"],
    ],
)
def test_the_helper_takes_a_verb_a_user_and_what_the_verb_needs(argv, capsys):
    assert helper.main(argv) == 2
    assert "usage" in capsys.readouterr().err


def test_limits_the_kernel_cannot_enforce_are_refused_naming_the_setting():
    settings = Settings.from_data({"jh_user_memory_limit": "1G", "jh_group_limits": {"ml-2026": {"cpu": 2}}})
    assert limit_problems(settings, {"memory", "cpu", "pids"}, GROUPS) == []
    problems = limit_problems(settings, {"pids"}, GROUPS)
    assert [p.split(":")[0] for p in problems] == ["jh_user_memory_limit", "jh_group_limits[ml-2026][cpu]"]
    # The default process limit is not the admin's: left to systemd, not refused.
    assert limit_problems(Settings.from_data({}), set(), GROUPS) == []


def test_memory_limits_above_the_host_s_memory_are_refused():
    settings = Settings.from_data({"jh_user_memory_limit": "64G", "jh_group_limits": {"ml-2026": {"memory": "2G"}}})
    controllers = {"memory", "cpu", "pids"}
    assert limit_problems(settings, controllers, GROUPS, memory=4 * 1024**3) == [
        "jh_user_memory_limit: 64G is more than this host's memory (4096 MiB), so it never applies; "
        "give a limit a server can reach"
    ]
    assert limit_problems(settings, controllers, GROUPS, memory=128 * 1024**3) == []


def test_group_limits_for_a_group_the_host_lacks_are_refused():
    settings = Settings.from_data({"jh_group_limits": {"ml-2027": {"cpu": 2}, "jupyterhub-users": {"cpu": 1}}})
    assert limit_problems(settings, {"memory", "cpu", "pids"}, GROUPS) == [
        "jh_group_limits[ml-2027]: there is no group ml-2027 on this host; create it first"
    ]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "must be http://127.0.0.1:PORT"),
        ("http://0.0.0.0:20001/user/alice/", "must be http://127.0.0.1:PORT"),
        ("http://127.0.0.1:8081/user/alice/", "not one of the servers' (20000-29999)"),
        ("http://127.0.0.1:30000/user/alice/", "not one of the servers'"),
    ],
)
def test_a_server_gets_a_port_of_the_servers_range_alone(url, why):
    with pytest.raises(helper.Refused, match=re.escape(why)):
        helper.server_port({"server_ports": [20000, 30000]}, {"JUPYTERHUB_SERVICE_URL": url})
    assert (
        helper.server_port({"server_ports": [20000, 30000]}, {"JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:20001/u/"})
        == 20001
    )


def test_the_hub_gets_the_route_only_once_the_server_s_own_process_listens(monkeypatch):
    """Another person's process bound to the port first: refused (the server cannot listen);
    nothing listening yet: wait; the unit's own socket: done; the unit gone: refused."""
    listening, states = [set(), {"77"}], ["active"]
    monkeypatch.setattr(helper, "listening_inodes", lambda port: listening[0])
    monkeypatch.setattr(helper, "unit_pids", lambda unit: {"100"})
    monkeypatch.setattr(helper, "holds", lambda pid, inodes: pid == "100" and "77" in inodes)
    monkeypatch.setattr(helper, "active_state", lambda unit: states[0])
    monkeypatch.setattr(helper.time, "sleep", lambda seconds: listening.pop(0) if len(listening) > 1 else None)
    helper.wait_listening("jupyter-singleuser@alice.service", 20001, helper.time.monotonic() + 5)
    monkeypatch.setattr(helper, "listening_inodes", lambda port: {"99"})
    with pytest.raises(helper.Refused, match="port 20001 is taken by another process"):
        helper.wait_listening("jupyter-singleuser@alice.service", 20001, helper.time.monotonic() + 5)
    monkeypatch.setattr(helper, "listening_inodes", lambda port: set())
    states[0] = "failed"
    with pytest.raises(helper.Refused, match="ended before it listened"):
        helper.wait_listening("jupyter-singleuser@alice.service", 20001, helper.time.monotonic() + 5)
    states[0] = "active"
    with pytest.raises(helper.Refused, match="did not listen on port 20001 in time"):
        helper.wait_listening("jupyter-singleuser@alice.service", 20001, helper.time.monotonic() - 1)


def test_the_listening_sockets_and_the_unit_s_processes_are_read_from_proc(tmp_path):
    """Against this machine's own /proc: a socket listening here is found, by this process."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        inodes = helper.listening_inodes(port)
        assert inodes and helper.holds(str(os.getpid()), inodes)
    assert helper.listening_inodes(port) == set()


def test_a_server_on_a_socket_gets_a_folder_of_its_user_s_that_the_hub_s_group_may_enter(tmp_path, monkeypatch):
    chowned = []
    monkeypatch.setattr(helper.os, "chown", lambda path, uid, gid: chowned.append((path, uid, gid)))
    monkeypatch.setattr(helper.pwd, "getpwnam", lambda name: SimpleNamespace(pw_gid=999))
    config = {"sockets_dir": str(tmp_path / "servers"), "hub_user": "jupyter"}
    path = f"{tmp_path}/servers/alice/server.sock"
    url = "http+unix://" + path.replace("/", "%2F") + "/user/alice/"
    assert helper.server_socket(config, entry(), {"JUPYTERHUB_SERVICE_URL": url}) == path
    assert chowned == [(f"{tmp_path}/servers/alice", 1001, 999)]
    assert oct(os.stat(tmp_path / "servers" / "alice").st_mode & 0o7777) == "0o2750"
    # A TCP server: no socket.
    assert helper.server_socket(config, entry(), {"JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:20001/"}) is None
    # Another person's socket, or anywhere else: refused.
    for other in (path.replace("alice", "bob"), "/tmp/server.sock"):
        with pytest.raises(helper.Refused, match="the server's socket is"):
            helper.server_socket(
                config, entry(), {"JUPYTERHUB_SERVICE_URL": "http+unix://" + other.replace("/", "%2F")}
            )
    (tmp_path / "servers" / "carol").symlink_to(tmp_path)
    with pytest.raises(helper.Refused, match="is not a folder"):
        helper.server_socket(config, entry("carol"), {"JUPYTERHUB_SERVICE_URL": url.replace("alice", "carol")})


def test_the_server_command_takes_its_socket(monkeypatch):
    arguments = ["--ServerApp.sock=/run/jupyterhub-servers/alice/server.sock", "--ServerApp.sock_mode=0660"]
    monkeypatch.setattr(helper, "private_group", lambda entry: True)
    assert helper.server_command(entry(), "/opt/jupyter/envs/x", arguments) == [
        "/bin/sh", "-c", 'umask 0002 && exec "$0" "$@"', "/opt/jupyter/envs/x/bin/jupyterhub-singleuser", *arguments
    ]  # fmt: skip
    monkeypatch.setattr(helper, "private_group", lambda entry: False)
    assert helper.server_command(entry(), "/opt/jupyter/envs/x") == ["/opt/jupyter/envs/x/bin/jupyterhub-singleuser"]


def test_the_helper_asks_sudo_what_an_account_may_run(monkeypatch):
    listing = "Matching Defaults entries for x:\n    env_reset\n\nUser x may run the following commands on hub:\n    (ALL) ALL\n"
    monkeypatch.setattr(
        helper.subprocess, "run", lambda argv, **kwargs: subprocess.CompletedProcess(argv, 0, stdout=listing)
    )
    assert helper.sudo_rights("x") == ["(ALL) ALL"]
    monkeypatch.setattr(
        helper.subprocess,
        "run",
        lambda argv, **kwargs: subprocess.CompletedProcess(
            argv, 1, stdout="User x is not allowed to run sudo on hub.\n"
        ),
    )
    assert helper.sudo_rights("x") == []
