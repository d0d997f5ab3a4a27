"""hubside-job-server: a user's server inside a Slurm job (the job's script runs it).

Picks a free port on the node, reports it to the hub with the server's own token (the hub's
hubside.jobs takes that and nothing else), then becomes jupyterhub-singleuser of this venv on
that port.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from urllib.parse import urlparse, urlunparse

from hubside.ports import free_port


def report(api_url: str, token: str, port: int) -> None:
    request = urllib.request.Request(
        api_url.rstrip("/") + "/job-port",
        data=json.dumps({"port": port}).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60):
        pass


def main() -> None:
    first, last = (int(bound) for bound in os.environ.get("JHD_SERVER_PORTS", "20000-29999").split("-"))
    port = free_port(first, last + 1, address="")
    report(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"], port)
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    os.environ["JUPYTERHUB_SERVICE_URL"] = urlunparse(url._replace(netloc=f"0.0.0.0:{port}"))
    server = os.path.join(os.path.dirname(sys.executable), "jupyterhub-singleuser")
    os.execv(server, [server, *sys.argv[1:]])
