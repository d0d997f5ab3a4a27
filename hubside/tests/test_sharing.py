"""Sharing (jh_sharing): the "sharing" sample's configuration, loaded by JupyterHub's own loader, in a
real hub with its API: alice shares her server with bob read-only, or with a group with execution,
from her browser's token or her server's own; carol may not; withdrawn, it is gone. What each
visitor's token at alice's server then holds, as the hub resolves it, is what hubside.sharing's
authorizer reads in that server."""

from __future__ import annotations

import io
import json
import os
import threading
from types import SimpleNamespace

import pytest
from jupyterhub import orm, roles, scopes
from jupyterhub.scopes import _resolve_requested_scopes
from tornado import web
from traitlets.config.loader import PyFileConfigLoader

from hubside import sharing
from tests.test_courses import call  # the hub's REST API as a token's holder

from .conftest import running_hub

READ = ["access:servers!server=alice/", f"{sharing.READ}!server=alice/"]
EXECUTE = ["access:servers!server=alice/", f"{sharing.EXECUTE}!server=alice/"]


@pytest.fixture
def sharing_hub(hub_files):
    config_file = hub_files("sharing")
    c = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
    # No host's PAM here: logins do not matter, the people are made by the tests.
    c.JupyterHub.authenticator_class = "dummy"
    return c


def test_the_hub_names_the_authorizer_s_scopes_and_lets_everyone_share_their_own(sharing_hub):
    c = sharing_hub
    assert set(c.JupyterHub.custom_scopes) == {sharing.READ, sharing.EXECUTE}
    user = next(role for role in c.JupyterHub.load_roles if role["name"] == "user")
    assert user["scopes"] == ["self", "shares!user", "read:users:name", "read:groups:name", f"{sharing.EXECUTE}!user"]
    # A course's staff do anything in its grader's server, as without sharing.
    grading = next(role for role in c.JupyterHub.load_roles if role["name"] == "ml-2026-grading")
    assert f"{sharing.EXECUTE}!user=grader-ml-2026" in grading["scopes"]
    assert "admin:servers!server" in c.Spawner.oauth_client_allowed_scopes
    # Nothing running in a server shares it on (a visitor with execution, a course's staff).
    assert not any(scope.startswith("shares") for scope in c.Spawner.server_token_scopes)
    # The server keeps what the default server role gives it (its activity, access to itself).
    assert {"users:activity!user", "access:servers!server"} <= set(c.Spawner.server_token_scopes)


async def visitor_scopes(hub, name: str, allowed: list[str]) -> set[str]:
    """The scopes of name's token at alice's server, as the server learns them from the hub's API
    (/hub/api/user, as HubAuth asks): granted at the OAuth (the server's client asks for allowed,
    !server being alice's default server), then held only as far as name's roles and shares give."""
    db = hub.app.db
    orm_user = orm.User.find(db, name)
    requested = {
        scope.replace("!server", "!server=alice/") if scope.endswith("!server") else scope for scope in allowed
    }
    client_id = "jupyterhub-user-alice"
    client = db.query(orm.OAuthClient).filter_by(
        identifier=client_id
    ).one_or_none() or hub.app.oauth_provider.add_client(
        client_id, "secret", "http://127.0.0.1/user/alice/oauth_callback", allowed_scopes=sorted(requested)
    )
    granted, _ = _resolve_requested_scopes(requested, scopes.get_scopes_for(orm_user), orm_user, client, db)
    token = orm_user.new_api_token(client_id=client_id, scopes=sorted(granted))
    response = await call(hub, "GET", "/user", token)
    assert response.code == 200, response.body
    return set(json.loads(response.body)["scopes"])


def may(scopes: set[str], action: str) -> bool:
    from jupyterhub.services.auth import check_scopes

    return bool(check_scopes(sharing.required_scopes(action, "alice", ""), scopes))


def test_alice_shares_read_only_with_bob_and_with_a_group_then_withdraws(sharing_hub):
    async def test(hub):
        tokens = {}
        for name in ("alice", "bob", "carol", "prof"):
            user = hub.user(name, admin=name == "prof")
            tokens[name] = user.new_api_token()
        alice = hub.app.users[orm.User.find(hub.app.db, "alice")]
        alice.spawner  # her default server, as once she started it  # noqa: B018
        group = orm.Group(name="pairs")
        hub.app.db.add(group)
        group.users = [orm.User.find(hub.app.db, "carol")]
        hub.app.db.commit()
        allowed = sharing_hub.Spawner.oauth_client_allowed_scopes

        # Before any share, bob may not even reach alice's server.
        assert not await visitor_scopes(hub, "bob", allowed) & set(READ)
        response = await call(hub, "POST", "/shares/alice/", tokens["alice"], {"user": "bob", "scopes": READ})
        assert response.code == 200, response.body
        bob = await visitor_scopes(hub, "bob", allowed)
        assert "access:servers!server=alice/" in bob
        assert may(bob, "read") and not may(bob, "write") and not may(bob, "execute")
        # The owner and the admins do anything; carol (no share) nothing.
        for name in ("alice", "prof"):
            assert may(await visitor_scopes(hub, name, allowed), "execute"), name
        assert not may(await visitor_scopes(hub, "carol", allowed), "read")
        # carol cannot share alice's server, nor see its shares.
        response = await call(hub, "POST", "/shares/alice/", tokens["carol"], {"user": "carol", "scopes": READ})
        assert response.code in (403, 404)
        assert (await call(hub, "GET", "/shares/alice/", tokens["carol"])).code in (403, 404)

        # A group, with execution: its members run code in alice's server.
        response = await call(hub, "POST", "/shares/alice/", tokens["alice"], {"group": "pairs", "scopes": EXECUTE})
        assert response.code == 200, response.body
        assert may(await visitor_scopes(hub, "carol", allowed), "execute")
        # The admins see who shares what.
        listed = json.loads((await call(hub, "GET", "/shares/alice/", tokens["prof"])).body)["items"]
        assert sorted(item["kind"] for item in listed) == ["group", "user"]

        # Withdrawn: bob's share is gone, and his token no longer reaches the server.
        response = await call(hub, "PATCH", "/shares/alice/", tokens["alice"], {"user": "bob", "scopes": READ})
        assert response.code == 200, response.body
        assert not may(await visitor_scopes(hub, "bob", allowed), "read")
        response = await call(hub, "DELETE", "/shares/alice/", tokens["alice"])
        assert response.code == 204, response.body
        assert not may(await visitor_scopes(hub, "carol", allowed), "read")

    running_hub(test, sharing_hub)


def test_a_server_s_own_token_shares_nothing(sharing_hub):
    """JUPYTERHUB_API_TOKEN of her server (Spawner.server_token_scopes, the subset alice holds), which
    whoever runs code there holds: it shares neither her server nor anyone's."""

    async def test(hub):
        hub.user("bob")
        alice = hub.app.users[hub.user("alice").orm_user]
        # As JupyterHub makes the token at a start (User.spawn): the requested scopes alice holds.
        requested = {f"{s}=alice/" if s.endswith("!server") else s for s in alice.spawner.server_token_scopes}
        have = roles.roles_to_scopes(roles.get_roles_for(alice.orm_user)) | {"inherit"}
        client = hub.app.db.query(orm.OAuthClient).filter_by(identifier="jupyterhub").one()
        granted, excluded = _resolve_requested_scopes(requested, have, alice.orm_user, client, hub.app.db)
        assert not excluded
        server_token = alice.new_api_token(scopes=granted)
        for owner, grantee in (("alice", "bob"), ("bob", "alice")):
            response = await call(hub, "POST", f"/shares/{owner}/", server_token, {"user": grantee, "scopes": READ})
            assert response.code in (403, 404), response.body
        # It reads its own server's shares (the authorizer's list), no one else's.
        assert (await call(hub, "GET", "/shares/alice/", server_token)).code == 200
        assert (await call(hub, "GET", "/shares/bob/", server_token)).code in (403, 404)

    running_hub(test, sharing_hub)


def test_the_authorizer_allows_each_action_by_the_visitor_s_level(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    monkeypatch.setenv("JUPYTERHUB_SERVER_NAME", "")
    authorizer = sharing.ShareAuthorizer.__new__(sharing.ShareAuthorizer)
    from jupyterhub.services.auth import check_scopes

    hub_auth = SimpleNamespace(
        oauth_scopes={"access:servers!server=alice/"},
        check_scopes=lambda required, user: check_scopes(required, set(user["scopes"])),
    )
    monkeypatch.setattr(sharing.ShareAuthorizer, "hub_auth", hub_auth)
    monkeypatch.setattr(sharing.ShareAuthorizer, "log", SimpleNamespace(debug=print, info=print), raising=False)
    listed = []  # the hub's list of alice's server's shares
    monkeypatch.setattr(sharing.ShareAuthorizer, "shares", lambda self, owner, server: listed)

    def allowed(scopes, action, path="/user/alice/api/contents/a.ipynb"):
        user = SimpleNamespace(username="bob", hub_user={"name": "bob", "scopes": scopes})
        handler = SimpleNamespace(request=SimpleNamespace(path=path))
        return authorizer.is_authorized(handler, user, action, "contents")

    assert allowed(READ, "read") and not allowed(READ, "write") and not allowed(READ, "execute")
    assert all(allowed(EXECUTE, action) for action in ("read", "write", "execute", "something-new"))
    assert not allowed(["access:servers!server=alice/"], "read")
    # Another server's level is not this one's, nor is a level without access to the server.
    assert not allowed(["access:servers!server=alice/", f"{sharing.EXECUTE}!server=alice/other"], "read")
    assert not allowed([f"{sharing.EXECUTE}!server=alice/"], "read")
    assert allowed(["access:servers!server=alice/", "admin:servers!server=alice/"], "execute")
    # A collaboration's room changes the document it holds: only for those who may write.
    room = "/user/alice/api/collaboration/room/json:notebook:1234"
    assert not allowed(READ, "read", room) and allowed(EXECUTE, "read", room)
    # Nor its timeline, which keeps a copy of the document in the server at each request.
    timeline = "/user/alice/api/collaboration/timeline/a.ipynb"
    assert not allowed(READ, "read", timeline) and allowed(EXECUTE, "read", timeline)
    assert os.environ["JUPYTERHUB_USER"] == "alice"

    # In the browser the visitor's token holds the share's access alone: the level is the hub's list's.
    listed += [
        {"user": {"name": "bob"}, "group": None, "scopes": [f"{sharing.READ}!server=alice/"]},
        {"user": None, "group": {"name": "pairs"}, "scopes": [f"{sharing.EXECUTE}!server=alice/"]},
    ]
    access = ["access:servers!server=alice/"]
    assert allowed(access, "read") and not allowed(access, "write")
    user = SimpleNamespace(username="carol", hub_user={"name": "carol", "scopes": access, "groups": ["pairs"]})
    assert authorizer.is_authorized(SimpleNamespace(request=SimpleNamespace(path="/")), user, "execute", "kernels")
    listed.clear()
    assert not allowed(access, "read")

    # Every handler, of any extension: a reader only reads (nbgrader's validate runs a notebook and
    # asks no authorizer; JupyterLab's settings and workspaces are written with PUT).
    def guarded(scopes, method, path, upgrade=""):
        user = SimpleNamespace(username="bob", hub_user={"name": "bob", "scopes": scopes})
        request = SimpleNamespace(method=method, path=path, headers={"Upgrade": upgrade} if upgrade else {})
        handler = SimpleNamespace(current_user=user, authorizer=authorizer, request=request)
        try:
            sharing.refuse_readers_beyond_reading(handler)
        except web.HTTPError as error:
            assert error.status_code == 403
            return False
        return True

    assert guarded(READ, "GET", "/user/alice/api/contents/a.ipynb")
    assert not guarded(READ, "POST", "/user/alice/assignments/validate")
    assert not guarded(READ, "PUT", "/user/alice/lab/api/settings/@jupyterlab/shortcuts-extension:shortcuts")
    assert not guarded(READ, "GET", "/user/alice/api/collaboration/room/x", upgrade="websocket")
    assert guarded(EXECUTE, "POST", "/user/alice/assignments/validate")
    assert guarded(["access:servers!server=alice/", "admin:servers!server=alice/"], "PUT", "/user/alice/lab/api/x")


def test_a_slow_hub_holds_up_only_the_first_list_of_shares(monkeypatch):
    """The list is asked for once at first; once old, it is renewed beside the requests, which get
    the list they had until the hub answers (a slow hub stalled the server's one event loop)."""
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    answers = [[{"user": {"name": "bob"}}], [{"user": {"name": "carol"}}]]
    asked, answering = [], threading.Event()

    class Response(io.BytesIO):
        def __enter__(self):
            return self

    def urlopen(request, timeout):
        asked.append(request.full_url)
        if len(asked) > 1:
            assert answering.wait(10)
        return Response(json.dumps({"items": answers[len(asked) - 1]}).encode())

    monkeypatch.setattr(sharing.urllib.request, "urlopen", urlopen)
    clock = [1000.0]
    monkeypatch.setattr(sharing, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    authorizer = sharing.ShareAuthorizer.__new__(sharing.ShareAuthorizer)
    monkeypatch.setattr(sharing.ShareAuthorizer, "log", SimpleNamespace(warning=print), raising=False)

    assert authorizer.shares("alice", "") == answers[0]  # waited for
    assert asked == ["http://127.0.0.1:8081/hub/api/shares/alice/?limit=1000"]
    clock[0] += sharing.SHARES_SECONDS - 1
    assert authorizer.shares("alice", "") == answers[0] and len(asked) == 1  # kept
    clock[0] += 1
    # Old: renewed beside the request, which does not wait for the (slow) hub; nor do the next ones.
    assert authorizer.shares("alice", "") == answers[0]
    assert authorizer.shares("alice", "") == answers[0]
    answering.set()
    authorizer._renewing.join(10)
    assert len(asked) == 2 and authorizer.shares("alice", "") == answers[1]
