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
