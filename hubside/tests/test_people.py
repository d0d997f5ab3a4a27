"""hubside-people against the real hub's API, with the deploy's service token and its scopes."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from traitlets.config import Config

from hubside import people

from .conftest import running_hub

TOKEN = "deploy-service-token"


def deploy_service() -> Config:
    c = Config()
    c.JupyterHub.services = [{"name": "deploy", "api_token": TOKEN}]
    c.JupyterHub.load_roles = [{"name": "deploy", "scopes": ["admin:users", "admin:groups"], "services": ["deploy"]}]
    return c


async def tool(hub, *argv: str, monkeypatch) -> str:
    """hubside-people HUB_API ARGV..., in a thread (it blocks; the hub runs in this loop)."""
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)
    monkeypatch.setattr(sys, "argv", ["hubside-people", f"http://127.0.0.1:{hub.port}/hub/api", *argv])
    await asyncio.get_running_loop().run_in_executor(None, people.main)


def groups(hub) -> dict:
    from jupyterhub import orm

    hub.app.db.expire_all()
    return {group.name: sorted(user.name for user in group.users) for group in hub.app.db.query(orm.Group)}


def test_groups_are_kept_as_the_settings_say_and_a_hand_made_group_is_left_alone(monkeypatch, capsys):
    async def test(hub):
        from jupyterhub import orm

        hub.user("carol")
        hub.app.db.add(orm.Group(name="by-hand", users=[hub.app.db.query(orm.User).filter_by(name="carol").one()]))
        hub.app.db.commit()
        await tool(
            hub, "sync-groups", json.dumps({"ml-2026": ["alice", "bob"], "tas": ["carol"]}), monkeypatch=monkeypatch
        )
        assert groups(hub) == {"by-hand": ["carol"], "ml-2026": ["alice", "bob"], "tas": ["carol"]}
        capsys.readouterr()
        await tool(hub, "groups", monkeypatch=monkeypatch)
        assert json.loads(capsys.readouterr().out) == {"ml-2026": ["alice", "bob"], "tas": ["carol"]}
        # Members changed, a group dropped: only the deploy's own groups change.
        await tool(hub, "sync-groups", json.dumps({"ml-2026": ["bob", "dana"]}), monkeypatch=monkeypatch)
        assert groups(hub) == {"by-hand": ["carol"], "ml-2026": ["bob", "dana"]}

    running_hub(test, deploy_service())


def test_delete_user_removes_the_user_and_a_missing_one_is_no_error(monkeypatch):
    async def test(hub):
        from jupyterhub import orm

        hub.user("carol")
        await tool(hub, "delete-user", "carol", monkeypatch=monkeypatch)
        await tool(hub, "delete-user", "carol", monkeypatch=monkeypatch)
        hub.app.db.expire_all()
        assert hub.app.db.query(orm.User).filter_by(name="carol").first() is None

    running_hub(test, deploy_service())


def test_a_refused_call_stops_the_tool_saying_what_the_hub_said(monkeypatch):
    async def test(hub):
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "not-a-token")
        monkeypatch.setattr(sys, "argv", ["hubside-people", f"http://127.0.0.1:{hub.port}/hub/api", "groups"])
        with pytest.raises(SystemExit, match="hubside-people: GET /groups"):
            await asyncio.get_running_loop().run_in_executor(None, people.main)
        monkeypatch.setattr(sys, "argv", ["hubside-people", "http://x", "dance"])
        with pytest.raises(SystemExit, match="unknown command dance"):
            people.main()

    running_hub(test, deploy_service())
