"""Prometheus and Alertmanager on the site for the hub's admins (jh_monitoring with jh_domain): the
hub's gate service, nginx asking it before each request, the daemons' links the site's."""

import re
import shutil
import subprocess

import pytest
import yaml

from tasks import hub_data, monitoring, web
from tasks.ops import render
from tasks.settings import Settings

MONITORING = {"webhook_url": "https://chat.example.org/hooks/1"}
SITE = {"jh_domain": "hub.example.org", "jh_base_url": "/jupyter/", "jh_monitoring": MONITORING}
PREFIX = "/jupyter/services/monitoring/"


def site(data: dict) -> str:
    settings = Settings.from_data(data)
    return render(
        "nginx-site.conf.j2",
        settings,
        tls=True,
        tls13=True,
        webroot="/var/www/letsencrypt",
        certificate="/etc/ssl/hub.crt",
        certificate_key="/etc/ssl/hub.key",
        hub_upstream="http://127.0.0.1:8000",
        **web.monitoring_pages(settings),
    )


def location(text: str, path: str) -> str:
    match = re.search(rf"\n    location {re.escape(path)} {{\n(.*?)\n    }}\n", text, re.S)
    assert match, f"no location {path}"
    return match.group(1)


@pytest.mark.parametrize(
    "data", [{"jh_monitoring": MONITORING}, {"jh_domain": "hub.example.org"}], ids=["no domain", "no monitoring"]
)
def test_no_gate_without_a_site_and_monitoring(data):
    assert hub_data.monitoring_gate(Settings.from_data(data)) is None
    assert monitoring.external_urls(Settings.from_data(data)) is None


def test_the_hub_starts_the_gate_under_the_base_url():
    gate = hub_data.monitoring_gate(Settings.from_data(SITE))
    assert gate == {"name": "monitoring", "prefix": PREFIX, "socket": "/run/jupyterhub-monitoring-gate/gate.sock"}


@pytest.mark.parametrize(("daemon", "port"), [("prometheus", 9090), ("alertmanager", 9093)])
def test_nginx_asks_the_gate_before_each_request(daemon, port):
    text = site(SITE)
    block = location(text, f"{PREFIX}{daemon}/")
    assert f"auth_request {PREFIX}auth;" in block
    assert "error_page 401 = @monitoring_sign_in;" in block
    assert f"proxy_pass http://127.0.0.1:{port}/;" in block
    auth = location(text, f"= {PREFIX}auth")
    assert "internal;" in auth and "proxy_pass http://unix:/run/jupyterhub-monitoring-gate/gate.sock:;" in auth


def test_alertmanager_is_read_only_on_the_web():
    assert "limit_except GET {\n            deny all;" in location(site(SITE), f"{PREFIX}alertmanager/")


def test_no_monitoring_pages_without_monitoring():
    assert "monitoring" not in site({"jh_domain": "hub.example.org"})


def test_the_daemons_links_are_the_site_s():
    settings = Settings.from_data(SITE)
    values = {"monitoring": settings.monitoring, "ports": monitoring.PORTS}
    values["external_urls"] = monitoring.external_urls(settings)
    prometheus = render("prometheus.default.j2", settings, **values)
    alertmanager = render("prometheus-alertmanager.default.j2", settings, **values)
    base = "https://hub.example.org/jupyter/services/monitoring/"
    assert f"--web.external-url={base}prometheus/ --web.route-prefix=/" in prometheus
    assert f"--web.external-url={base}alertmanager/ --web.route-prefix=/" in alertmanager
    assert "--web.listen-address=127.0.0.1:9090 " in prometheus


def test_the_hub_unit_makes_the_gate_s_folder():
    from tasks import hub

    settings = Settings.from_data(SITE)
    unit = render("jupyterhub.service.j2", settings, **hub.UNIT_CONTEXT, proxy_command="x", proxy_digest="y")
    assert "RuntimeDirectory=jupyterhub-monitoring-gate\nRuntimeDirectoryMode=0755" in unit
    plain = render(
        "jupyterhub.service.j2", Settings.from_data({}), **hub.UNIT_CONTEXT, proxy_command="x", proxy_digest="y"
    )
    assert "RuntimeDirectory" not in plain


def test_groups_become_a_metric_the_rules_join_to_each_person_s_figures():
    settings = Settings.from_data(
        {"jh_monitoring": MONITORING, "jh_groups": {"ml-2026": ["bob", "alice"], "tutors": ["alice"], "empty": []}}
    )
    assert monitoring.group_metrics(settings).splitlines()[2:] == [
        'jupyterhub_user_group{user="alice",group="ml-2026"} 1',
        'jupyterhub_user_group{user="bob",group="ml-2026"} 1',
        'jupyterhub_user_group{user="alice",group="tutors"} 1',
    ]


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed here")
def test_each_group_s_figures_add_up_its_members(tmp_path):
    """alice is in two groups and counts in both; carol, in none, in neither."""
    settings = Settings.from_data({"jh_monitoring": MONITORING})
    rules = render("jupyterhub-alerts.yml.j2", settings, **{"ports": monitoring.PORTS})
    (tmp_path / "rules.yml").write_text(rules)
    node = 'job="node",host="hub",instance="127.0.0.1:9100"'

    def series(name: str, labels: str, values: str) -> dict:
        return {"series": f"{name}{{{node},{labels}}}", "values": values}

    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    series("jupyterhub_user_group", 'user="alice",group="ml"', "1x40"),
                    series("jupyterhub_user_group", 'user="bob",group="ml"', "1x40"),
                    series("jupyterhub_user_group", 'user="alice",group="tutors"', "1x40"),
                    series("jupyterhub_user_memory_bytes", 'user="alice"', "100x40"),
                    series("jupyterhub_user_memory_bytes", 'user="bob"', "50x40"),
                    series("jupyterhub_user_memory_bytes", 'user="carol"', "7x40"),
                ],
                "promql_expr_test": [
                    {
                        "expr": "jupyterhub_group_memory_bytes",
                        "eval_time": "5m",
                        "exp_samples": [
                            {"labels": 'jupyterhub_group_memory_bytes{group="ml"}', "value": 150},
                            {"labels": 'jupyterhub_group_memory_bytes{group="tutors"}', "value": 100},
                        ],
                    },
                    {
                        "expr": "jupyterhub_group_servers",
                        "eval_time": "5m",
                        "exp_samples": [
                            {"labels": 'jupyterhub_group_servers{group="ml"}', "value": 2},
                            {"labels": 'jupyterhub_group_servers{group="tutors"}', "value": 1},
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    result = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed here")
def test_three_failed_starts_fire_even_the_first_three_the_hub_counts(tmp_path):
    """The hub's failures' series starts at the first failure, at 1: three in a row fire (increase()
    alone saw two); a quarter hour later, with no new failure, the alert ends."""
    settings = Settings.from_data({"jh_monitoring": MONITORING})
    (tmp_path / "rules.yml").write_text(render("jupyterhub-alerts.yml.j2", settings, ports=monitoring.PORTS))
    name = 'jupyterhub_server_spawn_duration_seconds_count{job="jupyterhub",host="hub",status="error",reason=""}'
    pending = 'jupyterhub_server_spawn_duration_seconds_count{job="jupyterhub",host="hub",status="failure",reason="already-pending"}'
    summary = "Servers failed to start 3 times in 15 minutes"
    fired = [{"exp_labels": {"host": "hub", "severity": "warning"}, "exp_annotations": {"summary": summary}}]
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                # None for 5 minutes; then 1, 2, 3 a minute apart, and no more.
                # Second clicks while a start is pending are no failure.
                "input_series": [{"series": name, "values": "_x5 1 2 3x30"}, {"series": pending, "values": "5x40"}],
                "alert_rule_test": [
                    {"eval_time": "6m", "alertname": "SpawnsFailing", "exp_alerts": []},
                    {"eval_time": "7m", "alertname": "SpawnsFailing", "exp_alerts": fired},
                    {"eval_time": "30m", "alertname": "SpawnsFailing", "exp_alerts": []},
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    result = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("daemon", ["prometheus", "alertmanager"])
def test_the_daemons_get_nobody_s_sign_in(daemon):
    block = location(site(SITE), f"{PREFIX}{daemon}/")
    for line in ('proxy_set_header Cookie "";', 'proxy_set_header Authorization "";', "proxy_hide_header Set-Cookie;"):
        assert line in block


def test_alertmanager_s_status_with_the_webhook_s_url_is_refused():
    assert location(site(SITE), f"~ ^{PREFIX}alertmanager/api/v[12]/status").strip() == "return 403;"


def test_nginx_s_counts_are_for_this_host_alone_on_its_own_port():
    block = location(site(SITE), "= /jupyterhub-nginx-status")
    assert block.split() == ["stub_status;", "allow", "127.0.0.1;", "deny", "all;"]


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed here")
def test_a_full_disk_and_memory_pressure_fire_after_five_minutes(tmp_path):
    """What a container here cannot make for real (its file systems are the machine's; mounting needs
    privileges it has not; its memory is the machine's 24 GB): the rules on series as the node
    exporter writes them. A person's FUSE mount that reports itself full raises nothing."""
    settings = Settings.from_data({"jh_monitoring": MONITORING})
    (tmp_path / "rules.yml").write_text(render("jupyterhub-alerts.yml.j2", settings, ports=monitoring.PORTS))
    node = 'job="node",host="hub",instance="127.0.0.1:9100"'

    def disk(mountpoint: str, fstype: str, avail: str) -> list[dict]:
        labels = f'{node},mountpoint="{mountpoint}",fstype="{fstype}",device="d"'
        return [
            {"series": f"node_filesystem_size_bytes{{{labels}}}", "values": "100x20"},
            {"series": f"node_filesystem_avail_bytes{{{labels}}}", "values": avail},
        ]

    summary = "/srv on hub is over 90 % full"
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    *disk("/srv", "ext4", "50 5x19"),
                    *disk("/home/bob/full", "fuse.sshfs", "0x20"),
                    {"series": f"node_memory_MemTotal_bytes{{{node}}}", "values": "100x20"},
                    {"series": f"node_memory_MemAvailable_bytes{{{node}}}", "values": "50 5x19"},
                ],
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": "DiskAlmostFull", "exp_alerts": []},
                    {
                        "eval_time": "7m",
                        "alertname": "DiskAlmostFull",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "host": "hub",
                                    "severity": "warning",
                                    "mountpoint": "/srv",
                                    "fstype": "ext4",
                                    "device": "d",
                                    "job": "node",
                                    "instance": "127.0.0.1:9100",
                                },
                                "exp_annotations": {"summary": summary},
                            }
                        ],
                    },
                    {"eval_time": "4m", "alertname": "MemoryPressure", "exp_alerts": []},
                    {
                        "eval_time": "7m",
                        "alertname": "MemoryPressure",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "host": "hub",
                                    "severity": "warning",
                                    "job": "node",
                                    "instance": "127.0.0.1:9100",
                                },
                                "exp_annotations": {"summary": "hub has less than 10 % of its memory available"},
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    result = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
