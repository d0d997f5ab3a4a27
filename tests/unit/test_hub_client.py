"""The e2e kernel client's waits end, whatever a server sends: against a websocket server made here."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time

import pytest
import websocket

from tests.e2e.hub_client import KernelConnection

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes) -> bytes:
    assert len(payload) < 65536
    header = bytes([0x80 | opcode]) + (
        bytes([len(payload)]) if len(payload) < 126 else b"\x7e" + struct.pack("!H", len(payload))
    )
    return header + payload


def read_frame(conn: socket.socket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    first, second = exactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", exactly(2))
    mask = exactly(4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(exactly(length)))
    return first & 0x0F, payload


class Server:
    """A websocket server that pings every 0.1 s and answers text frames with behave(message)."""

    def __init__(self, behave):
        self.behave = behave
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        key = next(
            line.split(":", 1)[1].strip()
            for line in request.decode().split("\r\n")
            if line.lower().startswith("sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        conn.sendall(
            f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        lock = threading.Lock()

        def ping() -> None:
            while True:
                time.sleep(0.1)
                with lock:
                    try:
                        conn.sendall(frame(0x9, b"hello"))
                    except OSError:
                        return

        threading.Thread(target=ping, daemon=True).start()
        while True:
            try:
                opcode, payload = read_frame(conn)
            except (OSError, ValueError):
                return
            if opcode == 0x8:
                with lock:
                    conn.sendall(frame(0x8, payload))
                return
            if opcode == 0x1:
                for answer in self.behave(json.loads(payload)):
                    with lock:
                        conn.sendall(frame(0x1, json.dumps(answer).encode()))


def reply(request: dict, kind: str, content: dict, channel: str = "shell") -> dict:
    return {"msg_type": kind, "parent_header": request["header"], "content": content, "channel": channel}


def connect(behave) -> KernelConnection:
    server = Server(behave)
    return KernelConnection(websocket.create_connection(server.url, timeout=5), "alice")


def test_a_wait_ends_at_its_deadline_while_the_server_pings():
    with connect(lambda request: []) as connection:  # never answers, pings every 0.1 s
        started = time.monotonic()
        assert connection.next_message(time.monotonic() + 1) is None
        assert 0.9 < time.monotonic() - started < 2
        with pytest.raises(TimeoutError, match="kernel_info_request"):
            connection.execute("print(1)", timeout=2)
        assert time.monotonic() - started < 4


def test_unrelated_messages_do_not_stretch_the_wait():
    def chatty(request):  # answers everything with status messages of another request
        other = {"header": {"msg_id": "another"}}
        return [reply(other, "status", {"execution_state": "busy"})] * 20

    with connect(chatty) as connection:
        connection.ready = True
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="result of 'print"):
            connection.execute("print(1)", timeout=1.5)
        assert time.monotonic() - started < 3


def test_code_waits_for_the_kernel_and_a_lost_first_request_is_asked_again():
    asked = []

    def kernel(request):
        kind = request["header"]["msg_type"]
        if kind == "kernel_info_request":
            asked.append(request)
            # The first one is lost, as when the kernel's channels are not connected yet.
            return [reply(request, "kernel_info_reply", {"status": "ok"})] if len(asked) > 1 else []
        assert len(asked) > 1, "code sent before the kernel answered"
        return [
            reply(request, "status", {"execution_state": "busy"}, "iopub"),
            reply(request, "stream", {"name": "stdout", "text": "42\n"}, "iopub"),
            reply(request, "status", {"execution_state": "idle"}, "iopub"),
        ]

    with connect(kernel) as connection:
        connection.ask_again_after = 0.5
        assert connection.execute("print(6*7)", timeout=20) == "42\n"
        assert len(asked) == 2
