"""A job's report of its server's port: the one thing the hub takes from a running job.

A cluster server (a Slurm job on a node) picks its port when it starts and tells the hub with
its own server's API token (hubside-job-server). This handler is the hub's side, and all it
accepts: ``{"port": <integer 1024-65535>}``, from the token of a server that is starting as a
job and has not reported yet, for that server. Anything else is refused (4xx) and nothing of a
request is ever stored in the spawner's state.

It replaces batchspawner's handler (registered by merely importing batchspawner), which set
every key a caller posted as an attribute of the caller's spawner: a student's job token could
plant shell commands that the hub ran as its own account at its next start.
"""

from __future__ import annotations

import json

from jupyterhub.apihandlers import APIHandler, default_handlers
from tornado import web

from hubside.spawner import ServerSpawner

PATH = r"/api/job-port"
PORTS = range(1024, 65536)


class JobPortHandler(APIHandler):
    @web.authenticated
    def post(self):
        token = self.get_auth_token()
        user = self.current_user
        # A server's own token, and only while its job starts.
        spawner = next(
            (
                s
                for s in getattr(user, "spawners", {}).values()
                if token
                and s.api_token == token
                and isinstance(s, ServerSpawner)
                and s.job_id
                and s.pending == "spawn"
                and not s.reported_port
            ),
            None,
        )
        if spawner is None:
            raise web.HTTPError(403, "Only a server's job that is starting reports a port, once.")
        try:
            body = json.loads(self.request.body or b"")
        except ValueError:
            raise web.HTTPError(400, "The body must be JSON.") from None
        port = body.get("port") if isinstance(body, dict) else None
        if set(body if isinstance(body, dict) else ()) != {"port"} or type(port) is not int or port not in PORTS:
            raise web.HTTPError(400, 'The body must be {"port": <integer 1024-65535>} and nothing else.')
        spawner.reported_port = port
        self.log.info("Job %s of %s reported port %s", spawner.job_id, spawner.user.name, port)
        self.set_status(201)
        self.finish(json.dumps({"port": port}))


def register() -> None:
    """Add the handler to the hub's API (before the hub builds its handlers, from its config)."""
    if not any(path == PATH for path, *_ in default_handlers):
        default_handlers.append((PATH, JobPortHandler))
