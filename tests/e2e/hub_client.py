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
    """One kernel websocket, as a notebook tab holds it: code in, output out.

    Every wait has an end that holds whatever the server sends: each read of the socket is
    bounded by what is left of the wait, and pings and pongs are read too (the server pings
    every 30 s; answered inside the library, they would keep a plain recv() waiting for ever).
    """

    # Seconds before an unanswered kernel_info_request is sent again.
    ask_again_after = 3.0

    def __init__(self, connection: websocket.WebSocket, user: str):
        self.connection, self.user = connection, user
        self.session = uuid.uuid4().hex
        self.ready = False

    def __enter__(self) -> KernelConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.connection.close()

    def next_message(self, until: float) -> dict | None:
        """The next message before `until` (time.monotonic()), or None when none came."""
        while (left := until - time.monotonic()) > 0:
            self.connection.settimeout(left)
            try:
                opcode, frame = self.connection.recv_data_frame(control_frame=True)
            except websocket.WebSocketTimeoutException:
                return None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise websocket.WebSocketConnectionClosedException("the server closed the kernel websocket")
            if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                return json.loads(frame.data)
        return None

    def messages(self, deadline: float, waiting_for: str):
        """Messages until the caller has what it waits for; TimeoutError naming it at the deadline."""
        started = time.monotonic()
        while (message := self.next_message(deadline)) is not None:
            yield message
        raise TimeoutError(f"{self.user}'s kernel: no {waiting_for} within {deadline - started:.0f} s")

    def wait_ready(self, deadline: float) -> None:
        """Ask for the kernel's info until it answers, as JupyterLab does before it sends code: a
        request sent before the kernel's channels are connected is lost without a word."""
        while not self.ready:
            asked = self.send_request("kernel_info_request", {})
            retry_at = min(deadline, time.monotonic() + self.ask_again_after)
            while not self.ready and (message := self.next_message(retry_at)) is not None:
                self.ready = message.get("parent_header", {}).get("msg_id") == asked
            if not self.ready and time.monotonic() >= deadline:
                raise TimeoutError(f"{self.user}'s kernel never answered a kernel_info_request")

    def execute(self, code: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        msg_id = self.send(code, deadline)
        output = []
        for message in self.messages(deadline, f"result of {code[:60]!r}"):
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "stream":
                output.append(message["content"]["text"])
            elif kind == "error":
                raise AssertionError("kernel error: " + "\n".join(message["content"]["traceback"]))
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                return "".join(output)
        raise AssertionError("unreachable: messages() ends by raising")

    def send(self, code: str, deadline: float) -> str:
        """Send an execute request once the kernel is ready; returns its message id."""
        self.wait_ready(deadline)
        content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False}
        return self.send_request("execute_request", content)

    def send_request(self, kind: str, content: dict) -> str:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "username": self.user, "session": self.session, "msg_type": kind, "version": "5.3"}
        message = {"header": header, "parent_header": {}, "metadata": {}, "channel": "shell", "content": content}
        self.connection.send(json.dumps(message))
        return msg_id
