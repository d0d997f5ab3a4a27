"""A Slurm cluster behind the hub (jh_cluster): the inventory's `nodes` run users' servers as jobs.

The hub runs slurmctld, each node slurmd; MUNGE authenticates them with one key (the hub's,
0400 munge:munge, copied to a node only when its key differs, through the SSH channel and a
directory only munge and root can enter). slurm.conf is one file, written from the inventory
and from each node's facts (CPU layout, memory), the same on every host; its change restarts
the daemons, which keeps running jobs. Hub users get the same uid and gid on every host.

Plan, then apply: everything is decided for the whole cluster before any host changes, once per
run (tasks/cluster_plan.py: what stops the run, the ids, the key, slurm.conf, the nodes leaving);
this module applies that plan to the current host and decides nothing.
"""

from __future__ import annotations

import sys
from io import BytesIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, QuoteString, StringCommand, operation
from pyinfra.operations import server, systemd

from tasks import cluster_people, layout
from tasks.cluster_plan import HUBS, NODES, ClusterPlan, role
from tasks.ops import (
    command,
    install_nginx_site,
    packages,
    private_transfer,
    render,
    root_template,
    script,
    service,
)
from tasks.settings import Settings
from tasks.snapshot import unit_state

PACKAGES = {HUBS: ["munge", "slurm-client", "slurmctld"], NODES: ["munge", "slurm-client", "slurmd"]}


def drain_leaving_nodes(plan: ClusterPlan) -> None:
    """Nodes gone from the inventory: dropped from slurm.conf when idle, else drained (no new jobs)."""
    for name in plan.removed:
        print(f"--> {host.name}: Slurm node {name} left the inventory and runs no job: removed", file=sys.stderr)
    for name in plan.kept:
        print(
            f"--> {host.name}: Slurm node {name} left the inventory but runs jobs: drained, kept until they end "
            "(re-run the deploy then)",
            file=sys.stderr,
        )
        if name in plan.to_drain:
            server.shell(
                name=f"Drain Slurm node {name} (left the inventory; its jobs run on)",
                commands=[
                    command("scontrol", "update", f"nodename={name}", "state=drain", "reason=left the inventory")
                ],
            )


@operation()
def install_munge_key(key: bytes):
    """The cluster's MUNGE key in place, munge's alone (0400): written in munge's 0700 directory
    (or staged in the SSH user's private one), never readable by others on the way."""
    staged = f"{layout.MUNGE_KEY}.deploy"
    temp_dir = (host.current_op_global_arguments or {}).get("_temp_dir")
    yield FileUploadCommand(
        BytesIO(key), staged, remote_temp_filename=host.get_temp_filename(staged, temp_directory=temp_dir)
    )
    quoted, final = QuoteString(staged), QuoteString(str(layout.MUNGE_KEY))
    yield StringCommand("chown", "munge:munge", quoted, "&&", "chmod", "0400", quoted, "&&", "mv", "-f", quoted, final)


def munge_key(plan: ClusterPlan) -> object | None:
    """This host's MUNGE key made the cluster's; returns the operation if one is planned."""
    if host.name not in plan.munge_keys:
        return None
    name, key = plan.munge_keys[host.name]
    return install_munge_key(name=name, key=key, **private_transfer())


def shared_home(settings: Settings, plan: ClusterPlan) -> None:
    """/home the same on every host (jh_shared_home): "mounted" is the site's own affair."""
    kind, own = settings.shared_home.kind, role()
    if kind == "hub-nfs" and own == HUBS:
        packages("NFS server for the users' homes", ["nfs-kernel-server"])
        addresses = [plan.addresses[node] for node in plan.nodes]
        exports = root_template(
            "NFS export of /home to the nodes",
            "nfs-exports.j2",
            layout.NFS_EXPORTS,
            settings,
            addresses=addresses,
            home_mounted=plan.hub_home_mounted,
        )
        service("NFS server running and enabled", layout.NFS_SERVER_SERVICE)
        server.shell(name="NFS exports reloaded", commands=["exportfs -ra"], _if=exports.did_change)
    elif kind == "site-nfs" or (kind == "hub-nfs" and own == NODES):
        source = (
            f"{settings.shared_home.server}:{settings.shared_home.export}"
            if kind == "site-nfs"
            else f"{plan.addresses[plan.hub]}:/home"
        )
        packages("NFS client for the users' homes", ["nfs-common"])
        unit = root_template(
            f"systemd unit {layout.HOME_MOUNT}",
            "home.mount.j2",
            layout.UNIT_DIR / layout.HOME_MOUNT,
            settings,
            source=source,
        )
        if unit.will_change:
            systemd.daemon_reload(name="Reload systemd units")
        service("Users' homes mounted", layout.HOME_MOUNT, restarted=unit.will_change)


def cluster_api(settings: Settings, plan: ClusterPlan) -> None:
    """The hub's API on the cluster's network for the nodes' servers: nginx passes the API alone
    (never the login page) from the nodes alone to the hub, which listens on loopback."""
    packages("nginx (the hub's API for the nodes)", ["nginx"])
    site = render(
        "nginx-cluster-api.conf.j2",
        settings,
        address=settings.cluster_address,
        port=layout.HUB_API_PORT,
        nodes=[*(plan.addresses[node] for node in plan.nodes), *plan.kept_addresses.values()],
    )
    install_nginx_site(
        settings, site, layout.NGINX_CLUSTER_API, layout.NGINX_CLUSTER_API_ENABLED, "the hub's API for the nodes"
    )
    service("nginx running and enabled", "nginx.service")


def apply(settings: Settings, plan: ClusterPlan) -> None:
    if not settings.cluster:
        return
    own = role()
    packages("Slurm and MUNGE", PACKAGES[own])
    shared_home(settings, plan)
    key = munge_key(plan)
    conf = root_template("Slurm configuration", "slurm.conf.j2", layout.SLURM_CONF, settings, **plan.slurm_conf)
    cgroups = root_template("Slurm cgroup configuration", "cgroup.conf.j2", layout.SLURM_CGROUP_CONF, settings)
    key_changed = key is not None and key.will_change
    changed = key_changed or conf.will_change or cgroups.will_change
    service("MUNGE running and enabled", layout.MUNGE_SERVICE, restarted=key_changed)
    # The controller's restart comes first (a node registers with the configuration the
    # controller has). Running jobs outlive both restarts: slurmstepd holds them.
    if own == HUBS:
        accounting_changed = cluster_people.accounting(settings)
        restart = changed or accounting_changed
        if restart or unit_state(layout.SLURM_CONTROLLER_SERVICE) != ("active", "enabled"):
            server.shell(
                name="Wait until Slurm's accounting answers (the controller needs it to start)",
                commands=[script(settings.layout, "wait-slurmdbd", 120)],
            )
        service("Slurm controller running and enabled", layout.SLURM_CONTROLLER_SERVICE, restarted=restart)
        cluster_people.associations(settings, plan)
        drain_leaving_nodes(plan)
        cluster_api(settings, plan)
    else:
        service("Slurm node daemon running and enabled", layout.SLURM_NODE_SERVICE, restarted=changed)
        cluster_people.node_access(settings)
        cluster_people.offboard_node(settings, plan)
