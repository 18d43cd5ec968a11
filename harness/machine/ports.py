"""Choosing the loopback TCP port QEMU forwards to the guest's sshd.

QEMU's hostfwd cannot take an already-bound socket, so no choice is free of
races by construction: we pick a port the kernel just gave us, and if QEMU
then reports the forward could not be set up, the caller retries with a new
one (see :mod:`harness.machine.qemu`).  A fixed range can be forced, which
the tests use to show what happens when every port is taken.
"""

from __future__ import annotations

import socket

from harness.errors import NoFreePort


def _try_bind(port: int) -> int | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return s.getsockname()[1]


def free_port(port_range: tuple[int, int] | None = None, avoid: set[int] | None = None) -> int:
    """A port on 127.0.0.1 that is free right now (kernel-chosen unless a range is given)."""
    avoid = avoid or set()
    if port_range is None:
        for _ in range(20):
            port = _try_bind(0)
            if port is not None and port not in avoid:
                return port
        raise NoFreePort(
            "the kernel gave no free TCP port on 127.0.0.1; check `ss -tln` for exhaustion"
        )
    low, high = port_range
    for port in range(low, high + 1):
        if port not in avoid and _try_bind(port) is not None:
            return port
    raise NoFreePort(
        f"no free TCP port on 127.0.0.1 in {low}-{high}; stop what holds them "
        "(`ss -tlnp`) or widen the range"
    )
