"""Bounded output capture: what is kept, what the files hold, how much memory it takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.guest import protocol
from harness.machine.capture import HOLD, Capture, OutputLimit, StreamCapture


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
