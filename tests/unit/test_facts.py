"""The deploy's own facts parse what the commands print on the targets."""

import subprocess

from tasks.facts import FileDigests, UfwStatus

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
