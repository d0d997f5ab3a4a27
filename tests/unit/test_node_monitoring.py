"""Monitoring in a cluster (tasks/node_monitoring.py): the hub's Prometheus reads each node's node
exporter (checked by promtool where it is installed), the node-down and drained rules fire for the
right node with its labels (promtool's rule tests), Slurm's state as metrics (files/bin/slurm-metrics
with stand-in sinfo and squeue), and each node's exporter on its cluster address behind a firewall
that lets the hub server and root alone in (the rule run in a network namespace of its own)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess

import pytest
import yaml

from tasks import monitoring, node_monitoring
from tasks.cluster_plan import ClusterPlan
from tasks.ops import render
from tasks.settings import FILES, Settings

WEBHOOK = "https://chat.example.org/hooks/jupyterhub"
HUB, NODES = "hub.example.org", ("n1.example.org", "n2.example.org")
PLAN = ClusterPlan(
    hub=HUB,
    nodes=NODES,
    addresses={HUB: "10.0.0.1", NODES[0]: "10.0.0.11", NODES[1]: "10.0.0.12"},
    node_addresses={"n1": "10.0.0.11", "n2": "10.0.0.12"},
)
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(not PROMTOOL, reason="promtool is not installed here")


@pytest.fixture(autouse=True)
def inventory_name(monkeypatch):
    monkeypatch.setattr(monitoring, "host", type("Host", (), {"name": HUB}))


def settings(address: str = "10.0.0.1", cluster: bool = True) -> Settings:
    data = {"jh_monitoring": {"webhook_url": WEBHOOK}}
    if cluster:
        data |= {"jh_cluster": True, "jh_firewall": True, "jh_cluster_address": address}
    return Settings.from_data(data)


def hub_values(hub: Settings, **overrides) -> dict:
    return {**monitoring.context(hub), **node_monitoring.hub_context(hub, PLAN), **overrides}


def test_prometheus_reads_each_node_by_its_inventory_and_slurm_names():
    config = yaml.safe_load(render("prometheus.yml.j2", settings(), **hub_values(settings())))
    [node_job] = [job for job in config["scrape_configs"] if job["job_name"] == "node"]
    assert node_job["static_configs"] == [
        {"targets": ["127.0.0.1:9100"], "labels": {"host": HUB}},
        {"targets": ["10.0.0.11:9100"], "labels": {"host": "n1.example.org", "node": "n1"}},
        {"targets": ["10.0.0.12:9100"], "labels": {"host": "n2.example.org", "node": "n2"}},
    ]
    # A node's NFS /home is counted where it is served, once.
    [drop] = node_job["metric_relabel_configs"]
    assert drop["action"] == "drop" and drop["source_labels"] == ["__name__", "node", "fstype"]


def test_a_hub_without_a_cluster_reads_itself_alone_and_runs_no_slurm_metrics():
    hub = settings(cluster=False)
    values = hub_values(hub)
    config = yaml.safe_load(render("prometheus.yml.j2", hub, **values))
    [node_job] = [job for job in config["scrape_configs"] if job["job_name"] == "node"]
    assert node_job == {
        "job_name": "node",
        "static_configs": [{"targets": ["127.0.0.1:9100"], "labels": {"host": HUB}}],
    }
    unit = render("jupyterhub-metrics.service.j2", hub, **values)
    assert unit.endswith("\nExecStart=/opt/jupyter/libexec/jupyterhub-metrics /var/lib/jupyterhub-metrics\n"), unit
    unit = render(
        "jupyterhub-monitoring-ports.service.j2",
        hub,
        ports="9090,9093,9100",
        web_ports="-",
        **node_monitoring.hub_context(hub, PLAN),
    )
    assert "monitoring-ports-firewall start 9090,9093,9100 -\n" in unit


def test_a_cluster_s_hub_writes_slurm_s_state_and_keeps_its_own_connections_to_the_nodes_to_prometheus():
    hub = settings()
    values = hub_values(hub)
    unit = render("jupyterhub-metrics.service.j2", hub, **values)
    starts = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert starts == [
        "ExecStart=/opt/jupyter/libexec/jupyterhub-metrics /var/lib/jupyterhub-metrics",
        "ExecStart=/opt/jupyter/libexec/slurm-metrics /var/lib/jupyterhub-metrics",
    ]
    unit = render(
        "jupyterhub-monitoring-ports.service.j2",
        hub,
        ports="9090,9093,9100",
        web_ports="-",
        **node_monitoring.hub_context(hub, PLAN),
    )
    assert "monitoring-ports-firewall start 9090,9093,9100 - 10.0.0.11,10.0.0.12 9100\n" in unit
    assert "monitoring-ports-firewall stop 9090,9093,9100 - 10.0.0.11,10.0.0.12 9100\n" in unit


@needs_promtool
def test_promtool_accepts_the_config_with_nodes_and_the_rules(tmp_path):
    hub = settings()
    rules, token = tmp_path / "rules.yml", tmp_path / "token"
    rules.write_text(render("jupyterhub-alerts.yml.j2", hub, **hub_values(hub)))
    token.write_text("x\n")
    config = tmp_path / "prometheus.yml"
    config.write_text(render("prometheus.yml.j2", hub, **hub_values(hub, rules=rules, token_file=token)))
    checked = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rules files found" in checked.stdout + checked.stderr or "SUCCESS" in checked.stdout


HUB_SERIES = 'job="node",host="hub.example.org",instance="127.0.0.1:9100"'


def series(name: str, labels: str, values: str) -> dict:
    return {"series": f"{name}{{{labels}}}", "values": values}


def node_up(node: str, values: str) -> dict:
    return series("up", f'job="node",host="{node}.example.org",node="{node}",instance="{node}:9100"', values)


def alert(name: str, node: str, summary: str, **labels) -> dict:
    severity = "critical" if name == "NodeDown" else "warning"
    return {
        "exp_labels": {"severity": severity, "node": node, "host": f"{node}.example.org", **labels},
        "exp_annotations": {"summary": summary},
    }


@needs_promtool
def test_node_down_and_drained_fire_for_that_node_with_its_names(tmp_path):
    """n1's exporter stops answering; n2 is drained, then its slurmd stops answering; n3, which left
    the inventory (no target of its own), is drained by the deploy: no alert."""
    hub = settings()
    (tmp_path / "rules.yml").write_text(render("jupyterhub-alerts.yml.j2", hub, **hub_values(hub)))
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    series("up", HUB_SERIES, "1x40"),
                    series("up", 'job="alertmanager",host="hub.example.org",instance="127.0.0.1:9093"', "1x40"),
                    node_up("n1", "1x3 0x36"),
                    node_up("n2", "1x40"),
                    series("jupyterhub_slurm_up", HUB_SERIES, "1x40"),
                    series("jupyterhub_slurm_node_responding", f'{HUB_SERIES},node="n1"', "1x40"),
                    series("jupyterhub_slurm_node_responding", f'{HUB_SERIES},node="n2"', "1x20 0x20"),
                    series("jupyterhub_slurm_node_state", f'{HUB_SERIES},node="n1",state="idle",reason=""', "1x40"),
                    series(
                        "jupyterhub_slurm_node_state",
                        f'{HUB_SERIES},node="n2",state="drained",reason="disk check"',
                        "1x40",
                    ),
                    series(
                        "jupyterhub_slurm_node_state",
                        f'{HUB_SERIES},node="n3",state="draining",reason="left the inventory"',
                        "1x40",
                    ),
                ],
                "alert_rule_test": [
                    # n1 down for 45 s: not yet (1 min).
                    {"eval_time": "105s", "alertname": "NodeDown", "exp_alerts": []},
                    {
                        "eval_time": "4m",
                        "alertname": "NodeDown",
                        "exp_alerts": [
                            alert(
                                "NodeDown",
                                "n1",
                                "Cluster node n1 (n1.example.org) is down: its node exporter or its slurmd does "
                                "not answer",
                            )
                        ],
                    },
                    {
                        "eval_time": "4m",
                        "alertname": "NodeDrained",
                        "exp_alerts": [
                            alert(
                                "NodeDrained",
                                "n2",
                                "Cluster node n2 (n2.example.org) is drained: disk check",
                                state="drained",
                                reason="disk check",
                            )
                        ],
                    },
                    # n1 is NodeDown's, not MonitoringTargetDown's.
                    {"eval_time": "9m", "alertname": "MonitoringTargetDown", "exp_alerts": []},
                    # n2's slurmd lost (its exporter up): NodeDown for n2 too, by its inventory name.
                    {
                        "eval_time": "9m",
                        "alertname": "NodeDown",
                        "exp_alerts": [
                            alert(
                                "NodeDown",
                                node,
                                f"Cluster node {node} ({node}.example.org) is down: its node exporter or its slurmd "
                                "does not answer",
                            )
                            for node in ("n1", "n2")
                        ],
                    },
                    {"eval_time": "9m", "alertname": "SlurmDown", "exp_alerts": []},
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


SINFO = """#!/bin/sh
printf '%s\\n' 'n1|idle|none' 'n1|idle|none' 'n2|drained|disk "sdb" \\ gone' 'n3|down*|Not responding' 'n4|mixed-|none'
"""
SQUEUE = "#!/bin/sh\nprintf '%s\\n' RUNNING RUNNING PENDING COMPLETING\n"


def slurm_metrics(tmp_path, sinfo: str, squeue: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("sinfo", sinfo), ("squeue", squeue)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run([str(FILES / "bin" / "slurm-metrics"), str(tmp_path)], env=env, check=True)
    return (tmp_path / "slurm.prom").read_text()


def test_slurm_s_nodes_jobs_and_queue_as_metrics(tmp_path):
    text = slurm_metrics(tmp_path, SINFO, SQUEUE)
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [
        "jupyterhub_slurm_up 1",
        'jupyterhub_slurm_node_state{node="n1",state="idle",reason=""} 1',
        'jupyterhub_slurm_node_state{node="n2",state="drained",reason="disk \\"sdb\\" \\\\ gone"} 1',
        'jupyterhub_slurm_node_state{node="n3",state="down",reason="Not responding"} 1',
        'jupyterhub_slurm_node_state{node="n4",state="mixed",reason=""} 1',
        'jupyterhub_slurm_node_responding{node="n1"} 1',
        'jupyterhub_slurm_node_responding{node="n2"} 1',
        'jupyterhub_slurm_node_responding{node="n3"} 0',
        'jupyterhub_slurm_node_responding{node="n4"} 1',
        'jupyterhub_slurm_jobs{state="completing"} 1',
        'jupyterhub_slurm_jobs{state="pending"} 1',
        'jupyterhub_slurm_jobs{state="running"} 2',
        "jupyterhub_slurm_queue_length 1",
    ]
    if PROMTOOL:
        checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_controller_that_does_not_answer_is_said_so_without_a_node(tmp_path):
    text = slurm_metrics(tmp_path, "#!/bin/sh\nexit 1\n", "#!/bin/sh\nexit 1\n")
    assert "jupyterhub_slurm_up 0\n" in text
    assert "jupyterhub_slurm_node_state{" not in text and "jupyterhub_slurm_queue_length" not in text


def test_a_node_s_exporter_listens_on_its_cluster_address_for_the_hub_alone():
    node = settings("10.0.0.11")
    defaults = render(
        "cluster-node-exporter.default.j2",
        node,
        address="10.0.0.11",
        port=9100,
        textfile_dir="/var/lib/jupyterhub-metrics",
    )
    assert 'ARGS="--web.listen-address=10.0.0.11:9100 --collector.textfile.directory=/var/lib/jupyterhub-metrics"' in (
        defaults
    )
    unit = render("jupyterhub-node-exporter-access.service.j2", node, port=9100, hub="10.0.0.1")
    assert "ExecStart=/opt/jupyter/libexec/node-exporter-firewall start 9100 10.0.0.1\n" in unit
    assert "Before=network.target prometheus-node-exporter.service" in unit


def in_namespace(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "-n", "bash", "-euc", script], capture_output=True, text=True, check=False)


namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("iptables") or in_namespace("iptables -S").returncode != 0,
    reason="needs root, iptables and network namespaces",
)


@namespaces
def test_the_node_s_firewall_lets_the_hub_and_root_in_alone_and_a_second_start_changes_nothing():
    script = FILES / "bin" / "node-exporter-firewall"
    result = in_namespace(
        f"""
        {script} start 9100 10.0.0.1; first=$(iptables -S)
        {script} start 9100 10.0.0.1; [ "$first" = "$(iptables -S)" ] || {{ echo changed; exit 1; }}
        echo "$first"; echo @stopped; {script} stop 9100 10.0.0.1; iptables -S
        """
    )
    assert result.returncode == 0, result.stdout + result.stderr
    started, stopped = result.stdout.split("@stopped\n")
    for rule in (
        "-A INPUT -p tcp -m tcp --dport 9100 -j JUPYTERHUB-NODE-EXPORTER-IN",
        "-A OUTPUT -o lo -p tcp -m tcp --dport 9100 -j JUPYTERHUB-NODE-EXPORTER-OUT",
        "-A JUPYTERHUB-NODE-EXPORTER-IN -i lo -j RETURN",
        "-A JUPYTERHUB-NODE-EXPORTER-IN -s 10.0.0.1/32 -j RETURN",
        "-A JUPYTERHUB-NODE-EXPORTER-IN -p tcp -j REJECT --reject-with tcp-reset",
        "-A JUPYTERHUB-NODE-EXPORTER-OUT -m owner --uid-owner 0 -j RETURN",
        "-A JUPYTERHUB-NODE-EXPORTER-OUT -p tcp -j REJECT --reject-with tcp-reset",
    ):
        assert rule in started.splitlines(), started
    assert "JUPYTERHUB" not in stopped, stopped


@namespaces
def test_the_hub_s_connections_to_the_nodes_exporters_follow_the_cluster():
    script = FILES / "bin" / "monitoring-ports-firewall"
    result = in_namespace(
        f"""
        {script} start 9090,9093,9100 - 10.0.0.11,10.0.0.12 9100; {script} start 9090,9093,9100 - 10.0.0.11,10.0.0.12 9100
        iptables -S OUTPUT; echo @one-left
        {script} start 9090,9093,9100 - 10.0.0.12 9100; iptables -S OUTPUT; echo @stopped
        {script} stop 9090,9093,9100 - 10.0.0.12 9100; iptables -S
        """
    )
    assert result.returncode == 0, result.stdout + result.stderr
    both, rest = result.stdout.split("@one-left\n")
    one, stopped = rest.split("@stopped\n")
    jump = "-A OUTPUT -d {} -p tcp -m tcp --dport 9100 -j JUPYTERHUB-MONITORING"
    assert sorted(line for line in both.splitlines() if " -d " in line) == [
        jump.format("10.0.0.11/32"),
        jump.format("10.0.0.12/32"),
    ]
    assert [line for line in one.splitlines() if " -d " in line] == [jump.format("10.0.0.12/32")]
    assert "-A OUTPUT -o lo -p tcp -m multiport --dports 9090,9093,9100 -j JUPYTERHUB-MONITORING" in one
    assert "JUPYTERHUB" not in stopped, stopped


def test_monitoring_on_some_hosts_of_a_cluster_alone_is_refused(monkeypatch):
    from tasks import cluster_checks

    hosts = [type("Host", (), {"name": name})() for name in (HUB, *NODES)]
    data = {HUB: settings(), NODES[0]: settings("10.0.0.11"), NODES[1]: settings("10.0.0.12")}
    monkeypatch.setattr(cluster_checks, "host_settings", data.__getitem__)
    assert cluster_checks.settings_problems(hosts) == []
    data[NODES[1]] = Settings.from_data({"jh_cluster": True, "jh_firewall": True, "jh_cluster_address": "10.0.0.12"})
    assert cluster_checks.settings_problems(hosts) == [
        "n2.example.org: jh_monitoring must be set on every host of the cluster, or on none"
    ]


@namespaces
def test_nginx_reaches_prometheus_and_alertmanager_alone_and_a_new_list_of_ports_replaces_the_old():
    script = FILES / "bin" / "monitoring-ports-firewall"
    result = in_namespace(
        f"""
        {script} start 9090,9093,9100 9090,9093; {script} start 9090,9093,9100,9095 9090,9093
        iptables -S; echo @stopped; {script} stop 9090,9093,9100,9095 9090,9093; iptables -S
        """
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rules, stopped = result.stdout.split("@stopped\n")
    www_data = pwd.getpwnam("www-data").pw_uid
    chain = [line for line in rules.splitlines() if line.startswith("-A JUPYTERHUB-MONITORING")]
    assert chain[-2:] == [
        f"-A JUPYTERHUB-MONITORING -p tcp -m multiport --dports 9090,9093 -m owner --uid-owner {www_data} -j RETURN",
        "-A JUPYTERHUB-MONITORING -p tcp -j REJECT --reject-with tcp-reset",
    ]
    jumps = [line for line in rules.splitlines() if line.endswith("-j JUPYTERHUB-MONITORING")]
    assert jumps == ["-A OUTPUT -o lo -p tcp -m multiport --dports 9090,9093,9100,9095 -j JUPYTERHUB-MONITORING"]
    assert "JUPYTERHUB" not in stopped, stopped
