"""The cluster's plan (tasks/cluster_plan.py), made from fake hosts' facts: ids, the MUNGE key,
problems, the nodes leaving, and one plan per run shared by every host."""

from __future__ import annotations

import base64
import dataclasses
import types

import gevent
import pytest
from pyinfra.context import ctx_state
from pyinfra.facts.server import LinuxDistribution

from tasks import cluster_checks, cluster_plan
from tasks.cluster_facts import ClusterHost, MungeKey, SlurmState
from tasks.cluster_plan import HUB_KEY, NEW_KEY, NO_CLUSTER, ClusterPlan, make_plan, plan_cluster
from tasks.facts import Accounts, GroupEntries
from tasks.ops import render
from tasks.settings import Settings, SettingsError

HUB_KEY_BYTES = b"k" * 128
NO_SLURM = {"nodes": {}, "partitions": {}, "busy": set(), "drained": set(), "associations": None}


class FakeHost:
    """A cluster host with the facts the plan reads; counts each read."""

    def __init__(self, name, groups, address, cpus=2, memory_mb=4096, release="24.04", munge="ab12", connected=True):
        self.name, self.groups, self.connected = name, groups, connected
        self.address = address
        short = name.split(".")[0]
        self.facts = {
            ClusterHost: {
                "name": short,
                "arch": "x86_64",
                "memory_mb": memory_mb,
                "cpus": cpus,
                "sockets": 1,
                "cores_per_socket": cpus,
                "threads_per_core": 1,
                "munge_key": munge,
                "home_mounted": False,
            },
            LinuxDistribution: {"name": "Ubuntu", "release_meta": {"VERSION_ID": release}},
            Accounts: {"root": {"uid": 0}},
            GroupEntries: {"root": (0, [])},
            MungeKey: base64.b64encode(HUB_KEY_BYTES).decode(),
            SlurmState: NO_SLURM,
        }
        self.reads: list[str] = []

    def get_fact(self, fact, **kwargs):
        self.reads.append(fact.__name__)
        return self.facts[fact]


def make_cluster(monkeypatch, data=None, nodes=2, **hub):
    """A hub and its nodes, each host's settings from data (and its own address)."""
    members = [FakeHost("hub.example.org", ["hubs"], "10.0.0.1", **hub)]
    members += [FakeHost(f"node{i}.example.org", ["nodes"], f"10.0.0.1{i}") for i in range(1, nodes + 1)]
    base = {"jh_cluster": True, "jh_firewall": True, "jh_users": [{"name": "alice"}, {"name": "bob"}], **(data or {})}
    settings = {m.name: Settings.from_data({**base, "jh_cluster_address": m.address}) for m in members}
    for module in (cluster_plan, cluster_checks):
        monkeypatch.setattr(module, "host_settings", settings.__getitem__)
    return members[0], members[1:]


def test_ids_come_from_an_existing_account_else_the_lowest_free_on_every_host(monkeypatch):
    hub, (node1, node2) = make_cluster(monkeypatch)
    node1.facts[Accounts] = {"alice": {"uid": 2100}}
    node1.facts[GroupEntries] = {"alice": (2100, [])}
    node2.facts[GroupEntries] = {"staff": (2000, [])}
    plan = make_plan([hub], [node1, node2])
    assert plan.problems == ()
    assert plan.group_id("jupyterhub-users") == 2001
    assert plan.user_ids("alice") == (2100, 2100)
    assert plan.user_ids("bob") == (2002, 2002)


def test_ids_that_differ_between_hosts_stop_the_run_before_the_hubs_slurm_facts_are_read(monkeypatch):
    hub, (node1, node2) = make_cluster(monkeypatch)
    node1.facts[Accounts] = {"alice": {"uid": 2100}}
    node2.facts[Accounts] = {"alice": {"uid": 2200}}
    plan = make_plan([hub], [node1, node2])
    assert plan.problems == (
        "user alice has different ids on the cluster's hosts (node1.example.org: 2100, node2.example.org: 2200); "
        "make them the same",
    )
    assert plan.slurm_conf == {} and plan.munge_keys == {}
    # Each host's facts read once; nothing else once the run is refused.
    assert sorted(hub.reads) == ["Accounts", "ClusterHost", "GroupEntries", "LinuxDistribution"]
    assert sorted(node2.reads) == sorted(hub.reads)


def test_problems_are_listed_in_order_naming_the_host_or_the_setting(monkeypatch):
    data = {
        "jh_slurm_partitions": {"jupyter": ["node1.example.org", "gone.example.org"]},
        "jh_spawn_profiles": [{"key": "huge", "display": "Huge", "where": "cluster", "cpus": 64}],
        "jh_slurm_user_limits": {"cpus": 64},
    }
    hub, (node1, node2) = make_cluster(monkeypatch, data)
    node2.facts[LinuxDistribution] = {"name": "Debian", "release_meta": {"VERSION_ID": "11"}}
    node2.facts[ClusterHost] = {**node2.facts[ClusterHost], "name": "node1"}
    with pytest.raises(SettingsError) as error:
        _run(hub, [hub, node1, node2], lambda: plan_cluster(cluster_plan.host_settings(hub.name)), monkeypatch)
    assert str(error.value).splitlines() == [
        "the cluster cannot be deployed as set (no host was changed):",
        "  node2.example.org: Debian 11 cannot be in a cluster (Slurm 22.05+: Debian 12, Debian 13, Ubuntu 24.04)",
        "  hosts of one release and architecture only (kernels and venvs must be the same): "
        "hub.example.org: Ubuntu 24.04 x86_64, node1.example.org: Ubuntu 24.04 x86_64, "
        "node2.example.org: Debian 11 x86_64",
        "  node2.example.org: its host name node1 is also node1.example.org's (Slurm names nodes by it)",
        "  jh_slurm_partitions[jupyter]: gone.example.org not in the inventory's nodes "
        "(node1.example.org, node2.example.org)",
        "  jh_spawn_profiles: huge asks for 64 CPUs and 2G, more than any node of partition jupyter has "
        "(node1.example.org: 2 CPUs, 3072 MB for jobs)",
    ]


def test_an_unreachable_node_stops_the_run_before_any_fact_is_read(monkeypatch):
    hub, (node1, node2) = make_cluster(monkeypatch)
    node2.connected = False
    plan = make_plan([hub], [node1, node2])
    assert plan.problems == ("node2.example.org: cannot be reached over SSH; a cluster is deployed as a whole",)
    assert hub.reads == node1.reads == []


def test_a_hub_without_a_munge_key_gives_every_host_a_new_one(monkeypatch):
    hub, nodes = make_cluster(monkeypatch, munge=None)
    plan = make_plan([hub], nodes)
    keys = {key for _, key in plan.munge_keys.values()}
    assert set(plan.munge_keys) == {hub.name, *(n.name for n in nodes)} and len(keys) == 1
    assert len(keys.pop()) == 128 and {name for name, _ in plan.munge_keys.values()} == {NEW_KEY}
    assert "MungeKey" not in hub.reads
    assert "munge_keys" not in repr(plan)


def test_the_hubs_key_goes_to_the_nodes_whose_key_differs_alone(monkeypatch):
    hub, (node1, node2) = make_cluster(monkeypatch)
    assert make_plan([hub], [node1, node2]).munge_keys == {} and "MungeKey" not in hub.reads
    node2.facts[ClusterHost] = {**node2.facts[ClusterHost], "munge_key": None}
    plan = make_plan([hub], [node1, node2])
    assert plan.munge_keys == {node2.name: (HUB_KEY, HUB_KEY_BYTES)}
    assert hub.reads.count("MungeKey") == 1


def test_slurm_conf_addresses_and_peers_and_a_busy_node_leaving_is_kept_drained(monkeypatch):
    hub, (node1, node2) = make_cluster(monkeypatch, memory_mb=8000)
    node1.facts[ClusterHost] = {**node1.facts[ClusterHost], "cpus": 4, "cores_per_socket": 4, "memory_mb": 20000}
    n3 = "NodeName=n3 NodeAddr=10.0.0.13 CPUs=2 RealMemory=1000 State=UNKNOWN"
    hub.facts[SlurmState] = {
        "nodes": {"node1": "...", "n3": n3, "n4": "NodeName=n4"},
        "partitions": {"jupyter": ["node1", "n3", "n4"]},
        "busy": {"n3"},
        "drained": set(),
        "associations": None,
    }
    plan = make_plan([hub], [node1, node2])
    assert (plan.removed, plan.kept, plan.to_drain) == (("n4",), ("n3",), ("n3",))
    # n3's servers still run: the hub reaches them there, and they the hub's API.
    assert plan.node_addresses == {"node1": "10.0.0.11", "node2": "10.0.0.12", "n3": "10.0.0.13"}
    assert plan.kept_addresses == {"n3": "10.0.0.13"}
    assert plan.peers == {
        hub.name: ("10.0.0.11", "10.0.0.12", "10.0.0.13"),
        node1.name: ("10.0.0.1",),
        node2.name: ("10.0.0.1",),
    }
    assert (plan.hub, plan.nodes) == (hub.name, (node1.name, node2.name))
    text = render("slurm.conf.j2", Settings.from_data({}), **plan.slurm_conf)
    assert "SlurmctldHost=hub(10.0.0.1)" in text
    assert (
        "NodeName=node1 NodeAddr=10.0.0.11 CPUs=4 Sockets=1 CoresPerSocket=4 ThreadsPerCore=1 RealMemory=18000" in text
    )
    assert f"# Left the inventory; drained, kept while its jobs run.\n{n3}\n" in text
    assert "PartitionName=jupyter Nodes=node1,node2,n3 Default=YES MaxTime=120 State=UP" in text
    assert hub.reads.count("SlurmState") == 1


def test_the_plan_is_frozen(monkeypatch):
    hub, nodes = make_cluster(monkeypatch)
    plan = make_plan([hub], nodes)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.kept = ("n9",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.ids["alice"] = (0, 0)  # type: ignore[index]
    with pytest.raises(TypeError):
        plan.slurm_conf["nodes"][0]["cpus"] = 64  # type: ignore[index]


class Run:
    """A run's pyinfra State, as far as the plan needs it: its inventory's groups."""

    def __init__(self, hosts):
        self.groups = {g: [h for h in hosts if g in h.groups] for g in ("hubs", "nodes")}
        self.inventory = types.SimpleNamespace(get_group=lambda name, default=None: self.groups.get(name, default))


def _run(current, hosts, call, monkeypatch):
    """call as pyinfra's deploy code does on host current, in a run of these hosts."""
    monkeypatch.setattr(cluster_plan, "host", current)
    with ctx_state.use(Run(hosts)):
        return call()


def test_the_plan_is_made_once_per_run_and_shared_by_every_host(monkeypatch):
    hub, nodes = make_cluster(monkeypatch)
    made = []

    def slow_plan(hubs, nodes):
        gevent.sleep(0.01)  # as reading facts over SSH: other hosts' greenlets run meanwhile
        made.append(ClusterPlan(hub=hubs[0].name))
        return made[-1]

    monkeypatch.setattr(cluster_plan, "make_plan", slow_plan)
    with ctx_state.use(Run([hub, *nodes])):
        greenlets = [gevent.spawn(cluster_plan.shared_plan) for _ in range(3)]
        gevent.joinall(greenlets, raise_error=True)
    assert len(made) == 1 and all(g.value is made[0] for g in greenlets)
    with ctx_state.use(Run([hub, *nodes])):
        assert cluster_plan.shared_plan() is not made[0]


def test_a_host_without_jh_cluster_gets_no_plan_unless_it_is_a_node(monkeypatch):
    hub, nodes = make_cluster(monkeypatch)
    plain = Settings.from_data({})
    assert _run(hub, [hub, *nodes], lambda: plan_cluster(plain), monkeypatch) is NO_CLUSTER
    with pytest.raises(SettingsError, match="node1.example.org is in `nodes`, which needs jh_cluster = True"):
        _run(nodes[0], [hub, *nodes], lambda: plan_cluster(plain), monkeypatch)


def test_each_person_s_slurm_limits_are_the_user_limits_raised_by_their_groups(monkeypatch):
    hub, nodes = make_cluster(
        monkeypatch,
        {
            "jh_groups": {"ml": ["alice"], "big": ["alice"]},
            "jh_slurm_user_limits": {"jobs": 2, "queued": 4, "cpus": 4, "memory": "8G"},
            "jh_slurm_group_limits": {"ml": {"jobs": 6, "cpus": 16}, "big": {"jobs": 3, "memory": "64G"}},
        },
    )
    plan = make_plan([hub], nodes)
    assert plan.associations == {
        "alice": {"jobs": 6, "queued": 4, "cpus": 16, "memory_mb": 65536},
        "bob": {"jobs": 2, "queued": 4, "cpus": 4, "memory_mb": 8192},
    }
    assert plan.current_associations is None  # slurmdbd not answering yet: every association is set


def test_off_boarded_people_leave_every_host_where_they_have_an_account(monkeypatch):
    data = {"jh_users": [{"name": "alice"}, {"name": "carol", "state": "absent"}]}
    hub, (node1, node2) = make_cluster(monkeypatch, data)
    node1.facts[Accounts] = {"carol": {"uid": 2100}}
    hub.facts[Accounts] = {"carol": {"uid": 2100}}
    plan = make_plan([hub], [node1, node2])
    assert plan.leaving == {hub.name: ("carol",), node1.name: ("carol",), node2.name: ()}


def test_off_boarding_stops_naming_the_person_when_a_node_cannot_be_reached(monkeypatch):
    data = {"jh_users": [{"name": "alice"}, {"name": "carol", "state": "absent"}]}
    hub, (node1, node2) = make_cluster(monkeypatch, data)
    node2.connected = False
    plan = make_plan([hub], [node1, node2])
    assert plan.problems[-1] == (
        "off-boarding carol must reach every host of the cluster, and node2.example.org cannot be reached: "
        "their accounts and jobs would stay there"
    )
