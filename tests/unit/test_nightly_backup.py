"""The nightly backup's settings, refused before any change when dangerous; the controller's copies
of the repository's secrets; which snapshots a restore takes (files/bin/pick-snapshot.py)."""

import json
import stat
import subprocess
import sys
from pathlib import PurePosixPath

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pyinfra.api.exceptions import PyinfraError

from tasks import nightly_backup
from tasks.platform import Platform
from tasks.preflight import ancestors, path_problems
from tasks.settings import FILES, Settings, SettingsError

KEY = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
SFTP = {"repository": "sftp:backup@backup.example.org:/srv/restic/hub", "sftp_host_key": KEY}
PICK = FILES / "bin" / "pick-snapshot.py"


def nightly(**fields) -> dict:
    return {"jh_nightly_backup": {**SFTP, **fields}}


def refusal(data: dict) -> str:
    with pytest.raises(SettingsError) as error:
        Settings.from_data(data)
    return str(error.value)


def test_an_sftp_repository_with_its_host_key_is_taken():
    settings = Settings.from_data(nightly(sftp_host_key=f"{KEY} root@backup\n", sftp_port=2222))
    assert settings.nightly_backup.known_hosts == f"[backup.example.org]:2222 {KEY}\n"
    assert settings.nightly_backup.sftp_target == ("backup", "backup.example.org")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"repository": "sftp:backup@host;id:/srv/a/b"}, "is not a DNS name"),
        ({"repository": "sftp:backup@host:/srv/a/b\n"}, "must be sftp:USER@HOST:/PATH"),
        ({"repository": "sftp:backup@host:/srv/$(id)/b"}, "must be an absolute path of letters"),
        ({"repository": "sftp:-oProxyCommand=x@host:/srv/a/b"}, "must be sftp:USER@HOST:/PATH"),
        ({"repository": "sftp:backup@host:relative/b"}, "must be sftp:USER@HOST:/PATH"),
        ({"repository": "sftp:backup@host:/srv"}, "two levels down"),
        ({"sftp_host_key": None}, "an SFTP repository needs its host's key"),
        ({"sftp_host_key": "ssh-ed25519 AAAA%n"}, "not base64"),
        ({"sftp_host_key": KEY.replace("ssh-ed25519", "ssh-rsa")}, "is of type 'ssh-ed25519', not 'ssh-rsa'"),
        ({"sftp_host_key": f"{KEY}\n{KEY}"}, "must be an SSH host public key"),
        ({"time": "3:15"}, "time"),
        ({"time": "03:15\n"}, "time"),
        ({"time": "%H:00"}, "time"),
        ({"keep_daily": 0}, "keep_daily"),
        ({"check_day": "Sunday"}, "check_day"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_a_dangerous_or_broken_backup_setting_is_refused_naming_it(fields, message):
    text = refusal(nightly(**fields))
    assert "jh_nightly_backup" in text and message in text, text


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("/tmp/restic/hub", "must not be /tmp or below it"),
        ("/home/alice/restic", "must not be /home or below it"),
        ("/etc/jupyterhub-deploy/restic", "must not be /etc or below it"),
        ("/opt/jupyter/state/restic", "jh_install_root (/opt/jupyter) and jh_nightly_backup.repository"),
        ("/var/backups/jupyterhub-deploy/restic", "backup staging folder"),
    ],
)
def test_a_local_repository_must_be_a_folder_of_its_own(folder, message):
    text = refusal({"jh_nightly_backup": {"repository": folder}})
    assert message in text, text


def test_a_local_repository_takes_no_sftp_settings():
    assert "for an sftp: repository only" in refusal(nightly(repository="/mnt/backup/hub"))


def test_a_restore_takes_an_archive_or_a_snapshot_of_a_repository():
    assert "set jh_nightly_backup" in refusal({"jh_restore_snapshot": "latest"})
    assert "jh_restore_snapshot" in refusal({**nightly(), "jh_restore_snapshot": "latest; id"})
    both = {**nightly(), "jh_restore_snapshot": "latest", "jh_restore_archive": __file__}
    assert "give one, the archive or the snapshot" in refusal(both)


ROOT_DIR = ("d", 0o755, "root", "root", None, None)


@pytest.mark.parametrize(
    ("states", "message"),
    [
        ({"/mnt/usb": ("d", 0o1777, "root", "root", None, None)}, "/mnt/usb is not a folder only root can change"),
        ({"/mnt/usb": ("d", 0o755, "alice", "alice", None, None)}, "/mnt/usb is not a folder only root can change"),
        ({"/mnt/usb/hub": ("d", 0o775, "root", "staff", None, None)}, "anyone who can change it can delete"),
        ({"/mnt/usb/hub": ("l", 0o777, "root", "root", "/home/alice", None)}, "is not a folder only root"),
    ],
    ids=["sticky-parent", "someone-s-parent", "group-writable", "a-link"],
)
def test_a_local_repository_on_the_host_must_be_root_s_alone(states, message):
    settings = Settings.from_data({"jh_nightly_backup": {"repository": "/mnt/usb/hub"}})
    found = {str(p): ROOT_DIR for p in ancestors(PurePosixPath("/mnt/usb/hub"))} | states
    problems = path_problems(settings, found)
    assert any(message in problem and "jh_nightly_backup.repository" in problem for problem in problems), problems
    assert not path_problems(settings, {str(p): ROOT_DIR for p in ancestors(PurePosixPath("/mnt/usb/hub"))})


def test_restic_too_old_is_refused_before_any_change(monkeypatch):
    monkeypatch.setattr(nightly_backup, "host", type("Host", (), {"name": "old"}))
    settings = Settings.from_data(nightly())
    with pytest.raises(PyinfraError, match="needs restic 0.9.6 or newer; Ubuntu 18.04 has 0.8.3"):
        nightly_backup.check(settings, Platform("Ubuntu", "18.04", "3.6", "3.6"))
    nightly_backup.check(settings, Platform("Debian", "12", "3.11", "3.11"))


def test_the_controller_keeps_each_repository_s_secrets_private_and_makes_them_once(tmp_path, monkeypatch):
    monkeypatch.setattr(nightly_backup, "host", type("Host", (), {"name": "hub"}))
    settings = Settings.from_data({**nightly(), "jh_backup_dir": str(tmp_path / "backups")})
    folder = nightly_backup.controller_folder(settings, settings.nightly_backup)
    assert folder.parent == tmp_path / "backups" / "restic"
    nightly_backup.controller_secrets(folder, make=True)
    made = {name: (folder / name).read_bytes() for name in ("password", "ssh-key", "ssh-key.pub")}
    nightly_backup.controller_secrets(folder, make=True)
    assert {name: (folder / name).read_bytes() for name in made} == made
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE((folder / n).stat().st_mode) == 0o600 for n in ("password", "ssh-key"))
    assert len(made["password"].strip()) == 64
    derived = subprocess.run(["ssh-keygen", "-y", "-f", folder / "ssh-key"], capture_output=True, text=True)
    assert derived.stdout.split()[:2] == made["ssh-key.pub"].decode().split()[:2]
    other = nightly_backup.controller_folder(settings, Settings.from_data(nightly(sftp_port=2200)).nightly_backup)
    assert other == folder  # the port does not make another repository
    elsewhere = Settings.from_data(nightly(repository="sftp:backup@backup.example.org:/srv/restic/other"))
    assert nightly_backup.controller_folder(settings, elsewhere.nightly_backup) != folder


def pick(*args: str, snapshots: list) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, PICK, *args], input=json.dumps(snapshots), capture_output=True, text=True, check=False
    )


def state(snapshot_id: str, host: str, time: str, homes: int = 0) -> dict:
    tags = ["jupyterhub-state", f"run-{time}", f"homes-{homes}"]
    return {"id": snapshot_id * 8, "short_id": snapshot_id, "hostname": host, "time": time, "tags": tags}


def test_a_restore_takes_this_host_s_newest_backup_or_the_one_named():
    snapshots = [state("aaaaaaaa", "hub", "2026-12-05"), state("bbbbbbbb", "hub", "2026-12-06", 2)]
    snapshots.append(state("cccccccc", "other", "2026-12-07"))
    assert pick("state", "latest", "hub", snapshots=snapshots).stdout.split() == [
        "b" * 64,
        "run-2026-12-06",
        "2",
        "hub",
    ]
    assert pick("state", "aaaaaaaa", "new-hub", snapshots=snapshots).stdout.split()[0] == "a" * 64
    missing = pick("state", "latest", "new-hub", snapshots=snapshots)
    assert missing.returncode != 0 and "no backup of new-hub (backups of: hub, other)" in missing.stderr
    assert (
        "no backup of the hub's state has the id dddddddd"
        in pick("state", "dddddddd", "hub", snapshots=snapshots).stderr
    )


def home(snapshot_id: str, user: str, run: str = "1") -> dict:
    return {"id": snapshot_id * 8, "short_id": snapshot_id, "tags": ["jupyterhub-home", f"user-{user}", f"run-{run}"]}


@pytest.mark.parametrize(
    ("homes", "count", "message"),
    [
        ([home("aaaaaaaa", "alice")], "2", "the backup holds 2 homes, the repository 1"),
        ([home("aaaaaaaa", "../root")], "1", "is not one user's home"),
        ([home("aaaaaaaa", "alice"), home("bbbbbbbb", "alice")], "2", "is not one user's home"),
    ],
)
def test_a_restore_takes_a_run_s_homes_whole_or_not_at_all(homes, count, message):
    result = pick("homes", count, snapshots=homes)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_a_restore_lists_each_home_of_the_run():
    result = pick("homes", "2", snapshots=[home("bbbbbbbb", "bob"), home("aaaaaaaa", "alice")])
    assert result.stdout.splitlines() == [f"{'a' * 64} alice", f"{'b' * 64} bob"]


def test_the_homes_of_a_run_that_never_stored_its_state_are_orphans():
    snapshots = [state("aaaaaaaa", "hub", "1"), home("bbbbbbbb", "alice", "1"), home("cccccccc", "alice", "2")]
    assert pick("orphans", snapshots=snapshots).stdout.split() == ["c" * 64]
