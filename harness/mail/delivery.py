"""How the bot's replies leave: live, held for a moderator, or not at all (``--dry-run``).

Split from the loop (:mod:`harness.mail.watch`) by job.  A reply is queued
in the :class:`Outbox` the way the bot was started (see
:mod:`harness.mail.outbox`); each turn sends the ones whose time has come
through the relay (:func:`harness.mail.smtp.deliver`).  A refusal keeps the
reply and asks :class:`RetryPolicy` when to try again; the relay's words
(``exc.refusal``) are logged and stored, so ``watch-admin list`` shows them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UserError
from harness.mail import moderation, reply, smtp
from harness.mail.clock import Clock, SystemClock
from harness.mail.outbox import Outbox, Reply, ReplyState
from harness.mail.smtp import Refusal, RetryPolicy, SendFailed, SmtpRelay


@dataclass(frozen=True)
class Sending:
    """How replies go: the relay, and whether they are held or only written."""

    relay: SmtpRelay | None = None
    moderator: str | None = None  # --moderate: every reply goes there first
    dry_run: bool = False  # --dry-run: written, none sent
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def first_state(self) -> ReplyState:
        """The state a new reply starts in."""
        if self.dry_run:
            return ReplyState.DRY_RUN
        return ReplyState.MODERATE if self.moderator else ReplyState.PENDING


class Delivery:
    """Queues the written replies and sends the due ones."""

    def __init__(
        self,
        outbox: Outbox,
        sending: Sending,
        log: Callable[[str], None],
        clock: Clock | None = None,
    ) -> None:
        self.outbox = outbox
        self.sending = sending
        self.log = log
        self.clock: Clock = clock or SystemClock()

    def queue(self, series: str, path: Path, what: str = "series") -> int:
        """A written reply, queued as the bot was started; its ID."""
        state = self.sending.first_state()
        reply_id = self.outbox.add(series, path, state, self.sending.moderator, what)
        if state is ReplyState.DRY_RUN:
            self.log(f"reply #{reply_id} for {series} written to {path} (dry run: not sent)")
        elif state is ReplyState.MODERATE:
            self.log(f"reply #{reply_id} for {series} written to {path}; held for moderation")
        else:
            self.log(f"reply #{reply_id} for {series} written to {path}")
        return reply_id

    def send_due(self, now: float | None = None) -> None:
        """Send every reply whose next try has come (nothing without a relay)."""
        if self.sending.relay is None:
            return
        now = self.clock.time() if now is None else now
        for item in self.outbox.due(now):
            self._send(item, self.sending.relay)

    def waiting(self) -> list[Reply]:
        """Replies still to be sent (with a relay: tried at their next try)."""
        return self.outbox.all((ReplyState.PENDING, ReplyState.MODERATE))

    def next_try(self) -> float | None:
        """When the earliest waiting reply is tried again (None: none waits, or no relay)."""
        if self.sending.relay is None:
            return None
        times = [r.next_try for r in self.waiting()]
        return min(times) if times else None

    def _send(self, item: Reply, relay: SmtpRelay) -> None:
        try:
            message = reply.load(item.path)
        except (OSError, ValueError) as exc:
            self.outbox.give_up(item.id, f"the reply file cannot be read: {exc}")
            self.log(f"reply #{item.id} for {item.series}: {item.path} cannot be read ({exc})")
            return
        held = item.state is ReplyState.MODERATE
        if held:
            message = moderation.held_copy(message, item.id, item.moderator or "")
        try:
            done = smtp.deliver(message, relay)
        except SendFailed as exc:
            self._refused(item, exc)
            return
        except UserError as exc:  # the password file went away: the operator can fix it
            self._refused(item, SendFailed(str(exc), Refusal(None, str(exc), transient=True)))
            return
        left = [r for r, _ in done.refused] + list(done.dropped)
        extra = f" (not to: {', '.join(left)})" if left else ""
        if held:
            self.outbox.held(item.id, str(message["Message-ID"]).strip().strip("<>"))
            self.log(f"reply #{item.id} for {item.series} sent to the moderator {item.moderator}")
            return
        self.outbox.sent(item.id)
        self.log(f"reply #{item.id} for {item.series} sent through {relay}{extra}")

    def _refused(self, item: Reply, exc: SendFailed) -> None:
        attempts = item.attempts + 1
        delay = self.sending.policy.delay(exc, attempts)
        if delay is None:
            self.outbox.give_up(item.id, str(exc))
            self.log(
                f"reply #{item.id} for {item.series} given up after {attempts} attempt(s), "
                f"kept as failed: {exc.refusal}"
            )
            return
        self.outbox.retry(item.id, str(exc), self.clock.time() + delay)
        self.log(
            f"reply #{item.id} for {item.series} not sent (kept; next try in {delay:g}s): "
            f"{exc.refusal}"
        )
