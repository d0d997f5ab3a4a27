"""What stops a cluster run before any host changes (tasks/cluster_plan.py asks): each problem
names the setting or the host. From the inventory first (one hub, some nodes, all reachable), then
from every host's settings and facts (releases, architectures, host names, partitions, profiles).
"""

from __future__ import annotations

from ipaddress import IPv4Address

from pyinfra.api.host import Host

from tasks.settings import DOMAIN, Settings, host_settings

# Releases whose Slurm (22.05 and newer) tracks and limits jobs with cgroups the same way.
RELEASES = {("Debian", "12"), ("Debian", "13"), ("Ubuntu", "24.04")}
# The memory Slurm leaves a node's system: 10 %, at least 1 GiB (as the hub's users' slice does).
MIN_RESERVE_MB = 1024


def slurm_memory(memory_mb: int) -> int:
    """The memory Slurm may give jobs on a node with this much."""
    return memory_mb - max(MIN_RESERVE_MB, memory_mb // 10)


def inventory_problems(hubs: list[Host], nodes: list[Host]) -> list[str]:
    """What stops the run before any host's facts are read."""
    if len(hubs) != 1:
        return [f"jh_cluster: one host in `hubs` runs the cluster's controller, not {len(hubs)}"]
    if not nodes:
        return ["jh_cluster: the inventory has no `nodes` (compute nodes) to run servers on"]
    if hubs[0] in nodes:
        return [f'{hubs[0].name}: in both `hubs` and `nodes`; the hub server runs its own servers (profile "hub")']
    unreachable = [m.name for m in [*hubs, *nodes] if not m.connected]
    return [f"{name}: cannot be reached over SSH; a cluster is deployed as a whole" for name in unreachable]


def settings_problems(everyone: list[Host]) -> list[str]:
    found = []
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
    # The hub's Prometheus reads each node's exporter: on every host, or on none.
    unmonitored = [m.name for m in everyone if host_settings(m.name).monitoring is None]
    if unmonitored and len(unmonitored) < len(everyone):
        found.append(f"{', '.join(unmonitored)}: jh_monitoring must be set on every host of the cluster, or on none")
    return found


def platform_problems(everyone: list[Host], facts: dict[str, dict]) -> list[str]:
    """Releases, architectures and host names (Slurm's node names)."""
    found, platforms = [], {}
    for member in everyone:
        distribution = facts[member.name]["distribution"]
        release = (distribution["name"], distribution["release_meta"].get("VERSION_ID", ""))
        platforms[member.name] = (*release, facts[member.name]["arch"])
        if release not in RELEASES:
            allowed = ", ".join(f"{n} {v}" for n, v in sorted(RELEASES))
            found.append(f"{member.name}: {' '.join(release)} cannot be in a cluster (Slurm 22.05+: {allowed})")
    if len(set(platforms.values())) > 1:
        listed = ", ".join(f"{name}: {' '.join(p)}" for name, p in platforms.items())
        found.append(f"hosts of one release and architecture only (kernels and venvs must be the same): {listed}")
    names = {}
    for member in everyone:
        name = facts[member.name]["name"]
        if not DOMAIN.fullmatch(name) or "." in name:
            found.append(f"{member.name}: its host name {name!r} cannot name a Slurm node")
        elif name in names:
            found.append(f"{member.name}: its host name {name} is also {names[name]}'s (Slurm names nodes by it)")
        names[name] = member.name
    return found


def partition_nodes(settings: Settings, partition: str, nodes: list[Host]) -> list[str]:
    if settings.slurm_partitions:
        return settings.slurm_partitions.get(partition, [])
    return [n.name for n in nodes]


def partition_problems(hub_settings: Settings, nodes: list[Host], facts: dict[str, dict]) -> list[str]:
    """Partitions naming unknown nodes or none, profiles no node of their partition can hold."""
    found = []
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
        sizes = [
            (n.name, facts[n.name]["cpus"], slurm_memory(facts[n.name]["memory_mb"]))
            for n in nodes
            if n.name in partition_nodes(hub_settings, partition, nodes)
        ]
        if not any(cpus >= profile.cpus and memory_mb >= profile.memory_mb for _, cpus, memory_mb in sizes):
            biggest = ", ".join(f"{name}: {cpus} CPUs, {memory_mb} MB for jobs" for name, cpus, memory_mb in sizes)
            found.append(
                f"jh_spawn_profiles: {profile.key} asks for {profile.cpus} CPUs and {profile.memory}, more than any "
                f"node of partition {partition} has ({biggest})"
            )
    return found
