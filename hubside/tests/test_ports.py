"""Free ports for servers that are not on Unix sockets."""

from __future__ import annotations

import socket

import pytest

from hubside.ports import free_port


def test_a_free_port_is_in_the_range_and_bindable():
    port = free_port(20000, 30000)
    assert 20000 <= port < 30000
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_a_range_with_every_port_taken_is_an_error():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        taken = holder.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"between {taken} and {taken}"):
            free_port(taken, taken + 1)
