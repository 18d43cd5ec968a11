"""Feedback during long work: formatting, rate limiting, and who reports what.

The pure parts (figures, lines, when a plain line is due) are tested with a
fake clock; the reporters are tested on real code paths: a download from a
local HTTP server through the archive code, a build of the fake kbuild tree,
and a boot and tests on the replay backend with a real console watcher.
"""

from __future__ import annotations

import dataclasses
import http.server
import io
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.commands.run import progress_mode
from harness.display.progress import (
    ActivityState,
    Kind,
    Mode,
    Throttle,
    choose,
    describe,
    duration,
    eta,
    final,
    human_bytes,
)
from harness.display.progress_display import LiveProgress, PlainProgress, ReporterStream, for_stream
from harness.errors import BuildFailed
from harness.kernels import debian_archive as archive
from harness.kernels import kbuild
from harness.machine.console import ConsoleWatcher, is_report_line
from harness.outcome import Outcome
from harness.session import KernelGuest
from tests.support.replay.script import Script, Step, lines
from tests.unit.fake_kbuild import make_tree
from tests.unit.test_build_tree import _patch, _source
from tests.unit.test_runner_policy import BOOT, NULL_OOPS, guest_with, run_all, test_


# -- a recording Progress ---------------------------------------------------------------------
@dataclass
class Recorded:
    """What a recording progress saw: activities (ended or not) and console lines."""

    activities: list[ActivityState] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    console_lines: list[tuple[str, str, bool]] = field(default_factory=list)


class RecordingActivity(ActivityState):
    """An activity that also notes every step it went through."""

    record: Recorded

    def update(self, done=None, total=None, step=None, detail=None) -> None:  # type: ignore[no-untyped-def]
        """Record, then note the step."""
        super().update(done, total, step, detail)
        if step is not None:
            self.record.steps.append(step)


class RecordingProgress:
    """Remembers everything reported to it (streams the console when asked)."""

    def __init__(self, console: bool = False) -> None:
        self.streams_console = console
        self.seen = Recorded()

    def activity(self, kind, label, total=None, timeout=None):  # type: ignore[no-untyped-def]
        """Record a new activity."""
        state = RecordingActivity(kind, label, time.monotonic(), total, timeout)
        state.record = self.seen
        self.seen.activities.append(state)
        return state

    def end(self, activity, ok=True):  # type: ignore[no-untyped-def]
        """Mark it ended."""
        activity.ended, activity.ok = time.monotonic(), ok
        return activity.ended - activity.started

    def console(self, kernel: str, line: str, report: bool) -> None:
        """Record a console line."""
        self.seen.console_lines.append((kernel, line, report))

    def of(self, kind: Kind) -> list[ActivityState]:
        """The activities of one kind."""
        return [a for a in self.seen.activities if a.kind is kind]


# -- pure formatting ----------------------------------------------------------------------------
def test_figures_read_as_a_person_writes_them() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(107_177_456) == "102.2 MiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"
    assert duration(5.9) == "0:05"
    assert duration(65) == "1:05"
    assert duration(3725) == "1:02:05"
    assert eta(25, 100, 5) == 15
    assert eta(25, None, 5) is None and eta(25, 100, 0) is None


def test_a_download_line_has_bytes_total_rate_and_time_left() -> None:
    state = ActivityState(Kind.DOWNLOAD, "d612: linux-image 6.12", started=100.0, total=100 << 20)
    state.update(done=25 << 20)
    assert describe(state, now=105.0) == (
        "download d612: linux-image 6.12: 25.0/100.0 MiB (25%), 5.0 MiB/s, 0:15 left, 0:05"
    )
    state.ended = 110.0
    assert final(state) == "download d612: linux-image 6.12: 25.0 MiB done in 10.0s"


def test_build_boot_and_test_lines() -> None:
    build = ActivityState(Kind.BUILD, "fix: linux-source-6.12", started=0.0)
    assert describe(build, 3) == "build fix: linux-source-6.12: starting, 0:03"
    build.update(step="compile", done=120, total=2000)
    assert describe(build, 75) == (
        "build fix: linux-source-6.12: compile 120/~2000 (last build) objects, 1:15"
    )
    boot = ActivityState(Kind.BOOT, "d612: boot-1", started=0.0, detail="[ 1.2] Run /init")
    assert describe(boot, 4.5) == "boot d612: boot-1: 0:04 | [ 1.2] Run /init"
    test = ActivityState(Kind.TEST, "d612: uffd_api", started=0.0, timeout=60)
    assert describe(test, 12) == "test d612: uffd_api: 0:12 of 1:00 timeout"


def test_throttle_allows_one_line_per_interval_per_activity() -> None:
    throttle = Throttle(10.0)
    assert throttle.due(1, 0.0) and throttle.due(2, 0.0)
    assert not throttle.due(1, 9.9)
    assert throttle.due(1, 10.0) and not throttle.due(1, 15.0)
    throttle.forget(1)
    assert throttle.due(1, 15.0)


def test_mode_auto_is_live_on_a_terminal_and_off_in_a_log_or_quiet() -> None:
    assert choose(Mode.AUTO, tty=True, quiet=False, console=False) is Mode.LIVE
    assert choose(Mode.AUTO, tty=True, quiet=True, console=False) is Mode.OFF
    assert choose(Mode.AUTO, tty=False, quiet=False, console=False) is Mode.OFF
    assert choose(Mode.AUTO, tty=False, quiet=False, console=True) is Mode.PLAIN
    assert choose(Mode.PLAIN, tty=False, quiet=True, console=False) is Mode.PLAIN


# -- plain and live forms -----------------------------------------------------------------------
def test_plain_lines_start_every_ten_seconds_and_end() -> None:
    now = [0.0]
    out: list[str] = []
    plain = PlainProgress(out.append, 10.0, clock=lambda: now[0], stamp=lambda: "12:00:00")
    act = plain.activity(Kind.TEST, "d612: slow", timeout=60)
    for second in range(1, 26):  # 25 s of ticks, one a second as the thread does
        now[0] = float(second)
        plain.tick()
    plain.end(act)
    assert out == [
        "12:00:00 [kharness] test d612: slow: 0:00 of 1:00 timeout (started)",
        "12:00:00 [kharness] test d612: slow: 0:10 of 1:00 timeout",
        "12:00:00 [kharness] test d612: slow: 0:20 of 1:00 timeout",
        "12:00:00 [kharness] test d612: slow: done in 25.0s",
    ]


def test_plain_console_lines_are_prefixed_reports_marked_and_held_between_activities() -> None:
    out: list[str] = []
    plain = PlainProgress(out.append, console=True)
    plain.console("d612", "[    1.0] Run /init as init process", False)
    assert out == [], "held while nothing runs (pytest may be switching its capture)"
    act = plain.activity(Kind.TEST, "d612: a")
    plain.console("d612", "[    9.1] BUG: kernel NULL pointer dereference", True)
    plain.end(act)
    plain.console("d612", "[    9.9] reboot: Power down", False)
    plain.close()
    assert [line for line in out if "[kharness]" not in line] == [
        "d612: [    1.0] Run /init as init process",
        "d612! [    9.1] BUG: kernel NULL pointer dereference",
        "d612: [    9.9] reboot: Power down",
    ]


def test_live_progress_draws_a_line_and_leaves_closing_lines() -> None:
    out = io.StringIO()
    live = LiveProgress(out, console=True, width=100)
    boot = live.activity(Kind.BOOT, "d612: boot-1")
    boot.update(detail="[    1.0] Run /init as init process")
    live.console("d612", "[    2.0] BUG: kernel NULL pointer dereference", True)
    live.end(boot)
    live.close()
    text = out.getvalue()
    assert "boot d612: boot-1: 0:00" in text
    assert "[kharness] boot d612: boot-1: done in" in text
    assert "\x1b[1;31md612| [    2.0] BUG: kernel NULL pointer dereference" in text


# -- who reports what ------------------------------------------------------------------------
@pytest.fixture
def http_file(tmp_path: Path) -> Iterator[str]:
    """A URL on a local HTTP server serving 3 MiB."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "blob.deb").write_bytes(os.urandom(3 << 20))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(tmp_path / "www"), **kwargs)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/blob.deb"
    server.shutdown()


def test_a_download_reports_its_bytes_against_the_total(http_file: str, tmp_path: Path) -> None:
    progress = RecordingProgress()
    archive.fetch(http_file, tmp_path / "got.deb", progress, "blob 1.0")
    (download,) = progress.of(Kind.DOWNLOAD)
    assert download.label == "blob 1.0" and download.ok and download.ended is not None
    assert download.total == download.done == 3 << 20
    assert (tmp_path / "got.deb").stat().st_size == 3 << 20


def test_a_build_reports_its_steps_objects_and_timings(tmp_path: Path) -> None:
    monkey = pytest.MonkeyPatch()
    monkey.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    try:
        tree = make_tree(tmp_path / "linux")
        first = RecordingProgress()
        _source(tmp_path, tree).resolve(lambda _l: None, first)
        patched = RecordingProgress()
        series = [_patch(tmp_path, "fix", "int fault(void) { return 2; }")]
        image = _source(tmp_path, tree, series).resolve(lambda _l: None, patched)
    finally:
        monkey.undo()
    (build,) = first.of(Kind.BUILD)
    assert build.label == "linux" and build.ok
    assert first.seen.steps == ["config", "compile", "link"]
    assert build.done >= 2, "every fake object counted"
    (rebuild,) = patched.of(Kind.BUILD)
    assert patched.seen.steps[0] == "apply series (1: mm: fix)"
    assert patched.seen.steps[1:] == ["config", "compile", "link"]
    assert rebuild.done == 1, "one patched file recompiled"
    assert rebuild.total == build.done, "expected: what the slot compiled last time"
    assert set(image.phases) == {"build-apply", "build-config", "build-compile", "build-link"}


def test_kbuild_lines_counted_and_link_noticed() -> None:
    act = ActivityState(Kind.BUILD, "k", 0.0)
    meter = kbuild.StepMeter(act, expected=40)
    for line in (
        "  CC      mm/memory.o",
        "  AS      arch/x86/entry/entry_64.o",
        "  CC [M]  fs/ext4/inode.o",
        "  HOSTCC  scripts/kallsyms",
        "  AR      mm/built-in.a",
        "  LD      vmlinux.o",
        "  LD      .tmp_vmlinux1",
    ):
        meter.line(line)
    assert meter.objects == 3 and act.done == 3 and act.total == 40
    assert act.step == "link" and meter.link_started is not None


def test_console_listeners_get_whole_lines_including_those_before(tmp_path: Path) -> None:
    read, write = os.pipe()
    watcher = ConsoleWatcher(read, tmp_path / "console.log")
    os.write(write, b"[    0.1] Linux version\r\n[    0.2] par")
    deadline = time.monotonic() + 5
    while watcher.offset() < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    got: list[str] = []
    watcher.add_listener(got.append)
    os.write(write, b"tial line\n[    0.3] no newline yet")
    os.close(write)
    watcher.join(5)
    assert got == ["[    0.1] Linux version", "[    0.2] partial line"]
    assert is_report_line("[    9.1] BUG: kernel NULL pointer dereference, address: 0")
    assert not is_report_line("[    0.1] Linux version")


def test_boot_and_tests_report_elapsed_console_and_reports(tmp_path: Path) -> None:
    step = Step("/opt/tests/a", console=lines(NULL_OOPS), exit_code=0)
    guest, _ = guest_with(tmp_path, Script(BOOT, steps=(step, Step("/opt/tests/b"))))
    progress = RecordingProgress(console=True)
    guest = KernelGuest(guest.spec, dataclasses.replace(guest.ctx, progress=progress), guest.tests)
    a, b = run_all(guest, test_("a", timeout=30), test_("b"))
    guest.shutdown()
    assert a.verdict.outcome is Outcome.OOPS and b.verdict.outcome is Outcome.PASS
    boots = progress.of(Kind.BOOT)
    assert [x.label for x in boots] == ["replay-6.12: boot-1", "replay-6.12: boot-2"]
    assert all(x.ok and x.detail for x in boots), "each boot showed its last console line"
    assert re.search(r"Run /init|HARNESS-READY", boots[0].detail or "")
    tests = progress.of(Kind.TEST)
    assert [(t.label, t.timeout) for t in tests] == [("replay-6.12: a", 30), ("replay-6.12: b", 20)]
    flagged = [line for kernel, line, report in progress.seen.console_lines if report]
    assert any("BUG: kernel NULL pointer dereference" in line for line in flagged)
    assert all(kernel == "replay-6.12" for kernel, _, _ in progress.seen.console_lines)


def test_a_failed_build_ends_its_line_as_stopped(tmp_path: Path) -> None:
    monkey = pytest.MonkeyPatch()
    monkey.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    try:
        tree = make_tree(tmp_path / "linux", {"mm/broken.c": "#error no such thing\n"})
        progress = RecordingProgress()
        with pytest.raises(BuildFailed, match="no such thing"):
            _source(tmp_path, tree).resolve(lambda _l: None, progress)
    finally:
        monkey.undo()
    (build,) = progress.of(Kind.BUILD)
    assert not build.ok and build.ended is not None and build.step == "compile"


def test_outside_pytest_a_log_gets_plain_lines(tmp_path: Path) -> None:
    with (tmp_path / "log.txt").open("w") as log:
        progress = for_stream(log)
        assert isinstance(progress, PlainProgress)
        progress.end(progress.activity(Kind.BOOT, "k: boot-1"))
        progress.close()
    lines = (tmp_path / "log.txt").read_text().splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d \[kharness\] boot k: boot-1: 0:00 \(started\)", lines[0])
    assert re.fullmatch(r"\d\d:\d\d:\d\d \[kharness\] boot k: boot-1: done in 0\.0s", lines[1])


def test_a_terminal_gets_plain_lines_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ssh pseudo-terminal (the list bot's children on a host) is a log, not a screen."""
    import os
    import pty

    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w") as terminal:
            monkeypatch.delenv("KHARNESS_PROGRESS", raising=False)
            assert isinstance(for_stream(terminal), LiveProgress)
            monkeypatch.setenv("KHARNESS_PROGRESS", "plain")
            plain = for_stream(terminal)
            assert isinstance(plain, PlainProgress)
            plain.close()
    finally:
        os.close(master)


def test_harness_run_uses_plain_lines_in_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KHARNESS_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert progress_mode(None) == "plain"
    assert progress_mode("off") == "off"
    monkeypatch.setenv("KHARNESS_PROGRESS", "live")
    assert progress_mode(None) == "live"


def test_a_plain_line_never_joins_a_line_pytest_left_open(pytestconfig: pytest.Config) -> None:
    """xdist's progress dots leave a line open that pytest's reporter does not track."""
    from _pytest.terminal import TerminalReporter

    out = io.StringIO()
    reporter = TerminalReporter(pytestconfig, out)
    stream = ReporterStream(reporter, None)
    reporter.write("..")
    stream.write_line("12:00:00 [kharness] boot [gw0] k: boot-1: done in 5.0s")
    stream.write_line("12:00:01 [kharness] test [gw0] k: t: 0:00 (started)")
    reporter.write(".")
    assert out.getvalue().splitlines() == [
        "..",
        "12:00:00 [kharness] boot [gw0] k: boot-1: done in 5.0s",
        "12:00:01 [kharness] test [gw0] k: t: 0:00 (started)",
        ".",
    ]
