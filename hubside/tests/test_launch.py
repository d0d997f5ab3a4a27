"""hubside-hub: JupyterHub as the hub's unit runs it, stopped by systemd's SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
CONFIG = """
from jupyterhub.proxy import Proxy

class NoProxy(Proxy):
    should_start = False
    async def get_all_routes(self):
        return {{}}
    async def add_route(self, *args, **kwargs):
        pass
    async def delete_route(self, *args, **kwargs):
        pass

c.JupyterHub.proxy_class = NoProxy
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.db_url = "sqlite:///{folder}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{folder}/cookie_secret"
c.JupyterHub.services = [{{"name": "deploy", "api_token": "secret-token"}}]
c.JupyterHub.load_roles = [{{"name": "deploy", "scopes": ["admin:users"], "services": ["deploy"]}}]
{extra}
"""


def free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def hub(folder: Path, extra: str = "") -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = folder / "jupyterhub_config.py"
    config.write_text(CONFIG.format(port=port, folder=folder, extra=extra))
    command = [sys.executable, "-c", "from hubside.launch import main; main()", "--config", str(config)]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC)}
    return subprocess.Popen(command, cwd=folder, env=env, stderr=subprocess.PIPE, text=True), port


def api(port: int, path: str, method: str = "GET") -> int:
    body = b"{}" if method == "POST" else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/hub/api{path}", data=body, method=method)
    request.add_header("Authorization", "token secret-token")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5) as answer:
        return answer.status


def wait_healthy(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.stderr.read()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/hub/health", timeout=2)
            return
        except OSError:
            assert time.monotonic() < deadline, "the hub did not answer within 60 s"
            time.sleep(0.2)


def test_a_stopped_hub_exits_0_with_its_log_and_database_whole(tmp_path):
    process, port = hub(tmp_path)
    try:
        wait_healthy(process, port)
        assert api(port, "/users/alice", "POST") == 201
        process.send_signal(signal.SIGTERM)
        log = process.communicate(timeout=30)[1]
    finally:
        process.kill()
    assert process.returncode == 0, log
    # The log to its end (flushed before the process ends), and every commit on disk.
    assert log.rstrip().endswith("...done"), log[-2000:]
    with sqlite3.connect(tmp_path / "jupyterhub.sqlite") as database:
        assert [name for (name,) in database.execute("select name from users")] == ["alice"]


def test_a_hub_that_cannot_start_fails_as_jupyterhub_would(tmp_path):
    process, _ = hub(tmp_path, extra=f"c.JupyterHub.db_url = {json.dumps('nosuchdb://')}")
    log = process.communicate(timeout=60)[1]
    assert process.returncode not in (0, None)
    assert "nosuchdb" in log, log[-2000:]
