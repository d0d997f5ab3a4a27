"""Fixtures for the hub package's tests: hub.json as the deploy writes it, a hub's files in a
temporary folder, real JupyterHub objects (a user and their spawner, a whole hub application
with its API), and a root helper that records what it is asked (run in place of sudo)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "src" / "hubside"
REPO = HERE.parent.parent


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> Path:
    """hub.json of each kind (pam, courses, sharing, ldap, oidc, github, lti13, native, cluster, postgresql, monitored,
    subdomains), written by the
    deploy's own code (tests/hub_samples.py, run with the controller's venv unless make unit did)."""
    given = os.environ.get("HUBSIDE_SAMPLES")
    if given:
        return Path(given)
    directory = tmp_path_factory.mktemp("samples")
    python = REPO / ".venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "tests.hub_samples", str(directory)], cwd=REPO, check=True, capture_output=True)
    return directory


@pytest.fixture
def hub_files(samples, tmp_path):
    """hub_files(kind) -> the config file of a hub of that kind, in tmp_path: the package's static
    jupyterhub_config.py, the sample hub.json with its host paths moved below tmp_path, and the
    secrets, keys and provider files the deploy would have made."""

    def make(kind: str) -> Path:
        data = json.loads((samples / f"{kind}.json").read_text())
        state = tmp_path / "state"
        state.mkdir()
        data["state_dir"] = str(state)
        for name, prefix in (
            ("proxy.env", "CONFIGPROXY_AUTH_TOKEN="),
            ("idle_culler.env", "JUPYTERHUB_API_TOKEN="),
            ("deploy.env", "JUPYTERHUB_API_TOKEN="),
            ("metrics.env", "JUPYTERHUB_API_TOKEN="),
            ("jupyterhub_cookie_secret", ""),
        ):
            (state / name).write_text(f"{prefix}{name}-secret\n")
        options = data["login"]["options"]
        if "client_secret_file" in options:
            options["client_secret_file"] = str(tmp_path / "client-secret")
            (tmp_path / "client-secret").write_text("s3cret\n")
            options["names_file"] = str(state / "oauth-names.json")
        if "tool_jwk" in options:
            # The tool's key, root's on the host, for the tests that sign as the grades-back tool.
            shutil.copy(samples / "lti-tool-key.pem", tmp_path / "lti-tool-key.pem")
            options["names_file"] = str(state / "oauth-names.json")
            options["courses_file"] = str(state / "lti-courses.json")
            options["nonces_file"] = str(state / "lti-nonces.json")
        if "endpoints_file" in options:
            options["endpoints_file"] = str(tmp_path / "endpoints.json")
            (tmp_path / "endpoints.json").write_text(
                json.dumps(
                    {
                        "issuer": "https://login.example.org/realms/uni",
                        "authorization_endpoint": "https://login.example.org/auth",
                        "token_endpoint": "https://login.example.org/token",
                        "userinfo_endpoint": "https://login.example.org/userinfo",
                    }
                )
            )
        (tmp_path / "hub.json").write_text(json.dumps(data))
        shutil.copy(PACKAGE / "jupyterhub_config.py", tmp_path / "jupyterhub_config.py")
        return tmp_path / "jupyterhub_config.py"

    return make


def run(coroutine):
    return asyncio.run(coroutine)


class Helper:
    """A root helper that records each call (argv and standard input) and answers as told."""

    def __init__(self, directory: Path):
        self.log = directory / "calls.jsonl"
        self.answers = directory / "answers.json"
        self.path = directory / "user-server"
        self.pids = directory / "servers.pids"
        self.answers.write_text("{}")
        self.path.write_text(
            f"#!{sys.executable}\n"
            "import json, sys\n"
            f"sys.path.insert(0, {str(HERE)!r})\n"
            f"log, answers = {str(self.log)!r}, {str(self.answers)!r}\n"
            "stdin = sys.stdin.read()\n"
            "with open(log, 'a') as file:\n"
            "    file.write(json.dumps({'argv': sys.argv[1:], 'stdin': stdin}) + '\\n')\n"
            "queue = json.load(open(answers)).get(sys.argv[1], [''])\n"
            "text = queue[0]\n"
            "if len(queue) > 1:\n"
            "    kept = json.load(open(answers))\n"
            "    kept[sys.argv[1]] = queue[1:]\n"
            "    json.dump(kept, open(answers, 'w'))\n"
            "if text.startswith('FAIL'):\n"
            "    sys.stderr.write(text)\n"
            "    sys.exit(1)\n"
            "if sys.argv[1] == 'start' and text != 'ENDED':\n"
            "    import fake_server\n"
            f"    fake_server.serve_in_background(stdin, {str(self.pids)!r})\n"
            "print(text)\n"
        )
        self.path.chmod(0o755)

    def answer(self, **answers: list[str]) -> None:
        """What each verb prints, call after call (the last one sticks); FAIL...: exits 1 saying so.
        A start that does not fail leaves a server answering where the hub's variables say
        (tests/fake_server.py), as a real one would."""
        self.answers.write_text(json.dumps(answers))

    @property
    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def helper(tmp_path, monkeypatch):
    """The helper, and `sudo -n` on PATH that runs it (what sudo would, without root)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sudo = bin_dir / "sudo"
    sudo.write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    sudo.chmod(0o755)
    systemctl = bin_dir / "systemctl"
    systemctl.write_text(f"#!/bin/sh\ncat {tmp_path}/unit-state 2>/dev/null || echo ActiveState=inactive\n")
    systemctl.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    helper = Helper(tmp_path)
    yield helper
    # The servers its starts left answering.
    if helper.pids.exists():
        for pid in helper.pids.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)


class RunningHub:
    """A real JupyterHub application (its database, users, roles, API handlers) serving its API on
    a port of loopback; no proxy, no spawns but what a test makes."""

    def __init__(self, app, port: int):
        self.app, self.port = app, port

    def user(self, name: str, admin: bool = False):
        from jupyterhub.tests.utils import add_user

        return add_user(self.app.db, app=self.app, name=name, admin=admin)

    async def post(self, path: str, body: bytes, token: str | None = None):
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"token {token}"
        try:
            return await AsyncHTTPClient().fetch(
                f"http://127.0.0.1:{self.port}/hub/api{path}", method="POST", body=body, headers=headers
            )
        except HTTPClientError as error:
            return error.response


def running_hub(test, config=None, sockets=None):
    """Run the coroutine function test(hub) with a RunningHub configured by config (a traitlets Config),
    listening on sockets (bound before, when its URL must be known first), else on a free port."""
    from jupyterhub.httpclient import JupyterHubHTTPClient
    from jupyterhub.tests.mocking import MockHub
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets
    from traitlets.config import Config

    config = config or Config()
    # The hub at / (MockHub's default base URL is a path with a space), and no secret on disk.
    config.JupyterHub.bind_url = "http://127.0.0.1:8000/"
    config.JupyterHub.cookie_secret = os.urandom(32)

    async def main():
        app = MockHub(config=config)
        await app.initialize([])
        listening = sockets or bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app.tornado_application)
        server.add_sockets(listening)
        try:
            return await test(RunningHub(app, listening[0].getsockname()[1]))
        finally:
            server.stop()
            app.db.close()
            MockHub.clear_instance()
            # The HTTP client of this loop (the spawner's wait for its server), closed with it.
            await JupyterHubHTTPClient.loop_instance().close()

    return asyncio.run(main())
