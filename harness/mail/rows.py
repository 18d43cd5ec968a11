"""The records of the bot's database: a series version's row, its state, a message set aside.

Split from :mod:`harness.mail.state` (the SQLite store) by job: what crosses
modules is these frozen records, never a database row; :func:`series_row`
maps a row to a :class:`SeriesRow` by column name (the store selects
:data:`ROW_COLUMNS`, never ``SELECT *`` read by position).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from harness.mail.grammar import missing_places
from harness.mail.grouping import Candidate, SeriesKey

#: the columns a :class:`SeriesRow` is read from, named
ROW_COLUMNS = (
    "key, title, sender, anchor, total, present, state, first_seen, last_arrival, queued_at, "
    "started_at, finished_at, superseded_by, note, directory, has_cover, change_id, tests, "
    "relevance"
)


class SeriesState(StrEnum):
    """Where a series version is in the bot's life."""

    WAITING = "waiting"  # patches missing; waits up to --wait-missing
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    SUPERSEDED = "superseded"  # a newer version came before its reply
    REFUSED = "refused"  # not tested: over a bound (the note says which)
    NOT_RELEVANT = "not-relevant"  # not tested: it touches no path a test covers


WAITING, QUEUED, RUNNING, DONE = (SeriesState.WAITING, SeriesState.QUEUED,
                                  SeriesState.RUNNING, SeriesState.DONE)  # fmt: skip
SUPERSEDED, REFUSED = SeriesState.SUPERSEDED, SeriesState.REFUSED
NOT_RELEVANT = SeriesState.NOT_RELEVANT
#: states a series never leaves
FINAL = (DONE, SUPERSEDED, REFUSED, NOT_RELEVANT)


@dataclass(frozen=True)
class SeriesRow:
    """One series version as the bot tracks it."""

    key: SeriesKey
    title: str
    sender: str
    anchor: str
    total: int
    present: tuple[int, ...]
    state: SeriesState
    first_seen: float
    last_arrival: float
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    superseded_by: str | None
    note: str | None
    directory: str | None
    has_cover: bool = False
    change_id: str | None = None
    tests: tuple[str, ...] | None = None  # the tests relevance chose (None: the bot's --test)
    relevance: str | None = None  # JSON: the paths it touches, each test's decision (gate.py)

    @property
    def missing(self) -> tuple[int, ...]:
        """Patch numbers not (yet) arrived: the one count the parsers use too."""
        return missing_places(self.total, self.present)

    @property
    def size(self) -> int:
        """How many patches the series is: what its tags promise, or what came if more."""
        return max(self.total, len(self.present))

    def candidate(self) -> Candidate:
        """As :mod:`harness.mail.grouping` sees a series (to find what supersedes what)."""
        return Candidate(self.key, self.title, self.sender, self.total, self.present,
                         self.anchor, self.has_cover, self.change_id)  # fmt: skip


@dataclass(frozen=True)
class SetAside:
    """A message the bot could not handle, and why: stored, never read again."""

    message_id: str
    subject: str
    reason: str

    @classmethod
    def unreadable(cls, raw: bytes, exc: Exception) -> SetAside:
        """A message whose handling raised: named by what its headers seem to say (or a
        hash), with the exception as the reason; none of it is trusted."""
        head = raw[:65536]
        found = re.search(rb"(?im)^message-id:[ \t]*<?([^>\r\n]{1,200})", head)
        message_id = found.group(1).decode("utf-8", "replace") if found else ""
        message_id = message_id or f"unread-{hashlib.sha256(raw).hexdigest()[:16]}"
        subject = re.search(rb"(?im)^subject:[ \t]*([^\r\n]{0,200})", head)
        words = subject.group(1).decode("utf-8", "replace") if subject else ""
        return cls(message_id, words, f"could not be handled: {type(exc).__name__}: {exc}"[:500])


def series_row(r: sqlite3.Row) -> SeriesRow:
    """A ``series`` row (selected with :data:`ROW_COLUMNS`) as its record, by column name."""
    present = tuple(int(x) for x in str(r["present"] or "").split(",") if x)
    return SeriesRow(
        key=SeriesKey.parse(r["key"]),
        title=str(r["title"] or ""),
        sender=str(r["sender"] or ""),
        anchor=str(r["anchor"] or ""),
        total=int(r["total"] or 1),
        present=present,
        state=SeriesState(r["state"]),
        first_seen=float(r["first_seen"]),
        last_arrival=float(r["last_arrival"]),
        queued_at=r["queued_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        superseded_by=r["superseded_by"],
        note=r["note"],
        directory=r["directory"],
        has_cover=bool(r["has_cover"]),
        change_id=r["change_id"],
        tests=_tests(r["tests"]),
        relevance=r["relevance"],
    )


def _tests(text: str | None) -> tuple[str, ...] | None:
    """The stored test list (None: none was chosen, or it cannot be read)."""
    if not text:
        return None
    try:
        found = json.loads(text)
    except json.JSONDecodeError:
        return None
    return tuple(str(t) for t in found) if isinstance(found, list) else None
