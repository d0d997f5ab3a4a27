"""What a started server does for the tests' helper: answer HTTP at the URL the hub gave it
(a port of 127.0.0.1, or a Unix socket), in a process of its own, for a minute."""

from __future__ import annotations

import http.server
import os
import socketserver
import threading
from urllib.parse import unquote, urlsplit


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


class UnixServer(socketserver.UnixStreamServer):
    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


def serve_in_background(stdin: str, pids: str) -> None:
    """Fork a server for JUPYTERHUB_SERVICE_URL of the helper's standard input, its pid added to
    the file pids (the fixture ends it); return at once."""
    variables = dict(line.split("=", 1) for line in stdin.splitlines() if "=" in line)
    url = urlsplit(variables["JUPYTERHUB_SERVICE_URL"])
    if url.scheme == "http+unix":
        path = unquote(url.netloc)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)
        server = UnixServer(path, Answer)
    else:
        server = http.server.HTTPServer((url.hostname, url.port), Answer)
    child = os.fork()
    if child:
        server.server_close()
        with open(pids, "a") as file:
            file.write(f"{child}\n")
        return
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    threading.Timer(30, os._exit, args=(0,)).start()
    server.serve_forever()
