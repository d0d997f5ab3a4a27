"""The deploy's own facts parse what the commands print on the targets."""

import hashlib
import os
import subprocess

from tasks.facts import (
    LooseTrees,
    PathStates,
    ResourceControl,
    StaleServerEnvs,
    UfwStatus,
    UnitStates,
)

UFW_ACTIVE = """Status: active

To                         Action      From
--                         ------      ----
22/tcp                     ALLOW       Anywhere
443/tcp                    ALLOW       Anywhere
Anywhere                   ALLOW       10.0.0.11
22/tcp (v6)                ALLOW       Anywhere (v6)
443/tcp (v6)               ALLOW       Anywhere (v6)"""


def test_ufw_status_active_with_rules():
    status = UfwStatus().process(UFW_ACTIVE.splitlines())
    assert status["active"] and {"22/tcp", "443/tcp"} <= status["allowed"]
    assert status["sources"] == {"10.0.0.11"}


def test_ufw_status_inactive_and_absent():
    assert UfwStatus().process(["Status: inactive"]) == {"active": False, "allowed": set(), "sources": set()}
    assert UfwStatus().process([]) is None


def test_path_states_reads_directories_in_one_command(tmp_path):
    root = tmp_path / "root"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "script").write_text("echo hi\n")
    (root / "script").chmod(0o750)
    (root / "link").symlink_to(root / "script")
    # A name the deploy never uses, made to look like another entry: left out, not parsed.
    (root / "evil\nS\tf\t644\troot\troot\tforged\t").write_text("x")
    (tmp_path / "listed").mkdir()
    (tmp_path / "listed" / "secret").write_text("not read")
    states = run_fact(PathStates(), hashed=[str(root)], listed=[str(tmp_path / "listed")], deep=[str(root)])
    script = states[str(root / "script")]
    assert script[:2] == ("f", 0o750) and script[5] == hashlib.sha256(b"echo hi\n").hexdigest()
    assert states[str(root / "link")][0::4] == ("l", str(root / "script"))
    assert states[str(root)][0] == "d" and states[str(root / "sub" / "deeper")][0] == "d"
    assert states[str(tmp_path / "listed" / "secret")][5] is None
    assert not any("forged" in path or "evil" in path for path in states)
    assert run_fact(PathStates(), hashed=[str(tmp_path / "absent")], listed=[], deep=[]) == {}


def test_a_link_whose_target_holds_a_forged_record_changes_nothing_the_deploy_reads(tmp_path):
    """In a folder its user may write (a home, the hub's state), a link whose target reads like
    another entry (and like a digest line): the link is the link, and no forged path appears."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "notebook.ipynb").write_text("{}")
    forged = "x\nS\tf\t644\troot\troot\t/opt/jupyter/libexec/user-server\t\n" + "0" * 64 + "  /etc/shadow\nS"
    (home / "planted").symlink_to(forged)
    states = run_fact(PathStates(), hashed=[], listed=[str(home)], deep=[])
    assert set(states) == {str(home), str(home / "notebook.ipynb"), str(home / "planted")}
    assert states[str(home / "planted")][0] == "l" and states[str(home / "planted")][4] == forged
    assert states[str(home / "notebook.ipynb")][:1] == ("f",)


def test_unit_states_parses_systemctl_show():
    output = ["Id=jupyterhub.service", "ActiveState=active", "UnitFileState=enabled", "", "Id=nginx.service"]
    output += ["ActiveState=inactive", "UnitFileState="]
    assert UnitStates().process(output) == {
        "jupyterhub.service": ("active", "enabled"),
        "nginx.service": ("inactive", ""),
    }


def test_loose_trees_finds_what_is_not_roots_alone(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ok").write_text("")
    (tmp_path / "a" / "ok").chmod(0o644)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "writable").write_text("")
    (tmp_path / "b" / "writable").chmod(0o666)
    loose = run_fact(LooseTrees(), paths=[str(tmp_path / "a"), str(tmp_path / "b")])
    assert str(tmp_path / "b" / "writable") in loose and str(tmp_path / "a" / "ok") not in loose


def run_fact(fact, **kwargs):
    output = subprocess.run(["sh", "-c", fact.command(**kwargs)], capture_output=True, text=True, check=True)
    return fact.process(output.stdout.splitlines())


def test_stale_server_envs_lists_what_prune_would_remove(tmp_path):
    for name in ("current", "old", "older"):
        (tmp_path / name).mkdir()
    assert run_fact(StaleServerEnvs(), envs_dir=str(tmp_path), keep=[str(tmp_path / "current")]) == [
        str(tmp_path / "old"),
        str(tmp_path / "older"),
    ]
    assert run_fact(StaleServerEnvs(), envs_dir=str(tmp_path / "absent"), keep=[]) == []


def test_resource_control_reads_controllers_memory_and_cpus_here():
    facts = run_fact(ResourceControl())
    assert facts["memory"] > 0
    assert facts["cpus"] == os.cpu_count()
    assert "memory" in facts["controllers"] or "cpu" in facts["controllers"]
