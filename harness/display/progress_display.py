"""How progress is shown: plain timestamped lines for a log, a live line on a terminal.

The activities and what a line says are :mod:`harness.display.progress`'s; this
module only draws them, on a stream or through pytest's terminal reporter.
Every line drawn goes through :func:`harness.display.textsafe.printable` here, the one
place before the terminal: labels carry series titles from a list, details and
``--console`` lines carry a guest's console, and neither may drive the terminal.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TextIO

from harness.display.progress import (
    NO_PROGRESS,
    Activity,
    ActivityState,
    Kind,
    Mode,
    Progress,
    Throttle,
    describe,
    final,
)
from harness.display.textsafe import printable


class _Base:
    """Bookkeeping shared by the plain and live forms: the running activities."""

    def __init__(self, console: bool, clock: Callable[[], float]) -> None:
        self.streams_console = console
        self._clock = clock
        self._lock = threading.RLock()
        self._running: list[ActivityState] = []
        self._held: list[tuple[str, str, bool]] = []  # console lines kept for later

    def console(self, kernel: str, line: str, report: bool) -> None:
        """A console line, shown now while an activity runs, else at the next one.

        Console lines come from the console's reader thread.  While nothing
        runs, pytest may be between phases (switching its output capture), so
        they wait for the next activity, or :meth:`close`.
        """
        with self._lock:
            self._held.append((kernel, line, report))
            if self._running:
                self._release()

    def _release(self) -> None:
        """Show the console lines held so far (lock held)."""
        held, self._held = self._held, []
        for kernel, line, report in held:
            self._console_line(kernel, line, report)

    def _console_line(self, kernel: str, line: str, report: bool) -> None:
        raise NotImplementedError

    def activity(
        self, kind: Kind, label: str, total: float | None = None, timeout: float | None = None
    ) -> Activity:
        """Start an activity and show it."""
        state = ActivityState(kind, label, self._clock(), total, timeout)
        with self._lock:
            self._running.append(state)
            self._started(state)
            self._release()
        return state

    def end(self, activity: Activity, ok: bool = True) -> float:
        """End an activity, show its closing line; elapsed seconds."""
        assert isinstance(activity, ActivityState)
        with self._lock:
            activity.ended, activity.ok = self._clock(), ok
            if activity in self._running:
                self._running.remove(activity)
            self._ended(activity)
        return activity.ended - activity.started

    def _started(self, state: ActivityState) -> None:
        raise NotImplementedError

    def _ended(self, state: ActivityState) -> None:
        raise NotImplementedError


class PlainProgress(_Base):
    """Timestamped lines for logs: start, every ``interval`` s at most, end.

    ``write`` takes one line without its newline.  :meth:`tick` emits what is
    due; :meth:`start` runs it once a second on a daemon thread (a test's
    elapsed time moves even when nobody calls :meth:`Activity.update`).
    """

    def __init__(
        self,
        write: Callable[[str], None],
        interval: float = 10.0,
        console: bool = False,
        clock: Callable[[], float] = time.monotonic,
        stamp: Callable[[], str] = lambda: time.strftime("%H:%M:%S"),
    ) -> None:
        super().__init__(console, clock)
        self._write = write
        self._stamp = stamp
        self._throttle = Throttle(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _emit(self, text: str) -> None:
        self._write(printable(f"{self._stamp()} [kharness] {text}"))

    def _started(self, state: ActivityState) -> None:
        self._throttle.due(id(state), state.started)
        self._emit(f"{describe(state, state.started)} (started)")

    def _ended(self, state: ActivityState) -> None:
        self._throttle.forget(id(state))
        self._emit(final(state))

    def tick(self) -> None:
        """One line for each running activity whose last line is ``interval`` s old."""
        with self._lock:
            now = self._clock()
            for state in self._running:
                if self._throttle.due(id(state), now):
                    self._emit(describe(state, now))

    def _console_line(self, kernel: str, line: str, report: bool) -> None:
        """Prefixed by the kernel; '!' marks a kernel report's first line."""
        self._write(printable(f"{kernel}{'!' if report else ':'} {line}"))

    def print(self, text: str) -> None:
        """Any other line, timestamped like the rest."""
        with self._lock:
            self._emit(text)

    def start(self) -> PlainProgress:
        """Tick once a second until :meth:`close`."""
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.tick()

    def close(self) -> None:
        """Stop ticking."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        with self._lock:
            self._release()


class LiveProgress(_Base):
    """A live line per running activity on a terminal, drawn with rich.

    ``out`` is the terminal stream (the plugin passes a writer that goes
    through pytest's terminal reporter).  Lines printed while activities run
    (:meth:`print`, console lines) go above the live lines, which rich redraws
    below them.  Closing lines of downloads, builds and boots stay on screen;
    a test's does not (pytest reports the test).
    """

    def __init__(
        self,
        out: TextIO,
        console: bool = False,
        width: int | None = None,
        before_write: Callable[[], None] = lambda: None,
    ) -> None:
        from rich.console import Console
        from rich.live import Live

        super().__init__(console, time.monotonic)
        self._before_write = before_write  # pytest: end a line it left open first
        self._console = Console(file=out, force_terminal=True, width=width, highlight=False)
        self._live = Live(
            console=self._console,
            get_renderable=self._render,
            refresh_per_second=2,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def _render(self) -> object:
        from rich.text import Text

        # No lock here: rich's refresh thread calls this under rich's lock, while
        # our lock's holder may be waiting for that thread (Live.stop joins it).
        now = time.monotonic()
        lines = [printable(describe(s, now), newlines=False) for s in list(self._running)]
        width = self._console.width - 1
        return Text("\n".join(line[:width] for line in lines), style="cyan")

    def _started(self, state: ActivityState) -> None:
        if not self._live.is_started:
            self._before_write()
            self._live.start()
        self._live.refresh()

    def _ended(self, state: ActivityState) -> None:
        if state.kind is not Kind.TEST or not state.ok:
            self.print(f"[kharness] {final(state)}")
        if not self._running and self._live.is_started:
            self._live.stop()

    def print(self, text: str, style: str | None = None) -> None:
        """A line above the live lines (or plainly, when none runs)."""
        from rich.text import Text

        with self._lock:
            if not self._live.is_started:
                self._before_write()
            self._console.print(Text(printable(text), style=style or ""), soft_wrap=True)

    def _console_line(self, kernel: str, line: str, report: bool) -> None:
        """Prefixed by its kernel; a report's first line in bold red."""
        self.print(f"{kernel}| {line}", "bold red" if report else "dim")

    def close(self) -> None:
        """Take the live lines down, show console lines still held."""
        with self._lock:
            self._running.clear()
            if self._live.is_started:
                self._live.stop()
            self._release()


def for_stream(stream: TextIO, console: bool = False) -> LiveProgress | PlainProgress:
    """Outside pytest: a live line when ``stream`` is a terminal, plain lines otherwise.

    ``$KHARNESS_PROGRESS=plain`` asks for plain lines on a terminal too (the
    list bot's children run on an ssh pseudo-terminal whose output is a log).
    """
    if stream.isatty() and os.environ.get("KHARNESS_PROGRESS", "auto") in ("auto", "live"):
        return LiveProgress(stream, console)
    return PlainProgress(lambda line: print(line, file=stream, flush=True), console=console).start()


# -- pytest ------------------------------------------------------------------------------------
class ReporterStream:
    """A text stream that writes through pytest's terminal reporter, even mid-test.

    pytest captures output while a test's setup and call run; like its own
    live logging, each write steps out of the capture (``capman``, pytest's
    capture manager, or None) for its duration.
    """

    encoding = "utf-8"

    def __init__(self, reporter: Any, capman: Any) -> None:
        self._reporter = reporter
        self._capman = capman

    def _uncaptured(self) -> AbstractContextManager[None]:
        if self._capman is None:
            return nullcontext()
        return self._capman.global_and_fixture_disabled()

    def write(self, text: str) -> int:
        """Write ``text`` as is (rich's control codes included)."""
        with self._uncaptured():
            self._reporter.write(text, flush=True)
        return len(text)

    def write_line(self, line: str) -> None:
        """One line, after ending a line pytest left open.

        pytest's reporter ends only lines it began with a file name; xdist's
        progress dots leave a line open that it does not know of, so the
        terminal writer's column is asked too.
        """
        with self._uncaptured():
            writer = getattr(self._reporter, "_tw", None)
            if writer is not None and getattr(writer, "width_of_current_line", 0):
                self._reporter.write("\n")
            self._reporter.write_line(line)
            self._reporter.flush()

    def ensure_newline(self) -> None:
        """End a line pytest left open (it writes its prefix again after us)."""
        with self._uncaptured():
            self._reporter.ensure_newline()

    def flush(self) -> None:
        """Nothing to do: every write is flushed."""

    def isatty(self) -> bool:
        """The reporter writes to a terminal (live mode is only chosen then)."""
        return True


def for_reporter(
    mode: Mode, reporter: Any, capman: Any, console: bool, width: int
) -> tuple[Progress, ReporterStream | None]:
    """The progress for ``mode`` through pytest's reporter, and its stream (None when off)."""
    stream = ReporterStream(reporter, capman)
    if mode is Mode.LIVE:
        live = LiveProgress(stream, console, width, before_write=stream.ensure_newline)
        return live, stream
    if mode is Mode.PLAIN:
        return PlainProgress(stream.write_line, console=console).start(), stream
    return NO_PROGRESS, None
