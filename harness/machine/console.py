"""Watching a guest's kernel console for its whole life.

A reader thread drains the console stream (a pipe from QEMU or virtme-ng, or
the replay backend's recording) from the moment the guest starts until it
exits, writes it to the console log as it arrives, and keeps the text in
memory so the harness can wait for a marker, cut out one test's window, and
notice a dead kernel.  Draining continuously matters: a console nobody reads
fills the pipe buffer and stalls the guest's printk.

A guest prints what it likes, without end: what is kept, in memory and in
``console.log``, is bounded by a :class:`~harness.machine.capture.ConsoleLimit`
(the head, the bytes around each kernel report, the tail; a line says what
was cut), so the report parser still sees the reports of a 50 MB console.
Offsets count every byte printed, kept or not.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.machine.capture import ConsoleLimit, ConsoleRecord
from harness.oops.formats import PREFIX, any_header, panic_header

_PANIC = re.compile(panic_header().encode())
#: a report's first line, where the parser looks for it: at a line's start, after printk's
#: prefix (unanchored, the big alternation cost ~1 s per MB printed; anchored, a tenth)
_REPORT = re.compile(f"(?m){PREFIX}(?:{any_header()})".encode())
_REPORT_TEXT = re.compile(any_header())
#: a console line longer than this is given to listeners in parts (a line that never ends)
_LONGEST_LINE = 64 << 10


def is_report_line(line: str) -> bool:
    """Whether a console line looks like the first line of a kernel report (a hint)."""
    return _REPORT_TEXT.search(line) is not None


class ConsoleWatcher:
    """Owns the read side of a console stream: log, buffer and waits.

    ``fd`` is a file descriptor open for reading; the watcher reads it until
    EOF (every writer closed it: the guest exited) and closes it then.
    """

    def __init__(self, fd: int, log_path: Path, limit: ConsoleLimit | None = None) -> None:
        self._fd = fd
        self._record = ConsoleRecord(limit or ConsoleLimit(), log_path)
        self._cond = threading.Condition()
        self._eof = False
        self._panic_at: int | None = None
        self._report_at: int | None = None  # last offset where a report seemed to start
        self._last_rx = time.monotonic()
        self._listeners: list[Callable[[str], None]] = []
        self._lines_end = 0  # offset after the last complete line given to listeners
        self._thread = threading.Thread(target=self._pump, name="console", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            with self._cond:
                start = max(0, self._record.total - 200)
                self._record.feed(chunk)
                self._last_rx = time.monotonic()
                self._scan(start)
                self._cond.notify_all()
                if self._listeners:
                    self._feed(self._listeners)
                self._record.trim()
        with self._cond:
            self._eof = True
            self._record.close()
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def _scan(self, start: int) -> None:
        """Note panics and report starts in the newly arrived bytes (lock held)."""
        if self._panic_at is None:
            found = self._record.scan(_PANIC, start)
            if found:
                self._panic_at = found[0]
        for at in self._record.scan(_REPORT, start):
            self._report_at = at
            self._record.protect(at)  # kept, whatever the guest prints after it

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with each complete console line, those already seen first.

        It runs on the reader thread, under the watcher's lock: it must be quick
        (the progress line, the --console stream) and must not call back here.
        """
        with self._cond:
            self._listeners.append(listener)
            self._feed([listener], 0)

    def _feed(self, listeners: list[Callable[[str], None]], start: int | None = None) -> None:
        """Give ``listeners`` the complete lines after ``start`` (lock held)."""
        begin = self._lines_end if start is None else start
        data = self._record.view(begin)  # a cut in it reads as its own line
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) > _LONGEST_LINE:
            cut = len(data)
        if cut == 0:
            return
        for raw in data[:cut].splitlines():
            line = raw.decode("utf-8", "replace").rstrip("\r")
            for listener in listeners:
                listener(line)
        end = self._record.total - (len(data) - cut)
        if start is None or end > self._lines_end:
            self._lines_end = max(self._lines_end, end)

    def report_since(self, offset: int) -> bool:
        """Whether something that looks like a kernel report started after ``offset``."""
        with self._cond:
            return self._report_at is not None and self._report_at >= offset

    def idle_seconds(self) -> float:
        """Seconds since the console last printed anything."""
        with self._cond:
            return time.monotonic() - self._last_rx

    @property
    def eof(self) -> bool:
        """The stream ended: the guest's process exited."""
        return self._eof

    @property
    def panicked(self) -> bool:
        """The kernel printed a panic."""
        return self._panic_at is not None

    def offset(self) -> int:
        """Bytes seen so far (kept or not): a position to cut windows from."""
        with self._cond:
            return self._record.total

    def text(self, start: int = 0, end: int | None = None) -> str:
        """The kept console text between two offsets, decoded leniently; cuts say so."""
        with self._cond:
            return self._record.view(start, end).decode("utf-8", "replace")

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines, for boot-failure reports."""
        recent = self.text(max(0, self.offset() - 1024 * lines))
        return "\n".join(recent.replace("\r", "").splitlines()[-lines:])

    def wait_for(self, pattern: bytes, timeout: float, start: int = 0) -> re.Match[bytes] | None:
        """Wait until ``pattern`` appears after ``start``; None on timeout, EOF or panic."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = self._record.search(rx, start)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or self._eof or self._panic_at is not None:
                    return None
                self._cond.wait(min(left, 0.5))

    def wait_quiet(self, idle: float, timeout: float) -> None:
        """Wait until nothing new arrived for ``idle`` s (bounded): lets a report finish."""
        deadline = time.monotonic() + timeout
        last = self.offset()
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and not self._eof:
            time.sleep(0.05)
            now = self.offset()
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= idle:
                return

    def join(self, timeout: float) -> None:
        """Wait for the reader to see EOF (after the guest is stopped)."""
        self._thread.join(timeout)
