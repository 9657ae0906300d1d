"""Loopback ports for the embedded servers (and the tests' own servers and processes).

Listening ports are picked below the kernel's ephemeral range. A port from that range (what
binding port 0 gives) can be taken, before the server told to use it has bound it, as the
local port of any outgoing connection: "Address already in use" at the server's start.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

PORTS_BELOW_EPHEMERAL = 12_000
_picked: set[int] = set()
_picking = threading.Lock()


def free_port() -> int:
    """A loopback port nothing listens on, below the ephemeral range, not handed out before
    by this process."""
    low = _ephemeral_range_start()
    first = max(1024, low - PORTS_BELOW_EPHEMERAL)
    with _picking:
        for _ in range(500):
            port = random.randrange(first, low)  # noqa: S311 - not a secret
            if port in _picked:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _picked.add(port)
            return port
    with socket.socket() as sock:  # the range is full: any port the kernel gives
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
        return found


def _ephemeral_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
