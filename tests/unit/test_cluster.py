"""The cluster's settings, rendered files and the helper's job verbs, with hostile values."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest

from tasks import hub
from tasks.cluster_facts import ClusterHost, SlurmState
from tasks.ops import render
from tasks.settings import Settings, SettingsError
from tests.unit.test_templates import hub_data_of, visudo
from tests.unit.test_user_servers import entry, helper, helper_config

CLUSTER = {"jh_cluster": True, "jh_cluster_address": "10.0.0.1", "jh_firewall": True}
NODES = [
    {
        "name": "node1",
        "address": "10.0.0.11",
        "cpus": 8,
        "sockets": 1,
        "cores_per_socket": 4,
        "threads_per_core": 2,
        "memory_mb": 30000,
    },
    {
        "name": "node2",
        "address": "10.0.0.12",
        "cpus": 2,
        "sockets": 1,
        "cores_per_socket": 2,
        "threads_per_core": 1,
        "memory_mb": 3000,
    },
]
SLURM = {
    "cluster_name": "jupyterhub",
    "controller": "hub",
    "controller_address": "10.0.0.1",
    "nodes": NODES,
    "partitions": {"jupyter": ["node1", "node2"], "bigmem": ["node1"]},
    "kept_nodes": [],
    "max_minutes": 480,
}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"jh_spawn_profiles": []}, "needs jh_cluster = True"),
        ({"jh_cluster": True}, "jh_cluster_address on each host"),
        ({**CLUSTER, "jh_cluster_address": "127.0.0.1"}, "not loopback"),
        ({**CLUSTER, "jh_cluster_address": "10.0.0.1\n"}, "jh_cluster_address"),
        ({**CLUSTER, "jh_cluster_address": "8.8.8.8"}, "jh_cluster_address 8.8.8.8 is a public address"),
        ({**CLUSTER, "jh_firewall": False}, "jh_cluster needs jh_firewall = True"),
        ({"jh_slurm_user_limits": {"jobs": 1}}, "jh_slurm_user_limits needs jh_cluster = True"),
        ({**CLUSTER, "jh_slurm_user_limits": {}}, "give at least one of jobs, queued, cpus, memory"),
        ({**CLUSTER, "jh_slurm_user_limits": {"cpus": 0}}, "greater than or equal to 1"),
        ({**CLUSTER, "jh_slurm_user_limits": {"memory": "1G"}}, "cannot run the profile small (1 cores, 2G)"),
        (
            {**CLUSTER, "jh_slurm_group_limits": {"ml": {"jobs": 2}}},
            "jh_slurm_group_limits: ml is not one of jh_groups",
        ),
        (
            {**CLUSTER, "jh_groups": {"ml": []}, "jh_slurm_group_limits": {"ml": {"memory": "1G"}}},
            "jh_slurm_group_limits[ml]: 8 cores and 1G memory cannot run the profile small",
        ),
        ({**CLUSTER, "jh_slurm_partitions": {"gpu;reboot": ["n1"]}}, "lowercase letter"),
        ({**CLUSTER, "jh_slurm_partitions": {"gpu": ["n1 n2"]}}, "inventory name"),
        ({**CLUSTER, "jh_spawn_profiles": []}, "at least one profile"),
        (
            {**CLUSTER, "jh_spawn_profiles": [{"key": "a", "display": "A", "where": "hub"}] * 2},
            "key of its own",
        ),
        (
            {**CLUSTER, "jh_spawn_profiles": [{"key": "a", "display": "A\nB", "where": "cluster"}]},
            "up to 80 letters",
        ),
        (
            {**CLUSTER, "jh_spawn_profiles": [{"key": "a", "display": "A {x}", "where": "cluster"}]},
            "up to 80 letters",
        ),
        (
            {**CLUSTER, "jh_spawn_profiles": [{"key": "a%n", "display": "A", "where": "cluster"}]},
            "lowercase letter",
        ),
        (
            {**CLUSTER, "jh_spawn_profiles": [{"key": "a", "display": "A", "where": "cluster", "memory": "2G;"}]},
            "memory size",
        ),
        (
            {**CLUSTER, "jh_spawn_profiles": [{"key": "a", "display": "A", "where": "cluster", "cpus": 0}]},
            "greater than or equal to 1",
        ),
        (
            {**CLUSTER, "jh_spawn_profiles": [{"key": "a", "display": "A", "where": "hub", "minutes": 5}]},
            "size Slurm jobs",
        ),
        (
            {**CLUSTER, "jh_spawn_profiles": [{"key": "a", "display": "A", "where": "cluster", "partition": "gpu"}]},
            "not one of jh_slurm_partitions",
        ),
        ({**CLUSTER, "jh_shared_home": {"kind": "site-nfs", "server": "nfs.example.org"}}, "needs server and export"),
        (
            {**CLUSTER, "jh_shared_home": {"kind": "site-nfs", "server": "nfs;x", "export": "/export/home"}},
            "jh_shared_home[server]",
        ),
        (
            {**CLUSTER, "jh_shared_home": {"kind": "site-nfs", "server": "nfs", "export": "/export/../etc"}},
            "'..'",
        ),
        ({**CLUSTER, "jh_authenticator": "native", "jh_server_release": "jupyterhub-5"}, "pam"),
    ],
)
def test_bad_cluster_settings_are_refused_naming_the_setting(data, expected):
    with pytest.raises(SettingsError) as error:
        Settings.from_data(data)
    assert expected in str(error.value)


def test_jobs_reach_the_hub_api_on_the_cluster_address_and_the_hub_listens_on_loopback():
    assert Settings.from_data({}).cluster_api_url is None
    settings = Settings.from_data(CLUSTER)
    assert settings.cluster_api_url == "http://10.0.0.1:8081"
    data = hub_data_of(settings, {"node1": "10.0.0.11"})
    assert data["urls"] == {
        "bind_url": "http://127.0.0.1:8000/",
        "hub_bind_url": "http://127.0.0.1:8081",
        "subdomain_host": None,
    }
    assert data["servers"]["job_hub_url"] == "http://10.0.0.1:8081"
    # The spawn page's profiles by key; their sizes are root's (the helper's part).
    assert data["servers"]["profiles"] == [
        {"key": "hub", "display": "On the hub server", "where": "hub"},
        {"key": "small", "display": "Cluster: 1 CPU, 2 GB, 2 h", "where": "cluster"},
    ]
    assert data["user_servers"]["profiles"] == {
        "small": {"partition": "jupyter", "cpus": 1, "memory_mb": 2048, "minutes": 120}
    }
    assert data["servers"]["node_addresses"] == {"node1": "10.0.0.11"}


def test_the_sudoers_rule_adds_submit_and_cancel_with_a_cluster_and_passes_visudo(tmp_path):
    rule = hub.sudoers_rule(Settings.from_data(CLUSTER))
    helper_path = "/opt/jupyter/libexec/user-server"
    assert f"{helper_path} submit *, {helper_path} status *, {helper_path} cancel *" in rule
    assert "submit *" not in hub.sudoers_rule(Settings.from_data({}))
    (tmp_path / "rule").write_text(rule)
    result = visudo(tmp_path / "rule")
    assert result.returncode == 0, result.stderr


def test_the_helper_knows_each_cluster_profile_by_its_key():
    profiles = [
        {"key": "hub", "display": "Hub", "where": "hub"},
        {"key": "large", "display": "Large", "where": "cluster", "cpus": 8, "memory": "1500M", "minutes": 480},
    ]
    config = helper_config({**CLUSTER, "jh_spawn_profiles": profiles})
    assert config["profiles"] == {"large": {"partition": "jupyter", "cpus": 8, "memory_mb": 1500, "minutes": 480}}
    assert "profiles" not in helper_config({})


def test_slurm_conf_describes_each_node_and_partition():
    text = render("slurm.conf.j2", Settings.from_data(CLUSTER), **SLURM)
    assert "SlurmctldHost=hub(10.0.0.1)" in text
    assert (
        "NodeName=node1 NodeAddr=10.0.0.11 CPUs=8 Sockets=1 CoresPerSocket=4 ThreadsPerCore=2 RealMemory=30000" in text
    )
    assert "PartitionName=jupyter Nodes=node1,node2 Default=YES MaxTime=480 State=UP" in text
    assert "PartitionName=bigmem Nodes=node1 Default=NO" in text
    assert "ProctrackType=proctrack/cgroup" in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["user-server", "submit", "alice"], "usage"),
        (["user-server", "submit", "alice", "small", "extra"], "usage"),
        (["user-server", "cancel", "alice"], "usage"),
    ],
)
def test_the_helper_job_verbs_take_exactly_their_arguments(argv, expected, capsys):
    assert helper.main(argv) == 2
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize("job", ["0", "12;reboot", "-1", "1 2", "", "12\n", "1" * 20])
def test_the_helper_cancels_only_a_job_id(monkeypatch, job):
    monkeypatch.setattr(helper, "account", lambda config, name, member_required: entry())
    with pytest.raises(helper.Refused, match="not a job id"):
        helper.cancel({}, "alice", job)


def test_the_helper_submits_only_profiles_of_roots_config(monkeypatch):
    monkeypatch.setattr(helper, "account", lambda config, name, member_required: entry())
    config = helper_config(CLUSTER)
    for key in ("large", "small;reboot", "__class__", "hub"):
        with pytest.raises(helper.Refused, match="no such profile"):
            helper.submit(config, "alice", key)


def test_the_job_gets_roots_environment_and_size(monkeypatch):
    monkeypatch.setattr(helper, "account", lambda config, name, member_required: entry())
    monkeypatch.setattr(helper, "private_group", lambda entry: True)
    monkeypatch.setattr(helper.os.path, "realpath", lambda path: "/opt/jupyter/envs/jupyterhub-6-abc")
    monkeypatch.setattr(helper.sys, "stdin", io.StringIO("JUPYTERHUB_API_TOKEN=t0ken\nJUPYTERHUB_USER=alice\n"))
    runs = []

    def run(command, **kwargs):
        runs.append((command, kwargs))
        return subprocess.CompletedProcess(command, 0, stdout="42\n")

    monkeypatch.setattr(helper.subprocess, "run", run)
    config = helper_config(CLUSTER)
    assert helper.submit(config, "alice", "small") == 0
    command, kwargs = runs[0]
    assert command[:3] == ["sbatch", "--parsable", "--export=ALL"]
    assert "--partition=jupyter" in command and "--mem=2048M" in command and "--time=120" in command
    assert "--job-name=jupyterhub-alice" in command and "--chdir=/home/alice" in command
    assert kwargs["env"]["JUPYTERHUB_API_TOKEN"] == "t0ken"
    assert kwargs["env"]["MEM_LIMIT"] == str(2048 * 1024**2)
    assert kwargs["env"]["PATH"].startswith("/opt/jupyter/envs/jupyterhub-6-abc/bin:")
    assert kwargs["input"] == "#!/bin/sh\numask 0002\nexec /opt/jupyter/envs/jupyterhub-6-abc/bin/hubside-job-server\n"


@pytest.mark.parametrize(
    ("stdout", "stderr", "status", "printed"),
    [
        ("RUNNING node1\n", "", 0, "RUNNING node1"),
        ("COMPLETING node1\n", "", 0, "RUNNING node1"),
        ("PENDING \n", "", 0, "PENDING"),
        ("CONFIGURING node1\n", "", 0, "PENDING"),
        ("COMPLETED node1\n", "", 0, "GONE"),
        ("", "slurm_load_jobs error: Invalid job id specified", 1, "GONE"),
        ("", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)", 1, "UNKNOWN"),
    ],
)
def test_the_helper_reports_a_job_as_its_user_sees_it(monkeypatch, capsys, stdout, stderr, status, printed):
    monkeypatch.setattr(helper, "account", lambda config, name, member_required: entry())
    runs = []

    def run(command, **kwargs):
        runs.append(command)
        return subprocess.CompletedProcess(command, status, stdout=stdout, stderr=stderr)

    monkeypatch.setattr(helper.subprocess, "run", run)
    assert helper.status(helper_config(CLUSTER), "alice", "42") == 0
    assert capsys.readouterr().out == printed + "\n"
    assert runs == [["squeue", "--noheader", "--jobs=42", "--format=%T %N"]]
    with pytest.raises(helper.Refused, match="not a job id"):
        helper.status(helper_config(CLUSTER), "alice", "42,43")


def test_the_hub_exports_home_to_the_nodes_alone():
    def exports(home_mounted: bool) -> list[str]:
        text = render(
            "nfs-exports.j2",
            Settings.from_data(CLUSTER),
            addresses=["10.0.0.11", "10.0.0.12"],
            home_mounted=home_mounted,
        )
        return [line for line in text.splitlines() if line and not line.startswith("#")]

    assert exports(True) == [
        "/home 10.0.0.11(rw,sync,no_subtree_check,root_squash) 10.0.0.12(rw,sync,no_subtree_check,root_squash)"
    ]
    # /home a folder of the root file system: a node's root cannot forge handles outside it.
    assert exports(False) == [
        "/home 10.0.0.11(rw,sync,subtree_check,root_squash) 10.0.0.12(rw,sync,subtree_check,root_squash)"
    ]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed here")
def test_the_home_mount_unit_parses_with_systemd_analyze(tmp_path):
    settings = Settings.from_data(
        {**CLUSTER, "jh_shared_home": {"kind": "site-nfs", "server": "nfs.example.org", "export": "/export/home"}}
    )
    unit = tmp_path / "home.mount"
    unit.write_text(render("home.mount.j2", settings, source="nfs.example.org:/export/home"))
    assert "What=nfs.example.org:/export/home\nWhere=/home\nType=nfs\n" in unit.read_text()
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "mount.nfs" not in line]
    assert problems == [], result.stderr


def test_the_cluster_host_fact_counts_cpus_as_slurmd_does():
    output = ["node1", "x86_64", "MemTotal:       32768000 kB"]
    output += [f"{socket},{core}" for socket in (0, 1) for core in (0, 0, 1, 1)]
    output += ["@munge", "ab12  /etc/munge/munge.key"]
    assert ClusterHost().process(output) == {
        "name": "node1",
        "arch": "x86_64",
        "memory_mb": 32000,
        "cpus": 8,
        "sockets": 2,
        "cores_per_socket": 2,
        "threads_per_core": 2,
        "munge_key": "ab12",
        "home_mounted": False,
    }
    assert ClusterHost().process(["node2", "x86_64", "MemTotal: 2048000 kB", "0,0", "@munge"])["munge_key"] is None
    assert ClusterHost().process([*output, "@home", "/home"])["home_mounted"] is True
    assert ClusterHost().process([*output, "@home", "/"])["home_mounted"] is False


def test_the_slurm_nodes_fact_reads_nodes_partitions_busy_and_drained():
    output = [
        "NodeName=n1 NodeAddr=10.0.0.11 CPUs=2 RealMemory=1000 State=UNKNOWN",
        "NodeName=n3 NodeAddr=10.0.0.13 CPUs=2 RealMemory=1000 State=UNKNOWN",
        "PartitionName=jupyter Nodes=n1,n3 Default=YES MaxTime=60 State=UP",
        "@busy",
        "n3",
        "",
        "@drained",
        "n3",
    ]
    found = SlurmState().process(output)
    assert found["nodes"]["n3"].startswith("NodeName=n3 NodeAddr=10.0.0.13")
    assert found["partitions"] == {"jupyter": ["n1", "n3"]}
    assert found["busy"] == {"n3"} and found["drained"] == {"n3"}
    assert found["associations"] is None  # slurmdbd did not answer
    answered = SlurmState().process(
        [
            *output,
            "@associations",
            "jupyterhub||||",
            "jupyterhub|alice|4|16|cpu=8,mem=32G",
            "jupyterhub|bob|||",
            "@answered",
        ]
    )
    assert answered["associations"] == {
        "alice": {"jobs": 4, "queued": 16, "cpus": 8, "memory_mb": 32768},
        "bob": {"jobs": None, "queued": None, "cpus": None, "memory_mb": None},
    }


def test_the_hub_api_for_the_nodes_passes_the_api_alone_to_the_nodes_alone_and_passes_nginx_t(tmp_path):
    from tests.unit.test_nginx import nginx_test

    settings = Settings.from_data({**CLUSTER, "jh_domain": "hub.example.org", "jh_base_url": "/jupyter/"})
    site = render(
        "nginx-cluster-api.conf.j2", settings, address="127.0.0.1", port=8081, nodes=["10.0.0.11", "10.0.0.12"]
    )
    assert "allow 10.0.0.11;\n    allow 10.0.0.12;\n    deny all;" in site
    assert "location /jupyter/hub/api/ {\n        proxy_pass http://127.0.0.1:8081;" in site
    assert "location / {\n        return 404;" in site and "/hub/login" not in site
    result = nginx_test(tmp_path, site)
    assert result.returncode == 0, result.stderr


def test_slurm_holds_people_to_their_share_and_shows_them_their_own_jobs():
    text = render("slurm.conf.j2", Settings.from_data(CLUSTER), **SLURM)
    assert "AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=hub\n" in text
    assert "AccountingStorageEnforce=associations,limits,qos,safe" in text
    assert "PrivateData=accounts,jobs,reservations,usage,users" in text
    assert "PrologFlags=Contain" in text and "JobAcctGatherType=jobacct_gather/cgroup" in text
    dbd = render("slurmdbd.conf.j2", Settings.from_data(CLUSTER), database="slurm_acct_db")
    # MariaDB on the Unix socket as the Unix user slurm: no password in the file.
    assert "StorageUser=slurm" in dbd and "StorageLoc=slurm_acct_db" in dbd and "StoragePass" not in dbd


def test_the_associations_are_set_where_slurmdbd_holds_others_and_leavers_are_removed(monkeypatch):
    from types import MappingProxyType

    from tasks import cluster_people
    from tasks.cluster_plan import ClusterPlan

    shells = []
    monkeypatch.setattr(cluster_people.server, "shell", lambda name, commands: shells.append((name, commands)))
    settings = Settings.from_data(
        {**CLUSTER, "jh_users": [{"name": "alice"}, {"name": "bob"}, {"name": "carol", "state": "absent"}]}
    )
    wanted = {"jobs": 4, "queued": 16, "cpus": 8, "memory_mb": None}
    current = {"alice": wanted, "bob": {**wanted, "cpus": 2}, "carol": wanted}
    plan = ClusterPlan(
        associations=MappingProxyType({"alice": wanted, "bob": wanted}), current_associations=MappingProxyType(current)
    )
    cluster_people.associations(settings, plan)
    (name, [limits]), (gone, [removal]) = shells
    assert name == "Slurm's limits of bob"
    assert limits.endswith("slurm-associations jupyterhub jupyterhub bob:4:16:8:-1")
    assert gone == "Off-board carol: Slurm jobs cancelled, association removed"
    assert removal.endswith("slurm-remove-user jupyterhub carol")
    shells.clear()
    cluster_people.associations(
        settings,
        ClusterPlan(
            associations=MappingProxyType({"alice": wanted, "bob": wanted}),
            current_associations=MappingProxyType({"alice": wanted, "bob": wanted}),
        ),
    )
    assert shells == []
