"""hubside-migrate: the database's migration to the pinned JupyterHub's schema, with JupyterHub's
real migration scripts on real SQLite databases."""

from __future__ import annotations

import io
import json
import sqlite3
import tempfile
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from jupyterhub import dbutil, orm

from hubside import migrate

# JupyterHub 5.5's schema (the newest revision it ships); the pinned 6.1 has four more.
JUPYTERHUB_5_HEAD = "be8ecf03ddac"


def revision(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return connection.execute("select version_num from alembic_version").fetchone()[0]


def run(tmp_path, database: Path, monkeypatch, stdin: str) -> tuple[int, str]:
    hub_json = tmp_path / "hub.json"
    hub_json.write_text(json.dumps({"database": {"url": f"sqlite:///{database}"}}))
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    return migrate.main([str(hub_json)]), out.getvalue()


@pytest.fixture
def hub_database(tmp_path) -> Path:
    """A database the pinned JupyterHub made (at its schema), with a user in it."""
    database = tmp_path / "jupyterhub.sqlite"
    session = orm.new_session_factory(f"sqlite:///{database}")()
    session.add(orm.User(name="alice"))
    session.commit()
    session.close()
    return database


def downgrade(database: Path, to: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        ini = str(Path(folder) / "alembic.ini")
        dbutil.write_alembic_ini(ini, f"sqlite:///{database}")
        command.downgrade(Config(ini), to)


def test_a_database_at_the_schema_is_current_and_nothing_is_read_from_input(tmp_path, hub_database, monkeypatch):
    head = revision(hub_database)
    assert run(tmp_path, hub_database, monkeypatch, "go\n") == (0, "current\n")
    assert revision(hub_database) == head


def test_a_database_behind_waits_for_go_then_migrates_and_keeps_its_rows(tmp_path, hub_database, monkeypatch):
    head = revision(hub_database)
    downgrade(hub_database, JUPYTERHUB_5_HEAD)
    # The end of input (the upgrade rolled back before the migration): nothing changes.
    assert run(tmp_path, hub_database, monkeypatch, "") == (0, "ready\n")
    assert revision(hub_database) == JUPYTERHUB_5_HEAD
    assert run(tmp_path, hub_database, monkeypatch, "go\n") == (0, "ready\nmigrated\n")
    assert revision(hub_database) == head
    with sqlite3.connect(hub_database) as connection:
        assert connection.execute("select name from users").fetchall() == [("alice",)]


def test_a_migration_that_fails_ends_with_status_1(tmp_path, hub_database, monkeypatch, capsys):
    downgrade(hub_database, JUPYTERHUB_5_HEAD)
    with sqlite3.connect(hub_database) as connection:
        # What 6.1's migration adds is there already: its ALTER TABLE fails.
        connection.execute("alter table spawners add column display_name text")
    status, out = run(tmp_path, hub_database, monkeypatch, "go\n")
    assert (status, out) == (1, "ready\n")
    assert "the migration to" in capsys.readouterr().err
    assert revision(hub_database) != "f460b0348206"


def test_a_newer_release_s_schema_is_refused_before_anything(tmp_path, hub_database, monkeypatch, capsys):
    with sqlite3.connect(hub_database) as connection:
        connection.execute("update alembic_version set version_num = 'a1b2c3d4e5f6'")
    assert run(tmp_path, hub_database, monkeypatch, "go\n") == (1, "unknown\n")
    assert "a1b2c3d4e5f6, a schema JupyterHub" in capsys.readouterr().err
    assert revision(hub_database) == "a1b2c3d4e5f6"


def test_no_database_is_never_created(tmp_path, monkeypatch):
    missing = tmp_path / "missing.sqlite"
    assert run(tmp_path, missing, monkeypatch, "") == (0, "ready\n")
    assert not missing.exists()
