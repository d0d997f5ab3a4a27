"""The deploy's own facts parse what the commands print on the targets."""

import subprocess

from tasks.facts import FileDigests, ResourceControl, StaleServerEnvs, UfwStatus

UFW_ACTIVE = """Status: active

To                         Action      From
--                         ------      ----
22/tcp                     ALLOW       Anywhere
443/tcp                    ALLOW       Anywhere
22/tcp (v6)                ALLOW       Anywhere (v6)
443/tcp (v6)               ALLOW       Anywhere (v6)"""


def test_ufw_status_active_with_rules():
    assert UfwStatus().process(UFW_ACTIVE.splitlines()) == {"active": True, "allowed": {"22/tcp", "443/tcp"}}


def test_ufw_status_inactive_and_absent():
    assert UfwStatus().process(["Status: inactive"]) == {"active": False, "allowed": set()}
    assert UfwStatus().process([]) is None


def test_file_digests_reads_a_folder_in_one_command(tmp_path):
    (tmp_path / "script").write_text("echo hi\n")
    (tmp_path / "script").chmod(0o755)
    (tmp_path / "link").symlink_to(tmp_path / "script")
    fact = FileDigests()
    output = subprocess.run(["sh", "-c", fact.command(str(tmp_path))], capture_output=True, text=True).stdout
    digest, mode, owner = fact.process(output.splitlines())["script"].split()
    assert (len(digest), mode) == (64, "755") and ":" in owner
    assert "link" not in fact.process(output.splitlines())
    assert fact.process([]) == {}


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


def test_resource_control_reads_controllers_and_memory_here():
    facts = run_fact(ResourceControl())
    assert facts["memory"] > 0
    assert "memory" in facts["controllers"] or "cpu" in facts["controllers"]
