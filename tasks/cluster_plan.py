"""What one run decides for the whole Slurm cluster (jh_cluster), before any host changes: its plan.

Every host's facts (ClusterHost, distribution, accounts, groups) are read side by side, once. From
them and the inventory come: the problems, each of which stops the run naming the setting or the
host (a node that cannot be reached, hosts of different releases or architectures, a profile no
node can hold, a partition naming an unknown node, ids that differ between hosts); the uid and gid
of each hub user (from an existing account on any host, else the lowest id free everywhere); the
MUNGE key decision (the hub's, or a new one if it has none; the hub's key is read only when a
node's differs); the Slurm nodes now on the hub (one that left the inventory is dropped when idle,
else drained and kept); node addresses, firewall peers and slurm.conf's context. All of it lands in
a ClusterPlan, frozen plain data that tasks/cluster.py and the other task modules apply.

One plan per run, shared by every host. pyinfra prepares the hosts side by side, running deploy.py
once per host, each in a greenlet of one process, with one pyinfra State for the run. The plan is
kept per State (a weak mapping: another State, in tests or a second API run, gets its own, and the
run's end frees it). The first host to ask makes it under a lock while the others wait on the lock,
then all get the very same object. This is safe with greenlets: they switch only where one waits
(on SSH, or on this lock), the plan is stored only once made whole, and it is frozen, so no host
can change what another reads; a host that fails to make it stores nothing and the run stops.
"""

from __future__ import annotations

import base64
import secrets
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import gevent.lock
import gevent.pool
from pyinfra import host, state
from pyinfra.api.host import Host
from pyinfra.api.state import State
from pyinfra.context import ctx_state
from pyinfra.facts.server import LinuxDistribution

from tasks import layout
from tasks.cluster_checks import (
    inventory_problems,
    partition_nodes,
    partition_problems,
    platform_problems,
    settings_problems,
    slurm_memory,
)
from tasks.cluster_facts import ClusterHost, MungeKey, SlurmState
from tasks.facts import Accounts, GroupEntries
from tasks.settings import Settings, SettingsError, host_settings

HUBS, NODES = "hubs", "nodes"
FIRST_ID = 2000
LAST_ID = 59999
NEW_KEY = "MUNGE key shared by the cluster"
HUB_KEY = "MUNGE key shared by the cluster (the hub's)"
EMPTY: Mapping = MappingProxyType({})


def empty(repr: bool = True):
    """A field that is an empty read-only mapping by default."""
    return field(default_factory=lambda: EMPTY, repr=repr)


@dataclass(frozen=True)
class ClusterPlan:
    """What the run decided for the whole cluster; hosts by their inventory names unless said.
    Without jh_cluster, an empty plan (NO_CLUSTER)."""

    problems: tuple[str, ...] = ()
    hub: str = ""
    nodes: tuple[str, ...] = ()
    # Each host's jh_cluster_address, and the addresses its firewall lets in.
    addresses: Mapping[str, str] = empty()
    peers: Mapping[str, tuple[str, ...]] = empty()
    # Slurm node name (the node's host name) -> its address (the proxy reaches servers there).
    node_addresses: Mapping[str, str] = empty()
    # Hub user -> (uid, gid), and the users group -> its gid: the same on every host.
    ids: Mapping[str, object] = empty()
    # The hosts whose MUNGE key must become the cluster's: (operation name, key); never printed.
    munge_keys: Mapping[str, tuple[str, bytes]] = empty(repr=False)
    # What templates/slurm.conf.j2 gets: the controller, the nodes, the partitions.
    slurm_conf: Mapping[str, object] = empty()
    # Slurm nodes that left the inventory: removed (idle), kept (running jobs), and of these
    # the ones not drained yet.
    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    to_drain: tuple[str, ...] = ()
    # The kept nodes' addresses (slurm.conf's NodeAddr): their servers still reach the hub's API.
    kept_addresses: Mapping[str, str] = empty()
    # Accounting: each hub user's limits (jobs, queued, cpus, memory_mb; None: none), and what
    # slurmdbd holds now (None: it did not answer, as before it is installed).
    associations: Mapping[str, Mapping[str, int | None]] = empty()
    current_associations: Mapping[str, Mapping[str, int | None]] | None = None
    # Off-boarded users who still have an account, by host: their jobs, processes and accounts go.
    leaving: Mapping[str, tuple[str, ...]] = empty()
    # The hub's /home is a file system of its own (its NFS export then needs no subtree check).
    hub_home_mounted: bool = False

    def user_ids(self, name: str) -> tuple[int, int]:
        """The uid and gid of a hub user on every host of the cluster."""
        return self.ids[name]

    def group_id(self, name: str) -> int:
        return self.ids[name]


NO_CLUSTER = ClusterPlan()
# One plan per run (pyinfra State), made by the first host that asks; see the docstring.
_PLANS: weakref.WeakKeyDictionary[State, ClusterPlan] = weakref.WeakKeyDictionary()
_PLANNING = gevent.lock.Semaphore()


def role(target: Host | None = None) -> str | None:
    groups = (target or host).groups
    return HUBS if HUBS in groups else NODES if NODES in groups else None


def plan_cluster(settings: Settings) -> ClusterPlan:
    """This run's cluster plan, the same object for every host (NO_CLUSTER without jh_cluster);
    stops the run, before any host changes, for anything that would make a broken cluster."""
    if not settings.cluster:
        if role() == NODES:
            raise SettingsError(f"host {host.name} is in `nodes`, which needs jh_cluster = True")
        return NO_CLUSTER
    plan = shared_plan()
    if plan.problems:
        lines = ["the cluster cannot be deployed as set (no host was changed):"]
        lines += [f"  {problem}" for problem in plan.problems]
        raise SettingsError("\n".join(lines))
    return plan


def shared_plan() -> ClusterPlan:
    """The plan of the run (pyinfra's State), made now if no host made it yet."""
    run = ctx_state.get()
    with _PLANNING:
        if run not in _PLANS:
            hubs = list(state.inventory.get_group(HUBS, default=[]))
            _PLANS[run] = make_plan(hubs, list(state.inventory.get_group(NODES, default=[])))
        return _PLANS[run]


def make_plan(hubs: list[Host], nodes: list[Host]) -> ClusterPlan:
    """Read the facts, check, decide. The hub's facts that only a sound cluster needs (its MUNGE
    key, where a node's differs; its Slurm nodes) are read only when nothing stops the run."""
    found = inventory_problems(hubs, nodes)
    if found:
        unreachable = [m.name for m in [*hubs, *nodes] if not m.connected]
        leaving = [u.name for u in host_settings(hubs[0].name).absent_users] if hubs and unreachable else []
        if leaving:
            found.append(
                f"off-boarding {', '.join(leaving)} must reach every host of the cluster, and "
                f"{', '.join(unreachable)} cannot be reached: their accounts and jobs would stay there"
            )
        return ClusterPlan(problems=tuple(found))
    hub, everyone = hubs[0], [*hubs, *nodes]
    facts = read_facts(everyone)
    hub_settings = host_settings(hub.name)
    found = settings_problems(everyone) + platform_problems(everyone, facts)
    found += partition_problems(hub_settings, nodes, facts)
    ids, id_found = pick_ids(hub_settings, {m.name: facts[m.name] for m in everyone})
    found += id_found
    if found:
        return ClusterPlan(problems=tuple(found))
    munge_keys = munge_decision(hub, nodes, facts)
    current = hub.get_fact(SlurmState, account=layout.SLURM_ACCOUNT)
    names = {facts[node.name]["name"] for node in nodes}
    kept = sorted(name for name in current["nodes"] if name not in names and name in current["busy"])
    addresses = {m.name: str(host_settings(m.name).cluster_address) for m in everyone}
    # Nodes kept while jobs run there: the hub still reaches their servers, and they its API.
    kept_addresses = {name: node_address(current["nodes"][name]) for name in kept}
    peers = {m.name: peers_of(m, hub, nodes) for m in everyone}
    peers[hub.name] = (*peers[hub.name], *(a for a in kept_addresses.values() if a not in peers[hub.name]))
    return ClusterPlan(
        hub=hub.name,
        nodes=tuple(node.name for node in nodes),
        addresses=frozen(addresses),
        peers=frozen(peers),
        node_addresses=frozen({**kept_addresses, **{facts[node.name]["name"]: addresses[node.name] for node in nodes}}),
        ids=frozen(ids),
        munge_keys=frozen(munge_keys),
        slurm_conf=frozen(slurm_config(hub_settings, hub, nodes, facts, current, kept)),
        removed=tuple(sorted(set(current["nodes"]) - names - set(kept))),
        kept=tuple(kept),
        to_drain=tuple(name for name in kept if name not in current["drained"]),
        kept_addresses=frozen(kept_addresses),
        associations=frozen(associations(hub_settings)),
        current_associations=None if current["associations"] is None else frozen(current["associations"]),
        leaving=frozen(
            {
                m.name: tuple(u.name for u in hub_settings.absent_users if u.name in facts[m.name]["accounts"])
                for m in everyone
            }
        ),
        hub_home_mounted=facts[hub.name]["home_mounted"],
    )


def associations(settings: Settings) -> dict[str, dict[str, int | None]]:
    """Each hub user's limits in Slurm's accounting: jh_slurm_user_limits, each raised to the most
    generous of the user's groups (jh_slurm_group_limits) that set it."""
    base = settings.slurm_user_limits
    wanted = {}
    for user in settings.present_users:
        groups = [
            limits
            for group, limits in sorted(settings.slurm_group_limits.items())
            if user.name in settings.groups.get(group, [])
        ]
        limits = {}
        for kind in ("jobs", "queued", "cpus", "memory_mb"):
            values = [getattr(g, kind) for g in groups if getattr(g, kind) is not None]
            limits[kind] = max(values) if values else getattr(base, kind)
        wanted[user.name] = limits
    return wanted


def frozen(value):
    """value with its dicts read-only and its lists tuples, all the way down."""
    if isinstance(value, dict):
        return MappingProxyType({key: frozen(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(frozen(item) for item in value)
    return value


def read_facts(hosts: list[Host]) -> dict[str, dict]:
    """What the cluster's checks need of each host (ClusterHost, its distribution, accounts and
    groups), every host's read side by side."""

    def read(h: Host) -> dict:
        return {
            **h.get_fact(ClusterHost),
            "distribution": h.get_fact(LinuxDistribution),
            "accounts": h.get_fact(Accounts, shadow_of=[]),
            "groups": h.get_fact(GroupEntries),
        }

    values = gevent.pool.Group().map(read, hosts)
    return {h.name: value for h, value in zip(hosts, values, strict=True)}


def pick_ids(settings: Settings, facts: dict[str, dict]) -> tuple[dict[str, object], list[str]]:
    """The uid and gid each hub user and the users group get on every host; problems where hosts differ."""
    accounts = {name: f["accounts"] for name, f in facts.items()}
    groups = {name: f["groups"] for name, f in facts.items()}
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
    return ids, found


def munge_decision(hub: Host, nodes: list[Host], facts: dict[str, dict]) -> dict[str, tuple[str, bytes]]:
    """The hosts whose MUNGE key must change: every host to a new key if the hub has none, else
    each node whose key differs to the hub's (read from the hub then, into this process alone)."""
    digests = {m.name: facts[m.name]["munge_key"] for m in [hub, *nodes]}
    if digests[hub.name] is None:
        new_key = secrets.token_bytes(128)
        return {name: (NEW_KEY, new_key) for name in digests}
    differ = [node.name for node in nodes if digests[node.name] != digests[hub.name]]
    if not differ:
        return {}
    hub_key = base64.b64decode(hub.get_fact(MungeKey))
    return {name: (HUB_KEY, hub_key) for name in differ}


def node_address(line: str) -> str:
    """NodeAddr of a NodeName line of slurm.conf (its NodeName where it has none)."""
    fields = dict(field.partition("=")[::2] for field in line.split())
    return fields.get("NodeAddr") or fields.get("NodeName", "")


def peers_of(target: Host, hub: Host, nodes: list[Host]) -> tuple[str, ...]:
    """The addresses a host lets in through its firewall: the hub its nodes', a node the hub's."""
    others = nodes if role(target) == HUBS else [hub]
    return tuple(str(host_settings(other.name).cluster_address) for other in others)


def inventory_peers(settings: Settings) -> tuple[str, ...]:
    """This host's peers from the inventory and settings alone, for a run that makes no plan
    (tasks.web.front)."""
    hubs = state.inventory.get_group(HUBS, default=[])
    if not settings.cluster or not hubs:
        return ()
    return peers_of(host, hubs[0], list(state.inventory.get_group(NODES, default=[])))


def slurm_config(
    hub_settings: Settings, hub: Host, nodes: list[Host], facts: dict[str, dict], current: dict, kept: list[str]
) -> dict:
    """What templates/slurm.conf.j2 gets: the controller, the nodes, the partitions."""
    described = []
    for node in nodes:
        f = facts[node.name]
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
    slurm_names = {node.name: facts[node.name]["name"] for node in nodes}
    partitions = {
        name: [slurm_names[n] for n in partition_nodes(hub_settings, name, nodes)] for name in hub_settings.partitions
    }
    # A node that left the inventory while jobs run there stays, drained, in the partitions it was in.
    for name, members_now in current["partitions"].items():
        staying = [node for node in kept if node in members_now]
        if staying:
            partitions[name] = [*partitions.get(name, []), *staying]
    longest = max((p.minutes for p in hub_settings.spawn_profiles if p.where == "cluster"), default=60)
    return {
        "cluster_name": layout.SLURM_CLUSTER_NAME,
        "controller": facts[hub.name]["name"],
        "controller_address": str(hub_settings.cluster_address),
        "nodes": described,
        "kept_nodes": [current["nodes"][name] for name in kept],
        "partitions": partitions,
        "max_minutes": longest,
    }
