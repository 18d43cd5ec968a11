"""The bot's replies, each a file (``reply.eml``) before anything is sent, and where it is.

A reply is written into its series' results directory first, then queued
here in one of three ways, as the operator ran the bot:

* ``pending``: to go to its thread (the author, the list) through the relay;
* ``moderate`` (``--moderate ADDRESS``): to go to the moderator first, who
  sees the intended recipients in it; once it went it is ``held`` until the
  moderator releases it (``pending`` again, now for the thread) or drops it
  (``dropped``);
* ``dry-run`` (``--dry-run``): written, never sent.

A reply the relay refuses stays where it was with its attempts, the relay's
words and the time of its next try (:class:`harness.mail.smtp.RetryPolicy`);
one the policy gives up on is ``failed``, its last refusal kept.  ``sent``
is the end of the road.  Each reply has a small number, its ``ID`` for
``kharness watch-admin release|drop ID``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from harness.mail.clock import Clock, SystemClock
from harness.mail.state import TEXT_CAP, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    id INTEGER PRIMARY KEY, series TEXT NOT NULL, path TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL DEFAULT 0, last_error TEXT,
    created REAL NOT NULL, sent_at REAL, moderator TEXT, held_id TEXT, what TEXT);
CREATE INDEX IF NOT EXISTS replies_by_state ON replies(state);
CREATE INDEX IF NOT EXISTS replies_by_held ON replies(held_id);
"""


class ReplyState(StrEnum):
    """Where a reply is."""

    PENDING = "pending"  # to its thread, at its next try
    MODERATE = "moderate"  # to the moderator, at its next try
    HELD = "held"  # the moderator has it: released or dropped by them
    SENT = "sent"
    DROPPED = "dropped"  # the moderator dropped it
    FAILED = "failed"  # the relay refused it for good
    DRY_RUN = "dry-run"  # written, never sent (--dry-run)


#: a reply in these states is still to be sent
SENDING = (ReplyState.PENDING, ReplyState.MODERATE)


@dataclass(frozen=True)
class Reply:
    """One reply and what became of it."""

    id: int
    series: str  # the series key it answers (ROOT#vN)
    path: Path
    state: ReplyState
    attempts: int
    next_try: float
    last_error: str | None
    created: float
    sent_at: float | None
    moderator: str | None  # who it goes to first (state moderate/held)
    held_id: str | None  # the Message-ID of the copy the moderator got
    what: str = "series"  # series, retest or refusal: what the reply answers


class Outbox:
    """The ``replies`` table of the bot's database (:mod:`harness.mail.state`'s file)."""

    def __init__(self, db: sqlite3.Connection, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()
        db.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Replies of a bot from before this table (one ``outbox`` row per series) moved here."""
        old = self.db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='outbox'"
        ).fetchone()
        if old is None:
            return
        with transaction(self.db) as db:
            db.execute(
                "INSERT INTO replies (series, path, state, attempts, last_error, created, sent_at) "
                "SELECT series, path, CASE WHEN sent_at IS NULL THEN 'pending' ELSE 'sent' END, "
                "attempts, last_error, coalesce(sent_at, 0), sent_at FROM outbox"
            )
            db.execute("DROP TABLE outbox")

    def add(
        self,
        series: str,
        path: Path,
        state: ReplyState,
        moderator: str | None = None,
        what: str = "series",
    ) -> int:
        """Queue a written reply; its ID."""
        with transaction(self.db) as db:
            done = db.execute(
                "INSERT INTO replies (series, path, state, created, moderator, what) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (series, str(path), state.value, self.clock.time(), moderator, what),
            )
        return int(done.lastrowid or 0)

    def get(self, reply_id: int) -> Reply | None:
        """One reply by its ID."""
        row = self.db.execute("SELECT * FROM replies WHERE id=?", (reply_id,)).fetchone()
        return _reply(row) if row else None

    def all(self, states: Iterable[ReplyState] = ()) -> list[Reply]:
        """Every reply (only those in ``states`` if given), oldest first."""
        wanted = [s.value for s in states]
        where = f" WHERE state IN ({', '.join('?' * len(wanted))})" if wanted else ""
        rows = self.db.execute(f"SELECT * FROM replies{where} ORDER BY id", wanted)
        return [_reply(r) for r in rows]

    def due(self, now: float) -> list[Reply]:
        """Replies to send now (their next try has come), oldest first."""
        rows = self.db.execute(
            "SELECT * FROM replies WHERE state IN (?, ?) AND next_try <= ? ORDER BY id",
            (*[s.value for s in SENDING], now),
        )
        return [_reply(r) for r in rows]

    def by_held_id(self, ids: Iterable[str]) -> Reply | None:
        """The reply whose moderator's copy is one of ``ids`` (a reply to it names it)."""
        for message_id in ids:
            row = self.db.execute(
                "SELECT * FROM replies WHERE held_id=?", (message_id[:TEXT_CAP],)
            ).fetchone()
            if row:
                return _reply(row)
        return None

    def _set(self, reply_id: int, **values: object) -> None:
        sets = ", ".join(f"{k}=?" for k in values)
        with transaction(self.db) as db:
            db.execute(f"UPDATE replies SET {sets} WHERE id=?", (*values.values(), reply_id))

    def sent(self, reply_id: int) -> None:
        """The relay took it, for its thread."""
        self._set(reply_id, state=ReplyState.SENT.value, sent_at=self.clock.time(), last_error=None)

    def held(self, reply_id: int, held_id: str) -> None:
        """The relay took the moderator's copy (Message-ID ``held_id``): it waits for them."""
        self._set(reply_id, state=ReplyState.HELD.value, held_id=held_id, last_error=None)

    def retry(self, reply_id: int, error: str, next_try: float) -> None:
        """Not sent: tried again at ``next_try``."""
        with transaction(self.db) as db:
            db.execute(
                "UPDATE replies SET attempts=attempts+1, last_error=?, next_try=? WHERE id=?",
                (error[:TEXT_CAP], next_try, reply_id),
            )

    def give_up(self, reply_id: int, error: str) -> None:
        """Refused for good: kept as failed, with the relay's words."""
        with transaction(self.db) as db:
            db.execute(
                "UPDATE replies SET attempts=attempts+1, last_error=?, state=? WHERE id=?",
                (error[:TEXT_CAP], ReplyState.FAILED.value, reply_id),
            )

    def release(self, reply_id: int) -> Reply:
        """A held reply goes to its thread at the bot's next turn; ValueError if it is not
        held (the message names its state)."""
        found = self._decided(reply_id, "release")
        self._set(reply_id, state=ReplyState.PENDING.value, next_try=0, attempts=0)
        return found

    def drop(self, reply_id: int) -> Reply:
        """A held (or not yet moderated) reply is never sent."""
        found = self._decided(reply_id, "drop")
        self._set(reply_id, state=ReplyState.DROPPED.value)
        return found

    def _decided(self, reply_id: int, verb: str) -> Reply:
        found = self.get(reply_id)
        if found is None:
            raise ValueError(f"no reply #{reply_id}; kharness watch-admin list shows them")
        if found.state not in (ReplyState.HELD, ReplyState.MODERATE):
            raise ValueError(
                f"reply #{reply_id} is {found.state.value}, not held for moderation: "
                f"nothing to {verb}"
            )
        return found


def _reply(r: sqlite3.Row) -> Reply:
    return Reply(
        id=int(r["id"]),
        series=str(r["series"]),
        path=Path(r["path"]),
        state=ReplyState(r["state"]),
        attempts=int(r["attempts"]),
        next_try=float(r["next_try"] or 0.0),
        last_error=r["last_error"],
        created=float(r["created"] or 0.0),
        sent_at=r["sent_at"],
        moderator=r["moderator"],
        held_id=r["held_id"],
        what=str(r["what"] or "series"),
    )
