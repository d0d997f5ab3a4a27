"""What each visitor may do in a person's server when people share servers (jh_sharing).

JupyterHub lets in whoever holds access to a server; jupyter-server then asks its authorizer
about each action (read, write, execute) on each resource. This one, which every server loads
from the server venv's config (tasks/server_config.py), allows an action when the visitor's
token at this server holds: the read scope (reading), the execute scope (anything), or
admin:servers (an admin). The owner holds the execute scope on their own servers, a course's
staff on its grader's; a share gives the read or the execute scope of one server
(tasks/hub_data.py names them; docs/sharing.md). Joining a document of the real-time collaboration
is writing it: a reader opens no notebook in the shared editor.

A share's level reaches the visitor's token at API calls, not in the browser: JupyterHub (6.1.1)
grants a server's OAuth token only scopes of the visitor's roles, and the access of a share. So
the authorizer also asks the hub which shares this server has (its own token may read them,
read:shares!server, and change none), renewed once SHARES_SECONDS old.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request

from jupyter_server.base.handlers import JupyterHandler
from jupyterhub.singleuser.extension import JupyterHubAuthorizer
from tornado import web

READ = "custom:jupyter_server:read:*"
EXECUTE = "custom:jupyter_server:execute:*"
# jupyter-server's actions and the scopes that allow each; any other action needs EXECUTE.
ALLOWED_BY = {"read": (READ, EXECUTE), "write": (EXECUTE,), "execute": (EXECUTE,)}
# jupyter-collaboration's API (jh_collaboration): jupyter-server_ydoc asks only "read" to join a
# document's room, and whoever joins changes the document, which the server saves as its owner;
# its timeline and forks make documents the server keeps. All of it is for who may write.
COLLABORATION = "/api/collaboration/"
# What a visitor without execution may send at all: extensions' handlers that never ask the
# authorizer (nbgrader's validate runs a notebook; JupyterLab's settings, workspaces and extension
# manager write) are refused before they run.
SAFE_METHODS = frozenset({"GET", "HEAD"})
# How long the hub's list of this server's shares is kept (a share, or its end, counts within it).
SHARES_SECONDS = 30


def required_scopes(action: str, owner: str, server_name: str) -> set[str]:
    """The scopes of which a visitor needs one to take action in owner's server (server_name)."""
    target = f"!server={owner}/{server_name}"
    return {f"{scope}{target}" for scope in (*ALLOWED_BY.get(action, (EXECUTE,)), "admin:servers")}


class ShareAuthorizer(JupyterHubAuthorizer):
    """JupyterHub's check of access to this server, then the visitor's level for the action."""

    def is_authorized(self, handler, user, action, resource):
        if not super().is_authorized(handler, user, action, resource):
            return False
        if COLLABORATION in getattr(getattr(handler, "request", None), "path", ""):
            action = "write"
        owner, server = os.environ["JUPYTERHUB_USER"], os.environ.get("JUPYTERHUB_SERVER_NAME", "")
        required = required_scopes(action, owner, server)
        allowed = bool(self.hub_auth.check_scopes(required, user.hub_user))
        if not allowed and user.username != owner:
            shared = share_scopes(self.shares(owner, server), user.username, user.hub_user.get("groups") or [])
            allowed = bool(set(ALLOWED_BY.get(action, (EXECUTE,))) & shared)
        if not allowed:
            self.log.info(
                "%s may not %s %s in this server (shared to them without it)", user.username, action, resource
            )
        return allowed

    _shares: tuple[float, list] = (0.0, [])
    _renewing: threading.Thread | None = None

    def shares(self, owner: str, server: str) -> list[dict]:
        """This server's shares, as the hub lists them; none if it cannot say. The first list is
        waited for; one SHARES_SECONDS old is renewed beside the request, which a slow hub then
        holds up no more (this runs in the server's one event loop)."""
        fetched, items = self._shares
        if not fetched:
            self._renew(owner, server)
            return self._shares[1]
        if time.monotonic() - fetched >= SHARES_SECONDS and not (self._renewing and self._renewing.is_alive()):
            self._renewing = threading.Thread(target=self._renew, args=(owner, server), daemon=True)
            self._renewing.start()
        return items

    def _renew(self, owner: str, server: str) -> None:
        request = urllib.request.Request(
            f"{os.environ['JUPYTERHUB_API_URL']}/shares/{owner}/{server}?limit=1000",
            headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (the hub's own URL)
                items = json.load(response)["items"]
        except (OSError, ValueError, KeyError) as error:
            self.log.warning("The hub did not list this server's shares (%s): visitors get none", error)
            items = []
        self._shares = (time.monotonic(), items)


def share_scopes(shares: list[dict], name: str, groups: list[str]) -> set[str]:
    """The levels (READ, EXECUTE) the shares give name, directly or through one of groups."""
    levels = set()
    for share in shares:
        user, group = share.get("user") or {}, share.get("group") or {}
        if user.get("name") == name or group.get("name") in groups:
            levels |= {scope.split("!", 1)[0] for scope in share.get("scopes", [])} & {READ, EXECUTE}
    return levels


def _jupyter_server_extension_points():
    return [{"module": "hubside.sharing"}]


def _load_jupyter_server_extension(serverapp) -> None:
    """Every handler of the server, whatever extension it comes from, lets a visitor without execution
    read and nothing more: no other method, no websocket (jupyter-server's own handlers ask the
    authorizer too; this catches those that never do)."""
    if getattr(JupyterHandler.prepare, "guards_visitors", False):
        return
    original = JupyterHandler.prepare

    async def prepare(self, *args, **kwargs):
        await original(self, *args, **kwargs)
        refuse_readers_beyond_reading(self)

    prepare.guards_visitors = True
    JupyterHandler.prepare = prepare


def refuse_readers_beyond_reading(handler) -> None:
    """403 unless the request only reads, or the visitor may execute (the owner, an admin, a share
    with execution): the server's authorizer decides who that is."""
    user = handler.current_user
    if user is None or not isinstance(handler.authorizer, ShareAuthorizer):
        return
    request = handler.request
    reading = request.method in SAFE_METHODS and request.headers.get("Upgrade", "").lower() != "websocket"
    if not reading and not handler.authorizer.is_authorized(handler, user, "execute", "any"):
        raise web.HTTPError(403, "read-only: this server was shared to you without execution")
