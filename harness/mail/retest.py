"""Retest on request: ``#kharness test`` in a reply to a series' thread, as syzbot's ``#syz test``.

A line ``#kharness test`` alone (not quoted) in the body of a reply asks the
bot to test the series of that thread again; a diff after that line in the
same message is a fix, applied as one more patch after the series'.  The
answer goes to the request's own thread position (In-Reply-To the request).

Only people of the thread may ask: the From of one of the series' messages,
or an address of ``--retest-from``; anyone else's request is ignored and the
reason logged and recorded.  A series is retested at most
:data:`MAX_PER_SERIES` times.  The fix is a stranger's patch like any other:
it is written to a file the bot names, in the retest's own directory, and
goes through the same argv builder, path checks and sandbox as the series.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from harness.mail.clock import Clock, SystemClock
from harness.mail.message import Mail, parse
from harness.mail.state import TEXT_CAP, transaction

COMMAND = "#kharness test"
MAX_PER_SERIES = 5  # retests of one series, in all
MAX_FIX = 1024 * 1024  # characters of a fix patch
FIX_NAME = "kharness-test-fix.patch"
_LINE = re.compile(r"^[ \t]*#kharness[ \t]+test[ \t]*$", re.MULTILINE)
_DIFF = re.compile(r"^(?:diff --git |--- (?:a/|/dev/null))", re.MULTILINE)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS retests (
    id INTEGER PRIMARY KEY, message_id TEXT UNIQUE NOT NULL, series TEXT NOT NULL,
    sender TEXT, raw BLOB NOT NULL, fix TEXT, state TEXT NOT NULL, arrived REAL NOT NULL,
    directory TEXT, note TEXT);
CREATE INDEX IF NOT EXISTS retests_by_state ON retests(state);
"""


class RetestState(StrEnum):
    """Where a retest is."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True)
class Asked:
    """What a message asks: a retest, and the fix it carries (None: none)."""

    fix: str | None


def asked(mail: Mail) -> Asked | None:
    """The request ``mail`` makes (None: it asks for no retest)."""
    if mail.from_bot:
        return None
    found = _LINE.search(mail.body)
    if found is None:
        return None
    rest = mail.body[found.end() :]
    start = _DIFF.search(rest)
    if start is None or "\n@@ " not in rest[start.start() :]:
        return Asked(None)
    fix = rest[start.start() :]
    fix = fix.split("\n-- \n", 1)[0]  # a signature is no part of the diff
    return Asked(fix[:MAX_FIX] if fix.endswith("\n") else fix[:MAX_FIX] + "\n")


def who_may_ask(mail: Mail, thread: set[str], allowed: set[str]) -> str | None:
    """Why ``mail``'s sender may not ask (None: they may)."""
    sender = mail.sender.lower()
    if sender and (sender in thread or sender in allowed):
        return None
    return (
        f"from {mail.sender or 'an unreadable From'}, who posted none of the series' "
        "messages and is not in --retest-from: ignored"
    )


@dataclass(frozen=True)
class Retest:
    """One request taken: the series, the request itself (its answer's anchor), the fix."""

    id: int
    series: str
    message_id: str
    sender: str
    raw: bytes
    fix: Path | None
    state: RetestState
    directory: Path | None

    def mail(self) -> Mail:
        """The request, parsed (the reply answers it)."""
        return parse(self.raw)


class Retests:
    """The ``retests`` table of the bot's database."""

    def __init__(self, db: sqlite3.Connection, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()
        db.executescript(_SCHEMA)

    def count(self, series: str) -> int:
        """Retests of ``series`` taken so far."""
        query = "SELECT count(*) AS n FROM retests WHERE series=?"
        return int(self.db.execute(query, (series,)).fetchone()["n"])

    def known(self, message_id: str) -> bool:
        """Whether this request was taken already (a poll read again after a crash)."""
        query = "SELECT 1 FROM retests WHERE message_id=?"
        return self.db.execute(query, (message_id[:TEXT_CAP],)).fetchone() is not None

    def add(self, mail: Mail, series: str, directory: Path, fix: str | None) -> Retest:
        """Take a request: its row, its directory and the fix written there."""
        with transaction(self.db) as db:
            done = db.execute(
                "INSERT INTO retests (message_id, series, sender, raw, state, arrived) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    mail.message_id,
                    series,
                    mail.sender[:TEXT_CAP],
                    mail.raw,
                    RetestState.QUEUED.value,
                    self.clock.time(),
                ),
            )
        retest_id = int(done.lastrowid or 0)
        where = directory / f"retest-{retest_id}"
        where.mkdir(parents=True, exist_ok=True)
        path = None
        if fix is not None:
            path = where / FIX_NAME
            path.write_text(fix, errors="replace")
        self.move(retest_id, RetestState.QUEUED, directory=str(where), fix=path and str(path))
        found = self.get(retest_id)
        assert found is not None
        return found

    def get(self, retest_id: int) -> Retest | None:
        """One retest by its number."""
        row = self.db.execute("SELECT * FROM retests WHERE id=?", (retest_id,)).fetchone()
        return _retest(row) if row else None

    def queued(self) -> list[Retest]:
        """Retests waiting for a slot, oldest first."""
        query = "SELECT * FROM retests WHERE state=? ORDER BY id"
        return [_retest(r) for r in self.db.execute(query, (RetestState.QUEUED.value,))]

    def all(self) -> list[Retest]:
        """Every retest, oldest first."""
        return [_retest(r) for r in self.db.execute("SELECT * FROM retests ORDER BY id")]

    def move(
        self,
        retest_id: int,
        state: RetestState,
        *,
        directory: str | None = None,
        fix: str | None = None,
    ) -> None:
        """Change a retest's state (and the fields given, not None; the others are kept)."""
        with transaction(self.db) as db:
            db.execute(
                "UPDATE retests SET state=?, directory=coalesce(?, directory), "
                "fix=coalesce(?, fix) WHERE id=?",
                (state.value, directory, fix, retest_id),
            )

    def recover(self) -> list[int]:
        """Retests cut off mid-run: queued again; their numbers."""
        query = "SELECT id FROM retests WHERE state=?"
        cut = [int(r["id"]) for r in self.db.execute(query, (RetestState.RUNNING.value,))]
        for retest_id in cut:
            self.move(retest_id, RetestState.QUEUED)
        return cut


def _retest(r: sqlite3.Row) -> Retest:
    return Retest(
        id=int(r["id"]),
        series=str(r["series"]),
        message_id=str(r["message_id"]),
        sender=str(r["sender"] or ""),
        raw=bytes(r["raw"]),
        fix=Path(r["fix"]) if r["fix"] else None,
        state=RetestState(r["state"]),
        directory=Path(r["directory"]) if r["directory"] else None,
    )
