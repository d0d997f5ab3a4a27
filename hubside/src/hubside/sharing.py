"""What each visitor may do in a person's server when people share servers (jh_sharing).

JupyterHub lets in whoever holds access to a server; jupyter-server then asks its authorizer
about each action (read, write, execute) on each resource. This one, which every server loads
from the server venv's config (tasks/server_config.py), allows an action when the visitor's
token at this server holds: the read scope (reading), the execute scope (anything), or
admin:servers (an admin). The owner holds the execute scope on their own servers, a course's
staff on its grader's; a share gives the read or the execute scope of one server
(tasks/hub_data.py names them; docs/sharing.md). Joining a document of the real-time collaboration
is writing it: a reader opens no notebook in the shared editor.
"""

from __future__ import annotations

import os

from jupyterhub.singleuser.extension import JupyterHubAuthorizer

READ = "custom:jupyter_server:read:*"
EXECUTE = "custom:jupyter_server:execute:*"
# jupyter-server's actions and the scopes that allow each; any other action needs EXECUTE.
ALLOWED_BY = {"read": (READ, EXECUTE), "write": (EXECUTE,), "execute": (EXECUTE,)}
# jupyter-collaboration's document rooms (jh_collaboration): jupyter-server_ydoc asks only "read"
# to join one, and whoever joins changes the document, which the server saves as its owner.
ROOMS = "/api/collaboration/room/"


def required_scopes(action: str, owner: str, server_name: str) -> set[str]:
    """The scopes of which a visitor needs one to take action in owner's server (server_name)."""
    target = f"!server={owner}/{server_name}"
    return {f"{scope}{target}" for scope in (*ALLOWED_BY.get(action, (EXECUTE,)), "admin:servers")}


class ShareAuthorizer(JupyterHubAuthorizer):
    """JupyterHub's check of access to this server, then the visitor's level for the action."""

    def is_authorized(self, handler, user, action, resource):
        if not super().is_authorized(handler, user, action, resource):
            return False
        if ROOMS in getattr(getattr(handler, "request", None), "path", ""):
            action = "write"
        required = required_scopes(action, os.environ["JUPYTERHUB_USER"], os.environ.get("JUPYTERHUB_SERVER_NAME", ""))
        allowed = bool(self.hub_auth.check_scopes(required, user.hub_user))
        if not allowed:
            self.log.info(
                "%s may not %s %s in this server (shared to them without it)", user.username, action, resource
            )
        return allowed
