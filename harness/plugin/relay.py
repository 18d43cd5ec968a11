"""Progress from pytest-xdist workers, shown by the controller.

Under ``-n N`` the guests boot and the kernels build in worker processes,
which have no terminal: pytest-xdist sends the controller test reports and
nothing in between, so a five-minute build or a slow boot on a worker would
look like a hang.  xdist's own channel takes only its fixed set of events, so
progress travels beside it: the controller listens on a Unix socket in the
abstract namespace (nothing on disk to leave behind, reachable from every
local worker), each worker's :class:`RelayProgress` sends one JSON line per
event, and a :class:`RelayServer` thread replays them into the controller's
own :class:`~harness.display.progress.Progress` with the worker's id before the label.

Workers on other hosts (``--tx ssh=``) cannot reach the socket; they report
no progress (their test reports still arrive as usual).  A relay that breaks
goes quiet: progress never fails a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.display.progress import Activity, ActivityState, Kind, Progress

#: at most one update per activity per this many seconds goes over the socket
UPDATE_INTERVAL = 0.5


def _connect(address: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect("\0" + address)
    return sock


# -- worker side -----------------------------------------------------------------------------
class RelayProgress:
    """A worker's Progress: every event goes to the controller's :class:`RelayServer`.

    Activities keep their own state here too (:class:`_Relayed`), so ``end``
    answers the elapsed time without asking the controller.  Updates are
    sent at most every :data:`UPDATE_INTERVAL` seconds per activity (a build
    updates per object compiled); the last figures go out before the end.
    Thread-safe: the console reader thread updates a boot's line.
    """

    def __init__(
        self, address: str, worker: str, console: bool = False, timeout: float = 2.0
    ) -> None:
        self.address = address
        self.worker = worker
        self.streams_console = console
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._broken = False
        self._lock = threading.Lock()
        self._next = 0  # the last activity number given

    def _send(self, message: dict[str, Any]) -> None:
        """One JSON line; a relay that fails once is closed for good (lock held)."""
        if self._broken:
            return
        try:
            if self._sock is None:
                self._sock = _connect(self.address, self._timeout)
                hello = {"op": "hello", "worker": self.worker}
                self._sock.sendall(json.dumps(hello).encode() + b"\n")
            self._sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            self._broken = True
            self.close()

    def activity(
        self, kind: Kind, label: str, total: float | None = None, timeout: float | None = None
    ) -> Activity:
        """Start an activity here and on the controller."""
        with self._lock:
            self._next += 1
            state = _Relayed(kind, label, time.monotonic(), total, timeout, relay=self)
            state.ident, state.sent_at = self._next, state.started
            message = {"op": "start", "id": state.ident, "kind": kind.value, "label": label}
            self._send(message | {"total": total, "timeout": timeout})
        return state

    def _updated(self, state: _Relayed, figures: dict[str, Any]) -> None:
        """An update of ``state``: sent now when due, else kept for the next one."""
        with self._lock:
            if state.ended is not None:
                return
            state.pending.update({k: v for k, v in figures.items() if v is not None})
            now = time.monotonic()
            if now - state.sent_at >= UPDATE_INTERVAL:
                self._flush(state, now)

    def _flush(self, state: _Relayed, now: float) -> None:
        pending, state.pending, state.sent_at = state.pending, {}, now
        if pending:
            self._send({"op": "update", "id": state.ident, **pending})

    def end(self, activity: Activity, ok: bool = True) -> float:
        """End the activity here and on the controller; its elapsed seconds."""
        assert isinstance(activity, _Relayed)
        with self._lock:
            if activity.ended is None:
                self._flush(activity, time.monotonic())
                activity.ended, activity.ok = time.monotonic(), ok
                self._send({"op": "end", "id": activity.ident, "ok": ok})
        assert activity.ended is not None
        return activity.ended - activity.started

    def console(self, kernel: str, line: str, report: bool) -> None:
        """A guest console line (--console), shown by the controller."""
        with self._lock:
            self._send({"op": "console", "kernel": kernel, "line": line, "report": report})

    def log(self, text: str) -> None:
        """A line for the user ("boot-1 failed, booting once more")."""
        with self._lock:
            self._send({"op": "log", "text": text})

    def close(self) -> None:
        """Hang up (the controller ends what was still running as stopped)."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


@dataclass(eq=False)
class _Relayed(ActivityState):
    """An activity of a :class:`RelayProgress`: its updates are relayed."""

    relay: RelayProgress | None = field(default=None, repr=False)
    ident: int = 0  # its number on the relay
    sent_at: float = 0.0  # when its last update went out
    pending: dict[str, Any] = field(default_factory=dict)  # figures not yet sent

    def update(
        self,
        done: float | None = None,
        total: float | None = None,
        step: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record the figures and relay them."""
        super().update(done, total, step, detail)
        assert self.relay is not None
        self.relay._updated(self, {"done": done, "total": total, "step": step, "detail": detail})


# -- controller side -------------------------------------------------------------------------
@dataclass
class _Peer:
    """One connected worker: its unread bytes and its running activities."""

    sock: socket.socket
    worker: str = "?"
    buffer: bytes = b""
    running: dict[int, Activity] = field(default_factory=dict)


class RelayServer:
    """Listens for workers' progress and replays it into ``progress``.

    ``log`` shows a worker's log lines.  A worker names itself in its first
    message (``hello``); its activities are labelled ``[gwN] <label>``.  A
    worker that hangs up (finished, killed) has its running activities ended
    as stopped.  :meth:`close` joins the thread and closes every socket.
    """

    def __init__(self, progress: Progress, log: Callable[[str], None]) -> None:
        self.progress = progress
        self._log = log
        self.address = f"kharness-progress-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind("\0" + self.address)
        self._listener.listen(64)
        self._peers: dict[int, _Peer] = {}
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._loop, name="progress-relay", daemon=True)

    def start(self) -> RelayServer:
        """Serve on a daemon thread until :meth:`close`."""
        self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            socks = [self._listener, *(p.sock for p in self._peers.values())]
            readable, _, _ = select.select([*socks, self._wake_r], [], [])
            if self._wake_r in readable:
                return
            for sock in readable:
                if sock is self._listener:
                    conn, _ = self._listener.accept()
                    self._peers[conn.fileno()] = _Peer(conn)
                else:
                    self._read(self._peers[sock.fileno()])

    def _read(self, peer: _Peer) -> None:
        try:
            data = peer.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._hang_up(peer)
            return
        peer.buffer += data
        *lines, peer.buffer = peer.buffer.split(b"\n")
        for line in lines:
            try:
                message = json.loads(line)
                self.apply(peer, message)
            except (ValueError, KeyError, TypeError) as exc:  # a bad line: skip it, go on
                self._log(f"progress relay: unreadable message from {peer.worker}: {exc}")

    def apply(self, peer: _Peer, message: dict[str, Any]) -> None:
        """One event of ``peer``, replayed into the controller's progress."""
        op = message["op"]
        if op == "hello":
            peer.worker = str(message["worker"])
        elif op == "start":
            label = f"[{peer.worker}] {message['label']}"
            kind = Kind(message["kind"])
            act = self.progress.activity(kind, label, message.get("total"), message.get("timeout"))
            peer.running[int(message["id"])] = act
        elif op == "update":
            act = peer.running.get(int(message["id"]))
            if act is not None:
                figures = ("done", "total", "step", "detail")
                act.update(**{k: message[k] for k in figures if k in message})
        elif op == "end":
            act = peer.running.pop(int(message["id"]), None)
            if act is not None:
                self.progress.end(act, bool(message["ok"]))
        elif op == "console":
            line, report = str(message["line"]), bool(message["report"])
            self.progress.console(f"[{peer.worker}] {message['kernel']}", line, report)
        elif op == "log":
            self._log(f"[{peer.worker}] {message['text']}")

    def _hang_up(self, peer: _Peer) -> None:
        for act in peer.running.values():
            self.progress.end(act, ok=False)
        peer.running.clear()
        self._peers.pop(peer.sock.fileno(), None)
        peer.sock.close()

    def close(self) -> None:
        """Stop serving; close the listener and every connection."""
        if self._thread.is_alive():
            os.write(self._wake_w, b"x")
            self._thread.join(5)
        for peer in list(self._peers.values()):
            self._hang_up(peer)
        self._listener.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
