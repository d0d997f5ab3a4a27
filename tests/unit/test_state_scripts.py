"""The scripts that handle the hub's state, their layout file and their library (files/bin/hub-state.sh),
run here on a scratch install root: systemctl, runuser, curl and journalctl are fakes on PATH that
log what they are asked, and the venvs' `jupyterhub upgrade-db` marks the database (or fails)."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from tasks import layout
from tasks.hub_package import PACKAGE
from tasks.ops import SCRIPTS
from tasks.settings import Settings

HUBSIDE_SRC = PACKAGE / "src"
FAKES = {
    "systemctl": 'echo "systemctl $*" >>"$FAKES/log"\n'
    'case $1 in is-active) [ -e "$FAKES/active" ] ;; *) [ ! -e "$FAKES/fail-$1" ] ;; esac\n',
    "runuser": '[ "$1" = -u ] || exit 2\nuser=$2\nshift 3\necho "runuser $user $*" >>"$FAKES/log"\nexec "$@"\n',
    "curl": '[ -e "$FAKES/healthy" ]\n',
    "journalctl": 'echo "(the hub\'s journal)"\n',
    "logger": 'echo "logger $*" >>"$FAKES/log"\n',
}
# A server venv's jupyterhub: upgrade-db (run in the state folder) migrates by adding a row.
JUPYTERHUB = f"""#!{sys.executable}
import os, sqlite3, sys
if sys.argv[1:2] == ["upgrade-db"]:
    with sqlite3.connect("jupyterhub.sqlite") as db:
        db.execute("insert into t values ('migrated')")
    sys.exit(os.path.exists(os.path.join(os.environ["FAKES"], "fail-upgrade-db")))
"""

# The hub package's migrator: "current" (FAKES/schema-current) or "ready", then on "go" the same
# migration, from hub.json's database URL (it runs in /), and "migrated" once it is done.
MIGRATE = f"""#!{sys.executable}
import json, os, sqlite3, sys
with open(os.path.join(os.environ["FAKES"], "log"), "a") as log:
    print("hubside-migrate", *sys.argv[1:], file=log)
if os.path.exists(os.path.join(os.environ["FAKES"], "schema-current")):
    sys.exit(print("current"))
if os.path.exists(os.path.join(os.environ["FAKES"], "schema-unknown")):
    sys.exit(print("unknown") or 1)
print("ready", flush=True)
if sys.stdin.readline() == "go\\n":
    url = json.load(open(sys.argv[1]))["database"]["url"]
    with sqlite3.connect(url[len("sqlite:///"):]) as db:
        db.execute("insert into t values ('migrated')")
    if os.path.exists(os.path.join(os.environ["FAKES"], "fail-upgrade-db")):
        sys.exit(1)
    print("migrated", flush=True)
"""


@dataclass
class Host:
    root: Path
    libexec: Path
    state: Path
    fakes: Path

    def run(self, script: str, *args, fakes: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, FAKES=str(self.fakes))
        if fakes:
            env["PATH"] = f"{self.fakes / 'bin'}:{env['PATH']}"
        argv = [str(self.libexec / script), *map(str, args)]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)

    def calls(self) -> list[str]:
        log = self.fakes / "log"
        return log.read_text().splitlines() if log.exists() else []

    def rows(self, database: Path | None = None) -> list[str]:
        with sqlite3.connect(database or self.state / layout.DATABASE) as db:
            return [row[0] for row in db.execute("select v from t")]

    def venv(self) -> str:
        return os.readlink(self.root / ".venv")


@pytest.fixture
def hub(tmp_path) -> Host:
    """An install root with the scripts and their layout.env in libexec, two server venvs (old in
    use), a SQLite database holding one row, the secrets and the config; the hub runs and answers."""
    root = tmp_path / "opt-jupyter"
    settings = Settings().model_copy(update={"install_root": PurePosixPath(root), "public_port": 9})
    host = Host(root, root / "libexec", root / "state", tmp_path / "fakes")
    shutil.copytree(SCRIPTS, host.libexec)
    (host.libexec / layout.LAYOUT_ENV).write_text(layout.layout_env(settings))
    (host.libexec / layout.LAYOUT_ENV).chmod(0o644)
    (host.fakes / "bin").mkdir(parents=True)
    for name, body in FAKES.items():
        (host.fakes / "bin" / name).write_text(f"#!/bin/sh\n{body}")
        (host.fakes / "bin" / name).chmod(0o755)
    for env in ("old", "new"):
        (root / "envs" / env / "bin").mkdir(parents=True)
        (root / "envs" / env / "bin" / "jupyterhub").write_text(JUPYTERHUB)
        (root / "envs" / env / "bin" / "jupyterhub").chmod(0o755)
        (root / "envs" / env / "bin" / "python").symlink_to(sys.executable)
        # The hub package's tools the restore runs (standard library only: the controller's Python runs them).
        tools = (
            ("hubside-safe-extract", "extract"),
            ("hubside-merge-names", "names"),
            ("hubside-archive-state", "state_archive"),
        )
        (root / "envs" / env / "bin" / "hubside-migrate").write_text(MIGRATE)
        (root / "envs" / env / "bin" / "hubside-migrate").chmod(0o755)
        for tool, module in tools:
            script = root / "envs" / env / "bin" / tool
            function = "merge_main" if module == "names" else "main"
            script.write_text(
                f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(HUBSIDE_SRC)!r})\n"
                f"from hubside.{module} import {function}\n{function}()\n"
            )
            script.chmod(0o755)
    (root / ".venv").symlink_to(root / "envs" / "old")
    (root / "jupyterhub_config.py").write_text("c = get_config()\n")
    (root / "hub.json").write_text(f'{{"database": {{"url": "sqlite:///{host.state / layout.DATABASE}"}}}}\n')
    host.state.mkdir(mode=0o700)
    with sqlite3.connect(host.state / layout.DATABASE) as db:
        db.execute("create table t (v text)")
        db.execute("insert into t values ('v1')")
    for name in layout.SECRETS:
        (host.state / name).write_text(f"{name} of this host\n")
    (host.fakes / "active").touch()
    (host.fakes / "healthy").touch()
    return host


# The scripts that source hub-state.sh, and the shell's own variables they use.
STATE_SCRIPTS = ("hub-state.sh", "switch-server-env", "restore-hub-state", "archive-hub-state", "hub-database")
STATE_SCRIPTS += ("wait-healthy", "prune-server-envs")
SHELL_VARIABLES = {"PATH", "SECONDS", "EUID", "BASH_SOURCE"}


def test_every_name_the_state_scripts_read_is_in_layout_env():
    keys = {line.split("=", 1)[0] for line in layout.layout_env(Settings()).splitlines() if not line.startswith("#")}
    for name in STATE_SCRIPTS:
        text = (SCRIPTS / name).read_text()
        used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text)) - SHELL_VARIABLES
        assert used <= keys, (name, used - keys)
        assert name == "hub-state.sh" or '. "$(dirname "$0")/hub-state.sh"' in text


def test_wait_healthy_gives_up_after_its_time(hub):
    result = hub.run("wait-healthy", "1", fakes=False)
    assert result.returncode != 0 and "no answer from http://127.0.0.1:9/hub/health within 1 s" in result.stderr


@pytest.mark.parametrize("flaw", ["missing", "group-writable", "writable by others", "a link", "another's"])
def test_the_scripts_refuse_a_layout_others_could_have_written(hub, flaw):
    env_file = hub.libexec / layout.LAYOUT_ENV
    if flaw == "missing":
        env_file.unlink()
    elif flaw == "group-writable":
        env_file.chmod(0o664)
    elif flaw == "writable by others":
        env_file.chmod(0o646)
    elif flaw == "a link":
        env_file.rename(hub.root / "elsewhere.env")
        env_file.symlink_to(hub.root / "elsewhere.env")
    else:
        if os.geteuid() != 0:
            pytest.skip("only root can give a file to another user")
        os.chown(env_file, 65534, 65534)
    for script, args in (("hub-database", ["has-hub"]), ("switch-server-env", [hub.root / "envs" / "new"])):
        result = hub.run(script, *args)
        assert result.returncode != 0
        assert f"{env_file} is missing, or others than root may change it" in result.stderr
    assert hub.calls() == [] and hub.venv() == str(hub.root / "envs" / "old")


def test_an_upgrade_backs_up_switches_and_migrates(hub):
    new, old = hub.root / "envs" / "new", hub.root / "envs" / "old"
    (hub.root / "envs" / "older").mkdir()
    result = hub.run("switch-server-env", new)
    assert result.returncode == 0, result.stderr
    assert f"upgraded: {old} -> {new}" in result.stdout
    assert hub.venv() == str(new) and os.readlink(hub.root / ".venv.previous") == str(old)
    assert hub.rows() == ["v1", "migrated"]
    [backup] = (hub.state / "backups").iterdir()
    assert hub.rows(backup / layout.DATABASE) == ["v1"] and (backup / "jupyterhub_config.py").exists()
    # The venv no server runs and no rollback needs is gone.
    assert sorted(p.name for p in (hub.root / "envs").iterdir()) == ["new", "old"]
    calls = hub.calls()
    assert [c for c in calls if c.startswith("systemctl")] == [
        "systemctl is-active -q jupyterhub.service",
        "systemctl stop jupyterhub.service",
        "systemctl start jupyterhub.service",
    ]
    # Below the state folder, the hub user does the work.
    assert f"runuser jupyter install -d -m 700 {hub.state}/backups {backup}" in calls
    assert f"runuser jupyter cp -p {hub.state / layout.DATABASE} {backup}/" in calls
    assert hub.run("switch-server-env", new).returncode == 0 and len(hub.calls()) == len(calls)
    # The new environment's migrator, started before the hub stopped; each step's time, to the journal.
    assert calls.index(f"runuser jupyter {new}/bin/hubside-migrate {hub.root}/hub.json") < calls.index(
        "systemctl stop jupyterhub.service"
    )
    [times] = [c for c in calls if c.startswith("logger")]
    assert times.startswith(f"logger -t jupyterhub-upgrade -- upgrade {old} -> {new}: ")
    assert re.search(r"stopping the hub \d+ ms; .*; migrating the database \(hubside-migrate\) \d+ ms; ", times)
    assert re.search(r"; waiting for .* \d+ ms$", times)


def test_an_upgrade_to_the_schema_the_database_has_migrates_nothing(hub):
    (hub.fakes / "schema-current").touch()
    new = hub.root / "envs" / "new"
    result = hub.run("switch-server-env", new)
    assert result.returncode == 0, result.stderr
    assert hub.venv() == str(new) and hub.rows() == ["v1"]
    assert "migrating the database (none)" in result.stdout


def test_a_database_at_a_newer_schema_is_refused_with_the_hub_untouched(hub):
    (hub.fakes / "schema-unknown").touch()
    old = hub.root / "envs" / "old"
    result = hub.run("switch-server-env", hub.root / "envs" / "new")
    assert result.returncode == 1
    assert "refused: the hub's database is at a newer JupyterHub's schema" in result.stderr
    assert f"the hub keeps running on {old}" in result.stderr
    assert hub.venv() == str(old) and hub.rows() == ["v1"]
    assert [c for c in hub.calls() if c.startswith("systemctl")] == ["systemctl is-active -q jupyterhub.service"]


def test_a_new_environment_without_the_migrator_migrates_with_upgrade_db(hub):
    new = hub.root / "envs" / "new"
    (new / "bin" / "hubside-migrate").unlink()
    result = hub.run("switch-server-env", new)
    assert result.returncode == 0, result.stderr
    assert hub.venv() == str(new) and hub.rows() == ["v1", "migrated"]
    assert "migrating the database (upgrade-db)" in result.stdout


@pytest.mark.parametrize("step", ["stopping the hub", "creating", "migrating the database (hubside-migrate)"])
def test_an_upgrade_that_fails_rolls_back_to_the_same_database(hub, step):
    old = hub.root / "envs" / "old"
    if step == "stopping the hub":
        (hub.fakes / "fail-stop").touch()
    elif step == "creating":
        # The hub account planted a file where the backups go.
        (hub.state / "backups").write_text("")
    else:
        (hub.fakes / "fail-upgrade-db").touch()
    result = hub.run("switch-server-env", hub.root / "envs" / "new")
    assert result.returncode != 0
    assert f"upgrade failed at: {step}" in result.stderr
    assert f"; rolling back to {old}\n" in result.stderr
    assert f"rolled back: the hub runs on {old} again" in result.stderr
    assert "differs from the pre-upgrade copy" not in result.stderr
    assert hub.venv() == str(old) and not (hub.root / ".venv.previous").exists()
    assert hub.rows() == ["v1"]
    systemctl = [c for c in hub.calls() if c.startswith("systemctl")]
    assert systemctl[-2:] == ["systemctl stop jupyterhub.service", "systemctl start jupyterhub.service"]


def archive_of(hub) -> Path:
    staging = hub.root.parent / "staging"
    staging.mkdir(mode=0o700)
    archive = staging / "hub.tar.gz"
    result = hub.run("archive-hub-state", archive, "no")
    assert result.returncode == 0, result.stderr
    assert "archived the hub database, secrets and config" in result.stdout
    assert [p.name for p in staging.iterdir()] == ["hub.tar.gz"]
    return archive


def test_a_restore_brings_back_the_archive_s_database_and_secrets(hub):
    archive = archive_of(hub)
    with sqlite3.connect(hub.state / layout.DATABASE) as db:
        db.execute("update t set v = 'since'")
    for name in layout.SECRETS:
        (hub.state / name).write_text(f"{name} of another host\n")
    result = hub.run("restore-hub-state", archive)
    assert result.returncode == 0, result.stderr
    assert f"restored the hub's database and secrets from {archive}" in result.stdout
    assert hub.rows() == ["v1", "migrated"]
    for name in layout.SECRETS:
        host = "this" if name in layout.RESTORED_SECRETS else "another"
        assert (hub.state / name).read_text() == f"{name} of {host} host\n"
    [safety] = (hub.state / "backups").glob("pre-restore-*")
    assert hub.rows(safety / layout.DATABASE) == ["since"]
    assert [c for c in hub.calls() if c.startswith("systemctl")] == [
        "systemctl stop jupyterhub-idle-culler.service jupyterhub.service",
        "systemctl start jupyterhub.service",
        "systemctl start jupyterhub-idle-culler.service",
    ]
    assert not list(hub.state.glob(".restore-*"))


def test_a_restore_that_fails_rolls_back_to_the_previous_database(hub):
    archive = archive_of(hub)
    with sqlite3.connect(hub.state / layout.DATABASE) as db:
        db.execute("update t set v = 'since'")
    (hub.state / "jupyterhub_cookie_secret").write_text("the cookie secret since\n")
    (hub.fakes / "fail-upgrade-db").touch()
    result = hub.run("restore-hub-state", archive)
    assert result.returncode != 0
    assert "restore failed at: jupyterhub upgrade-db; bringing back the previous database and secrets" in result.stderr
    assert "rolled back: the hub runs on its previous database" in result.stderr
    assert hub.rows() == ["since"]
    assert (hub.state / "jupyterhub_cookie_secret").read_text() == "the cookie secret since\n"
    assert not list(hub.state.glob(".restore-*"))


FRAME = """#!/bin/bash
set -euo pipefail
. "$(dirname "$0")/hub-state.sh"
goodbye() { echo "cleaned up"; }
at_exit goodbye
put_back() { echo "put back"; }
undoable demo "putting it back" put_back
step "the first step"
true
step "the second step"
fails() { [ "$1" != frame ]; echo "after the step"; }
fails "$1"
committed
[ "$1" != after ]
echo "done"
"""


@pytest.mark.parametrize("fail", ["frame", "after", "nowhere"])
def test_the_rollback_frame_undoes_a_failure_between_undoable_and_committed(hub, fail):
    (hub.libexec / "frame").write_text(FRAME)
    (hub.libexec / "frame").chmod(0o755)
    started = time.monotonic()
    result = hub.run("frame", fail)
    assert result.stdout.endswith("cleaned up\n") and time.monotonic() - started < 10
    undone = "demo failed at: the second step; putting it back\n" in result.stderr
    if fail == "frame":
        # set -e ends the script inside a function too: the frame still undoes.
        assert result.returncode == 1 and undone and "put back" in result.stdout
        assert "after the step" not in result.stdout
        assert hub.calls() == ["systemctl stop jupyterhub.service"]
    else:
        assert not undone and "put back" not in result.stdout and hub.calls() == []
        assert result.returncode == (1 if fail == "after" else 0)
