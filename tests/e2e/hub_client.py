"""Talks to a hub the way a user's browser and notebook do: login form, REST API, kernel websocket."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import requests
import websocket


class HubClient:
    def __init__(self, base_url: str, verify: bool | str = True):
        self.base_url = base_url.rstrip("/")
        # Pass verify on each request: REQUESTS_CA_BUNDLE would override a Session's.
        self.verify = verify
        self.session = requests.Session()
        self.user: str | None = None
        self.token: str | None = None

    def _url(self, path: str) -> str:
        return self.base_url + path

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self._url(path), verify=self.verify, timeout=30, **kwargs)

    def login(self, user: str, password: str) -> requests.Response:
        """Log in through the hub's form (PAM on the server). Returns the final response."""
        self.get("/hub/login")
        response = self.session.post(
            self._url("/hub/login"),
            data={"username": user, "password": password, "_xsrf": self.session.cookies.get("_xsrf", path="/hub/")},
            verify=self.verify,
            timeout=60,
            allow_redirects=False,
        )
        if response.status_code == 302:
            self.user = user
        return response

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        else:
            headers["X-XSRFToken"] = self.session.cookies.get("_xsrf", path="/hub/")
        return self.session.request(method, self._url(path), headers=headers, verify=self.verify, timeout=60, **kwargs)

    def create_token(self) -> str:
        """An API token for the logged-in user, made with the login cookie."""
        response = self.api("POST", f"/hub/api/users/{self.user}/tokens", json={"note": "e2e test", "expires_in": 3600})
        response.raise_for_status()
        self.token = response.json()["token"]
        return self.token

    def server(self) -> dict | None:
        response = self.api("GET", f"/hub/api/users/{self.user}")
        response.raise_for_status()
        return response.json()["servers"].get("")

    def start_server(self, timeout: float = 120, options: dict | None = None) -> dict:
        """Start the user's server, or find it running (servers outlive hub restarts and upgrades)."""
        running = self.server()
        if running and running.get("ready"):
            # Idle for most of the tests' short idle timeout, perhaps: in use from now on, as the
            # server itself reports within its activity interval, so the culler does not stop it
            # under the test that is about to use it.
            self.report_activity()
            return running
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.server()
            if server and server.get("ready"):
                return server
            # Not running, or stopped while we waited (the culler was stopping an idle one): ask for it.
            if server is None:
                response = self.api("POST", f"/hub/api/users/{self.user}/server", json=options)
                assert response.status_code in (201, 202), f"spawn request: {response.status_code} {response.text}"
            time.sleep(1)
        raise TimeoutError(f"the server of {self.user} was not ready after {timeout} s: {self.server()}")

    def report_activity(self) -> None:
        now = datetime.now(UTC).isoformat()
        body = {"last_activity": now, "servers": {"": {"last_activity": now}}}
        self.api("POST", f"/hub/api/users/{self.user}/activity", json=body).raise_for_status()

    def stop_server(self) -> None:
        self.api("DELETE", f"/hub/api/users/{self.user}/server")

    def kernelspecs(self) -> dict:
        response = self.api("GET", f"/user/{self.user}/api/kernelspecs")
        response.raise_for_status()
        return response.json()

    def start_kernel(self, kernel_name: str = "python3") -> str:
        response = self.api("POST", f"/user/{self.user}/api/kernels", json={"name": kernel_name})
        response.raise_for_status()
        return response.json()["id"]

    def delete_kernel(self, kernel_id: str) -> None:
        self.api("DELETE", f"/user/{self.user}/api/kernels/{kernel_id}")

    def run_code(self, code: str, kernel_name: str = "python3", timeout: float = 60) -> str:
        """Start a kernel, run code over the kernel websocket, return what it printed."""
        kernel_id = self.start_kernel(kernel_name)
        try:
            return self.execute(kernel_id, code, timeout)
        finally:
            self.delete_kernel(kernel_id)

    def execute(self, kernel_id: str, code: str, timeout: float = 60) -> str:
        """Run code in a running kernel over a new websocket through the proxy; what it printed."""
        try:
            with self.connect(kernel_id, timeout) as connection:
                return connection.execute(code, timeout)
        except websocket.WebSocketConnectionClosedException:
            # On a loaded machine the server's handshake with a kernel still starting can
            # time out, and it then closes the websocket: once more, with the kernel up.
            time.sleep(2)
            with self.connect(kernel_id, timeout) as connection:
                return connection.execute(code, timeout)

    def connect(self, kernel_id: str, timeout: float = 60) -> KernelConnection:
        ws_url = self.base_url.replace("http", "ws", 1) + f"/user/{self.user}/api/kernels/{kernel_id}/channels"
        sslopt = {"ca_certs": self.verify} if isinstance(self.verify, str) else {}
        return KernelConnection(
            websocket.create_connection(
                ws_url, header=[f"Authorization: token {self.token}"], timeout=timeout, sslopt=sslopt
            ),
            self.user,
        )


class KernelConnection:
    """One kernel websocket, as a notebook tab holds it: code in, output out."""

    def __init__(self, connection: websocket.WebSocket, user: str):
        self.connection, self.user = connection, user
        self.session = uuid.uuid4().hex

    def __enter__(self) -> KernelConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.connection.close()

    def execute(self, code: str, timeout: float = 60) -> str:
        msg_id = self.send(code)
        output, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.receive()
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "stream":
                output.append(message["content"]["text"])
            elif kind == "error":
                raise AssertionError("kernel error: " + "\n".join(message["content"]["traceback"]))
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                return "".join(output)
        raise TimeoutError(f"no result from the kernel within {timeout} s")

    def receive(self) -> dict:
        return json.loads(self.connection.recv())

    def send(self, code: str) -> str:
        """Send an execute request; returns its message id."""
        msg_id = uuid.uuid4().hex
        self.connection.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": self.user,
                        "session": self.session,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                    },
                }
            )
        )
        return msg_id
