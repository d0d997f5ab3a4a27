"""Values that pass the settings' whitelists, at their edges, land in every generated file and
command only as inert data: commands keep their argv in bash, the Python config and kernel
specs hold exactly the values, units and sudoers parse as their own tools read them."""

import ast
import json
import os
import re
import shlex
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tasks import hub, hub_data, hub_package, kernels
from tasks.layout import Layout, layout_env, shell_value
from tasks.ops import command, render, script
from tasks.platform import Platform
from tasks.settings import Settings

NOBLE = Platform("Ubuntu", "24.04", "3.12", "3.12")
HOSTILE = [
    "$(touch /tmp/pwned)",
    "`id`",
    "a; rm -rf /",
    "'quoted'",
    '"double"',
    "new\nline",
    "100%",
    "{}",
    "a b",
    "~root",
    "#comment",
    "!!",
    "[a-z]*",
    "\\",
    "Ω λ",
    "--help",
    "-rf",
    "",
]
HOST_KEY = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
# Accepted by the settings, at the edges of their whitelists.
EDGY = {
    "jh_install_root": "/srv/hub-1.x_y",
    "jh_hub_user": "hub_d-1",
    "jh_users_group": "class-2026_a",
    "jh_users": [{"name": "x_1-y"}],
    "jh_admin_users": ["x_1-y"],
    "jh_notify_on_failure": True,
    "jh_notify_command": "/usr/local/bin/page-admin --to=ops@example.org +1,2 a:b",
    "jh_pip_index_url": "https://mirror.example.org:8443/~pypi/simple/?x=1#frag",
    "jh_nltk_index_url": "https://mirror.example.org/nltk/index.xml?a=%41!b",
    "jh_kernels": [{"name": "py.3_x-1", "display_name": 'Ω "x" $(id) `y` \\ %n {} \' ; |', "packages": "minimal"}],
    "jh_domain": "hub-1.example.org",
    "jh_base_url": "/a.b-c~_/",
    "jh_services": [{"path": "/r_s.t-u~/", "upstream": "http://[::1]:8787/r~s_t.u-v/", "websockets": True}],
}


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_commands_keep_each_argument_whole_in_bash(value):
    line = command("printf", "%s\\0", value, "after")
    assert subprocess.run(["bash", "-n", "-c", line]).returncode == 0
    out = subprocess.run(["bash", "-c", line], capture_output=True).stdout
    assert out.split(b"\0")[:-1] == [value.encode(), b"after"]


def test_scripts_get_their_arguments_quoted_and_run_as_the_given_user():
    layout = Layout(Settings.from_data(EDGY).install_root, Settings.from_data({}).conda_prefix)
    line = script(layout, "new-secret", "/srv/x/$(id)", "A=`b`", as_user="hub_d-1")
    assert subprocess.run(["bash", "-n", "-c", line]).returncode == 0
    assert shlex.split(line) == [
        "runuser",
        "-u",
        "hub_d-1",
        "--",
        "/srv/hub-1.x_y/libexec/new-secret",
        "/srv/x/$(id)",
        "A=`b`",
    ]


# What layout.env may hold: nothing a shell would read as more than the text itself.
SHELL_INERT = {"100%", "a b", "~root", "--help", "-rf", ""}


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_layout_env_values_are_read_back_whole_or_refused(value):
    if value not in SHELL_INERT:
        with pytest.raises(ValueError, match="cannot go in layout.env"):
            shell_value(value)
        return
    line = f"VALUE={shell_value(value)}"
    out = subprocess.run(["bash", "-c", f'{line}\nprintf "%s\\0" "$VALUE" $VALUE'], capture_output=True).stdout
    # Whole in quotes; unquoted, split at spaces only (no glob, no expansion).
    assert out.split(b"\0")[:-1] == [value.encode(), *value.encode().split()]


def layout_env_as_read_by_bash(settings: Settings, host_name: str = "") -> dict[str, str]:
    text = layout_env(settings, host_name)
    assert all(line.startswith("#") or re.fullmatch(r"[A-Z][A-Z_]*='[^']*'", line) for line in text.splitlines())
    out = subprocess.run(
        ["env", "-i", "bash", "-c", 'set -a; eval "$1"; env -0', "bash", text], capture_output=True, check=True
    ).stdout
    variables = dict(entry.split("=", 1) for entry in out.decode().split("\0") if entry)
    keys = [line.split("=", 1)[0] for line in text.splitlines() if not line.startswith("#")]
    return {key: variables[key] for key in keys}


def test_layout_env_of_edge_settings_reads_back_as_the_layout():
    values = layout_env_as_read_by_bash(Settings.from_data(EDGY))
    assert values == {
        "INSTALL_ROOT": "/srv/hub-1.x_y",
        "LIBEXEC": "/srv/hub-1.x_y/libexec",
        "VENV": "/srv/hub-1.x_y/.venv",
        "PREVIOUS_VENV": "/srv/hub-1.x_y/.venv.previous",
        "ENVS_DIR": "/srv/hub-1.x_y/envs",
        "CONFIG": "/srv/hub-1.x_y/jupyterhub_config.py",
        "HUB_DATA": "/srv/hub-1.x_y/hub.json",
        "STATE_DIR": "/srv/hub-1.x_y/state",
        "DATABASE": "/srv/hub-1.x_y/state/jupyterhub.sqlite",
        "BACKUPS_DIR": "/srv/hub-1.x_y/state/backups",
        "BACKUPS_KEPT": "5",
        "HUB_USER": "hub_d-1",
        "USERS_GROUP": "class-2026_a",
        "HUB_UNIT": "jupyterhub.service",
        "PROXY_UNIT": "jupyterhub-proxy.service",
        "CULLER_UNIT": "jupyterhub-idle-culler.service",
        "HEALTH_URL": "http://127.0.0.1:8000/a.b-c~_/hub/health",
        "SECRETS": "jupyterhub_cookie_secret proxy.env idle_culler.env deploy.env",
        "RESTORED_SECRETS": "jupyterhub_cookie_secret idle_culler.env",
        "HOST_SECRETS": "proxy.env deploy.env",
        "OAUTH_NAMES": "oauth-names.json",
        "BACKUP_STAGING": "/var/backups/jupyterhub-deploy",
        "RESTIC_DIR": "/etc/jupyterhub-deploy/restic",
        "BACKUP_REPOSITORY": "",
        "BACKUP_SSH_PORT": "",
        "BACKUP_HOST": "",
        "BACKUP_HOMES": "no",
        "BACKUP_KEEP": "",
        "BACKUP_CHECK_DAY": "",
        "USER_UNIT_PREFIX": "jupyter-singleuser@",
        "METRICS_TOKEN": "metrics.env",
        "NGINX_STATUS_URL": "",
    }
    postgresql = Settings.from_data({**EDGY, "jh_db_url": "postgresql:///hub_1", "jh_upgrade_backups_kept": 100})
    values = layout_env_as_read_by_bash(postgresql)
    assert values["DATABASE"] == "postgresql:hub_1" and values["BACKUPS_KEPT"] == "100"


def test_layout_env_of_an_edge_nightly_backup_reads_back_whole():
    nightly = {
        "repository": "sftp:back_up-1@backup-2.example.org:/srv/re.stic_1/hub-a",
        "sftp_host_key": HOST_KEY,
        "sftp_port": 2222,
        "keep_weekly": 0,
    }
    settings = Settings.from_data({**EDGY, "jh_nightly_backup": nightly, "jh_backup_home_dirs": True})
    values = layout_env_as_read_by_bash(settings, "hub-1.example.org")
    assert values["BACKUP_REPOSITORY"] == nightly["repository"]
    assert (values["BACKUP_SSH_PORT"], values["BACKUP_HOST"], values["BACKUP_HOMES"]) == (
        "2222",
        "hub-1.example.org",
        "yes",
    )
    assert (values["BACKUP_KEEP"], values["BACKUP_CHECK_DAY"]) == ("7 0 12", "Sun")


def test_the_hub_s_config_is_static_and_its_data_holds_the_values_as_given():
    """No setting becomes code: the config file is the same on every host, and the settings reach
    the hub as JSON values (hub.json), read back exactly."""
    settings = Settings.from_data(EDGY)
    data = json.loads(hub_data.hub_json(settings, NOBLE, 1000, {}))
    assert data["urls"]["bind_url"] == "http://127.0.0.1:8000/a.b-c~_/"
    assert data["login"]["options"]["allowed_groups"] == ["class-2026_a"]
    assert data["servers"]["helper"] == "/srv/hub-1.x_y/libexec/user-server"
    tree = ast.parse(hub_package.HUB_CONFIG.read_text())
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert calls == {"apply", "get_config"}


def test_a_kernel_spec_holds_the_display_name_as_given():
    settings = Settings.from_data(EDGY)
    [kernel] = settings.kernels
    spec = json.loads(kernels.kernel_spec(settings, kernel))
    assert spec["display_name"] == EDGY["jh_kernels"][0]["display_name"]
    assert spec["argv"][0] == "/srv/hub-1.x_y/kernels/py.3_x-1/bin/python"


def test_the_notifier_runs_exactly_the_given_command():
    settings = Settings.from_data(EDGY)
    unit = render("jupyterhub-notify-failure@.service.j2", settings, **hub.UNIT_CONTEXT)
    [line] = [line for line in unit.splitlines() if line.startswith("ExecStart=/usr/local")]
    assert line.removeprefix("ExecStart=").split(" ") == [
        "/usr/local/bin/page-admin",
        "--to=ops@example.org",
        "+1,2",
        "a:b",
        "%i",
    ]


@pytest.mark.skipif(not shutil.which("visudo") and not os.path.exists("/usr/sbin/visudo"), reason="no visudo")
def test_the_sudoers_rule_with_edge_names_passes_visudo(tmp_path):
    rule = tmp_path / "rule"
    rule.write_text(hub.sudoers_rule(Settings.from_data(EDGY)))
    visudo = shutil.which("visudo") or "/usr/sbin/visudo"
    result = subprocess.run([visudo, "-c", "-f", str(rule)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hub_d-1 ALL=(root) NOPASSWD: JUPYTERHUB_USER_SERVERS" in rule.read_text()
