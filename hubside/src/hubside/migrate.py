"""hubside-migrate: the hub database's migration to the schema of the JupyterHub installed beside
this package, with its seconds of Python imports out of the hub's downtime.

    hubside-migrate HUB_JSON

Started before the hub stops (files/bin/switch-server-env), it reads the database (hub.json's
database URL) and prints one line: `current` when the database is at this JupyterHub's schema
already (and ends: the hub refuses to start on a database behind its schema, so none is needed);
`unknown` when it is at a schema this JupyterHub does not know, a newer release's (and ends with
status 1: no migration goes back, the hub keeps running); else `ready`, once everything a
migration needs is loaded. Then it waits for a line on standard
input: `go` migrates (what `jupyterhub upgrade-db` does, without its second Python process), prints
`migrated` and ends; the end of input leaves the database alone. A failure ends it with status 1.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def database_revision(url: str) -> str | None:
    """The revision the database is stamped with, or None (no database, no stamp)."""
    import sqlalchemy

    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if not path.is_file():
            return None
        # Read-only: a missing or half-made file is not created or changed here.
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            if not sqlalchemy.inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(sqlalchemy.text("select version_num from alembic_version")).scalar()
    finally:
        engine.dispose()


def known(scripts, revision: str) -> bool:
    """Whether `revision` is one of the migration scripts' (else a newer JupyterHub's)."""
    try:
        return scripts.get_revision(revision) is not None
    except Exception:  # noqa: BLE001 (alembic's "can't locate revision" and its kin)
        return False


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: hubside-migrate HUB_JSON", file=sys.stderr)
        return 2
    url = json.loads(Path(args[0]).read_text())["database"]["url"]
    # JupyterHub's own migration scripts and alembic.ini, as upgrade-db uses them; loading the
    # scripts (to find the head) is most of a migration's start.
    import jupyterhub
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    # Imported now, not after "go": the scripts' env.py needs orm, and imports jupyterhub.app (its
    # second of imports) whenever jupyterhub is imported.
    from jupyterhub import app, dbutil, orm  # noqa: F401

    with tempfile.TemporaryDirectory() as folder:
        ini = str(Path(folder) / "alembic.ini")
        dbutil.write_alembic_ini(ini, url)
        config = Config(ini)
        scripts = ScriptDirectory.from_config(config)
        head = scripts.get_current_head()
        try:
            current = database_revision(url)
        except Exception as error:  # noqa: BLE001 (unreadable: migrate, and let alembic say why)
            print(f"hubside-migrate: the database cannot be read: {error}", file=sys.stderr)
            current = None
        if current is not None and not known(scripts, current):
            print("unknown", flush=True)
            print(
                f"hubside-migrate: the database is at {current}, a schema JupyterHub {jupyterhub.__version__}"
                " does not know (a newer release made it)",
                file=sys.stderr,
            )
            return 1
        print("current" if current == head else "ready", flush=True)
        if current == head or sys.stdin.readline().strip() != "go":
            return 0
        try:
            command.upgrade(config, "head")
        except Exception as error:  # noqa: BLE001 (any failure: the caller rolls back)
            print(f"hubside-migrate: the migration to {head} failed: {error}", file=sys.stderr)
            return 1
    print("migrated", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
