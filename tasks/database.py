"""The hub's database in the hub server's own PostgreSQL, when jh_db_url asks for it.

The distribution's PostgreSQL; a role of the hub account's name (no superuser, no new databases
or roles) that logs in on the Unix socket by peer authentication (no password anywhere), owning
the database. Upgrades copy the database before migrating it (files/bin/switch-server-env) and
backups dump it (files/bin/archive-hub-state): as postgres, by name, never through a file of the
hub's. Without jh_db_url the hub keeps SQLite in its state folder.
"""

from __future__ import annotations

from pyinfra.operations import server

from tasks import layout
from tasks.facts import PostgresDatabase
from tasks.ops import command, packages, service
from tasks.settings import Settings, SettingsError
from tasks.snapshot import fact


def apply(settings: Settings) -> None:
    name = settings.postgresql_database
    if name is None:
        return
    hub = settings.hub_user
    found = fact(PostgresDatabase, role=hub, database=name)
    if found["owner"] not in (None, hub):
        raise SettingsError(
            f"jh_db_url: the database {name} exists and belongs to {found['owner']}, not to {hub}; "
            "choose another name (no host was changed)"
        )
    packages("PostgreSQL for the hub database", ["postgresql"])
    service("PostgreSQL running and enabled", layout.POSTGRESQL_SERVICE)
    as_postgres = ("runuser", "-u", "postgres", "--")
    if found["role"] is None:
        server.shell(
            name=f"PostgreSQL role {hub} (peer login on the socket; no superuser)",
            commands=[command(*as_postgres, "createuser", "--no-superuser", "--no-createdb", "--no-createrole", hub)],
        )
    if found["owner"] is None:
        server.shell(
            name=f"PostgreSQL database {name} of {hub}",
            commands=[command(*as_postgres, "createdb", f"--owner={hub}", name)],
        )
