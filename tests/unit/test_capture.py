"""Bounded output capture: what is kept, what the files hold, how much memory it takes.

A test's streams (stdout, stderr) and a guest's console (head, reports, tail).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from harness.guest import protocol
from harness.machine.capture import (
    HOLD,
    Capture,
    ConsoleLimit,
    ConsoleRecord,
    OutputLimit,
    StreamCapture,
)
from harness.machine.console import ConsoleWatcher
from harness.oops import parse


def _cut_trailer(rest: str) -> str:
    return protocol.split_trailer(rest, None).stderr


def test_small_output_is_kept_whole_and_the_trailer_stays_out_of_the_file(
    tmp_path: Path,
) -> None:
    cap = Capture.to_files(tmp_path, OutputLimit.total(1 << 20))
    cap.stdout.feed(b"TAP version 13\n")
    cap.stdout.feed(b"ok 1 - fine\n")
    cap.stderr.feed(b"a warning\n" + protocol.trailer(0, 0, 512).encode())
    cap.close(_cut_trailer)
    assert cap.stdout.text() == "TAP version 13\nok 1 - fine\n"
    assert protocol.split_trailer(cap.stderr.text(), None).exit_code == 0  # the result keeps it
    assert (tmp_path / "stdout.txt").read_text() == "TAP version 13\nok 1 - fine\n"
    assert (tmp_path / "stderr.txt").read_text() == "a warning\n"  # the test's own newline


def test_a_flood_keeps_head_and_tail_and_says_what_it_dropped(tmp_path: Path) -> None:
    limit = OutputLimit(64 << 10, 64 << 10)
    stream = StreamCapture(limit, tmp_path / "stdout.txt")
    chunk = b"".join(b"%07d\n" % i for i in range(8192))  # 64 KiB of numbered lines
    for _ in range(800):  # 50 MiB
        stream.feed(chunk)
        # memory: the head, and a tail ring trimmed to at most twice its size
        assert len(stream._head) <= limit.head and len(stream._tail) <= 2 * limit.tail + len(chunk)
    stream.feed(b"the end\n")
    stream.close()
    total = 800 * len(chunk) + 8
    assert stream.total == total and stream.dropped == total - limit.head - limit.tail
    saved = (tmp_path / "stdout.txt").read_bytes()
    assert saved.decode() == stream.text()
    assert saved.startswith(b"0000000\n0000001\n") and saved.endswith(b"\nthe end\n")
    assert f"[kharness: {stream.dropped} bytes dropped here; of {total} bytes".encode() in saved
    assert len(saved) < limit.head + limit.tail + 200


def test_the_head_reaches_the_file_while_the_command_still_runs(tmp_path: Path) -> None:
    """Evidence survives a harness that dies mid-test: all but HOLD bytes are on disk."""
    stream = StreamCapture(OutputLimit.total(1 << 20), tmp_path / "stdout.txt")
    stream.feed(b"y" * (HOLD + 1000))
    assert (tmp_path / "stdout.txt").stat().st_size == 1000
    stream.close()
    assert (tmp_path / "stdout.txt").stat().st_size == HOLD + 1000


def test_in_memory_capture_is_bounded_too() -> None:
    cap = Capture.in_memory(OutputLimit(10_000, 10_000))
    for _ in range(100):
        cap.stdout.feed(b"z" * 10_000)
    assert len(cap.stdout.text()) < 20_000 + 200
    assert cap.stdout.dropped == 1_000_000 - 20_000


@pytest.mark.parametrize(
    ("text", "half"),
    [("1M", 512 << 10), ("256KiB", 128 << 10), ("2 mb", 1 << 20), ("1000000", 500_000)],
)
def test_sizes_read_as_people_write_them(text: str, half: int) -> None:
    assert OutputLimit.parse(text) == OutputLimit(half, half)


def test_a_tiny_limit_still_has_room_for_the_trailer() -> None:
    assert OutputLimit.parse("10") == OutputLimit(HOLD, HOLD)


def test_a_size_that_is_no_size_names_the_format() -> None:
    with pytest.raises(ValueError, match=r"'lots' is not a size; .* e\.g\. 1M or 256KiB"):
        OutputLimit.parse("lots")


# -- the console: head, reports, tail ---------------------------------------------------------
SAMPLE = Path(__file__).parents[1] / "data" / "oops" / "6.1-warn.log"


def _sample_report() -> bytes:
    """A real WARNING as the guest printed it, from ``cut here`` to its end trace."""
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if b"[ cut here ]" in line)
    return b"".join(lines[start:])


def _noise(size: int, word: bytes) -> bytes:
    line = b"[  100.000000] " + word + b": a test printing to kmsg in a loop\n"
    return line * (size // len(line))


def test_a_small_console_is_kept_whole_and_written_as_it_arrives(tmp_path: Path) -> None:
    record = ConsoleRecord(
        ConsoleLimit(head=1 << 10, reports=1 << 10, tail=1 << 10), tmp_path / "c"
    )
    record.feed(b"[    0.0] Linux version 6.1\n")
    assert (tmp_path / "c").read_bytes() == b"[    0.0] Linux version 6.1\n"  # live, for tail -f
    record.feed(b"[    1.0] Run /init\n")
    record.trim()
    record.close()
    assert record.dropped == 0
    assert (
        (tmp_path / "c").read_bytes()
        == record.view()
        == b"[    0.0] Linux version 6.1\n" + (b"[    1.0] Run /init\n")
    )


def test_the_middle_is_cut_but_offsets_and_reports_stay(tmp_path: Path) -> None:
    limit = ConsoleLimit(head=4096, reports=4096, tail=4096, before=64, after=1024)
    record = ConsoleRecord(limit, tmp_path / "console.log")
    fed = bytearray()
    for chunk in (_noise(10_000, b"early"), b"BUG: at 0\n", _noise(50_000, b"late"), b"END\n"):
        at = record.total
        record.feed(chunk)
        fed += chunk
        if chunk.startswith(b"BUG"):
            record.protect(at)
        record.trim()
    record.close()
    assert record.total == len(fed)
    kept = record.view()
    assert kept.startswith(bytes(fed[:4096])) and kept.endswith(bytes(fed[-4096:]))
    assert b"BUG: at 0\n" in kept
    assert kept.count(b"bytes of console cut here") == 2  # before the report and after it
    assert len(kept) < 4096 * 2 + 1024 + 64 + 4096 + 2 * 300
    assert (tmp_path / "console.log").read_bytes() == kept, "the file holds what memory does"
    at = fed.index(b"BUG: at 0")  # a window by stream offsets still finds its part
    assert record.view(at, at + 10) == b"BUG: at 0\n"
    assert record.search(re.compile(rb"BUG: at \d"), 5000) is not None
    assert record.search(re.compile(rb"END"), len(fed) - 100) is not None


def test_a_warning_storm_keeps_its_first_reports_within_the_budget(tmp_path: Path) -> None:
    limit = ConsoleLimit(head=1024, reports=8192, tail=1024, before=16, after=1024)
    record = ConsoleRecord(limit, tmp_path / "console.log")
    for i in range(2000):
        at = record.total
        record.feed(f"WARNING: storm {i}\n".encode() + b"x" * 300 + b"\n")
        record.protect(at)
        record.trim()
    record.close()
    kept = record.view()
    assert b"WARNING: storm 3\n" in kept and b"WARNING: storm 1999\n" in kept
    assert len(kept) < 1024 + 8192 + 2 * 1024 + 1000


def test_a_50_mb_console_with_a_report_in_the_middle(tmp_path: Path) -> None:
    """The real watcher on a pipe: bounded file and memory, the report still parsed."""
    report = _sample_report()
    stream = [_noise(25 << 20, b"before"), report, _noise(25 << 20, b"after")]
    size = sum(map(len, stream))
    read, write = os.pipe()
    watcher = ConsoleWatcher(read, tmp_path / "console.log")

    def writer() -> None:
        with os.fdopen(write, "wb") as out:
            for part in stream:
                out.write(part)

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(120)
    watcher.join(120)
    assert watcher.eof and watcher.offset() == size
    limit = ConsoleLimit()
    on_disk = (tmp_path / "console.log").stat().st_size
    assert on_disk < limit.head + limit.reports + limit.tail + 4096, on_disk
    assert len(watcher.text()) == on_disk, "memory holds what the file does, no more"
    log = (tmp_path / "console.log").read_text()
    assert "bytes of console cut here" in log
    titles = [r.title for r in parse(log)]
    assert titles == ["WARNING in harness_oops_warn"]
    middle = watcher.text(25 << 20, (25 << 20) + len(report))  # the test's window
    assert [r.title for r in parse(middle)] == ["WARNING in harness_oops_warn"]
    assert watcher.report_since(0) and not watcher.panicked
