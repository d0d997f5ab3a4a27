"""Metrics and alerts (jh_monitoring): the distribution's Prometheus, Alertmanager and node exporter on
the hub server, each on loopback; the hub's /hub/metrics read with a token of the scope read:metrics
alone; what Prometheus cannot read itself (users' servers' cgroups, the hub's units and health, the
certificate, the last nightly backup) written for the node exporter every 30 s by
files/bin/jupyterhub-metrics; alert rules, and Alertmanager sending them to a webhook or by e-mail.

Each daemon's /etc/default file is written before its package is installed, so not even the
package's first start listens beyond loopback; and before that, a firewall rule leaves their ports to
root and their own account (on loopback every local account could reach them: silence or forge
alerts, read the webhook's URL, read every person's figures). A config lands only once promtool or
amtool accepts it.
"""

from __future__ import annotations

import hashlib
from io import StringIO
from urllib.parse import urlsplit

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError
from pyinfra.operations import files, server, systemd

from tasks import alert_notify, hub, hub_data, layout, node_monitoring, web
from tasks.cluster_plan import NO_CLUSTER, ClusterPlan
from tasks.ops import directory, packages, render, root_file, root_template, script, service
from tasks.platform import Platform
from tasks.settings import Settings
from tasks.snapshot import Managed, entry, is_state, unit_state

PORTS = {
    "prometheus": layout.PROMETHEUS_PORT,
    "alertmanager": layout.ALERTMANAGER_PORT,
    "node_exporter": layout.NODE_EXPORTER_PORT,
    "notify": layout.NOTIFY_ALERTS_PORT,
    "proxy": layout.PROXY_METRICS_PORT,
}
TIMER_UNITS = (layout.METRICS_SERVICE, layout.METRICS_TIMER)
GROUPS_FILE = "groups.prom"
# Releases whose Prometheus is older than 2.26 (no `authorization.credentials_file`).
OLD_PROMETHEUS = {("Ubuntu", "16.04"), ("Ubuntu", "18.04"), ("Ubuntu", "20.04"), ("Debian", "11")}
# config file -> (its kind for files/bin/install-monitoring-config, template, daemon, mode, group)
CONFIGS = {
    layout.ALERT_RULES: ("rules", "jupyterhub-alerts.yml.j2", "prometheus.service", "644", "root"),
    layout.PROMETHEUS_CONFIG: ("prometheus", "prometheus.yml.j2", "prometheus.service", "644", "root"),
    # A webhook's URL may hold its secret: Alertmanager's account reads it, nobody else.
    layout.ALERTMANAGER_CONFIG: (
        "alertmanager",
        "alertmanager.yml.j2",
        "prometheus-alertmanager.service",
        "640",
        "prometheus",
    ),
}


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    if settings.monitoring is None:
        return Managed()
    return Managed(
        hashed=(layout.PROMETHEUS_DIR, layout.DEFAULTS_DIR, layout.TEXTFILE_DIR), listed=(layout.TEXTFILE_DIR.parent,)
    )


def check(settings: Settings, platform: Platform) -> None:
    if settings.monitoring and (platform.distribution, platform.release) in OLD_PROMETHEUS:
        raise PyinfraError(
            f"host {host.name}: jh_monitoring needs Ubuntu 22.04, Debian 12 or newer (an older Prometheus cannot "
            "read the hub's metrics token from a file); no host was changed"
        )


def hub_metrics(settings: Settings) -> dict:
    """Where Prometheus reads the hub's own metrics: its API's address, /hub/metrics."""
    api = urlsplit(settings.hub_api)
    return {"scheme": api.scheme, "target": api.netloc, "path": api.path.removesuffix("api") + "metrics"}


def context(settings: Settings) -> dict:
    certificate = web.certificate_paths(settings)[0] if settings.domain else None
    return {
        "monitoring": settings.monitoring,
        "ports": PORTS,
        "host_name": host.name,
        "textfile_dir": layout.TEXTFILE_DIR,
        "rules": layout.ALERT_RULES,
        "token_file": layout.METRICS_TOKEN_COPY,
        "hub_metrics": hub_metrics(settings),
        "certificate": certificate,
        "external_urls": external_urls(settings),
        "notify_url": alert_notify.url(settings),
    }


def group_metrics(settings: Settings) -> str:
    """jh_groups as metrics (the node exporter reads the file): jupyterhub_user_group{user,group} 1 for
    each member, which the recording rules join to each user's figures (jupyterhub_group_*)."""
    lines = ["# HELP jupyterhub_user_group Each person's groups (jh_groups).", "# TYPE jupyterhub_user_group gauge"]
    for group, members in sorted(settings.groups.items()):
        lines += [f'jupyterhub_user_group{{user="{member}",group="{group}"}} 1' for member in sorted(members)]
    return "\n".join(lines) + "\n"


def external_urls(settings: Settings) -> dict | None:
    """Where admins open Prometheus and Alertmanager through nginx (with jh_domain): their pages' and
    alerts' links point there; each still serves at / on loopback."""
    gate = hub_data.monitoring_gate(settings)
    if gate is None:
        return None
    base = f"https://{settings.domain}{gate['prefix']}"
    return {"prometheus": f"{base}prometheus/", "alertmanager": f"{base}alertmanager/"}


def apply(settings: Settings, plan: ClusterPlan = NO_CLUSTER) -> None:
    if settings.monitoring is None:
        remove()
        return
    # In a cluster, its nodes and Slurm too (tasks/node_monitoring.py).
    values = {**context(settings), **node_monitoring.hub_context(settings, plan)}
    defaults = {
        package: root_template(
            f"{package}'s settings (loopback alone)",
            f"{package}.default.j2",
            layout.DEFAULTS_DIR / package,
            settings,
            **values,
        )
        for package in layout.MONITORING_PACKAGES
    }
    firewall = ports_firewall(settings, plan)
    installed = packages(
        "Prometheus, Alertmanager and the node exporter",
        [*layout.MONITORING_PACKAGES, "curl", "openssl", "iptables"],
    )
    # Now their account exists: it may reach their ports too.
    service(
        "Monitoring's ports for root and prometheus alone",
        layout.MONITORING_PORTS_SERVICE,
        reloaded=firewall or installed.will_change,
    )
    directory(f"The hub's metrics {layout.TEXTFILE_DIR}", layout.TEXTFILE_DIR, "755", "root", "root")
    root_file(
        f"People's groups for the metrics {layout.TEXTFILE_DIR / GROUPS_FILE}",
        StringIO(group_metrics(settings)),
        layout.TEXTFILE_DIR / GROUPS_FILE,
    )
    if not entry(layout.METRICS_TOKEN_COPY) or layout.METRICS_TOKEN in hub.missing_secrets(settings):
        server.shell(
            name=f"The hub's metrics token for Prometheus {layout.METRICS_TOKEN_COPY}",
            commands=[script(settings.layout, "metrics-token", layout.METRICS_TOKEN_COPY, "prometheus")],
        )
    for path, (kind, template, unit, mode, group) in CONFIGS.items():
        text = render(template, settings, **values)
        if is_state(path, "f", mode, "root", group, _digest(text)):
            continue
        staged = f"{path}.new"
        root_file(f"Stage {path}", StringIO(text), staged, mode=mode, group=group)
        server.shell(
            name=f"Check {path}, then put it in place and reload",
            commands=[script(settings.layout, "install-monitoring-config", kind, staged, path, unit)],
        )
    alert_notify.apply(settings)
    for package, unit in layout.MONITORING_PACKAGES.items():
        service(f"{unit} running and enabled", unit, restarted=defaults[package].will_change)
    units = [
        root_template(f"systemd unit {unit}", f"{unit}.j2", layout.UNIT_DIR / unit, settings, **values)
        for unit in TIMER_UNITS
    ]
    if any(op.will_change for op in units):
        systemd.daemon_reload(name="Reload systemd units")
    service("The hub's metrics timer", layout.METRICS_TIMER, restarted=units[1].will_change)
    node_monitoring.hub_apply(settings)


def ports_firewall(settings: Settings, plan: ClusterPlan = NO_CLUSTER) -> bool:
    """The firewall unit, started before any daemon listens; returns whether it changes."""
    unit = root_template(
        f"systemd unit {layout.MONITORING_PORTS_SERVICE}",
        f"{layout.MONITORING_PORTS_SERVICE}.j2",
        layout.UNIT_DIR / layout.MONITORING_PORTS_SERVICE,
        settings,
        ports=",".join(str(port) for port in PORTS.values()),
        web_ports=f"{layout.PROMETHEUS_PORT},{layout.ALERTMANAGER_PORT}" if external_urls(settings) else "-",
        **node_monitoring.hub_context(settings, plan),
    )
    if unit.will_change:
        systemd.daemon_reload(name="Reload systemd units")
    if unit.will_change or unit_state(layout.MONITORING_PORTS_SERVICE)[0] != "active":
        # iptables itself, on a host without it yet.
        packages("iptables (monitoring's ports)", ["iptables"])
        # A reload replaces the rules in one go: a restart would leave the ports open in between.
        service("Monitoring's ports for root alone", layout.MONITORING_PORTS_SERVICE, reloaded=unit.will_change)
    return unit.will_change


def remove() -> None:
    """No monitoring: the daemons stopped and disabled, the deploy's timer gone (packages and data stay)."""
    alert_notify.remove()
    if not entry(layout.UNIT_DIR / layout.METRICS_TIMER):
        return
    for unit in (layout.METRICS_TIMER, *layout.MONITORING_PACKAGES.values(), layout.MONITORING_PORTS_SERVICE):
        systemd.service(name=f"No {unit}", service=unit, running=False, enabled=False)
    for unit in (*TIMER_UNITS, layout.MONITORING_PORTS_SERVICE):
        files.file(name=f"No unit {unit}", path=str(layout.UNIT_DIR / unit), present=False)
    systemd.daemon_reload(name="Reload systemd units")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
