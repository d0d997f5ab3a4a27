"""Sharing on the hub of per-user origins (jh_sharing, jh_collaboration; tests/e2e/origins.py).

Alice shares her server with bob read-only through the hub's API with a token of hers (as
docs/sharing.md tells her to, from a terminal of her JupyterLab; her server's own token may not): bob reads her notebook and can
neither change it nor run code; carol cannot open it; her group gets execution and she runs code,
and she and alice edit one notebook together in two browsers; alice withdraws bob's share and, within the
servers' cache (30 s), bob is refused.

Tests run in file order on one host."""

from __future__ import annotations

import time

import pytest

from tasks import layout
from tests.browser import browser_pages
from tests.e2e.hub_client import HubClient
from tests.e2e.origins import PEOPLE

NOTEBOOK = {
    "cells": [{"cell_type": "markdown", "metadata": {}, "source": "alice's notes"}],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}
# The servers' cache of the hub's answers about a token (tasks/server_config.py), and some margin.
CACHE_SECONDS = 40


def scopes(level: str) -> list[str]:
    return ["access:servers!server=alice/", f"custom:jupyter_server:{level}:*!server=alice/"]


@pytest.fixture(scope="module")
def people(origins_hub) -> dict[str, HubClient]:
    """Each person logged in at the hub's domain, with an API token of theirs."""
    clients = {}
    for name, password in PEOPLE.items():
        client = HubClient(f"https://{origins_hub.domain}", verify=origins_hub.ca_bundle)
        assert client.login(name, password).status_code == 302, origins_hub.journal()
        client.create_token()
        clients[name] = client
    clients["alice"].start_server()
    return clients


def at_alice(origins_hub, people, name: str, method: str, path: str, **kwargs):
    """A request to alice's server, on her subdomain, with name's token. The proxy's 503 (it lost
    its connection to the server: CI once saw its EPIPE just after the server's 403) is asked again."""
    server = HubClient(f"https://alice.{origins_hub.domain}", verify=origins_hub.ca_bundle)
    server.token = people[name].token
    for _ in range(3):
        response = server.api(method, f"/user/alice{path}", **kwargs)
        if response.status_code != 503:
            break
        time.sleep(1)
    return response


def server_token(origins_hub) -> str:
    """The token of alice's server, as a terminal of her JupyterLab sees it."""
    unit_pid = origins_hub.sh(f"systemctl show -p MainPID --value {layout.USER_UNIT_PREFIX}alice.service").strip()
    environ = origins_hub.sh(f"tr '\\0' '\\n' < /proc/{unit_pid}/environ")
    return next(line.split("=", 1)[1] for line in environ.splitlines() if line.startswith("JUPYTERHUB_API_TOKEN="))


def share(origins_hub, token: str, method: str, body: dict | None = None):
    hub = HubClient(f"https://{origins_hub.domain}", verify=origins_hub.ca_bundle)
    hub.token = token
    return hub.api(method, "/hub/api/shares/alice/", json=body)


def within_the_cache(request, status: int):
    """request() until it answers status, for as long as a server keeps the hub's answers."""
    deadline = time.monotonic() + CACHE_SECONDS
    while True:
        response = request()
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            return response
        time.sleep(1)


def test_alice_s_notebook_is_hers_alone_before_she_shares(origins_hub, people):
    put = at_alice(
        origins_hub, people, "alice", "PUT", "/api/contents/notes.ipynb", json={"type": "notebook", "content": NOTEBOOK}
    )
    assert put.status_code in (200, 201), put.text
    for name in ("bob", "carol"):
        assert at_alice(origins_hub, people, name, "GET", "/api/contents/notes.ipynb").status_code == 403, name


def test_alice_shares_read_only_with_bob(origins_hub, people):
    # Not with her server's own token, which anything running there holds (a visitor with execution).
    refused = share(origins_hub, server_token(origins_hub), "POST", {"user": "bob", "scopes": scopes("read")})
    assert refused.status_code == 403, refused.text
    # With a token of hers (the hub's token page), in a terminal of her JupyterLab.
    response = share(origins_hub, people["alice"].token, "POST", {"user": "bob", "scopes": scopes("read")})
    assert response.status_code == 200, response.text
    # bob was refused a moment ago: the server keeps that answer up to its cache's age.
    read = within_the_cache(lambda: at_alice(origins_hub, people, "bob", "GET", "/api/contents/notes.ipynb"), 200)
    assert read.json()["content"]["cells"][0]["source"] == "alice's notes"
    # He can neither change it, nor start a kernel, nor open a terminal.
    changed = at_alice(
        origins_hub, people, "bob", "PUT", "/api/contents/notes.ipynb", json={"type": "notebook", "content": NOTEBOOK}
    )
    assert changed.status_code == 403
    assert at_alice(origins_hub, people, "bob", "POST", "/api/kernels", json={}).status_code == 403
    assert at_alice(origins_hub, people, "bob", "POST", "/api/terminals", json={}).status_code == 403
    # Nor join the notebook's collaborative editing (that writes it).
    session = at_alice(
        origins_hub,
        people,
        "bob",
        "PUT",
        "/api/collaboration/session/notes.ipynb",
        json={"format": "json", "type": "notebook"},
    )
    assert session.status_code == 403
    # carol, not shared with, is refused.
    assert at_alice(origins_hub, people, "carol", "GET", "/api/contents/notes.ipynb").status_code == 403


def chromium(host, people: int = 1):
    """Chromium, a page per person, reaching the hub's name and every server's."""
    resolve = {host.domain: host.address, f"*.{host.domain}": host.address}
    return browser_pages(people, timeout_ms=120_000, resolve=resolve, ignore_https_errors=True)


def visit_alice(page, host, name: str, path: str) -> None:
    """name signs in at the hub, then opens path of alice's server, on her origin, confirming the
    visit on the hub's page that asks (JupyterHub asks before a first visit to someone else's server)."""
    page.goto(f"https://{host.domain}/hub/login?next=%2Fhub%2Fhome")
    page.fill("#username_input", name)
    page.fill("#password_input", PEOPLE[name])
    with page.expect_navigation():
        page.click("#login_submit")
    page.goto(f"https://alice.{host.domain}/user/alice/{path}")
    authorize = page.get_by_role("button", name="Authorize")
    if "/hub/api/oauth2/authorize" in page.url and authorize.count():  # else the hub refused the visit
        with page.expect_navigation():
            authorize.click()


# What a page of alice's server may do with the visitor's session there: read, start a kernel, have
# a notebook run by nbgrader's validation, write JupyterLab's settings.
IN_THE_PAGE = """async () => {
  const xsrf = decodeURIComponent((document.cookie.match(/_xsrf=([^;]+)/) || ["", ""])[1]);
  const read = await fetch("/user/alice/api/contents/notes.ipynb", {headers: {"X-XSRFToken": xsrf}});
  const kernel = await fetch("/user/alice/api/kernels", {method: "POST", body: "{}",
    headers: {"X-XSRFToken": xsrf, "Content-Type": "application/json"}});
  // nbgrader's validation runs a notebook and asks no authorizer; JupyterLab's settings are written.
  const validate = await fetch("/user/alice/assignments/validate", {method: "POST",
    body: JSON.stringify({path: "/tmp/x.ipynb"}), headers: {"X-XSRFToken": xsrf}});
  const settings = await fetch("/user/alice/lab/api/settings/@jupyterlab/apputils-extension:themes",
    {method: "PUT", body: JSON.stringify({raw: "{}"}), headers: {"X-XSRFToken": xsrf}});
  return {read: read.status, text: read.ok ? await read.text() : "", kernel: kernel.status,
    validate: validate.status, settings: settings.status};
}"""


def tokens(host) -> str:
    """The hub's tokens and their scopes (what a failed check of a visit had)."""
    query = "select u.name, t.client_id, t.scopes from api_tokens t join users u on u.id = t.user_id"
    return host.sh(
        f'python3 -c \'import sqlite3; print(*sqlite3.connect("/opt/jupyter/state/jupyterhub.sqlite").execute("{query}"), sep=chr(10))\''
    )


def test_in_chromium_bob_reads_alice_s_notebook_cannot_run_code_and_carol_cannot_open_it(origins_hub):
    host = origins_hub
    with chromium(host) as (page,):
        visit_alice(page, host, "bob", "lab")
        assert page.url.startswith(f"https://alice.{host.domain}/user/alice/"), page.url
        found = page.evaluate(IN_THE_PAGE)
        assert found["read"] == 200 and "alice's notes" in found["text"], (found, tokens(host))
        assert found["kernel"] == 403 and found["validate"] == 403 and found["settings"] == 403, found
    with chromium(host) as (page,):
        visit_alice(page, host, "carol", "lab")
        assert not page.url.startswith(f"https://alice.{host.domain}/user/alice/lab"), page.url
        assert "403" in page.content()


def test_with_execution_carol_runs_code_in_alice_s_server(origins_hub, people):
    """carol's group (jh_groups' editors) given execution, she runs code there from her browser
    (JupyterHub alone would drop a group's share from her token: hubside.group_shares)."""
    host = origins_hub
    response = share(host, people["alice"].token, "POST", {"group": "editors", "scopes": scopes("execute")})
    assert response.status_code == 200, response.text
    with chromium(host) as (page,):
        visit_alice(page, host, "carol", "lab")
        assert page.url.startswith(f"https://alice.{host.domain}/user/alice/"), page.url
        # Her visit a moment ago was refused: the server keeps the hub's list of shares up to 30 s.
        deadline = time.monotonic() + CACHE_SECONDS
        while (found := page.evaluate(IN_THE_PAGE))["read"] != 200 and time.monotonic() < deadline:
            time.sleep(2)
        assert found["read"] == 200 and found["kernel"] == 201, found


RTC_NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ""}],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def close_dialogs(page) -> None:
    """JupyterLab may greet with a dialog (a loaded machine: a kernel slow to start, the file saved
    by the other's session): each is dismissed, as a person would."""
    dialogs = page.locator(".jp-Dialog")
    for _ in range(10):
        if not dialogs.count():
            return
        page.keyboard.press("Escape")
        page.wait_for_timeout(500)


def typed_and_seen(writer, reader, text: str) -> float:
    """writer types text at the end of the first cell; seconds until reader's page shows it."""
    close_dialogs(writer)
    cell = writer.locator(".jp-Notebook .jp-Cell .cm-content").first
    cell.click()
    writer.keyboard.press("End")
    started = time.monotonic()
    writer.keyboard.type(text)
    reader.locator(".jp-Notebook .jp-Cell .cm-content").first.get_by_text(text, exact=False).wait_for(timeout=30_000)
    return time.monotonic() - started


def test_alice_and_carol_edit_one_notebook_together(origins_hub, people, capsys):
    """Two browsers on one notebook (jh_collaboration; carol has execution):
    each sees the other's typing. The delays are printed, not held to a bound (a loaded CI machine)."""
    host = origins_hub
    put = at_alice(
        host, people, "alice", "PUT", "/api/contents/together.ipynb", json={"type": "notebook", "content": RTC_NOTEBOOK}
    )
    assert put.status_code in (200, 201), put.text
    with chromium(host, people=2) as (alice, carol):
        for page, name in ((alice, "alice"), (carol, "carol")):
            visit_alice(page, host, name, "lab/tree/together.ipynb")
            try:
                page.locator(".jp-Notebook .jp-Cell .cm-content").first.wait_for()
            except Exception:
                page.screenshot(path=f"/tmp/rtc-{name}.png")
                raise
        to_carol = typed_and_seen(alice, carol, "alice_was_here = 1")
        to_alice = typed_and_seen(carol, alice, " + 2  # carol too")
    with capsys.disabled():
        print(
            f"\n[collaboration] alice's typing seen by carol after {to_carol:.2f} s, carol's by alice after {to_alice:.2f} s"
        )
    saved = at_alice(host, people, "alice", "GET", "/api/contents/together.ipynb")
    assert saved.status_code == 200


def test_the_admins_and_alice_see_who_shares_what(origins_hub, people):
    listed = share(origins_hub, people["alice"].token, "GET").json()["items"]
    assert sorted((item["kind"], (item["user"] or item["group"])["name"]) for item in listed) == [
        ("group", "editors"),
        ("user", "bob"),
    ]


def test_withdrawn_bob_is_refused(origins_hub, people):
    response = share(origins_hub, people["alice"].token, "PATCH", {"user": "bob", "scopes": scopes("read")})
    assert response.status_code == 200, response.text
    within_the_cache(lambda: at_alice(origins_hub, people, "bob", "GET", "/api/contents/notes.ipynb"), 403)
    # The group's share is untouched.
    listed = share(origins_hub, people["alice"].token, "GET").json()["items"]
    assert [(item["kind"], item["group"]["name"]) for item in listed] == [("group", "editors")]
