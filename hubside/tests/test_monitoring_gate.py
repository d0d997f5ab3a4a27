"""The monitoring gate against the real hub's API: nginx's question "may this browser see
Prometheus?" answered yes for an admin signed in to the gate, no for anyone else."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import create_signed_value
from traitlets.config import Config

from hubside import monitoring_gate

from .conftest import HERE, running_hub

PREFIX = "/services/monitoring/"


def gate_config() -> Config:
    c = Config()
    c.JupyterHub.services = [
        {"name": "monitoring", "oauth_client_id": "service-monitoring", "oauth_redirect_uri": PREFIX + "oauth_callback"}
    ]
    return c


def test_admins_pass_plain_users_and_narrow_tokens_do_not(monkeypatch):
    async def test(hub):
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "unused")
        monkeypatch.setenv("JUPYTERHUB_API_URL", f"http://127.0.0.1:{hub.port}/hub/api")
        admin, plain = hub.user("ada", admin=True), hub.user("bob")
        tokens = {
            "admin, signed in to the gate": admin.new_api_token(scopes=["access:services!service=monitoring"]),
            "admin's token for metrics alone": admin.new_api_token(scopes=["read:metrics"]),
            "plain user": plain.new_api_token(),
        }
        auth = monitoring_gate.hub_auth("monitoring", PREFIX, secure=True)
        app = monitoring_gate.application(auth)
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app)
        server.add_sockets(sockets)
        url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}{PREFIX}"

        async def status(path: str, token: str | None, secret=app.settings["cookie_secret"]) -> int:
            # nginx's subrequests carry the headers of Prometheus's own fetches; the index, a page's.
            mode = "cors" if path == "auth" else "navigate"
            headers = {"Sec-Fetch-Mode": mode, "Sec-Fetch-Site": "same-origin"}
            if token:
                signed = create_signed_value(secret, auth.cookie_name, token).decode()
                headers["Cookie"] = f"{auth.cookie_name}={signed}"
            try:
                response = await AsyncHTTPClient().fetch(url + path, headers=headers, follow_redirects=False)
            except HTTPClientError as error:
                return error.code
            return response.code

        try:
            answers = {who: await status("auth", token) for who, token in tokens.items()}
            assert answers == {
                "admin, signed in to the gate": 204,
                "admin's token for metrics alone": 403,
                "plain user": 403,
            }
            assert await status("auth", None) == 401
            # A cookie not signed by this gate (another service's, or forged) is nobody's.
            forged = await status("auth", tokens["admin, signed in to the gate"], secret=os.urandom(32))
            assert forged == 401
            # Its index signs in through the hub: no cookie, sent to the hub's OAuth.
            assert await status("", None) == 302
            assert await status("", tokens["admin, signed in to the gate"]) == 200
            # A query is never kept for after the sign-in (a stranger's, ten minutes each): the bare page.
            asked = await AsyncHTTPClient().fetch(url + "?" + "x" * 4000, follow_redirects=False, raise_error=False)
            assert (asked.code, asked.headers["Location"]) == (302, PREFIX)
        finally:
            server.stop()

    running_hub(test, gate_config())


def test_it_serves_nginx_on_a_socket_any_account_can_connect_to(tmp_path):
    """nginx's account connects; nobody but the hub's account can put a socket in the folder."""
    socket = tmp_path / "gate.sock"
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": "x", "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api"}
    env["PYTHONPATH"] = str(HERE.parent / "src")
    args = ["--name", "monitoring", "--prefix", PREFIX, "--socket", str(socket)]
    process = subprocess.Popen([sys.executable, "-m", "hubside.monitoring_gate", *args], env=env)
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        assert stat.S_IMODE(socket.stat().st_mode) == 0o666
        answer = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--unix-socket",
                str(socket),
                f"http://x{PREFIX}auth",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert answer.stdout == "401"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_hub_starts_it_with_its_oauth_client(hub_files):
    from jupyterhub.app import JupyterHub

    app = JupyterHub()
    app.load_config_file(str(hub_files("monitored")))
    (gate,) = [s for s in app.config.JupyterHub.services if s["name"] == "monitoring"]
    assert gate["command"][1:] == [
        *("-m", "hubside.monitoring_gate", "--name", "monitoring", "--prefix", PREFIX),
        *("--socket", "/run/jupyterhub-monitoring-gate/gate.sock"),
    ]
    assert gate["command"][0] == sys.executable
    assert gate["oauth_client_id"] == "service-monitoring"
    assert gate["oauth_redirect_uri"] == f"{PREFIX}oauth_callback"
    # It has no token and no role of its own: the hub answers it about each person's token.
    assert "monitoring" not in [role["name"] for role in app.config.JupyterHub.load_roles]
    assert Path(gate["command"][0]).exists()
