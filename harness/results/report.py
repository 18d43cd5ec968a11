"""A kernel report as results record it: the same record in result.json and summary.json."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.oops import KernelReport
from harness.oops.frames import Decoded, decoded_from_json, decoded_to_json
from harness.oops.kinds import CrashType


def _crash_type(value: object) -> CrashType:
    """A stored crash type back (records written before types existed have none)."""
    try:
        return CrashType(value)
    except ValueError:
        return CrashType.UNKNOWN


@dataclass(frozen=True)
class ReportRecord:
    """A kernel report as the reports show it (the same in result.json and summary.json)."""

    type: str
    title: str
    guilty_frame: str | None = None
    rip: str | None = None
    taint: str | None = None
    call_trace: tuple[str, ...] = ()
    count: int = 1  # the same report printed this many times (one bug, one record)
    first_time: float | None = None  # printk timestamps (s since boot) of first and last
    last_time: float | None = None
    symbolized: Decoded | None = None  # file:line per frame and maintainers, if debug info
    crash_type: CrashType = CrashType.UNKNOWN  # syzbot's type (crash_type.category: its group)
    alt_titles: tuple[str, ...] = ()  # syzbot's other titles for the same bug

    def times_printed(self, word: str = "x{n}") -> str:
        """'' if printed once, else ' (x12, 41.2s to 521.9s)'; ``word`` words the count."""
        if self.count <= 1:
            return ""
        count = word.format(n=self.count)
        if self.first_time is None or self.last_time is None:
            return f" ({count})"
        return f" ({count}, {self.first_time:.1f}s to {self.last_time:.1f}s)"

    @classmethod
    def of(cls, rep: KernelReport) -> ReportRecord:
        """From the parser's report."""
        return cls(
            rep.type.value,
            rep.title,
            rep.guilty_frame,
            rep.rip,
            rep.taint,
            tuple(rep.call_trace),
            rep.count,
            rep.time,
            rep.last_time if rep.last_time is not None else rep.time,
            rep.decoded,
            rep.crash_type,
            rep.alt_titles,
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "type": self.type,
            "title": self.title,
            "guilty_frame": self.guilty_frame,
            "rip": self.rip,
            "taint": self.taint,
            "call_trace": list(self.call_trace),
            "count": self.count,
            "first_time": self.first_time,
            "last_time": self.last_time,
            "symbolized": decoded_to_json(self.symbolized) if self.symbolized else None,
            "crash_type": self.crash_type.value,
            "crash_category": self.crash_type.category.value,
            "alt_titles": list(self.alt_titles),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportRecord:
        """Back from :meth:`to_json` (schema 2 records have no count nor symbolized)."""
        symbolized = data.get("symbolized")
        return cls(
            data["type"],
            data["title"],
            data.get("guilty_frame"),
            data.get("rip"),
            data.get("taint"),
            tuple(data.get("call_trace", ())),
            int(data.get("count", 1)),
            data.get("first_time"),
            data.get("last_time"),
            decoded_from_json(symbolized) if symbolized else None,
            _crash_type(data.get("crash_type")),
            tuple(data.get("alt_titles", ())),
        )
