"""Sharing on a real hub with per-user subdomains (jh_sharing, jh_collaboration, issue 26).

SKETCH, NEVER RUN: written beside the settings and the hub's part, before the fixture it needs
exists. It is not in tests/e2e.sh. It assumes a fixture ``subs_hub``: a deployed Host (conftest's)
with jh_user_subdomains on, ``.domain`` (e.g. jhd-test-subs.test, its wildcard resolved by the
test's resolver), ``.ca_bundle``, jh_sharing and jh_collaboration on, and the people of PEOPLE
in jh_users with these passwords; bob and carol in jh_groups' "pairs".

Alice shares her server with bob read-only through the hub's API with her server's own token (as
docs/sharing.md tells her to, from a terminal of her JupyterLab): bob reads her notebook and can
neither change it nor run code; carol cannot open it; the group pairs gets execution and carol
runs code; alice withdraws bob's share and, within the servers' cache (30 s), bob is refused.

Tests run in file order on one host."""

from __future__ import annotations

import time

import pytest

from tasks import layout
from tests.e2e.hub_client import HubClient

PEOPLE = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}
NOTEBOOK = {
    "cells": [{"cell_type": "markdown", "metadata": {}, "source": "alice's notes"}],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}
# The servers' cache of the hub's answers about a token (tasks/server_config.py), and some margin.
CACHE_SECONDS = 35


def scopes(level: str) -> list[str]:
    return ["access:servers!server=alice/", f"custom:jupyter_server:{level}:*!server=alice/"]


@pytest.fixture(scope="module")
def people(subs_hub) -> dict[str, HubClient]:
    """Each person logged in at the hub's domain, with an API token of theirs."""
    clients = {}
    for name, password in PEOPLE.items():
        client = HubClient(f"https://{subs_hub.domain}", verify=subs_hub.ca_bundle)
        assert client.login(name, password).status_code == 302, subs_hub.journal()
        client.create_token()
        clients[name] = client
    clients["alice"].start_server()
    return clients


def at_alice(subs_hub, people, name: str, method: str, path: str, **kwargs):
    """A request to alice's server, on her subdomain, with name's token."""
    server = HubClient(f"https://alice.{subs_hub.domain}", verify=subs_hub.ca_bundle)
    server.token = people[name].token
    return server.api(method, f"/user/alice{path}", **kwargs)


def server_token(subs_hub) -> str:
    """The token of alice's server, as a terminal of her JupyterLab sees it."""
    unit_pid = subs_hub.sh(f"systemctl show -p MainPID --value {layout.USER_UNIT_PREFIX}alice.service").strip()
    environ = subs_hub.sh(f"tr '\\0' '\\n' < /proc/{unit_pid}/environ")
    return next(line.split("=", 1)[1] for line in environ.splitlines() if line.startswith("JUPYTERHUB_API_TOKEN="))


def share(subs_hub, token: str, method: str, body: dict | None = None):
    hub = HubClient(f"https://{subs_hub.domain}", verify=subs_hub.ca_bundle)
    hub.token = token
    return hub.api(method, "/hub/api/shares/alice/", json=body)


def test_alice_s_notebook_is_hers_alone_before_she_shares(subs_hub, people):
    put = at_alice(
        subs_hub, people, "alice", "PUT", "/api/contents/notes.ipynb", json={"type": "notebook", "content": NOTEBOOK}
    )
    assert put.status_code in (200, 201), put.text
    for name in ("bob", "carol"):
        assert at_alice(subs_hub, people, name, "GET", "/api/contents/notes.ipynb").status_code == 403, name


def test_alice_shares_read_only_with_bob_from_her_server(subs_hub, people):
    response = share(subs_hub, server_token(subs_hub), "POST", {"user": "bob", "scopes": scopes("read")})
    assert response.status_code == 200, response.text
    read = at_alice(subs_hub, people, "bob", "GET", "/api/contents/notes.ipynb")
    assert read.status_code == 200 and read.json()["content"]["cells"][0]["source"] == "alice's notes"
    # He can neither change it, nor start a kernel, nor open a terminal.
    changed = at_alice(
        subs_hub, people, "bob", "PUT", "/api/contents/notes.ipynb", json={"type": "notebook", "content": NOTEBOOK}
    )
    assert changed.status_code == 403
    assert at_alice(subs_hub, people, "bob", "POST", "/api/kernels", json={}).status_code == 403
    assert at_alice(subs_hub, people, "bob", "POST", "/api/terminals", json={}).status_code == 403
    # Nor join the notebook's collaborative editing (that writes it).
    session = at_alice(
        subs_hub,
        people,
        "bob",
        "PUT",
        "/api/collaboration/session/notes.ipynb",
        json={"format": "json", "type": "notebook"},
    )
    assert session.status_code == 403
    # carol, not shared with, is refused.
    assert at_alice(subs_hub, people, "carol", "GET", "/api/contents/notes.ipynb").status_code == 403


def test_a_group_with_execution_runs_code_in_alice_s_server(subs_hub, people):
    response = share(subs_hub, people["alice"].token, "POST", {"group": "pairs", "scopes": scopes("execute")})
    assert response.status_code == 200, response.text
    kernel = at_alice(subs_hub, people, "carol", "POST", "/api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    at_alice(subs_hub, people, "carol", "DELETE", f"/api/kernels/{kernel.json()['id']}")
    # The collaboration is on (jh_collaboration): carol may join the notebook's room.
    session = at_alice(
        subs_hub,
        people,
        "carol",
        "PUT",
        "/api/collaboration/session/notes.ipynb",
        json={"format": "json", "type": "notebook"},
    )
    assert session.status_code in (200, 201), session.text


def test_the_admins_and_alice_see_who_shares_what(subs_hub, people):
    listed = share(subs_hub, people["alice"].token, "GET").json()["items"]
    assert sorted((item["kind"], (item["user"] or item["group"])["name"]) for item in listed) == [
        ("group", "pairs"),
        ("user", "bob"),
    ]


def test_withdrawn_bob_is_refused(subs_hub, people):
    response = share(subs_hub, people["alice"].token, "PATCH", {"user": "bob", "scopes": scopes("read")})
    assert response.status_code == 200, response.text
    time.sleep(CACHE_SECONDS)
    assert at_alice(subs_hub, people, "bob", "GET", "/api/contents/notes.ipynb").status_code == 403
    # The group's share is untouched.
    assert at_alice(subs_hub, people, "carol", "GET", "/api/contents/notes.ipynb").status_code == 200
