"""Alerts to jh_notify_command: Alertmanager's post, one run of the command per alert with one
argument it cannot be tricked by (files/bin/notify-alerts.py); Alertmanager told to post there."""

import json
import subprocess
import sys

import pytest
import yaml

from tasks import monitoring
from tasks.ops import SCRIPTS, render
from tasks.settings import Settings, SettingsError

NOTIFY = {"jh_notify_on_failure": True, "jh_notify_command": "/usr/local/bin/page-admin --team=hub"}


def post(body: bytes, tmp_path, method: str = "POST") -> tuple[str, list[list[str]]]:
    """What notify-alerts.py answers to this request, and the commands it ran (their argv)."""
    log = tmp_path / "runs.jsonl"
    command = tmp_path / "page-admin"
    command.write_text(
        f"#!{sys.executable}\nimport json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    command.chmod(0o755)
    request = f"{method} / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "notify-alerts.py"), str(command), "--team=hub"],
        input=request,
        capture_output=True,
        timeout=30,
    )
    runs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result.stdout.decode().split("\r\n")[0], runs


def alert(name: str, status: str, host: str, summary: str) -> dict:
    return {"status": status, "labels": {"alertname": name, "host": host}, "annotations": {"summary": summary}}


def test_each_alert_runs_the_command_once(tmp_path):
    body = {
        "status": "firing",
        "alerts": [
            alert("HubDown", "firing", "hub1", "The hub on hub1 is down"),
            alert("BackupTooOld", "resolved", "hub1", "old"),
        ],
    }
    answer, runs = post(json.dumps(body).encode(), tmp_path)
    assert answer == "HTTP/1.1 200 OK"
    assert runs == [
        ["--team=hub", "alert HubDown firing on hub1: The hub on hub1 is down"],
        ["--team=hub", "alert BackupTooOld resolved on hub1: old"],
    ]


def test_a_label_cannot_break_the_line_or_the_argument(tmp_path):
    body = {"alerts": [alert("X", "firing", "hub\n--evil $(id)", "a\r\nb" + "z" * 500)]}
    _, [[_, argument]] = post(json.dumps(body).encode(), tmp_path)
    assert "\n" not in argument and "\r" not in argument and len(argument) < 400
    assert argument.startswith("alert X firing on hub?--evil $(id): a??b")


@pytest.mark.parametrize(
    ("method", "body"), [("GET", b"{}"), ("POST", b"not json"), ("POST", b"[1]")], ids=["GET", "not JSON", "a list"]
)
def test_anything_but_alertmanager_s_post_runs_nothing(tmp_path, method, body):
    answer, runs = post(body, tmp_path, method)
    assert answer == "HTTP/1.1 400 Bad Request" and runs == []


def test_alertmanager_posts_to_the_command_s_socket_too(monkeypatch):
    monkeypatch.setattr(monitoring, "host", type("Host", (), {"name": "hub-1.example.org"}))
    settings = Settings.from_data({**NOTIFY, "jh_monitoring": {"webhook_url": "https://chat.example.org/h"}})
    config = yaml.safe_load(render("alertmanager.yml.j2", settings, **monitoring.context(settings)))
    urls = [hook["url"] for hook in config["receivers"][0]["webhook_configs"]]
    assert urls == ["https://chat.example.org/h", "http://127.0.0.1:9095/"]
    socket = render("jupyterhub-alert-notify.socket.j2", settings, port=9095)
    assert "ListenStream=127.0.0.1:9095\nAccept=yes" in socket
    unit = render("jupyterhub-alert-notify@.service.j2", settings)
    assert "python3 -I /opt/jupyter/libexec/notify-alerts.py /usr/local/bin/page-admin --team=hub\n" in unit


def test_the_command_alone_is_someone_alerts_reach():
    assert Settings.from_data({**NOTIFY, "jh_monitoring": {}}).monitoring is not None
    with pytest.raises(SettingsError, match="jh_monitoring: webhook_url, email_to or jh_notify_command"):
        Settings.from_data({"jh_monitoring": {}})
