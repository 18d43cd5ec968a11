"""The watch bot's memory: one SQLite file beside its results, so a restart loses nothing.

What it keeps is what the bot cannot find again cheaply or must never do
twice: the inbox cursor, every patch and cover letter seen (raw, so series
can be regrouped after a restart), each series version's state and the
messages set aside (the replies: :mod:`harness.mail.outbox`).  Messages and the
cursor are stored in one transaction: killed between the two, the bot reads
those messages again and, keyed by Message-ID, stores them once.

A message is stored ``grouped=0``; the bot regroups only the series such
messages belong to and then marks them grouped, so a turn with no new mail
reads no message at all, and one killed between storing and regrouping
regroups at its next start.

A message the bot cannot handle (it cannot be parsed, or a field does not
fit a row) is set aside with its reason and the cursor moves past it: it
stops nothing and is never met again.

A series moves ``waiting`` (patches missing) -> ``queued`` -> ``running``
-> ``done``; to ``superseded`` when a newer version replaces it before its
reply; to ``refused`` (not tested, over a bound such as the patch limit);
or, when it is complete, to ``not-relevant`` (it touches no path a test
covers: the paths it touches and each test's reason are kept, no reply).
A ``running`` series found at start-up was cut off by a crash or ``kill
-9``: it goes back to ``queued`` and its kernels that finished keep their
results.

One bot at a time: :class:`harness.mail.botlock.BotLock`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.mail.clock import Clock, SystemClock
from harness.mail.grouping import Candidate, SeriesKey
from harness.mail.message import Mail, parse
from harness.mail.rows import (
    QUEUED,
    ROW_COLUMNS,
    RUNNING,
    SeriesRow,
    SeriesState,
    SetAside,
    series_row,
)

FILENAME = "watch.sqlite3"
#: a stored integer never goes past this (SQLite's are 64-bit; mail may say anything)
INT_CAP = 2**31 - 1
#: a stored text field (a subject, a reason) is cut there
TEXT_CAP = 1000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (inbox TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY, series TEXT, raw BLOB NOT NULL, arrived REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ignored (
    message_id TEXT PRIMARY KEY, subject TEXT, reason TEXT, arrived REAL NOT NULL);
CREATE TABLE IF NOT EXISTS set_aside (
    message_id TEXT PRIMARY KEY, subject TEXT, reason TEXT NOT NULL, arrived REAL NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    key TEXT PRIMARY KEY, title TEXT, sender TEXT, anchor TEXT, total INTEGER,
    present TEXT, state TEXT NOT NULL, first_seen REAL NOT NULL, last_arrival REAL NOT NULL,
    queued_at REAL, started_at REAL, finished_at REAL, superseded_by TEXT, note TEXT,
    directory TEXT);
"""
#: columns added since the first schema: (table, column, declaration); added on open
_ADDED = (
    ("messages", "grouped", "INTEGER NOT NULL DEFAULT 0"),
    ("series", "has_cover", "INTEGER NOT NULL DEFAULT 0"),
    ("series", "change_id", "TEXT"),
    ("series", "tests", "TEXT"),  # JSON list of the tests chosen for it (NULL: the bot's own)
    ("series", "relevance", "TEXT"),  # JSON: the paths it touches, each test's decision
)
_INDEXES = """
CREATE INDEX IF NOT EXISTS messages_by_series ON messages(series);
CREATE INDEX IF NOT EXISTS messages_ungrouped ON messages(series) WHERE grouped = 0;
CREATE INDEX IF NOT EXISTS series_by_state ON series(state);
CREATE INDEX IF NOT EXISTS series_by_sender ON series(sender);
"""
#: every read of a series row names its columns (mapped by name: :func:`series_row`)
_SELECT_SERIES = f"SELECT {ROW_COLUMNS} FROM series"
#: the time column each state stamps when a series moves to it
_STAMPS = {"queued": "queued_at", "running": "started_at", "done": "finished_at",
           "refused": "finished_at", "not-relevant": "finished_at"}  # fmt: skip


class State:
    """The bot's database; every method is one transaction."""

    def __init__(self, directory: Path, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILENAME
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        for table, column, declaration in _ADDED:
            have = {r["name"] for r in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        self.db.executescript(_INDEXES)

    def close(self) -> None:
        """Close the file (the bot's last step, also on Ctrl-C)."""
        self.db.close()

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return transaction(self.db)

    # -- the inbox
    def cursor(self, inbox: str) -> str | None:
        """The saved cursor of ``inbox`` (None: first start)."""
        row = self.db.execute("SELECT value FROM cursor WHERE inbox=?", (inbox,)).fetchone()
        return row["value"] if row else None

    def take(
        self,
        inbox: str,
        cursor: str,
        kept: Iterable[tuple[Mail, str]],
        ignored: Iterable[tuple[Mail, str]],
        set_aside: Iterable[SetAside] = (),
    ) -> int:
        """Store a poll's messages and its cursor together; how many were new.

        A message whose row cannot be stored (a field SQLite refuses) is set
        aside instead: the cursor still moves past it.
        """
        now = self.clock.time()
        new = 0
        aside = list(set_aside)
        with self._tx() as db:
            for mail, series in kept:
                try:
                    done = db.execute(
                        "INSERT OR IGNORE INTO messages (message_id, series, raw, arrived) "
                        "VALUES (?, ?, ?, ?)",
                        (mail.message_id, series, mail.raw, now),
                    )
                except (sqlite3.Error, OverflowError, ValueError) as exc:
                    aside.append(SetAside(mail.message_id, mail.subject, f"not stored: {exc}"))
                    continue
                new += done.rowcount
            for mail, reason in ignored:
                with contextlib.suppress(sqlite3.Error, OverflowError, ValueError):
                    db.execute(
                        "INSERT OR IGNORE INTO ignored (message_id, subject, reason, arrived) "
                        "VALUES (?, ?, ?, ?)",
                        (mail.message_id, mail.subject[:TEXT_CAP], reason, now),
                    )
            for item in aside:
                self._set_aside(db, item, now)
            db.execute("INSERT OR REPLACE INTO cursor VALUES (?, ?)", (inbox, cursor))
        return new

    @staticmethod
    def _set_aside(db: sqlite3.Connection, item: SetAside, now: float) -> None:
        db.execute(
            "INSERT OR IGNORE INTO set_aside (message_id, subject, reason, arrived) "
            "VALUES (?, ?, ?, ?)",
            (item.message_id[:TEXT_CAP], item.subject[:TEXT_CAP], item.reason[:TEXT_CAP], now),
        )

    def set_aside(self, item: SetAside) -> None:
        """Record a message (or a series' messages) the bot gave up on."""
        with self._tx() as db:
            self._set_aside(db, item, self.clock.time())

    def touched(self) -> list[str]:
        """The series (as stored keys) that received messages not grouped yet."""
        rows = self.db.execute("SELECT DISTINCT series FROM messages WHERE grouped = 0")
        return [r["series"] for r in rows]

    def members(self, series: str, limit: int) -> tuple[list[bytes], int]:
        """Up to ``limit`` stored messages of ``series`` (raw, arrival order) and how many
        there are in all."""
        count = self.db.execute(
            "SELECT count(*) AS n FROM messages WHERE series=?", (series,)
        ).fetchone()["n"]
        rows = self.db.execute(
            "SELECT raw FROM messages WHERE series=? ORDER BY arrived, rowid LIMIT ?",
            (series, limit),
        )
        return [bytes(r["raw"]) for r in rows], int(count)

    def grouped(self, series: str) -> None:
        """The messages of ``series`` are grouped: not read again until one more arrives."""
        with self._tx() as db:
            db.execute("UPDATE messages SET grouped = 1 WHERE series=? AND grouped = 0", (series,))

    def mails(self) -> list[Mail]:
        """Every stored patch and cover letter, in arrival order (parses them all: not for
        the bot's turns)."""
        rows = self.db.execute("SELECT raw FROM messages ORDER BY arrived, rowid")
        return [parse(bytes(r["raw"])) for r in rows]

    def raw(self, message_id: str) -> bytes | None:
        """One stored message, by Message-ID."""
        row = self.db.execute(
            "SELECT raw FROM messages WHERE message_id=?", (message_id,)
        ).fetchone()
        return bytes(row["raw"]) if row else None

    def ignored_count(self) -> int:
        """Messages set aside (replies, non-patches, the bot's own)."""
        return int(self.db.execute("SELECT count(*) AS n FROM ignored").fetchone()["n"])

    # -- series
    def upsert(self, candidate: Candidate, state: SeriesState) -> None:
        """Record a series version (new: in ``state``), or update what arrived of it."""
        now = self.clock.time()
        present = ",".join(str(min(n, INT_CAP)) for n in candidate.present)
        newest = self.db.execute(  # when its newest message was stored
            "SELECT max(arrived) AS t FROM messages WHERE series=?", (str(candidate.key),)
        ).fetchone()
        last = float(newest["t"] or 0.0) or now
        values = {
            "key": str(candidate.key),
            "title": candidate.title[:TEXT_CAP],
            "sender": candidate.sender[:TEXT_CAP],
            "anchor": candidate.anchor,
            "total": min(candidate.total, INT_CAP),
            "present": present,
            "state": state.value,
            "first_seen": now,
            "last_arrival": last,
            "has_cover": int(candidate.has_cover),
            "change_id": candidate.change_id,
        }
        names = ", ".join(values)
        marks = ", ".join(f":{k}" for k in values)
        updated = ("title", "anchor", "total", "present", "last_arrival", "has_cover", "change_id")
        sets = ", ".join(f"{k}=excluded.{k}" for k in updated)
        with self._tx() as db:
            db.execute(
                f"INSERT INTO series ({names}) VALUES ({marks}) "
                f"ON CONFLICT(key) DO UPDATE SET {sets}",
                values,
            )

    def move(
        self,
        key: SeriesKey,
        state: SeriesState,
        *,
        note: str | None = None,
        directory: str | None = None,
        superseded_by: str | None = None,
        tests: tuple[str, ...] | None = None,
        relevance: str | None = None,
    ) -> None:
        """Change a series' state (and stamp the time that goes with it); each field given
        (not None) is set, the others are kept.  ``tests``: the tests relevance chose;
        ``relevance``: its JSON record."""
        state = SeriesState(state)
        given = {
            "note": note,
            "directory": directory,
            "superseded_by": superseded_by,
            "tests": None if tests is None else json.dumps(list(tests)),
            "relevance": relevance,
        }
        values = {column: v for column, v in given.items() if v is not None}
        stamp = _STAMPS.get(state.value)
        if stamp is not None:
            values[stamp] = self.clock.time()
        # the column names are this module's own constants above, never a caller's words
        sets = ", ".join(["state=?", *(f"{column}=?" for column in values)])
        with self._tx() as db:
            db.execute(
                f"UPDATE series SET {sets} WHERE key=?",
                (state.value, *values.values(), str(key)),
            )

    def series(self, state: SeriesState | None = None) -> list[SeriesRow]:
        """Series versions, oldest first; only those in ``state`` if given."""
        query = _SELECT_SERIES + (" WHERE state=?" if state else "") + " ORDER BY rowid"
        rows = self.db.execute(query, (SeriesState(state).value,) if state else ())
        return [series_row(r) for r in rows]

    def by_senders(self, senders: Iterable[str]) -> list[SeriesRow]:
        """Every series version of these senders (what a new one may supersede)."""
        wanted = sorted(set(senders))
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        rows = self.db.execute(f"{_SELECT_SERIES} WHERE sender IN ({marks}) ORDER BY rowid", wanted)
        return [series_row(r) for r in rows]

    def get(self, key: SeriesKey) -> SeriesRow | None:
        """One series version, if known."""
        row = self.db.execute(f"{_SELECT_SERIES} WHERE key=?", (str(key),)).fetchone()
        return series_row(row) if row else None

    def served(self, sender: str) -> int:
        """How many series of ``sender`` were started: the fair queue serves the least served."""
        query = "SELECT count(*) AS n FROM series WHERE sender=? AND started_at IS NOT NULL"
        return int(self.db.execute(query, (sender,)).fetchone()["n"])

    def recover(self) -> list[SeriesKey]:
        """Series cut off mid-run (crash, kill -9): queued again; their keys."""
        cut = [r.key for r in self.series(RUNNING)]
        for key in cut:
            self.move(key, QUEUED, note="resumed after the bot stopped mid-run")
        return cut

    def thread_series(self, ids: Iterable[str], root: str) -> SeriesRow | None:
        """The series a reply in a thread is about: the one holding the first of ``ids``
        (the messages it answers, nearest first) the bot stored, else the newest version
        whose thread root is ``root``."""
        for message_id in ids:
            found = self.db.execute(
                "SELECT series FROM messages WHERE message_id=?", (message_id,)
            ).fetchone()
            if found and found["series"]:
                with contextlib.suppress(ValueError):
                    row = self.get(SeriesKey.parse(found["series"]))
                    if row is not None:
                        return row
        rows = self.db.execute(
            f"{_SELECT_SERIES} WHERE substr(key, 1, ?) = ? ORDER BY rowid",
            (len(root) + 2, f"{root}#v"),
        )
        versions = [series_row(r) for r in rows]
        return max(versions, key=lambda r: r.key.version) if versions else None

    def set_aside_recent(self, limit: int = 10) -> list[SetAside]:
        """The last messages set aside, newest first (``watch-admin list``)."""
        rows = self.db.execute(
            "SELECT message_id, subject, reason FROM set_aside ORDER BY arrived DESC, rowid DESC "
            "LIMIT ?",
            (limit,),
        )
        return [SetAside(r["message_id"], r["subject"] or "", r["reason"]) for r in rows]


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on ``db`` (taken at once: two writers never deadlock)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
