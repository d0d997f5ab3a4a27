"""hubside-schema-current: whether the hub's database is already at the schema of the JupyterHub
installed beside this package.

    hubside-schema-current HUB_JSON

Exits 0 when the database (hub.json's database URL) is at the head revision of this JupyterHub's
migrations, 1 otherwise (behind, ahead, no database, or it cannot be read). switch-server-env asks
the new environment before it stops the hub and skips `jupyterhub upgrade-db` when it is: the hub
refuses to start on a database behind its schema, so skipping is safe, and it is seconds of the
hub's downtime. Only reads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def head_revision() -> str:
    """The newest revision of the migrations JupyterHub ships (what upgrade-db migrates to)."""
    import jupyterhub
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(jupyterhub.__file__).parent / "alembic"))
    return ScriptDirectory.from_config(config).get_current_head()


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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: hubside-schema-current HUB_JSON", file=sys.stderr)
        return 2
    url = json.loads(Path(args[0]).read_text())["database"]["url"]
    try:
        current = database_revision(url)
    except Exception as error:  # noqa: BLE001 (any failure: let upgrade-db run and say it)
        print(f"the database cannot be read: {error}", file=sys.stderr)
        return 1
    head = head_revision()
    print(f"database at {current}, this JupyterHub's schema at {head}")
    return 0 if current == head else 1


if __name__ == "__main__":
    sys.exit(main())
