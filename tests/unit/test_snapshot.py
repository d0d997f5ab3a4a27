"""tasks.snapshot: what the host has, read a directory at a time, here on this machine's files."""

import hashlib
import subprocess

import pytest

from tasks import snapshot
from tasks.facts import PathStates


class LocalHost:
    """Runs facts' commands here, and counts them."""

    name = "local"

    def __init__(self):
        self.commands = 0

    def get_fact(self, fact, **kwargs):
        self.commands += 1
        instance = fact()
        output = subprocess.run(["sh", "-c", instance.command(**kwargs)], capture_output=True, text=True, check=True)
        return instance.process(output.stdout.splitlines())


@pytest.fixture
def host(monkeypatch):
    local = LocalHost()
    monkeypatch.setattr(snapshot, "host", local)
    for table in ("_FACTS", "_ENTRIES", "_LISTED", "_HASHED", "_DEEP"):
        monkeypatch.setattr(snapshot, table, {})
    return local


def test_a_prefetched_directory_answers_without_another_command(host, tmp_path):
    (tmp_path / "config").write_text("x = 1\n")
    (tmp_path / "config").chmod(0o644)
    (tmp_path / "env").mkdir()
    snapshot.prefetch(hashed=[tmp_path])
    assert host.commands == 1
    digest = hashlib.sha256(b"x = 1\n").hexdigest()
    assert snapshot.entry(tmp_path / "config", hashed=True)[5] == digest
    assert snapshot.entry(tmp_path / "absent") is None
    assert snapshot.children(tmp_path, kind="d") == ["env"]
    assert host.commands == 1


def test_is_state_compares_kind_mode_owner_and_content(host, tmp_path):
    (tmp_path / "rule").write_text("rule\n")
    (tmp_path / "rule").chmod(0o440)
    kind, mode, user, group, _, digest = snapshot.entry(tmp_path / "rule", hashed=True)
    assert (kind, mode) == ("f", 0o440)
    assert snapshot.is_state(tmp_path / "rule", "f", "440", user, group, digest)
    assert not snapshot.is_state(tmp_path / "rule", "f", "644", user, group, digest)
    assert not snapshot.is_state(tmp_path / "rule", "f", "440", "nobody", group, digest)
    assert not snapshot.is_state(tmp_path / "rule", "f", "440", user, group, hashlib.sha256(b"other").hexdigest())
    assert not snapshot.is_state(tmp_path / "rule", "d", "440", user, group)


def test_a_directory_read_without_digests_is_read_again_when_a_digest_is_wanted(host, tmp_path):
    (tmp_path / "stamp").write_text("lock\n")
    assert snapshot.entry(tmp_path / "stamp")[5] is None
    assert snapshot.entry(tmp_path / "stamp", hashed=True)[5] == hashlib.sha256(b"lock\n").hexdigest()
    assert host.commands == 2


def test_deep_directories_are_listed_two_levels_down(host, tmp_path):
    (tmp_path / "corpora" / "stopwords").mkdir(parents=True)
    snapshot.prefetch(deep=[tmp_path])
    assert snapshot.children(tmp_path / "corpora", "d") == ["stopwords"]
    snapshot.prefetch(deep=[tmp_path])
    assert host.commands == 1


def test_facts_are_read_once_per_host_and_arguments(host, tmp_path):
    assert snapshot.fact(PathStates, hashed=[], listed=[str(tmp_path)], deep=[]) is snapshot.fact(
        PathStates, hashed=[], listed=[str(tmp_path)], deep=[]
    )
    assert host.commands == 1
