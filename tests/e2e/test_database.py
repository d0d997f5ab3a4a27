"""The hub's database in the hub server's own PostgreSQL (jh_db_url), on Ubuntu 24.04: logins and
servers, an upgrade whose migration fails put back from the copy made first, one that succeeds, a
downgrade refused before the hub stops, and a backup restored. Tests run in file order on one host."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import USERS, plain_hub, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient

DATABASE = "jupyterhub"


def deploy(host, workdir, name: str, entry: str = "deploy.py", **overrides):
    settings = plain_hub(host, jh_db_url=f"postgresql:///{DATABASE}", **overrides)
    return run_pyinfra(write_inventory(workdir / f"{name}.py", [(host.name, settings)]), deploy=entry)


def sql(host, query: str, database: str = DATABASE) -> str:
    return host.sh(f'runuser -u postgres -- psql -XtAq -d {database} -c "{query}"').strip()


def token_owner(host, token: str) -> str | None:
    response = requests.get(
        f"http://{host.address}:8000/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=10
    )
    return response.json()["name"] if response.status_code == 200 else None


def hub_version(host) -> str:
    return requests.get(f"http://{host.address}:8000/hub/api/", timeout=10).json()["version"]


@pytest.fixture(scope="module")
def pg(start, workdir):
    host = start("noble", "jhd-test-postgresql")
    result = deploy(host, workdir, "pg", jh_server_release="jupyterhub-5")
    assert result.returncode == 0, result.stderr[-6000:]
    return host


def test_the_hub_keeps_its_users_in_postgresql(pg):
    alice = HubClient(f"http://{pg.address}:8000")
    assert alice.login("alice", USERS["alice"]).status_code == 302, pg.journal()
    pg.token = alice.create_token()
    alice.start_server()
    assert alice.run_code("print(6 * 7)").strip() == "42"
    assert sql(pg, "select name from users order by name") == "alice"
    assert sql(pg, "select pg_get_userbyid(datdba) from pg_database where datname = 'jupyterhub'", "postgres") == (
        "jupyter"
    )
    assert pg.sh("ls /opt/jupyter/state").split().count("jupyterhub.sqlite") == 0
    # The hub's role may not make roles or databases, nor is it a superuser.
    assert sql(pg, "select rolsuper, rolcreatedb, rolcreaterole from pg_roles where rolname = 'jupyter'") == "f|f|f"


def test_a_rerun_changes_nothing(pg, workdir):
    result = deploy(pg, workdir, "pg-rerun", jh_server_release="jupyterhub-5")
    assert result.totals["success"] == 0, result.changed_operations()


def test_a_failed_migration_puts_the_copy_back(pg, workdir):
    """A column 6.1's last migration adds is there already: the migration fails after the ones before
    it were committed, and the database is put back from the copy made before it."""
    sql(pg, "alter table spawners add column display_name text")
    version = sql(pg, "select version_num from alembic_version")
    result = deploy(pg, workdir, "pg-upgrade-fails")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "upgrade failed at: migrating the database (hubside-migrate); rolling back to" in output, output[-3000:]
    assert "rolled back: the hub runs on" in output
    assert "differs from the pre-upgrade copy" not in output
    assert hub_version(pg) == "5.5.4"
    assert sql(pg, "select version_num from alembic_version") == version
    assert token_owner(pg, pg.token) == "alice"
    sql(pg, "alter table spawners drop column display_name")


def test_an_upgrade_copies_the_database_first_and_migrates_it(pg, workdir):
    before = sql(pg, "select version_num from alembic_version")
    result = deploy(pg, workdir, "pg-upgrade")
    assert result.returncode == 0, result.stderr[-6000:]
    assert hub_version(pg) == "6.1.1"
    assert sql(pg, "select version_num from alembic_version") != before
    # The failed attempt's copy and this one's: the newest is from before this upgrade.
    copies = sql(pg, "select datname from pg_database where datname like 'jupyterhub_before_%'", "postgres").split()
    assert sql(pg, "select version_num from alembic_version", max(copies)) == before
    assert token_owner(pg, pg.token) == "alice"


def test_going_back_past_the_schema_is_refused_before_the_hub_stops(pg, workdir):
    """5.5 does not know 6's schema (read from PostgreSQL by 5.5's migrator): nothing changes."""
    version = sql(pg, "select version_num from alembic_version")
    hub_pid = pg.sh("systemctl show -p MainPID --value jupyterhub").strip()
    result = deploy(pg, workdir, "pg-downgrade", jh_server_release="jupyterhub-5")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "refused: the hub's database is at a newer JupyterHub's schema" in output, output[-3000:]
    assert pg.sh("systemctl show -p MainPID --value jupyterhub").strip() == hub_pid
    assert hub_version(pg) == "6.1.1"
    assert sql(pg, "select version_num from alembic_version") == version
    assert token_owner(pg, pg.token) == "alice"


def test_a_backup_is_a_dump_and_a_restore_puts_it_back(pg, workdir):
    backups = workdir / "pg-backups"
    result = deploy(pg, workdir, "pg-backup", "tasks.backup.backup", jh_backup_dir=str(backups))
    assert result.returncode == 0, result.stderr[-6000:]
    [archive] = (backups / pg.name).glob("*.tar.gz")
    # After the backup, alice's token goes; the restore brings it back.
    sql(pg, "delete from api_tokens")
    pg.sh("systemctl restart jupyterhub && /opt/jupyter/libexec/wait-healthy 90")
    assert token_owner(pg, pg.token) is None
    result = deploy(pg, workdir, "pg-restore", "tasks.backup.restore", jh_restore_archive=str(archive))
    assert result.returncode == 0, result.stderr[-6000:]
    assert token_owner(pg, pg.token) == "alice"
    assert sql(pg, "select pg_get_userbyid(relowner) from pg_class where relname = 'users'") == "jupyter"
    # The database it replaced is kept as a copy.
    assert (
        sql(pg, "select count(*) from pg_database where datname like 'jupyterhub_before_pre-restore-%'", "postgres")
        == "1"
    )
