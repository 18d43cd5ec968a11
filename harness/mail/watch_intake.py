"""The mail side of ``kharness watch``: what arrived stored, the series it touched regrouped.

Split from :mod:`harness.mail.watch` (the jobs and the replies) by job.  Its
work follows the new mail: a poll parses each new message once, a message it
cannot handle is set aside with its reason (the cursor moves past it), and
only the series new mail touched are regrouped, from at most
``max_patches + 2`` of their stored messages; a series over the limit is
refused with a short reply.  Mail that talks to the bot (a moderator's
answer, ``#kharness test``) is handed to :mod:`harness.mail.commands` first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import InboxUnavailable
from harness.mail import grouping, reply
from harness.mail.clock import Clock
from harness.mail.grouping import SeriesKey
from harness.mail.inbox import Backoff, Cursor, InboxReader
from harness.mail.message import Mail, parse
from harness.mail.rows import FINAL, REFUSED, SUPERSEDED, WAITING, SeriesRow, SetAside
from harness.mail.state import State

if TYPE_CHECKING:
    from harness.mail.watch import Settings


class Intake:
    """The inbox read past its cursor, into the state; the series regrouped."""

    def __init__(
        self,
        settings: Settings,
        state: State,
        log: Callable[[str], None],
        commands: Callable[[Mail], str | None],
        queue_reply: Callable[[str, Path, str], int],
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.state = state
        self.log = log
        self.commands = commands  # a command mail acted on: the reason it is recorded with
        self.queue_reply = queue_reply  # a written reply handed to the delivery
        self.clock = clock
        self.reader = InboxReader(settings.inbox, settings.home / "mirror")
        self.backoff = Backoff.starting(settings.unreachable_retry)
        self.next_poll = 0.0

    # -- the inbox
    def poll(self) -> None:
        """Read what arrived; back off (never a busy loop) while the inbox is unreachable."""
        saved = self.state.cursor(self.settings.inbox)
        cursor = Cursor.from_json(saved) if saved else None
        try:
            got = self.reader.poll(cursor, from_start=self.settings.from_start)
        except InboxUnavailable as exc:
            delay = self.backoff.next()
            self.log(f"inbox unavailable, next try in {delay:g}s: {exc}")
            self.next_poll = self.clock.monotonic() + delay
            return
        self.backoff.reset()
        self.next_poll = self.clock.monotonic() + self.settings.interval
        kept: list[tuple[Mail, str]] = []
        ignored: list[tuple[Mail, str]] = []
        aside: list[SetAside] = []
        for raw in got.messages:
            try:
                mail = parse(raw)
                if mail.refused is not None:  # the parser's verdict: an absurd tag, a bad id
                    aside.append(SetAside(mail.message_id, mail.subject, mail.refused))
                    continue
                why = self.commands(mail) or grouping.why_ignored(mail)
                if why is None:
                    kept.append((mail, str(grouping.series_key(mail))))
                else:
                    ignored.append((mail, why))
            except Exception as exc:  # one message never stops the bot: set aside, go on
                aside.append(SetAside.unreadable(raw, exc))
        new = self.state.take(self.settings.inbox, got.cursor.to_json(), kept, ignored, aside)
        for item in aside:
            self.log(f"set aside <{item.message_id}> ({item.subject[:200]}): {item.reason}")
        if got.messages:
            self.log(f"{len(got.messages)} message(s): {new} new patch(es)/cover(s)")

    def regroup(self) -> list[SeriesKey]:
        """The series new mail touched are regrouped (the others are as they were): new
        versions recorded, older versions of a newer one dropped (returned: their jobs
        stop), oversized ones refused."""
        fresh = []
        stopped: list[SeriesKey] = []
        for series in self.state.touched():
            try:
                candidate = self._group(series)
            except Exception as exc:  # a series the bot cannot handle never stops it either
                reason = f"could not be grouped: {type(exc).__name__}: {exc}"
                self.log(f"series {series}: set aside, {reason}")
                self.state.set_aside(SetAside(f"series {series}", "", reason))
                candidate = None
            self.state.grouped(series)
            if candidate is not None:
                fresh.append(candidate)
        if not fresh:
            return stopped
        known = [r.candidate() for r in self.state.by_senders(c.sender for c in fresh)]
        for old, new in grouping.superseded(known).items():
            row = self.state.get(old)
            if row is None or row.state in FINAL:
                continue
            stopped.append(old)
            note = f"v{new.version} was posted ({new.root}); v{old.version} is not tested further"
            self.log(f"{old}: superseded by {new}")
            self.state.move(old, SUPERSEDED, superseded_by=str(new), note=note)
        return stopped

    def _group(self, series: str) -> grouping.Candidate | None:
        """Regroup one series from its stored messages (never more than the patch limit
        allows: past it the series is refused, whatever the rest holds)."""
        limit = self.settings.max_patches
        raws, count = self.state.members(series, limit + 2)
        found = [c for c in grouping.group(parse(r) for r in raws) if str(c.key) == series]
        if not found:
            return None
        candidate = found[0]
        self.state.upsert(candidate, WAITING)
        row = self.state.get(candidate.key)
        size = max(candidate.total, len(candidate.present), count - int(candidate.has_cover))
        if row is not None and row.state == WAITING and size > limit:
            self._refuse(row, f"it has {size} patches, over this bot's limit of {limit}")
        return candidate

    def _refuse(self, row: SeriesRow, why: str) -> None:
        """A series not tested, over a bound: recorded, and answered with a short reply.

        The reply is sent (not only logged): the author of an honest long
        series learns why no results come and how to get them (split it, or
        test it by hand).  A poster cannot use it to make the bot send more
        mail than one reply per series, as for any series.
        """
        note = f"not tested: {why}"
        self.log(f"{row.key}: {note}")
        directory = self.settings.home / "series" / slug(row)
        anchor = self.stored(row.anchor)
        self.state.move(row.key, REFUSED, note=note, directory=str(directory))
        if anchor is None:
            return
        message = reply.refusal(anchor, reply.Settings(self.settings.sender), note)
        directory.mkdir(parents=True, exist_ok=True)
        self.queue_reply(str(row.key), reply.save(message, directory), "refusal")

    def stored(self, message_id: str) -> Mail | None:
        """A stored message, parsed (None: not stored)."""
        raw = self.state.raw(message_id)
        return parse(raw) if raw is not None else None


def slug(row: SeriesRow) -> str:
    """The series' results directory name: readable words, and a hash of its whole key
    (thread root, version, sender), so no two series ever share one."""
    words = re.sub(r"[^a-z0-9]+", "-", row.title.lower())[:40].strip("-") or "series"
    version = row.key.version if 0 <= row.key.version < 10**6 else "x"
    whole = f"{row.key.root}\n{row.key.version}\n{row.sender}".encode("utf-8", "replace")
    return f"v{version}-{words}-{hashlib.sha256(whole).hexdigest()[:16]}"
