"""The watch bot's memory: one SQLite file beside its results, so a restart loses nothing.

What it keeps is what the bot cannot find again cheaply or must never do
twice: the inbox cursor, every patch and cover letter seen (raw, so series
can be regrouped after a restart), each series version's state, and the
replies waiting to be sent.  Messages and the cursor are stored in one
transaction: killed between the two, the bot reads those messages again
and, keyed by Message-ID, stores them once.

A series moves ``waiting`` (patches missing) -> ``queued`` -> ``running``
-> ``done``; or to ``superseded`` when a newer version replaces it before
its reply.  A ``running`` series found at start-up was cut off by a crash or
``kill -9``: it goes back to ``queued`` and its kernels that finished keep
their results.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.mail.grouping import Candidate, SeriesKey
from harness.mail.message import Mail, parse

FILENAME = "watch.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (inbox TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY, series TEXT, raw BLOB NOT NULL, arrived REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ignored (
    message_id TEXT PRIMARY KEY, subject TEXT, reason TEXT, arrived REAL NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    key TEXT PRIMARY KEY, title TEXT, sender TEXT, anchor TEXT, total INTEGER,
    present TEXT, state TEXT NOT NULL, first_seen REAL NOT NULL, last_arrival REAL NOT NULL,
    queued_at REAL, started_at REAL, finished_at REAL, superseded_by TEXT, note TEXT,
    directory TEXT);
CREATE TABLE IF NOT EXISTS outbox (
    series TEXT PRIMARY KEY, path TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, sent_at REAL);
"""

WAITING, QUEUED, RUNNING, DONE, SUPERSEDED = "waiting", "queued", "running", "done", "superseded"


@dataclass(frozen=True)
class SeriesRow:
    """One series version as the bot tracks it."""

    key: SeriesKey
    title: str
    sender: str
    anchor: str
    total: int
    present: tuple[int, ...]
    state: str
    first_seen: float
    last_arrival: float
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    superseded_by: str | None
    note: str | None
    directory: str | None

    @property
    def missing(self) -> tuple[int, ...]:
        """Patch numbers not (yet) arrived."""
        return tuple(n for n in range(1, self.total + 1) if n not in self.present)


@dataclass(frozen=True)
class Pending:
    """A reply not yet taken by the SMTP server."""

    series: SeriesKey
    path: Path
    attempts: int
    last_error: str | None


class State:
    """The bot's database; every method is one transaction."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILENAME
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the file (the bot's last step, also on Ctrl-C)."""
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- the inbox
    def cursor(self, inbox: str) -> str | None:
        """The saved cursor of ``inbox`` (None: first start)."""
        row = self.db.execute("SELECT value FROM cursor WHERE inbox=?", (inbox,)).fetchone()
        return row[0] if row else None

    def take(
        self,
        inbox: str,
        cursor: str,
        kept: Iterable[tuple[Mail, str]],
        ignored: Iterable[tuple[Mail, str]],
    ) -> int:
        """Store a poll's messages and its cursor together; how many were new."""
        now = time.time()
        new = 0
        with self._tx() as db:
            for mail, series in kept:
                done = db.execute(
                    "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?)",
                    (mail.message_id, series, mail.raw, now),
                )
                new += done.rowcount
            for mail, reason in ignored:
                db.execute(
                    "INSERT OR IGNORE INTO ignored VALUES (?, ?, ?, ?)",
                    (mail.message_id, mail.subject, reason, now),
                )
            db.execute("INSERT OR REPLACE INTO cursor VALUES (?, ?)", (inbox, cursor))
        return new

    def mails(self) -> list[Mail]:
        """Every stored patch and cover letter, in arrival order."""
        rows = self.db.execute("SELECT raw FROM messages ORDER BY arrived, rowid").fetchall()
        return [parse(bytes(r[0])) for r in rows]

    def last_arrival(self, key: SeriesKey) -> float:
        """When the newest message of a series version was stored."""
        row = self.db.execute(
            "SELECT max(arrived) FROM messages WHERE series=?", (str(key),)
        ).fetchone()
        return float(row[0] or 0.0)

    def ignored_count(self) -> int:
        """Messages set aside (replies, non-patches, the bot's own)."""
        return int(self.db.execute("SELECT count(*) FROM ignored").fetchone()[0])

    # -- series
    def upsert(self, candidate: Candidate, state: str) -> None:
        """Record a series version (new: in ``state``), or update what arrived of it."""
        now = time.time()
        present = ",".join(map(str, candidate.present))
        last = self.last_arrival(candidate.key) or now
        with self._tx() as db:
            db.execute(
                "INSERT INTO series (key, title, sender, anchor, total, present, state, "
                "first_seen, last_arrival) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET title=excluded.title, anchor=excluded.anchor, "
                "total=excluded.total, present=excluded.present, "
                "last_arrival=excluded.last_arrival",
                (
                    str(candidate.key),
                    candidate.title,
                    candidate.sender,
                    candidate.anchor,
                    candidate.total,
                    present,
                    state,
                    now,
                    last,
                ),
            )

    def move(self, key: SeriesKey, state: str, **fields: object) -> None:
        """Change a series' state (and stamp the time that goes with it)."""
        stamps = {QUEUED: "queued_at", RUNNING: "started_at", DONE: "finished_at"}
        values = dict(fields)
        if state in stamps:
            values[stamps[state]] = time.time()
        sets = ", ".join(["state=?", *(f"{k}=?" for k in values)])
        with self._tx() as db:
            db.execute(f"UPDATE series SET {sets} WHERE key=?", (state, *values.values(), str(key)))

    def series(self, state: str | None = None) -> list[SeriesRow]:
        """Series versions, oldest first; only those in ``state`` if given."""
        query = "SELECT * FROM series" + (" WHERE state=?" if state else "") + " ORDER BY rowid"
        rows = self.db.execute(query, (state,) if state else ()).fetchall()
        return [_row(r) for r in rows]

    def get(self, key: SeriesKey) -> SeriesRow | None:
        """One series version, if known."""
        row = self.db.execute("SELECT * FROM series WHERE key=?", (str(key),)).fetchone()
        return _row(row) if row else None

    def served(self, sender: str) -> int:
        """How many series of ``sender`` were started: the fair queue serves the least served."""
        query = "SELECT count(*) FROM series WHERE sender=? AND started_at IS NOT NULL"
        return int(self.db.execute(query, (sender,)).fetchone()[0])

    def recover(self) -> list[SeriesKey]:
        """Series cut off mid-run (crash, kill -9): queued again; their keys."""
        cut = [r.key for r in self.series(RUNNING)]
        for key in cut:
            self.move(key, QUEUED, note="resumed after the bot stopped mid-run")
        return cut

    # -- replies
    def add_reply(self, key: SeriesKey, path: Path) -> None:
        """A reply to send (kept until the server takes it)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO outbox (series, path) VALUES (?, ?)", (str(key), str(path))
            )

    def pending(self) -> list[Pending]:
        """Replies not yet sent."""
        rows = self.db.execute(
            "SELECT series, path, attempts, last_error FROM outbox WHERE sent_at IS NULL"
        ).fetchall()
        return [Pending(SeriesKey.parse(r[0]), Path(r[1]), r[2], r[3]) for r in rows]

    def sent(self, key: SeriesKey) -> None:
        """The server took the reply."""
        with self._tx() as db:
            db.execute("UPDATE outbox SET sent_at=? WHERE series=?", (time.time(), str(key)))

    def send_failed(self, key: SeriesKey, error: str) -> None:
        """The server refused or was away: tried again on the next poll."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET attempts=attempts+1, last_error=? WHERE series=?",
                (error, str(key)),
            )

    def outbox(self) -> list[tuple[SeriesKey, float | None, int]]:
        """Every reply: its series, when it was sent (None: not yet) and the attempts."""
        rows = self.db.execute("SELECT series, sent_at, attempts FROM outbox").fetchall()
        return [(SeriesKey.parse(r[0]), r[1], r[2]) for r in rows]


def _row(r: tuple[object, ...]) -> SeriesRow:
    present = tuple(int(x) for x in str(r[5] or "").split(",") if x)
    return SeriesRow(
        SeriesKey.parse(str(r[0])),
        str(r[1]),
        str(r[2]),
        str(r[3]),
        int(r[4] or 1),  # type: ignore[call-overload]
        present,
        str(r[6]),
        float(r[7]),  # type: ignore[arg-type]
        float(r[8]),  # type: ignore[arg-type]
        r[9],  # type: ignore[arg-type]
        r[10],  # type: ignore[arg-type]
        r[11],  # type: ignore[arg-type]
        r[12],  # type: ignore[arg-type]
        r[13],  # type: ignore[arg-type]
        r[14],  # type: ignore[arg-type]
    )
