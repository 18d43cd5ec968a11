"""Feedback during long work: downloads, builds, boots and tests, and the live console.

The runner, the kernel providers and the pytest plugin report what they are
doing to a :class:`Progress` object handed to them (``RunContext.progress``,
a ``progress=`` argument); nothing here is global.  Three implementations:

* :class:`NoProgress`: silence, for library use and tests (the default);
* :class:`~harness.display.progress_display.PlainProgress`: timestamped lines for a
  log (CI): one when an activity starts, at most one per ``interval`` seconds
  while it runs, one when it ends;
* :class:`~harness.display.progress_display.LiveProgress`: one live, updating line per
  activity on a terminal, drawn by rich, written through whatever stream it
  is given (the plugin hands it pytest's terminal reporter, so pytest's own
  output stays intact).

What a line says is pure (:func:`describe`), and so is when a plain line is
due (:class:`Throttle`), so both are unit tested without a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


class Kind(Enum):
    """What a long activity is; it decides how its line reads."""

    DOWNLOAD = "download"
    BUILD = "build"
    BOOT = "boot"
    TEST = "test"


class Activity(Protocol):
    """One running activity, updated by whoever does the work."""

    def update(
        self,
        done: float | None = None,
        total: float | None = None,
        step: str | None = None,
        detail: str | None = None,
    ) -> None:
        """New figures (bytes or objects done, expected total), step or detail line."""
        ...


class Progress(Protocol):
    """Where long work reports itself; see the module docstring."""

    def activity(
        self, kind: Kind, label: str, total: float | None = None, timeout: float | None = None
    ) -> Activity:
        """Start an activity; :meth:`end` it (or use :func:`track`)."""
        ...

    def end(self, activity: Activity, ok: bool = True) -> float:
        """End an activity; its elapsed seconds."""
        ...

    def console(self, kernel: str, line: str, report: bool) -> None:
        """One guest console line (only called when the console is streamed)."""
        ...

    @property
    def streams_console(self) -> bool:
        """Whether the guest console is to be streamed (--console)."""
        ...


class Mode(Enum):
    """How feedback is shown: ``--progress`` (or ``$KHARNESS_PROGRESS``)."""

    AUTO = "auto"
    LIVE = "live"
    PLAIN = "plain"
    OFF = "off"


def choose(requested: Mode, tty: bool, quiet: bool, console: bool) -> Mode:
    """The mode in effect: auto is live on a terminal, off in a log or with -q.

    A log still gets plain lines when the console was asked for (--console).
    """
    if requested is not Mode.AUTO:
        return requested
    if tty and not quiet:
        return Mode.LIVE
    return Mode.PLAIN if console else Mode.OFF


@contextmanager
def track(
    progress: Progress,
    kind: Kind,
    label: str,
    total: float | None = None,
    timeout: float | None = None,
) -> Iterator[Activity]:
    """``with track(progress, Kind.BOOT, name) as act:``, ended whatever happens."""
    act = progress.activity(kind, label, total, timeout)
    ok = False
    try:
        yield act
        ok = True
    finally:
        progress.end(act, ok)


# -- pure formatting ------------------------------------------------------------------------
_UNITS = ("B", "KiB", "MiB", "GiB")


def _in_unit(n: float, unit: str) -> str:
    """``n`` bytes as a number of ``unit`` (no unit name)."""
    value = n / 1024 ** _UNITS.index(unit)
    return f"{value:.0f}" if unit == "B" else f"{value:.1f}"


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; one decimal from KiB up."""
    for unit in _UNITS:
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    """65 -> '1:05', 3725 -> '1:02:05'."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def eta(done: float, total: float | None, rate: float) -> float | None:
    """Seconds left at ``rate`` per second; None when it cannot be told."""
    if total is None or rate <= 0 or done > total:
        return None
    return (total - done) / rate


@dataclass
class ActivityState:
    """What is known of one activity; :func:`describe` turns it into a line."""

    kind: Kind
    label: str
    started: float
    total: float | None = None
    timeout: float | None = None
    done: float = 0.0
    step: str | None = None
    detail: str | None = None
    ended: float | None = None
    ok: bool = True

    def update(
        self,
        done: float | None = None,
        total: float | None = None,
        step: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record new figures; None leaves a figure as it was."""
        if done is not None:
            self.done = done
        if total is not None:
            self.total = total
        if step is not None:
            self.step = step
        if detail is not None:
            self.detail = detail


def describe(state: ActivityState, now: float) -> str:
    """The one line for ``state`` at time ``now`` (monotonic seconds)."""
    elapsed = (state.ended or now) - state.started
    if state.kind is Kind.DOWNLOAD:
        rate = state.done / elapsed if elapsed > 0 else 0.0
        size = human_bytes(state.done)
        if state.total:
            number, unit = human_bytes(state.total).split()
            size = f"{_in_unit(state.done, unit)}/{number} {unit}"
            size += f" ({100 * state.done / state.total:.0f}%)"
        text = f"download {state.label}: {size}, {human_bytes(rate)}/s"
        left = eta(state.done, state.total, rate)
        if state.ended is None and left is not None:
            text += f", {duration(left)} left"
        return text + f", {duration(elapsed)}"
    if state.kind is Kind.BUILD:
        text = f"build {state.label}: {state.step or 'starting'}"
        if state.step == "compile":
            of = f"/~{state.total:.0f} (last build)" if state.total else ""
            text += f" {state.done:.0f}{of} objects"
        return text + f", {duration(elapsed)}"
    if state.kind is Kind.BOOT:
        text = f"boot {state.label}: {duration(elapsed)}"
        return text + (f" | {state.detail}" if state.detail else "")
    text = f"test {state.label}: {duration(elapsed)}"
    return text + (f" of {duration(state.timeout)} timeout" if state.timeout else "")


def final(state: ActivityState) -> str:
    """The line that closes an activity."""
    assert state.ended is not None
    word = "done" if state.ok else "stopped"
    seconds = f"{state.ended - state.started:.1f}s"
    if state.kind is Kind.DOWNLOAD:
        return f"download {state.label}: {human_bytes(state.done)} {word} in {seconds}"
    if state.kind is Kind.BUILD and state.ok:
        objects = f", {state.done:.0f} objects compiled" if state.done else ""
        return f"build {state.label}: {word} in {seconds}{objects}"
    return f"{state.kind.value} {state.label}: {word} in {seconds}"


@dataclass
class Throttle:
    """Whether a plain line is due: at most one per ``interval`` seconds per activity."""

    interval: float = 10.0
    _last: dict[int, float] = field(default_factory=dict)

    def due(self, key: int, now: float) -> bool:
        """True (and remember ``now``) when ``key`` last printed ``interval`` s ago or never."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        return True

    def forget(self, key: int) -> None:
        """The activity ended."""
        self._last.pop(key, None)


class Labelled:
    """A Progress that puts ``prefix`` before every activity's label (the kernel's name)."""

    def __init__(self, inner: Progress, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    @property
    def streams_console(self) -> bool:
        """As the wrapped progress."""
        return self.inner.streams_console

    def activity(
        self, kind: Kind, label: str, total: float | None = None, timeout: float | None = None
    ) -> Activity:
        """The wrapped progress's activity, labelled '<prefix>: <label>'."""
        return self.inner.activity(kind, f"{self.prefix}: {label}", total, timeout)

    def end(self, activity: Activity, ok: bool = True) -> float:
        """As the wrapped progress."""
        return self.inner.end(activity, ok)

    def console(self, kernel: str, line: str, report: bool) -> None:
        """As the wrapped progress."""
        self.inner.console(kernel, line, report)


# -- implementations ------------------------------------------------------------------------
class NoProgress:
    """Says nothing: library use and tests."""

    streams_console = False

    def activity(
        self, kind: Kind, label: str, total: float | None = None, timeout: float | None = None
    ) -> Activity:
        """A state nobody renders (it still keeps time)."""
        return ActivityState(kind, label, time.monotonic(), total, timeout)

    def end(self, activity: Activity, ok: bool = True) -> float:
        """Elapsed seconds."""
        assert isinstance(activity, ActivityState)
        return time.monotonic() - activity.started

    def console(self, kernel: str, line: str, report: bool) -> None:
        """Nothing."""


NO_PROGRESS: Progress = NoProgress()
