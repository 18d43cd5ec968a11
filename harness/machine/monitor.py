"""QEMU's human monitor on a unix socket: the magic key that needs no guest.

Both backends give QEMU ``-monitor unix:PATH,server=on,wait=off`` so that
sysrq can be pressed on the guest's keyboard when SSH no longer answers; the
QEMU backend also saves the ready guest's state through it
(:mod:`harness.machine.snapshot`), with :meth:`MonitorSocket.command`.  The
socket lives in the boot directory when the path fits a unix socket (107
bytes), else in a private temporary directory; :meth:`MonitorSocket.remove`
leaves nothing behind either way.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


class MonitorSocket:
    """Where one boot's monitor listens, and how to press keys through it."""

    def __init__(self, boot_dir: Path) -> None:
        self.boot_dir = boot_dir
        self._private: Path | None = None
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        """The socket path to give QEMU (chosen on first use)."""
        if self._path is None:
            inside = self.boot_dir.resolve() / "monitor.sock"
            if len(str(inside)) < 100:
                self._path = inside
            else:
                self._private = Path(tempfile.mkdtemp(prefix="kharness-"))
                self._path = self._private / "monitor"
        return self._path

    def moved(self, boot_dir: Path) -> None:
        """The boot directory was renamed to ``boot_dir`` (a socket in it moved along)."""
        if self._private is None and self._path is not None:
            self._path = boot_dir.resolve() / "monitor.sock"
        self.boot_dir = boot_dir

    def sendkey(self, keys: str) -> bool:
        """``sendkey KEYS`` (e.g. ``alt-sysrq-w``); False when nobody listens."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(str(self.path))
                sock.sendall(f"sendkey {keys}\n".encode())
                time.sleep(0.2)
            return True
        except OSError:
            return False

    def command(self, line: str, timeout: float = 60.0) -> str:
        """Run one HMP command and return what it printed (raises OSError on failure).

        The monitor answers with a banner and a ``(qemu)`` prompt on connect,
        and with the prompt again once a command is done (a synchronous
        ``migrate`` only then), so the text between two prompts is the answer.
        """
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.path))
            _read_prompt(sock)
            sock.sendall(f"{line}\n".encode())
            return _read_prompt(sock)

    def greets(self, alive: Callable[[], bool], timeout: float) -> bool:
        """Wait until the monitor says its prompt: QEMU has set everything up (its port
        forwards too) and runs its main loop.  False if ``alive()`` turns false or time ran out.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(max(0.05, deadline - time.monotonic()))
                    sock.connect(str(self.path))
                    _read_prompt(sock)
                return True
            except OSError:
                time.sleep(0.005)  # not listening yet
        return False

    def remove(self) -> None:
        """Remove the socket (and the private directory, if one was made)."""
        (self.boot_dir / "monitor.sock").unlink(missing_ok=True)
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None


_PROMPT = b"(qemu) "


def _read_prompt(sock: socket.socket) -> str:
    """Read until the monitor's prompt; the text before it (socket timeout bounds it)."""
    data = b""
    while not data.endswith(_PROMPT):
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError("the QEMU monitor closed the connection")
        data += chunk
    return data[: -len(_PROMPT)].decode(errors="replace")
