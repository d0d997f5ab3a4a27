"""jh_db_url: the hub server's own PostgreSQL, refused in any other form."""

from __future__ import annotations

import shlex

import pytest

from tasks.facts import PostgresDatabase
from tasks.ops import render
from tasks.settings import Settings, SettingsError
from tests.unit.test_templates import hub_data_of


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://hub:secret@db.example.org/jupyterhub",
        "postgresql:///jupyterhub;drop",
        "postgresql:///Jupyterhub",
        "postgresql:///jupyterhub\n",
        "postgresql:///jupyter-hub",
        "sqlite:///jupyterhub.sqlite",
        "postgresql:///",
    ],
)
def test_only_a_local_postgresql_database_of_a_plain_name_is_taken(url):
    with pytest.raises(SettingsError, match="jh_db_url"):
        Settings.from_data({"jh_db_url": url})


@pytest.mark.parametrize("name", ["postgres", "template0", "template1"])
def test_postgresqls_own_databases_are_refused(name):
    with pytest.raises(SettingsError, match="PostgreSQL's own database"):
        Settings.from_data({"jh_db_url": f"postgresql:///{name}"})


def test_the_hub_reaches_its_database_on_the_socket_and_waits_for_postgresql(tmp_path):
    settings = Settings.from_data({"jh_db_url": "postgresql:///hubdb"})
    assert settings.hub_database == "postgresql:hubdb"
    assert hub_data_of(settings)["database"]["url"] == "postgresql+psycopg:///hubdb?host=/var/run/postgresql"
    unit = render("jupyterhub.service.j2", settings, proxy_service="jupyterhub-proxy.service")
    assert "After=network.target jupyterhub-proxy.service postgresql.service" in unit
    assert "Wants=jupyterhub-proxy.service postgresql.service" in unit


def test_without_it_the_hub_keeps_sqlite(tmp_path):
    settings = Settings.from_data({})
    assert settings.hub_database == "/opt/jupyter/state/jupyterhub.sqlite"
    assert hub_data_of(settings)["database"]["url"] == "sqlite:////opt/jupyter/state/jupyterhub.sqlite"
    assert "postgresql" not in render("jupyterhub.service.j2", settings, proxy_service="jupyterhub-proxy.service")


def test_the_database_fact_reads_the_role_and_the_owner():
    fact = PostgresDatabase()
    assert fact.process(["role:jupyter", "owner:jupyter"]) == {"role": "jupyter", "owner": "jupyter"}
    assert fact.process(["role:jupyter"]) == {"role": "jupyter", "owner": None}
    assert fact.default() == {"role": None, "owner": None}
    words = shlex.split(fact.command("jupyter", "jupyterhub"))
    assert any("where rolname = 'jupyter'" in word and "datname = 'jupyterhub'" in word for word in words)
