"""hubside-schema-current: upgrade-db is skipped only for a database already at the schema of the
JupyterHub in the new environment (the pinned lock's, here)."""

from __future__ import annotations

import json
import sqlite3

from jupyterhub import orm

from hubside import schema


def hub_json(tmp_path, url: str):
    path = tmp_path / "hub.json"
    path.write_text(json.dumps({"database": {"url": url}}))
    return str(path)


def test_a_database_the_hub_made_is_current_and_one_behind_is_not(tmp_path, capsys):
    database = tmp_path / "jupyterhub.sqlite"
    url = f"sqlite:///{database}"
    orm.new_session_factory(url)().close()
    assert schema.main([hub_json(tmp_path, url)]) == 0
    head = schema.head_revision()
    assert f"at {head}, this JupyterHub's schema at {head}" in capsys.readouterr().out
    with sqlite3.connect(database) as connection:
        connection.execute("update alembic_version set version_num = '99a28a4418e1'")
    assert schema.main([hub_json(tmp_path, url)]) == 1


def test_no_database_or_an_unreadable_one_means_upgrade_db_runs(tmp_path):
    missing = tmp_path / "missing.sqlite"
    assert schema.main([hub_json(tmp_path, f"sqlite:///{missing}")]) == 1
    assert not missing.exists(), "only reads"
    (tmp_path / "garbage.sqlite").write_bytes(b"not a database at all" * 100)
    assert schema.main([hub_json(tmp_path, f"sqlite:///{tmp_path / 'garbage.sqlite'}")]) == 1
    with sqlite3.connect(tmp_path / "unstamped.sqlite") as connection:
        connection.execute("create table users (id integer)")
    assert schema.main([hub_json(tmp_path, f"sqlite:///{tmp_path / 'unstamped.sqlite'}")]) == 1
