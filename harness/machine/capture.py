"""A guest command's output, kept bounded: the head on disk as it arrives, the tail in a ring.

A test may print without end (a loop gone wrong, a debug printf left in).
Holding all of it cost the host's pytest process five times the output in
memory (256 MiB printed: 1.36 GB resident) and the evidence kept every byte.
Here each stream keeps its first ``head`` bytes, written to the evidence file
as they arrive, and its last ``tail`` bytes, in a ring that is written when
the command ends; what falls between is counted and replaced by one line
saying how much was dropped.  Memory per stream stays under ``head + 2 *
tail`` whatever the test prints.

The file lags the stream by :data:`HOLD` bytes so that the harness's trailer
(exit code and taint, the last line of stderr; see
:mod:`harness.guest.protocol`) can still be cut off before it reaches the
evidence.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

#: bytes of the head held back from the file until the stream ends (room for the trailer)
HOLD = 4096
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


@dataclass(frozen=True)
class OutputLimit:
    """How much of one stream is kept: its first ``head`` and last ``tail`` bytes."""

    head: int = 512 << 10
    tail: int = 512 << 10

    @classmethod
    def total(cls, size: int) -> OutputLimit:
        """Half of ``size`` for the head, half for the tail (at least a trailer's room each)."""
        half = max(size // 2, HOLD)
        return cls(half, half)

    @classmethod
    def parse(cls, text: str) -> OutputLimit:
        """'1M', '256KiB', '4096': the bytes kept per stream; ValueError names the format."""
        m = _SIZE.match(text)
        if not m:
            raise ValueError(
                f"output limit {text!r} is not a size; write it as bytes with an optional "
                "K, M or G suffix, e.g. 1M or 256KiB"
            )
        return cls.total(int(m.group(1)) * _UNITS[m.group(2).lower()])

    def describe(self) -> str:
        """'the first 512 KiB and the last 512 KiB'."""
        return f"the first {_human(self.head)} and the last {_human(self.tail)}"


class StreamCapture:
    """One output stream of one command (see the module docstring)."""

    def __init__(self, limit: OutputLimit, path: Path | None = None) -> None:
        self.limit = limit
        self.path = path
        self.total = 0
        self._head = bytearray()
        self._tail = bytearray()
        self._written = 0  # bytes of the head already in the file
        self._file: IO[bytes] | None = path.open("wb") if path is not None else None

    @property
    def dropped(self) -> int:
        """Bytes neither in the head nor in the tail."""
        return max(0, self.total - len(self._head) - min(len(self._tail), self.limit.tail))

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream."""
        self.total += len(data)
        room = self.limit.head - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
            self._flush_head()
        if data:
            self._tail += data
            if len(self._tail) > 2 * self.limit.tail:  # trim now and then, not per chunk
                del self._tail[: len(self._tail) - self.limit.tail]

    def _flush_head(self) -> None:
        upto = len(self._head) - HOLD
        if self._file is not None and upto > self._written:
            self._file.write(self._head[self._written : upto])
            self._file.flush()
            self._written = upto

    def _rest(self) -> bytes:
        """The kept bytes not in the file yet: the held-back head, the drop line, the tail."""
        tail = bytes(self._tail[-self.limit.tail :]) if self._tail else b""
        gap = b""
        if self.dropped:
            gap = (
                f"\n[kharness: {self.dropped} bytes dropped here; of {self.total} bytes the "
                f"evidence keeps {self.limit.describe()} (--max-output)]\n"
            ).encode()
        return bytes(self._head[self._written :]) + gap + tail

    def text(self) -> str:
        """Everything kept, as text: head, the drop line if any, tail."""
        return (bytes(self._head[: self._written]) + self._rest()).decode(errors="replace")

    def close(self, finish: Callable[[str], str] | None = None) -> None:
        """Write what is still held to the file, through ``finish`` (cuts the trailer)."""
        if self._file is None:
            return
        rest = self._rest().decode(errors="replace")
        if finish is not None:
            rest = finish(rest)
        self._file.write(rest.encode())
        self._file.close()
        self._file = None


@dataclass
class Capture:
    """The two streams of one command."""

    stdout: StreamCapture
    stderr: StreamCapture

    @classmethod
    def in_memory(cls, limit: OutputLimit | None = None) -> Capture:
        """Bounded, no files: for the harness's own small commands."""
        limit = limit or OutputLimit()
        return cls(StreamCapture(limit), StreamCapture(limit))

    @classmethod
    def to_files(cls, directory: Path, limit: OutputLimit) -> Capture:
        """``stdout.txt`` and ``stderr.txt`` in ``directory``, written as the output arrives."""
        directory.mkdir(parents=True, exist_ok=True)
        return cls(
            StreamCapture(limit, directory / "stdout.txt"),
            StreamCapture(limit, directory / "stderr.txt"),
        )

    def close(self, stderr_finish: Callable[[str], str] | None = None) -> None:
        """Finish both files (``stderr_finish`` cuts the trailer off stderr)."""
        self.stdout.close()
        self.stderr.close(stderr_finish)


def _human(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


# -- a guest's kernel console ------------------------------------------------------------------
@dataclass(frozen=True)
class ConsoleLimit:
    """How much of a guest's console is kept, in memory and in ``console.log``.

    The head holds the boot (version, command line, what the kernel found);
    the tail holds how the guest ended; in between, ``before`` bytes ahead of
    each kernel report's first line (``cut here``, KASAN's ``====``) and
    ``after`` bytes from it (the trace, registers, a lockdep chain) are kept,
    ``reports`` bytes in all: a warning storm keeps its first reports.
    """

    head: int = 4 << 20
    reports: int = 4 << 20
    tail: int = 4 << 20
    before: int = 4 << 10
    after: int = 128 << 10

    def describe(self) -> str:
        """'the first 4 MiB, up to 4 MiB around kernel reports and the last 4 MiB'."""
        return (
            f"the first {_human(self.head)}, up to {_human(self.reports)} around kernel "
            f"reports and the last {_human(self.tail)}"
        )


@dataclass
class _Piece:
    """Kept bytes of the stream, from stream offset ``start``."""

    start: int
    data: bytearray

    @property
    def end(self) -> int:
        return self.start + len(self.data)


class ConsoleRecord:
    """The kept part of one console stream, addressed by stream offsets, mirrored to a file.

    Offsets count every byte the guest printed, kept or not, so a test's
    window (two offsets) means the same whatever was cut.  The newest bytes
    are one piece that grows; once it holds twice ``tail`` bytes past the
    head, its older part is cut, except the bytes around reports noted with
    :meth:`protect`.  A cut reads as one line saying how many bytes went.
    The file gets the head as it arrives, each kept piece when it is cut
    loose, the rest at :meth:`close`.  Not thread-safe: the watcher locks.
    """

    def __init__(self, limit: ConsoleLimit, path: Path) -> None:
        self.limit = limit
        self.total = 0
        self.dropped = 0
        self._pieces = [_Piece(0, bytearray())]
        self._protected: list[tuple[int, int]] = []  # stream ranges to keep, in order
        self._saved = 0  # bytes kept around reports so far
        self._file: IO[bytes] | None = path.open("ab")
        self._written = 0  # stream offset the file holds up to (cuts as their line)

    def feed(self, data: bytes) -> None:
        """The next bytes of the stream (the head goes to the file now)."""
        self._pieces[-1].data += data
        self.total += len(data)
        if len(self._pieces) == 1:
            self._write(self._pieces[0], min(self.total, self.limit.head))

    def scan(self, rx: re.Pattern[bytes], since: int) -> list[int]:
        """Stream offsets where ``rx`` matches in the newest bytes, from ``since`` on."""
        last = self._pieces[-1]
        return [last.start + m.start() for m in rx.finditer(last.data, max(0, since - last.start))]

    def protect(self, at: int) -> None:
        """Keep the bytes around a report that starts at stream offset ``at``, budget allowing."""
        if self._saved >= self.limit.reports:
            return
        lo, hi = max(0, at - self.limit.before), at + self.limit.after
        if self._protected and lo <= self._protected[-1][1]:
            lo = min(lo, self._protected[-1][0])
            hi = max(hi, self._protected.pop()[1])
        self._protected.append((lo, hi))

    def trim(self) -> None:
        """Cut the older part of the newest piece once it is twice the tail past the head."""
        last = self._pieces[-1]
        floor = max(last.start, self.limit.head)
        if self.total - floor <= 2 * self.limit.tail:
            return
        cut = self.total - self.limit.tail
        kept = [_Piece(last.start, last.data[: floor - last.start])] if last.start < floor else []
        for lo, hi in self._protected:
            a, b = max(lo, floor), min(hi, cut)
            b = min(b, a + self.limit.reports - self._saved)
            if a < b:
                kept.append(_Piece(a, last.data[a - last.start : b - last.start]))
                self._saved += b - a
        self.dropped += cut - floor - sum(len(p.data) for p in kept if p.start >= floor)
        self._protected = [(lo, hi) for lo, hi in self._protected if hi > cut]
        self._pieces[-1:] = [*kept, _Piece(cut, last.data[cut - last.start :])]
        for piece in kept:
            self._write(piece, piece.end)

    def _gap(self, size: int) -> bytes:
        return (
            f"\n[kharness: {size} bytes of console cut here; the console keeps "
            f"{self.limit.describe()}]\n"
        ).encode()

    def _write(self, piece: _Piece, upto: int) -> None:
        """Write ``piece`` up to stream offset ``upto`` (a cut before it as its line)."""
        if self._file is None or upto <= self._written:
            return
        if piece.start > self._written:
            self._file.write(self._gap(piece.start - self._written))
            self._written = piece.start
        self._file.write(piece.data[self._written - piece.start : upto - piece.start])
        self._file.flush()
        self._written = upto

    def view(self, start: int = 0, end: int | None = None) -> bytes:
        """The kept bytes between two stream offsets, each cut as its line."""
        end = self.total if end is None else min(end, self.total)
        out, pos = bytearray(), max(0, start)
        for piece in self._pieces:
            a, b = max(piece.start, pos), min(piece.end, end)
            if a >= b:
                continue
            if a > pos:
                out += self._gap(a - pos)
            out += piece.data[a - piece.start : b - piece.start]
            pos = b
        return bytes(out)

    def search(self, rx: re.Pattern[bytes], start: int) -> re.Match[bytes] | None:
        """``rx``'s first match in the kept bytes after stream offset ``start``."""
        last = self._pieces[-1]
        if start >= last.start:
            return rx.search(last.data, start - last.start)
        return rx.search(self.view(start))

    def close(self) -> None:
        """Write what the file does not hold yet; the file is complete."""
        for piece in self._pieces:
            self._write(piece, piece.end)
        if self._file is not None:
            self._file.close()
            self._file = None
