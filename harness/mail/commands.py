"""Mail that talks to the bot: a moderator's answer to a held reply, a ``#kharness test``.

Read once per message as the inbox is polled, before grouping (a request
may carry a diff, and must not join its series as a patch).  What is done
with each message, and why a message is ignored, becomes its reason in the
database's ``ignored`` table and a line of the log: nothing a stranger
sends is acted on silently, and nothing is acted on twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.mail import moderation, retest
from harness.mail.message import Mail, parse
from harness.mail.outbox import Outbox
from harness.mail.retest import Retests
from harness.mail.rows import SeriesRow
from harness.mail.state import State


@dataclass(frozen=True)
class Listening:
    """Who the bot takes commands from."""

    moderator: str | None = None  # --moderate: the only address a release/drop counts from
    retest_from: tuple[str, ...] = ()  # may ask for retests besides the thread's posters
    max_patches: int = 50  # a thread's messages read to find its posters


class Commands:
    """Takes the commands of the mail a poll brought."""

    def __init__(
        self,
        state: State,
        outbox: Outbox,
        retests: Retests,
        listening: Listening,
        series_dir: Callable[[str], Path],
        log: Callable[[str], None],
    ) -> None:
        self.state = state
        self.outbox = outbox
        self.retests = retests
        self.listening = listening
        self.series_dir = series_dir  # a series key's results directory
        self.log = log

    def take(self, mail: Mail) -> str | None:
        """Act on ``mail`` if it is a command; the reason recorded for it (None: not one)."""
        if mail.from_bot:
            return None
        held = self.outbox.by_held_id([*filter(None, [mail.in_reply_to]), *mail.references])
        if held is not None:
            return self._moderate(mail, held.id)
        request = retest.asked(mail)
        if request is not None:
            return self._retest(mail, request)
        return None

    def _moderate(self, mail: Mail, reply_id: int) -> str:
        moderator = self.listening.moderator
        if moderator is None:
            why = "a reply to a held reply, but the bot runs without --moderate: ignored"
        else:
            said = moderation.answer(mail, moderator)
            why = said.ignored or ""
            if said.word is not None:
                try:
                    done = (
                        self.outbox.release(reply_id)
                        if said.word == "release"
                        else self.outbox.drop(reply_id)
                    )
                except ValueError as exc:
                    why = f"{said.word}: {exc}"
                else:
                    verb = "released" if said.word == "release" else "dropped"
                    why = f"the moderator {verb} reply #{reply_id} ({done.series})"
        self.log(f"<{mail.message_id}> about held reply #{reply_id}: {why}")
        return f"moderation: {why}"

    def _retest(self, mail: Mail, request: retest.Asked) -> str:
        row = self.state.thread_series(
            [*filter(None, [mail.in_reply_to]), *reversed(mail.references)], mail.thread_root
        )
        why = self._retest_refused(mail, row)
        if why is not None or row is None:
            self.log(f"<{mail.message_id}> asks for a retest: {why}")
            return f"retest request: {why}"
        taken = self.retests.add(mail, str(row.key), self.series_dir(str(row.key)), request.fix)
        fix = " with a fix patch" if taken.fix is not None else ""
        self.log(f"retest #{taken.id} of {row.key}{fix} asked by {mail.sender}: queued")
        return f"retest request: queued as retest #{taken.id} of {row.key}"

    def _retest_refused(self, mail: Mail, row: SeriesRow | None) -> str | None:
        """Why the request is not taken (None: it is)."""
        if self.retests.known(mail.message_id):
            return "taken already"
        if row is None:
            return "no series of this bot is in that thread: ignored"
        raws, _count = self.state.members(str(row.key), self.listening.max_patches + 2)
        posters = {parse(r).sender.lower() for r in raws} - {""}
        allowed = {a.lower() for a in self.listening.retest_from}
        refused = retest.who_may_ask(mail, posters, allowed)
        if refused is not None:
            return refused
        if self.retests.count(str(row.key)) >= retest.MAX_PER_SERIES:
            return f"{row.key} was retested {retest.MAX_PER_SERIES} times already: ignored"
        return None
