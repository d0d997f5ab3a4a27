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

from tasks import hub, layout, web
from tasks.ops import directory, packages, render, root_file, root_template, script, service
from tasks.platform import Platform
from tasks.settings import Settings
from tasks.snapshot import Managed, entry, is_state, unit_state

PORTS = {
    "prometheus": layout.PROMETHEUS_PORT,
    "alertmanager": layout.ALERTMANAGER_PORT,
    "node_exporter": layout.NODE_EXPORTER_PORT,
}
TIMER_UNITS = (layout.METRICS_SERVICE, layout.METRICS_TIMER)
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
    return Managed(hashed=(layout.PROMETHEUS_DIR, layout.DEFAULTS_DIR, layout.TEXTFILE_DIR))


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
    }


def apply(settings: Settings) -> None:
    if settings.monitoring is None:
        remove()
        return
    values = context(settings)
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
    firewall = ports_firewall(settings)
    installed = packages(
        "Prometheus, Alertmanager and the node exporter",
        [*layout.MONITORING_PACKAGES, "curl", "openssl", "iptables"],
    )
    # Now their account exists: it may reach their ports too.
    service(
        "Monitoring's ports for root and prometheus alone",
        layout.MONITORING_PORTS_SERVICE,
        restarted=firewall or installed.will_change,
    )
    directory(f"The hub's metrics {layout.TEXTFILE_DIR}", layout.TEXTFILE_DIR, "755", "root", "root")
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
    for package, unit in layout.MONITORING_PACKAGES.items():
        service(f"{unit} running and enabled", unit, restarted=defaults[package].will_change)
    units = [
        root_template(f"systemd unit {unit}", f"{unit}.j2", layout.UNIT_DIR / unit, settings, **values)
        for unit in TIMER_UNITS
    ]
    if any(op.will_change for op in units):
        systemd.daemon_reload(name="Reload systemd units")
    service("The hub's metrics timer", layout.METRICS_TIMER, restarted=units[1].will_change)


def ports_firewall(settings: Settings) -> bool:
    """The firewall unit, started before any daemon listens; returns whether it changes."""
    unit = root_template(
        f"systemd unit {layout.MONITORING_PORTS_SERVICE}",
        f"{layout.MONITORING_PORTS_SERVICE}.j2",
        layout.UNIT_DIR / layout.MONITORING_PORTS_SERVICE,
        settings,
        ports=",".join(str(port) for port in PORTS.values()),
    )
    if unit.will_change:
        systemd.daemon_reload(name="Reload systemd units")
    if unit.will_change or unit_state(layout.MONITORING_PORTS_SERVICE)[0] != "active":
        # iptables itself, on a host without it yet.
        packages("iptables (monitoring's ports)", ["iptables"])
        service("Monitoring's ports for root alone", layout.MONITORING_PORTS_SERVICE, restarted=unit.will_change)
    return unit.will_change


def remove() -> None:
    """No monitoring: the daemons stopped and disabled, the deploy's timer gone (packages and data stay)."""
    if not entry(layout.UNIT_DIR / layout.METRICS_TIMER):
        return
    for unit in (layout.METRICS_TIMER, *layout.MONITORING_PACKAGES.values(), layout.MONITORING_PORTS_SERVICE):
        systemd.service(name=f"No {unit}", service=unit, running=False, enabled=False)
    for unit in (*TIMER_UNITS, layout.MONITORING_PORTS_SERVICE):
        files.file(name=f"No unit {unit}", path=str(layout.UNIT_DIR / unit), present=False)
    systemd.daemon_reload(name="Reload systemd units")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
