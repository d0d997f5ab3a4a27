"""Monitoring in a Slurm cluster (jh_monitoring with jh_cluster): each node's node exporter read by the
hub server's Prometheus, and Slurm's own view of its nodes and jobs written on the hub.

On a node: the distribution's node exporter on the node's cluster address alone (its /etc/default file
written before the package is installed, so not even its first start listens elsewhere), and before
that a firewall rule (files/bin/node-exporter-firewall): from the network the hub server's address
alone, from the node itself root alone; the people who run jobs on the node read none of it.

On the hub: what Prometheus scrapes of the nodes (job "node", labels host: the node's inventory name,
node: its Slurm name, so that the host's rules hold for the nodes too), the hub's own connections to
the nodes' exporters left to root and prometheus (files/bin/monitoring-ports-firewall), and Slurm's
nodes, jobs and queue written every 30 s by files/bin/slurm-metrics beside the hub's own metrics.
"""

from __future__ import annotations

from pyinfra.operations import files, systemd

from tasks import layout
from tasks.cluster_plan import ClusterPlan
from tasks.ops import directory, packages, root_template, service
from tasks.settings import Settings
from tasks.snapshot import entry, unit_state

PACKAGE = "prometheus-node-exporter"
ACCESS_SERVICE = layout.NODE_EXPORTER_ACCESS_SERVICE
SLURM_METRICS = layout.TEXTFILE_DIR / "slurm.prom"


def scraped_nodes(plan: ClusterPlan) -> list[dict[str, str]]:
    """Each node of the cluster as Prometheus reads it: its inventory name, Slurm name and address."""
    slurm_names = {address: name for name, address in plan.node_addresses.items()}
    return [
        {"host": node, "node": slurm_names.get(plan.addresses[node], node), "address": plan.addresses[node]}
        for node in plan.nodes
    ]


def hub_context(settings: Settings, plan: ClusterPlan) -> dict:
    """What the hub's monitoring templates get of the cluster (nothing without one)."""
    nodes = scraped_nodes(plan) if settings.cluster else []
    return {
        "cluster_nodes": nodes,
        "slurm_metrics": bool(settings.cluster),
        "nodes": ",".join(node["address"] for node in nodes),
        "node_port": layout.NODE_EXPORTER_PORT,
    }


def hub_apply(settings: Settings) -> None:
    """On a hub that is no cluster's (any more): Slurm's last metrics go, or they would read as now."""
    if not settings.cluster and entry(SLURM_METRICS):
        files.file(name=f"No Slurm metrics {SLURM_METRICS} (no cluster)", path=str(SLURM_METRICS), present=False)


def apply(settings: Settings, plan: ClusterPlan) -> None:
    """On a cluster's node."""
    if settings.monitoring is None:
        remove()
        return
    address, port = str(settings.cluster_address), layout.NODE_EXPORTER_PORT
    unit = root_template(
        f"systemd unit {ACCESS_SERVICE}",
        f"{ACCESS_SERVICE}.j2",
        layout.UNIT_DIR / ACCESS_SERVICE,
        settings,
        port=port,
        hub=plan.addresses[plan.hub],
    )
    if unit.will_change:
        systemd.daemon_reload(name="Reload systemd units")
    if unit.will_change or unit_state(ACCESS_SERVICE)[0] != "active":
        packages("iptables (the node exporter's firewall)", ["iptables"])
        # A reload replaces the rules in one go: a restart would leave the port open in between.
        service("The node exporter for the hub server alone", ACCESS_SERVICE, reloaded=unit.will_change)
    defaults = root_template(
        f"{PACKAGE}'s settings (the cluster address alone)",
        "cluster-node-exporter.default.j2",
        layout.DEFAULTS_DIR / PACKAGE,
        settings,
        address=address,
        port=port,
        textfile_dir=layout.TEXTFILE_DIR,
    )
    directory(f"Metrics folder {layout.TEXTFILE_DIR} (root's)", layout.TEXTFILE_DIR, "755", "root", "root")
    packages("The node exporter", [PACKAGE])
    service(f"{PACKAGE} running and enabled", f"{PACKAGE}.service", restarted=defaults.will_change)


def remove() -> None:
    """No monitoring: the node exporter stopped and disabled, its firewall unit gone (the package stays)."""
    if not entry(layout.UNIT_DIR / ACCESS_SERVICE):
        return
    for unit in (f"{PACKAGE}.service", ACCESS_SERVICE):
        systemd.service(name=f"No {unit}", service=unit, running=False, enabled=False)
    files.file(name=f"No unit {ACCESS_SERVICE}", path=str(layout.UNIT_DIR / ACCESS_SERVICE), present=False)
    systemd.daemon_reload(name="Reload systemd units")
