"""The ports users' servers listen on when they are not on Unix sockets: a range the proxy and
root alone may connect to (the deploy's firewall rule), outside the kernel's ephemeral ports."""

from __future__ import annotations

import random
import socket


def free_port(first: int, last: int, address: str = "127.0.0.1", taken: set[int] | frozenset[int] = frozenset()) -> int:
    """A port of [first, last) nothing is bound to on address now, and not in taken (who gets it
    is checked later)."""
    for _ in range(100):
        port = random.randrange(first, last)
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port for a server between {first} and {last - 1}")
