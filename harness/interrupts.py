"""SIGTERM handled exactly like Ctrl-C, so every cleanup path is the same one.

A CI runner or ``timeout`` stops us with SIGTERM; Python's default would end
the process without running ``finally`` blocks and leave QEMU to
PR_SET_PDEATHSIG.  Raising KeyboardInterrupt instead unwinds through the same
``finally``/``__exit__`` code that Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Any


def raise_interrupt(signum: int, frame: object) -> None:
    """Signal handler: turn the signal into KeyboardInterrupt."""
    raise KeyboardInterrupt(f"signal {signum}")


def sigterm_as_interrupt() -> Any:
    """Install the handler (main thread only); returns the previous one, or None."""
    try:
        return signal.signal(signal.SIGTERM, raise_interrupt)
    except ValueError:  # not the main thread: the caller's own handling applies
        return None


def restore_sigterm(previous: Any) -> None:
    """Put back what :func:`sigterm_as_interrupt` replaced."""
    if previous is not None:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


def hangup_as_interrupt() -> None:
    """SIGHUP like Ctrl-C too: the terminal, or the ssh connection a child runs on, is gone.

    ``kharness watch --hosts`` runs its children over ``ssh -tt``; when the
    bot stops them or dies, the connection closes, the child gets SIGHUP and
    must stop its guests as on Ctrl-C.  Set by the CLI's entry point only.
    """
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGHUP, raise_interrupt)
