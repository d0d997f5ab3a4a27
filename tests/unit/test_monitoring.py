"""Monitoring's settings refused when alerts would reach nobody or could inject, and its configs as
Prometheus and Alertmanager read them (YAML of the settings' values, whole)."""

import pytest
import yaml

from tasks import monitoring
from tasks.ops import render
from tasks.settings import Settings, SettingsError

WEBHOOK = "https://chat.example.org:8443/hooks/a_b-c~d?token=x1#frag"


def refusal(value: dict) -> str:
    with pytest.raises(SettingsError) as error:
        Settings.from_data({"jh_monitoring": value})
    return str(error.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({}, "alerts must reach a person"),
        ({"email_to": ["ops@example.org"]}, "email_to needs smarthost and email_from"),
        ({"webhook_url": "http://hooks.example.org/a\nb"}, "jh_monitoring[webhook_url]"),
        ({"webhook_url": 'http://hooks.example.org/"x'}, "jh_monitoring[webhook_url]"),
        (
            {"email_to": ["ops@example.org"], "email_from": "hub@example.org", "smarthost": "mail;id:25"},
            "must be HOST:PORT",
        ),
        ({"webhook_url": WEBHOOK, "retention_days": 0}, "retention_days"),
    ],
    ids=repr,
)
def test_monitoring_that_reaches_nobody_or_injects_is_refused(value, message):
    text = refusal(value)
    assert "jh_monitoring" in text and message in text, text


@pytest.fixture(autouse=True)
def inventory_name(monkeypatch):
    monkeypatch.setattr(monitoring, "host", type("Host", (), {"name": "hub-1.example.org"}))


def rendered(settings: Settings, template: str) -> dict:
    return yaml.safe_load(render(template, settings, **monitoring.context(settings)))


def test_alertmanager_sends_to_the_webhook_and_by_mail_as_given():
    settings = Settings.from_data(
        {
            "jh_monitoring": {
                "webhook_url": WEBHOOK,
                "email_to": ["a@example.org", "b_c@example.org"],
                "email_from": "hub@example.org",
                "smarthost": "mail.example.org:587",
                "smarthost_tls": False,
            }
        }
    )
    [receiver] = rendered(settings, "alertmanager.yml.j2")["receivers"]
    assert receiver["webhook_configs"] == [{"url": WEBHOOK, "send_resolved": True}]
    [email] = receiver["email_configs"]
    assert (email["to"], email["smarthost"], email["require_tls"]) == (
        "a@example.org, b_c@example.org",
        "mail.example.org:587",
        False,
    )


def test_prometheus_reads_the_hub_under_its_base_url_with_the_token_file():
    settings = Settings.from_data(
        {"jh_monitoring": {"webhook_url": WEBHOOK}, "jh_base_url": "/jupyter/", "jh_domain": "hub.example.org"}
    )
    config = rendered(settings, "prometheus.yml.j2")
    [hub] = [job for job in config["scrape_configs"] if job["job_name"] == "jupyterhub"]
    assert hub["metrics_path"] == "/jupyter/hub/metrics"
    assert hub["authorization"] == {"credentials_file": "/etc/prometheus/jupyterhub-metrics.token"}
    assert hub["static_configs"] == [{"targets": ["127.0.0.1:8081"], "labels": {"host": "hub-1.example.org"}}]
    assert all(job["static_configs"][0]["labels"]["host"] == "hub-1.example.org" for job in config["scrape_configs"])


def test_every_alert_has_a_runbook_line():
    settings = Settings.from_data({"jh_monitoring": {"webhook_url": WEBHOOK}})
    group, _recorded = rendered(settings, "jupyterhub-alerts.yml.j2")["groups"]
    runbook = (monitoring.layout.__file__.rsplit("/tasks/", 1)[0]) + "/docs/operations.md"
    with open(runbook) as docs:
        text = docs.read()
    for rule in group["rules"]:
        assert f"| `{rule['alert']}`" in text, rule["alert"]


def test_old_releases_are_refused_before_any_change():
    from pyinfra.api.exceptions import PyinfraError

    from tasks.platform import Platform

    settings = Settings.from_data({"jh_monitoring": {"webhook_url": WEBHOOK}})
    with pytest.raises(PyinfraError, match="hub-1.example.org: jh_monitoring needs Ubuntu 22.04, Debian 12 or newer"):
        monitoring.check(settings, Platform("Ubuntu", "20.04", "3.8", "3.8"))
