"""A Slurm cluster behind the hub (jh_cluster): the inventory's `nodes` run users' servers as jobs.

The hub runs slurmctld, each node slurmd; MUNGE authenticates them with one key (the hub's,
0400 munge:munge, copied to a node only when its key differs, through the SSH channel and a
directory only munge and root can enter). slurm.conf is one file, written from the inventory
and from each node's facts (CPU layout, memory), the same on every host; its change restarts
the daemons, which keeps running jobs. Hub users get the same uid and gid on every host: the
deploy picks them (from an existing account on any host, else the lowest id free everywhere).

Everything here is decided before any host changes: a node that cannot be reached, hosts of
different releases or architectures, a profile no node can hold, a partition naming an unknown
node, ids that differ between hosts — each stops the run, naming the setting or the host.
"""

from __future__ import annotations

import base64
import secrets
import sys
import threading
from io import BytesIO
from ipaddress import IPv4Address

import gevent.pool
from pyinfra import host, state
from pyinfra.api import FileUploadCommand, QuoteString, StringCommand, operation
from pyinfra.api.host import Host
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import server, systemd

from tasks import layout
from tasks.facts import Accounts, ClusterHost, GroupEntries, MungeKey, SlurmNodes
from tasks.ops import command, packages, private_transfer, root_template, service
from tasks.settings import DOMAIN, Settings, SettingsError, host_settings

HUBS, NODES = "hubs", "nodes"
# Releases whose Slurm (22.05 and newer) tracks and limits jobs with cgroups the same way.
RELEASES = {("Debian", "12"), ("Debian", "13"), ("Ubuntu", "24.04")}
PACKAGES = {HUBS: ["munge", "slurm-client", "slurmctld"], NODES: ["munge", "slurm-client", "slurmd"]}
# The memory Slurm leaves a node's system: 10 %, at least 1 GiB (as the hub's users' slice does).
MIN_RESERVE_MB = 1024
FIRST_ID = 2000
LAST_ID = 59999
# What the run decides once for the whole cluster. pyinfra prepares the hosts side by side
# (greenlets): one lock, so that one of them reads the facts and picks ids and the key.
_PLAN: dict[object, object] = {}
_PLANNING = threading.RLock()


def once(key: object, decide):
    """The value decided for key in this run, deciding it now if no host did yet."""
    with _PLANNING:
        if key not in _PLAN:
            _PLAN[key] = decide()
        return _PLAN[key]


def role(target: Host | None = None) -> str | None:
    groups = (target or host).groups
    return HUBS if HUBS in groups else NODES if NODES in groups else None


def members() -> tuple[Host, list[Host]]:
    """The cluster's hub and its nodes, from the inventory."""
    hubs = state.inventory.get_group(HUBS, default=[])
    return hubs[0], list(state.inventory.get_group(NODES, default=[]))


def facts(target: Host) -> dict:
    """What the cluster's checks need of a host (ClusterHost, its distribution, accounts and groups);
    every host's are read side by side, once."""

    def read_all() -> dict[str, dict]:
        hub, nodes = members()
        hosts = [hub, *nodes]

        def read(h: Host) -> dict:
            return {
                **h.get_fact(ClusterHost),
                "distribution": h.get_fact(LinuxDistribution),
                "accounts": h.get_fact(Accounts, shadow_of=[]),
                "groups": h.get_fact(GroupEntries),
            }

        values = gevent.pool.Group().map(read, hosts)
        return {h.name: value for h, value in zip(hosts, values, strict=True)}

    return once("facts", read_all)[target.name]


def slurm_memory(memory_mb: int) -> int:
    """The memory Slurm may give jobs on a node with this much."""
    return memory_mb - max(MIN_RESERVE_MB, memory_mb // 10)


def check(settings: Settings) -> None:
    """Stop the run, before any host changes, for anything that would make a broken cluster."""
    if not settings.cluster:
        if role() == NODES:
            raise SettingsError(f"host {host.name} is in `nodes`, which needs jh_cluster = True")
        return
    found = once("problems", problems)
    if found:
        lines = ["the cluster cannot be deployed as set (no host was changed):"]
        lines += [f"  {problem}" for problem in found]
        raise SettingsError("\n".join(lines))


def problems() -> list[str]:
    hubs = state.inventory.get_group(HUBS, default=[])
    nodes = state.inventory.get_group(NODES, default=[])
    if len(hubs) != 1:
        return [f"jh_cluster: one host in `hubs` runs the cluster's controller, not {len(hubs)}"]
    if not nodes:
        return ["jh_cluster: the inventory has no `nodes` (compute nodes) to run servers on"]
    if hubs[0] in nodes:
        return [f'{hubs[0].name}: in both `hubs` and `nodes`; the hub server runs its own servers (profile "hub")']
    everyone = [*hubs, *nodes]
    found = []
    unreachable = [m.name for m in everyone if not m.connected]
    if unreachable:
        return [f"{name}: cannot be reached over SSH; a cluster is deployed as a whole" for name in unreachable]
    hub_settings = host_settings(hubs[0].name)
    for member in everyone:
        settings = host_settings(member.name)
        if not settings.cluster:
            found.append(f"{member.name}: jh_cluster must be True on every host of the cluster")
    addresses = {m.name: host_settings(m.name).cluster_address for m in everyone}
    seen: dict[IPv4Address | None, str] = {}
    for name, address in addresses.items():
        if address in seen:
            found.append(f"{name}: jh_cluster_address {address} is also {seen[address]}'s")
        seen[address] = name
    platforms = {}
    for member in everyone:
        distribution = facts(member)["distribution"]
        release = (distribution["name"], distribution["release_meta"].get("VERSION_ID", ""))
        platforms[member.name] = (*release, facts(member)["arch"])
        if release not in RELEASES:
            allowed = ", ".join(f"{n} {v}" for n, v in sorted(RELEASES))
            found.append(f"{member.name}: {' '.join(release)} cannot be in a cluster (Slurm 22.05+: {allowed})")
    if len(set(platforms.values())) > 1:
        listed = ", ".join(f"{name}: {' '.join(p)}" for name, p in platforms.items())
        found.append(f"hosts of one release and architecture only (kernels and venvs must be the same): {listed}")
    names = {}
    for member in everyone:
        name = facts(member)["name"]
        if not DOMAIN.fullmatch(name) or "." in name:
            found.append(f"{member.name}: its host name {name!r} cannot name a Slurm node")
        elif name in names:
            found.append(f"{member.name}: its host name {name} is also {names[name]}'s (Slurm names nodes by it)")
        names[name] = member.name
    node_names = [n.name for n in nodes]
    for partition, listed in hub_settings.slurm_partitions.items():
        unknown = [name for name in listed if name not in node_names]
        if unknown:
            found.append(
                f"jh_slurm_partitions[{partition}]: {', '.join(unknown)} not in the inventory's nodes "
                f"({', '.join(node_names)})"
            )
        if not listed:
            found.append(f"jh_slurm_partitions[{partition}]: no nodes")
    for profile in hub_settings.spawn_profiles:
        if profile.where != "cluster":
            continue
        partition = profile.partition or hub_settings.partitions[0]
        hosts = [n for n in nodes if n.name in partition_nodes(hub_settings, partition)]
        if not any(
            facts(n)["cpus"] >= profile.cpus and slurm_memory(facts(n)["memory_mb"]) >= profile.memory_mb for n in hosts
        ):
            biggest = ", ".join(
                f"{n.name}: {facts(n)['cpus']} CPUs, {slurm_memory(facts(n)['memory_mb'])} MB for jobs" for n in hosts
            )
            found.append(
                f"jh_spawn_profiles: {profile.key} asks for {profile.cpus} CPUs and {profile.memory}, more than any "
                f"node of partition {partition} has ({biggest})"
            )
    found += id_problems(hub_settings, everyone)
    return found


def partition_nodes(settings: Settings, partition: str) -> list[str]:
    if settings.slurm_partitions:
        return settings.slurm_partitions.get(partition, [])
    return [n.name for n in state.inventory.get_group(NODES, default=[])]


def id_problems(settings: Settings, hosts: list[Host]) -> list[str]:
    """The uid and gid each hub user and the users group get on every host; problems where hosts differ."""
    accounts = {m.name: facts(m)["accounts"] for m in hosts}
    groups = {m.name: facts(m)["groups"] for m in hosts}
    taken = {a["uid"] for table in accounts.values() for a in table.values()}
    taken |= {gid for table in groups.values() for gid, _ in table.values()}
    found, ids = [], {}

    def pick(name: str, kind: str, existing: dict[str, int]) -> int | None:
        values = set(existing.values())
        if len(values) > 1:
            listed = ", ".join(f"{host_name}: {value}" for host_name, value in sorted(existing.items()))
            found.append(f"{kind} {name} has different ids on the cluster's hosts ({listed}); make them the same")
            return None
        if values:
            return values.pop()
        for candidate in range(FIRST_ID, LAST_ID):
            if candidate not in taken:
                taken.add(candidate)
                return candidate
        found.append(f"no free id for {kind} {name} between {FIRST_ID} and {LAST_ID} on every host")
        return None

    group_ids = {h: table[settings.users_group][0] for h, table in groups.items() if settings.users_group in table}
    ids[settings.users_group] = pick(settings.users_group, "group", group_ids)
    for user in settings.present_users:
        uids = {h: table[user.name]["uid"] for h, table in accounts.items() if user.name in table}
        gids = {h: table[user.name][0] for h, table in groups.items() if user.name in table}
        uid = pick(user.name, "user", uids)
        if uid is not None and not gids and uid in {g for table in groups.values() for g, _ in table.values()}:
            found.append(f"user {user.name}: the gid {uid} of its own group is another group's on some host")
        gid = pick(user.name, "group", gids) if gids else uid
        ids[user.name] = (uid, gid)
    _PLAN["ids"] = ids
    return found


def user_ids(name: str) -> tuple[int, int]:
    """The uid and gid of a hub user on every host of the cluster (after check)."""
    return _PLAN["ids"][name]


def group_id(name: str) -> int:
    return _PLAN["ids"][name]


def node_addresses(settings: Settings) -> dict[str, str]:
    """Slurm node name -> its address on the cluster's network (the proxy reaches servers there)."""
    _, nodes = members()
    return {facts(n)["name"]: str(host_settings(n.name).cluster_address) for n in nodes}


def peers(settings: Settings) -> list[str]:
    """The addresses this host lets in through its firewall: the hub its nodes', a node the hub's."""
    if not settings.cluster:
        return []
    hub, nodes = members()
    others = nodes if role() == HUBS else [hub]
    return [str(host_settings(other.name).cluster_address) for other in others]


def slurm_config(settings: Settings) -> dict:
    """What templates/slurm.conf.j2 gets: the controller, the nodes, the partitions."""
    hub, nodes = members()
    hub_settings = host_settings(hub.name)
    described = []
    for node in nodes:
        f = facts(node)
        described.append(
            {
                "name": f["name"],
                "address": str(host_settings(node.name).cluster_address),
                "cpus": f["cpus"],
                "sockets": f["sockets"],
                "cores_per_socket": f["cores_per_socket"],
                "threads_per_core": f["threads_per_core"],
                "memory_mb": slurm_memory(f["memory_mb"]),
            }
        )
    slurm_names = {node.name: facts(node)["name"] for node in nodes}
    partitions = {
        name: [slurm_names[n] for n in partition_nodes(hub_settings, name)] for name in hub_settings.partitions
    }
    current, kept = leaving()
    # A node that left the inventory while jobs run there stays, drained, in the partitions it was in.
    for name, members_now in current["partitions"].items():
        staying = [node for node in kept if node in members_now]
        if staying:
            partitions[name] = [*partitions.get(name, []), *staying]
    longest = max((p.minutes for p in hub_settings.spawn_profiles if p.where == "cluster"), default=60)
    return {
        "cluster_name": layout.SLURM_CLUSTER_NAME,
        "controller": facts(hub)["name"],
        "controller_address": str(hub_settings.cluster_address),
        "nodes": described,
        "kept_nodes": [current["nodes"][name] for name in kept],
        "partitions": partitions,
        "max_minutes": longest,
    }


def leaving() -> tuple[dict, list[str]]:
    """The hub's Slurm nodes now, and those that left the inventory but still run jobs (kept)."""
    hub, nodes = members()
    current = once("slurm", lambda: hub.get_fact(SlurmNodes))
    names = {facts(node)["name"] for node in nodes}
    return current, sorted(name for name in current["nodes"] if name not in names and name in current["busy"])


def drain_leaving_nodes() -> None:
    """Nodes gone from the inventory: dropped from slurm.conf when idle, else drained (no new jobs)."""
    current, kept = leaving()
    _, nodes = members()
    names = {facts(node)["name"] for node in nodes}
    for name in sorted(set(current["nodes"]) - names - set(kept)):
        print(f"--> {host.name}: Slurm node {name} left the inventory and runs no job: removed", file=sys.stderr)
    for name in kept:
        print(
            f"--> {host.name}: Slurm node {name} left the inventory but runs jobs: drained, kept until they end "
            "(re-run the deploy then)",
            file=sys.stderr,
        )
        if name not in current["drained"]:
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


def cluster_key() -> bytes | None:
    """The key every host must have: the hub's, or a new one if the hub has none yet."""
    hub, _ = members()
    # None: the hub has one, read from it only where a node's differs.
    return once("key", lambda: secrets.token_bytes(128) if facts(hub)["munge_key"] is None else None)


def munge_key() -> object | None:
    """This host's MUNGE key made the cluster's; returns the operation if one is planned."""
    hub, _ = members()
    new_key = cluster_key()
    if new_key is not None:
        return install_munge_key(name="MUNGE key shared by the cluster", key=new_key, **private_transfer())
    if role() == HUBS or facts(host)["munge_key"] == facts(hub)["munge_key"]:
        return None
    key = base64.b64decode(once("hub's key", lambda: hub.get_fact(MungeKey)))
    return install_munge_key(name="MUNGE key shared by the cluster (the hub's)", key=key, **private_transfer())


def shared_home(settings: Settings) -> None:
    """/home the same on every host (jh_shared_home): "mounted" is the site's own affair."""
    kind, own = settings.shared_home.kind, role()
    if kind == "hub-nfs" and own == HUBS:
        _, nodes = members()
        packages("NFS server for the users' homes", ["nfs-kernel-server"])
        addresses = [str(host_settings(n.name).cluster_address) for n in nodes]
        exports = root_template(
            "NFS export of /home to the nodes", "nfs-exports.j2", layout.NFS_EXPORTS, settings, addresses=addresses
        )
        service("NFS server running and enabled", layout.NFS_SERVER_SERVICE)
        server.shell(name="NFS exports reloaded", commands=["exportfs -ra"], _if=exports.did_change)
    elif kind == "site-nfs" or (kind == "hub-nfs" and own == NODES):
        hub, _ = members()
        source = (
            f"{settings.shared_home.server}:{settings.shared_home.export}"
            if kind == "site-nfs"
            else f"{host_settings(hub.name).cluster_address}:/home"
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


def apply(settings: Settings) -> None:
    if not settings.cluster:
        return
    own = role()
    packages("Slurm and MUNGE", PACKAGES[own])
    shared_home(settings)
    key = munge_key()
    context = slurm_config(settings)
    conf = root_template("Slurm configuration", "slurm.conf.j2", layout.SLURM_CONF, settings, **context)
    cgroups = root_template("Slurm cgroup configuration", "cgroup.conf.j2", layout.SLURM_CGROUP_CONF, settings)
    key_changed = key is not None and key.will_change
    changed = key_changed or conf.will_change or cgroups.will_change
    service("MUNGE running and enabled", layout.MUNGE_SERVICE, restarted=key_changed)
    # The controller's restart comes first (a node registers with the configuration the
    # controller has). Running jobs outlive both restarts: slurmstepd holds them.
    if own == HUBS:
        service("Slurm controller running and enabled", layout.SLURM_CONTROLLER_SERVICE, restarted=changed)
        drain_leaving_nodes()
    else:
        service("Slurm node daemon running and enabled", layout.SLURM_NODE_SERVICE, restarted=changed)
