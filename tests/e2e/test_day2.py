"""Day-2 operations on real Ubuntu 24.04 and Debian 12 hubs: upgrade 5.5 -> 6 with rollback,
status, backup and restore onto a fresh host, uninstall; around each root step, the privilege
boundary (tests/e2e/boundary.py). Tests run in file order on one host per release."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time

import pytest
import requests

from tests.e2e.boundary import Canaries
from tests.e2e.conftest import REPO, USERS, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient
from tests.e2e.polling import KeepAsking

# No nginx here (jh_domain unset): the proxy listens on the container's address.
WEB = ("jh_domain", "jh_services", "jh_acme_email", "jh_acme_directory_url")
ALEMBIC_VERSION = (
    '/opt/jupyter/.venv/bin/python -c "import sqlite3; print(sqlite3.connect('
    "'/opt/jupyter/state/jupyterhub.sqlite').execute('select version_num from alembic_version').fetchone()[0])\""
)


def settings_for(host, **overrides) -> dict:
    data = {key: value for key, value in host.data.items() if key not in WEB}
    return {
        **data,
        "jh_public_ip": "0.0.0.0",
        "jh_allow_public_http": True,
        "jh_nltk_packages": [],
        "jh_kernels": [{"name": "python3", "display_name": "Python 3", "packages": "minimal"}],
        **overrides,
    }


def deploy(host, workdir, name: str, entry: str = "deploy.py", *args: str, **overrides):
    inventory = write_inventory(workdir / f"{name}.py", [(host.name, settings_for(host, **overrides))])
    return run_pyinfra(inventory, *args, deploy=entry)


def hub_version(host) -> str:
    return requests.get(f"http://{host.address}:8000/hub/api/", timeout=10).json()["version"]


def logged_in(host, name: str = "alice") -> HubClient:
    user = HubClient(f"http://{host.address}:8000")
    response = user.login(name, USERS[name])
    assert response.status_code == 302, f"{name} cannot log in ({response.status_code}):\n{host.journal()}"
    return user


def token_owner(host, token: str) -> str | None:
    response = requests.get(
        f"http://{host.address}:8000/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=10
    )
    return response.json().get("name") if response.ok else None


# The releases, and the Python their server venv is built from.
SUITE_PYTHON = {"noble": "3.12", "bookworm": "3.11"}


# Both by default; tests/e2e.sh runs each in a session of its own.
DAY2_SUITES = os.environ.get("JHD_DAY2_SUITES", " ".join(SUITE_PYTHON)).split()


@pytest.fixture(scope="module", params=DAY2_SUITES)
def day2(request, start, workdir):
    """A hub on the previous JupyterHub release (5.5), with alice's API token."""
    host = start(request.param, f"jhd-test-day2-{request.param}")
    host.python = SUITE_PYTHON[request.param]
    result = deploy(host, workdir, "day2-5", jh_server_release="jupyterhub-5")
    assert result.returncode == 0, result.stderr[-4000:]
    assert hub_version(host) == "5.5.4"
    user = logged_in(host)
    host.token = user.create_token()
    host.sh("sudo -u alice sh -c 'echo her notes > /home/alice/notes.txt'")
    return host


def test_upgrade_that_fails_any_step_rolls_back_to_the_same_database(day2, workdir):
    """Each failure is real: the hub account planted a link where the backups go; then the hub
    cannot be stopped, the new release's hub does not start, or never answers (systemd drop-ins).
    Each undoes itself. (Not provoked: a failing `ln` or `upgrade-db`, the latter tested below.)"""
    canaries = Canaries(day2)
    schema_before = day2.sh(ALEMBIC_VERSION).strip()
    # A backup of the old release, for the restore test (an archive older than the hub).
    result = deploy(day2, workdir, "day2-backup-5", "tasks.backup.backup", jh_backup_dir=str(workdir / "backups-5"))
    assert result.returncode == 0, result.stderr[-3000:]
    [day2.old_archive] = (workdir / "backups-5" / day2.name).glob("*.tar.gz")
    canaries.plant("backups", directory=True)
    result = deploy(day2, workdir, "day2-6-planted")
    assert result.returncode != 0
    assert "upgrade failed at: creating" in result.stdout + result.stderr
    canaries.assert_unchanged()
    assert hub_version(day2) == "5.5.4"
    canaries.remove("backups")

    new_release = "readlink /opt/jupyter/.venv | grep -q jupyterhub-6"
    failures = {
        # The hub cannot be stopped ...
        "stopping the hub": "[Unit]\\nRefuseManualStop=yes",
        # ... the new release's hub does not start ...
        "starting the hub on": f'[Service]\\nExecStartPre=/bin/sh -c "! {new_release}"',
        # ... or starts but never answers.
        "waiting for": "[Service]\\nExecStart=\\nExecStart=/bin/sh -c "
        f'"if {new_release}; then exec sleep infinity; fi; exec /opt/jupyter/.venv/bin/hubside-hub'
        ' --config /opt/jupyter/jupyterhub_config.py"',
    }
    for step, drop_in in failures.items():
        day2.sh(
            "mkdir -p /etc/systemd/system/jupyterhub.service.d && printf '%b\\n' "
            f"'{drop_in}' > /etc/systemd/system/jupyterhub.service.d/fail.conf && systemctl daemon-reload"
        )
        try:
            result = deploy(day2, workdir, "day2-6-fails")
        finally:
            day2.sh("rm -rf /etc/systemd/system/jupyterhub.service.d && systemctl daemon-reload")
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert f"upgrade failed at: {step}" in output, output[-3000:]
        assert "rolled back: the hub runs on" in output and "differs from the pre-upgrade copy" not in output
        assert hub_version(day2) == "5.5.4"
        assert day2.sh(ALEMBIC_VERSION).strip() == schema_before
        assert token_owner(day2, day2.token) == "alice"
        canaries.assert_unchanged()


def test_upgrade_from_5_5_to_6_keeps_users_tokens_and_kernels(day2, workdir, capsys):
    schema_before = day2.sh(ALEMBIC_VERSION).strip()
    canaries = Canaries(day2)
    preview = deploy(day2, workdir, "day2-6", "deploy.py", "--dry")
    assert preview.returncode == 0, preview.stderr[-3000:]
    assert any(
        name.startswith("Switch the server environment to jupyterhub-6-") for name in preview.planned_operations()
    )
    assert "/jupyterhub-5-" in day2.sh("readlink /opt/jupyter/.venv")
    assert hub_version(day2) == "5.5.4"
    with KeepAsking(lambda: requests.get(f"http://{day2.address}:8000/hub/health", timeout=2).ok, 0.2) as health:
        result = deploy(day2, workdir, "day2-6")
    assert result.returncode == 0, result.stderr[-4000:]
    [steps] = day2.sh("journalctl -t jupyterhub-upgrade -o cat").strip().splitlines()[-1:]
    # 5.5 -> 6.1 changes the schema: migrated by the new environment's migrator, started before the hub stopped.
    assert "migrating the database (hubside-migrate)" in steps, steps
    with capsys.disabled():
        print(f"\n[upgrade 5.5.4 -> 6.1.1] the hub did not answer for {health.longest_outage(bool):.1f} s")
        print(f"[upgrade 5.5.4 -> 6.1.1] {steps.split(': ', 1)[1]}")
    assert hub_version(day2) == "6.1.1"
    assert day2.sh(ALEMBIC_VERSION).strip() != schema_before, "upgrade-db did not migrate the database"
    assert token_owner(day2, day2.token) == "alice"
    user = logged_in(day2)
    user.create_token()
    user.start_server()
    assert user.run_code("print(6*7)") == "42\n"
    canaries.assert_unchanged()
    # The database was backed up first (also by the attempts that rolled back); the
    # previous environment stays for a rollback.
    assert len(day2.sh("ls -d /opt/jupyter/state/backups/*/").split()) >= 1
    assert len(day2.sh("ls /opt/jupyter/envs").split()) == 2
    assert day2.sh("stat -c '%U %a' /opt/jupyter/state/backups").split() == ["jupyter", "700"]
    assert deploy(day2, workdir, "day2-6").totals["success"] == 0


def test_upgrade_that_cannot_be_built_leaves_the_hub_serving(day2, workdir, tmp_path):
    release = tmp_path / "unsatisfiable"
    release.mkdir()
    (release / "requirements.in").write_text("jupyterhub==99.0.0\n")
    (release / f"py{day2.python}.txt").write_text("jupyterhub==99.0.0\n")
    link = day2.sh("readlink /opt/jupyter/.venv")
    with KeepAsking(lambda: requests.get(f"http://{day2.address}:8000/hub/health", timeout=2).ok, 0.2) as health:
        result = deploy(day2, workdir, "day2-broken", jh_server_release=str(release))
    assert result.returncode != 0
    assert health.longest_outage(bool) == 0
    assert day2.sh("readlink /opt/jupyter/.venv") == link
    assert hub_version(day2) == "6.1.1"
    logged_in(day2)


def test_going_back_past_the_schema_is_refused_before_the_hub_stops(day2, workdir):
    """5.5 does not know 6's schema: its migrator says so before the hub stops, and nothing changes."""
    link = day2.sh("readlink /opt/jupyter/.venv")
    hub_pid = day2.sh("systemctl show -p MainPID --value jupyterhub").strip()
    result = deploy(day2, workdir, "day2-downgrade", jh_server_release="jupyterhub-5")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "refused: the hub's database is at a newer JupyterHub's schema" in output, output[-3000:]
    assert day2.sh("systemctl show -p MainPID --value jupyterhub").strip() == hub_pid, "the hub never stopped"
    assert day2.sh("readlink /opt/jupyter/.venv") == link
    assert hub_version(day2) == "6.1.1"
    assert token_owner(day2, day2.token) == "alice"
    logged_in(day2)


def test_status_shows_services_versions_and_user_servers(day2, workdir):
    user = logged_in(day2)
    user.create_token()
    # A fresh start: her server from the upgrade test outlived the hub's restarts, but it is idle
    # and the culler (60 s here) may stop it at any moment.
    user.stop_server()
    deadline = time.monotonic() + 60
    while user.server() is not None and time.monotonic() < deadline:
        time.sleep(1)
    user.start_server()
    inventory = write_inventory(workdir / "day2-status.py", [(day2.name, settings_for(day2))])
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", str(inventory), "tasks.status.show"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = " ".join(result.stdout.split())
    for line in (
        "service jupyterhub.service: active",
        "service jupyterhub-idle-culler.service: active",
        "JupyterHub: 6.1.1",
        f"server Python: {day2.python}",
        f"kernel python3: Python {day2.python}",
        "user servers: alice",
    ):
        assert line in printed, f"{line!r} missing from:\n{result.stdout}"


def test_backup_restores_users_tokens_and_homes_onto_a_fresh_host(day2, workdir, start, capsys):
    # The hub account replaced a secret by a link to a root-only file: a backup run by root
    # once copied that file into the archive. Now the hub user archives its state: the link
    # stays a link (which a restore refuses), and the file's content goes nowhere.
    canaries = Canaries(day2)
    secret = "/opt/jupyter/state/idle_culler.env"
    day2.sh(f"runuser -u jupyter -- cp -p {secret} {secret}.saved")
    canaries.plant("idle_culler.env")
    try:
        result = deploy(
            day2, workdir, "day2-backup-planted", "tasks.backup.backup", jh_backup_dir=str(workdir / "backups-planted")
        )
    finally:
        day2.sh(f"runuser -u jupyter -- mv -f {secret}.saved {secret}")
    assert result.returncode == 0, result.stderr[-3000:]
    [planted] = (workdir / "backups-planted" / day2.name).glob("*.tar.gz")
    with tarfile.open(planted) as outer, tarfile.open(fileobj=outer.extractfile("state.tar")) as state:
        assert state.getmember("idle_culler.env").issym()
        assert not any(b"canary" in state.extractfile(m).read() for m in state.getmembers() if m.isfile())
    canaries.assert_unchanged()

    backups = workdir / "backups"
    began = time.monotonic()
    result = deploy(
        day2, workdir, "day2-backup", "tasks.backup.backup", jh_backup_dir=str(backups), jh_backup_home_dirs=True
    )
    backup_seconds = time.monotonic() - began
    assert result.returncode == 0, result.stderr[-3000:]
    [archive] = (backups / day2.name).glob("*.tar.gz")
    # Secrets inside: private on the controller.
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    assert oct(archive.parent.stat().st_mode & 0o777) == "0o700"
    assert day2.sh("ls -A /var/backups/jupyterhub-deploy") == ""

    fresh = start(day2.target.suite, f"{day2.name}-restored")
    assert deploy(fresh, workdir, "day2-fresh").returncode == 0
    assert token_owner(fresh, day2.token) is None
    fresh_token = logged_in(fresh).create_token()
    refused = refused_archives(workdir, archive)
    for bad in refused:
        result = deploy(fresh, workdir, "day2-restore-bad", "tasks.backup.restore", jh_restore_archive=str(bad))
        assert result.returncode != 0 and "refusing" in result.stdout + result.stderr, bad.name
        assert token_owner(fresh, fresh_token) == "alice"
    # A restore that fails late (the database is not one: upgrade-db fails) brings the
    # previous state back.
    broken = archive_with_database(workdir, archive, b"not a database")
    result = deploy(fresh, workdir, "day2-restore-broken", "tasks.backup.restore", jh_restore_archive=str(broken))
    assert result.returncode != 0
    assert "restore failed at: jupyterhub upgrade-db" in result.stdout + result.stderr, result.stderr[-3000:]
    assert token_owner(fresh, fresh_token) == "alice" and token_owner(fresh, day2.token) is None
    # An archive of the older release is migrated to the installed one.
    result = deploy(
        fresh, workdir, "day2-restore-old", "tasks.backup.restore", jh_restore_archive=str(day2.old_archive)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert token_owner(fresh, day2.token) == "alice"
    assert fresh.sh(ALEMBIC_VERSION).strip() == day2.sh(ALEMBIC_VERSION).strip()
    fresh_canaries = Canaries(fresh)
    fresh_canaries.plant("jupyterhub.sqlite-wal", "jupyterhub.sqlite-shm")
    began = time.monotonic()
    result = deploy(fresh, workdir, "day2-restore", "tasks.backup.restore", jh_restore_archive=str(archive))
    restore_seconds = time.monotonic() - began
    assert result.returncode == 0, result.stderr[-3000:]
    with capsys.disabled():
        print(f"\n[backup] {backup_seconds:.1f} s ({archive.stat().st_size} bytes); [restore] {restore_seconds:.1f} s")
    assert token_owner(fresh, day2.token) == "alice"
    fresh_canaries.assert_unchanged()
    # The database it replaced is kept.
    assert fresh.sh("ls /opt/jupyter/state/backups/pre-restore-*/jupyterhub.sqlite")
    logged_in(fresh)
    assert fresh.sh("stat -c '%U %a' /opt/jupyter/state/jupyterhub.sqlite").split() == ["jupyter", "600"]
    assert fresh.sh("stat -c %U /home/alice/notes.txt && cat /home/alice/notes.txt").split() == [
        "alice",
        "her",
        "notes",
    ]
    again = deploy(fresh, workdir, "day2-restore", "tasks.backup.restore", jh_restore_archive=str(archive))
    assert again.totals["success"] == 0, again.changed_operations()


def test_a_backup_through_sudo_stages_no_copy_where_others_can_read_it(day2, workdir):
    """pyinfra copies a file through a temporary one when it uses sudo; it must not be in /tmp."""
    day2.sh(
        "id deployer >/dev/null 2>&1 || (useradd -m -s /bin/bash deployer"
        " && echo 'deployer ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deployer && chmod 440 /etc/sudoers.d/deployer"
        " && install -d -o deployer -m 700 /home/deployer/.ssh"
        " && install -o deployer -m 600 /root/.ssh/authorized_keys /home/deployer/.ssh/)"
    )
    backups = workdir / "backups-sudo"
    result = deploy(
        day2,
        workdir,
        "day2-backup-sudo",
        "tasks.backup.backup",
        jh_backup_dir=str(backups),
        ssh_user="deployer",
        _sudo=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [archive] = (backups / day2.name).glob("*.tar.gz")
    with tarfile.open(archive) as opened:
        assert {"FORMAT", "state.tar", "jupyterhub_config.py"} <= set(opened.getnames())
    assert day2.sh("stat -c '%U %a' /home/deployer/.jupyterhub-deploy-transfer").split() == ["deployer", "700"]
    assert day2.sh("ls -A /home/deployer/.jupyterhub-deploy-transfer /tmp | grep pyinfra || true") == ""


def archive_with_database(workdir, archive, database: bytes):
    """A copy of a good archive whose hub state holds `database` as the database."""
    state = io.BytesIO()
    with tarfile.open(archive) as source:
        with (
            tarfile.open(fileobj=source.extractfile("state.tar")) as inner,
            tarfile.open(fileobj=state, mode="w") as out,
        ):
            for member in inner.getmembers():
                data = database if member.name == "jupyterhub.sqlite" else inner.extractfile(member).read()
                member.size = len(data)
                out.addfile(member, io.BytesIO(data))
        copy = workdir / "broken-database.tar.gz"
        with tarfile.open(copy, "w:gz") as target:
            for member in source.getmembers():
                if member.name == "state.tar":
                    member.size = len(state.getvalue())
                    target.addfile(member, io.BytesIO(state.getvalue()))
                else:
                    target.addfile(member, source.extractfile(member) if member.isfile() else None)
    return copy


def refused_archives(workdir, archive) -> list:
    """Copies of a good archive with a link, an absolute name and a `..` name added."""
    made = []
    for kind in ("link", "absolute", "dotdot"):
        bad = workdir / f"bad-{kind}.tar.gz"
        with tarfile.open(archive) as source, tarfile.open(bad, "w:gz") as target:
            for member in source.getmembers():
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
            extra = tarfile.TarInfo({"link": "homes/evil", "absolute": "/etc/evil", "dotdot": "homes/../../evil"}[kind])
            if kind == "link":
                extra.type, extra.linkname = tarfile.SYMTYPE, "/etc/shadow"
                target.addfile(extra)
            else:
                extra.size = 4
                target.addfile(extra, io.BytesIO(b"evil"))
        made.append(bad)
    return made


def test_uninstall_removes_the_hub_and_keeps_users_data(day2, workdir):
    canaries = Canaries(day2)
    canaries.plant("link-to-a-directory", directory=True)
    before = day2.snapshot("/etc", "/opt", exclude=("*.sqlite", "*.sqlite-*", "*.pid", "/etc/machine-id"))
    preview = deploy(day2, workdir, "day2-uninstall", "tasks.uninstall.remove", "--dry")
    assert preview.returncode == 0, preview.stderr[-3000:]
    assert "uninstall removes" in preview.stderr and "/etc/sudoers.d/jupyterhub" in preview.stderr
    assert day2.snapshot("/etc", "/opt", exclude=("*.sqlite", "*.sqlite-*", "*.pid", "/etc/machine-id")) == before

    result = deploy(day2, workdir, "day2-uninstall", "tasks.uninstall.remove")
    assert result.returncode == 0, result.stderr[-3000:]
    left = day2.sh(
        "ls /etc/systemd/system/jupyterhub* /etc/sudoers.d/jupyterhub /etc/pam.d/jupyterhub /opt/jupyter 2>&1 || true"
    )
    assert left.count("No such file") == 4, left
    assert day2.sh("getent passwd jupyter || echo gone").strip() == "gone"
    canaries.assert_unchanged()
    assert day2.sh("cat /home/alice/notes.txt").strip() == "her notes"
    day2.sh("visudo -c")

    again = deploy(day2, workdir, "day2-uninstall", "tasks.uninstall.remove")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.totals["success"] == 0, again.changed_operations()
    assert "nothing: the hub is not installed here" in again.stderr
