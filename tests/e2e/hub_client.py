"""Talks to a hub the way a user's browser and notebook do: login form, REST API, kernel websocket."""

from __future__ import annotations

import json
import time
import uuid

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

    def start_server(self, timeout: float = 120) -> dict:
        response = self.api("POST", f"/hub/api/users/{self.user}/server")
        assert response.status_code in (201, 202), f"spawn request: {response.status_code} {response.text}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.server()
            if server and server.get("ready"):
                return server
            time.sleep(1)
        raise TimeoutError(f"the server of {self.user} was not ready after {timeout} s: {self.server()}")

    def stop_server(self) -> None:
        self.api("DELETE", f"/hub/api/users/{self.user}/server")

    def kernelspecs(self) -> dict:
        response = self.api("GET", f"/user/{self.user}/api/kernelspecs")
        response.raise_for_status()
        return response.json()

    def run_code(self, code: str, kernel_name: str = "python3", timeout: float = 60) -> str:
        """Start a kernel, run code over the kernel websocket, return what it printed."""
        response = self.api("POST", f"/user/{self.user}/api/kernels", json={"name": kernel_name})
        response.raise_for_status()
        kernel_id = response.json()["id"]
        try:
            try:
                return self._execute(kernel_id, code, timeout)
            except websocket.WebSocketConnectionClosedException:
                # On a loaded machine the server's handshake with a kernel still starting can
                # time out, and it then closes the websocket: once more, with the kernel up.
                time.sleep(2)
                return self._execute(kernel_id, code, timeout)
        finally:
            self.api("DELETE", f"/user/{self.user}/api/kernels/{kernel_id}")

    def _execute(self, kernel_id: str, code: str, timeout: float) -> str:
        ws_url = self.base_url.replace("http", "ws", 1) + f"/user/{self.user}/api/kernels/{kernel_id}/channels"
        sslopt = {"ca_certs": self.verify} if isinstance(self.verify, str) else {}
        connection = websocket.create_connection(
            ws_url, header=[f"Authorization: token {self.token}"], timeout=timeout, sslopt=sslopt
        )
        try:
            msg_id = uuid.uuid4().hex
            connection.send(
                json.dumps(
                    {
                        "header": {
                            "msg_id": msg_id,
                            "username": self.user,
                            "session": uuid.uuid4().hex,
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
            output, deadline = [], time.monotonic() + timeout
            while time.monotonic() < deadline:
                message = json.loads(connection.recv())
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
        finally:
            connection.close()
