"""One series under test by the bot (or one retest of it), and the reply its results make.

Split from the loop (:mod:`harness.mail.watch`) by job: a :class:`Job` is a
series tested one kernel at a time, each a ``kharness series`` child whose
command line comes from the one builder
(:class:`harness.mail.commandline.SeriesCommand`): the tests relevance
chose, and for a retest its fix patch after the series.  :func:`answer` is
the reply every kernel's results make together; a retest's answers the
request that asked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from email.message import EmailMessage
from pathlib import Path

from harness.mail import reply
from harness.mail.commandline import SeriesCommand
from harness.mail.gate import why_text
from harness.mail.message import Mail
from harness.mail.retest import Retest
from harness.mail.rows import SeriesRow
from harness.mail.slots import Child, Slot


@dataclass
class Job:
    """A series under test: one kernel at a time, each a ``kharness series`` child."""

    row: SeriesRow
    directory: Path
    remaining: list[str]
    slot: Slot
    began: float  # the bot's clock (monotonic) when it was started: the deadline counts from it
    child: Child | None = None
    kernel: str | None = None
    timed_out: tuple[str, ...] = ()  # kernels not (fully) tested: the deadline passed
    retest: Retest | None = None  # a retest asked in the thread, not the series' first test

    def stop(self) -> None:
        """Stop its running child, if any."""
        if self.child is not None:
            self.child.stop()
            self.child = None

    def expire(self) -> None:
        """Its deadline passed: the child stopped, the kernels not (fully) tested recorded."""
        left = [self.kernel] if self.child is not None else []
        self.stop()
        self.timed_out = tuple(k for k in [*left, *self.remaining] if k)
        self.remaining = []

    @property
    def name(self) -> str:
        """How the log and the job table name it."""
        return f"{self.row.key} retest #{self.retest.id}" if self.retest else str(self.row.key)

    def command(
        self, kernel: str, inbox: str, tests: tuple[str, ...], sender: str
    ) -> SeriesCommand:
        """The child's command for ``kernel``: the series' tests, a retest's fix after it."""
        chosen = self.row.tests if self.row.tests is not None else tests
        base = SeriesCommand.for_message(
            self.row.anchor,
            kernel,
            inbox,
            allow_missing=bool(self.row.missing),  # it waited --wait-missing; test what arrived
            tests=chosen,
            reply_from=sender,
        )
        fix = self.retest.fix if self.retest is not None else None
        extra = (str(fix),) if fix is not None else ()
        return replace(base, extra=extra, why_tests=why_text(self.row.relevance))


@dataclass(frozen=True)
class Answering:
    """What a reply needs of the bot's settings."""

    kernels: tuple[str, ...]
    inbox: str
    deadline: float
    settings: reply.Settings


def answer(job: Job, how: Answering, stored: Callable[[str], Mail | None]) -> EmailMessage | None:
    """The reply to the job's thread from every kernel's results (None: nothing to answer)."""
    results = [_result(job, k, how.deadline) for k in how.kernels]
    if job.retest is not None:
        anchor: Mail | None = job.retest.mail()
    else:
        anchor = reply.anchor_of(results) or stored(job.row.anchor)
    if anchor is None:
        return None
    notes = next((reply.origin_notes(r.run_dir) for r in results if r.run_dir), [])
    if not notes and job.row.missing:  # the row's own count, not its note's wording
        places = ", ".join(map(str, job.row.missing))
        notes = [f"Note: missing patch(es) {places} never reached the list."]
    if job.timed_out:
        notes = [
            f"Note: testing timed out: the series' deadline of {reply.span(how.deadline)} "
            f"passed, so {', '.join(job.timed_out)} was stopped before it finished.",
            *notes,
        ]
    if job.retest is not None:
        fix = (
            "; the fix patch of that message was applied after the series' patches"
            if job.retest.fix is not None
            else ""
        )
        notes = [f"Retest asked by {job.retest.sender}{fix}.", *notes]
    reproduce = SeriesCommand.for_message(
        job.row.anchor, how.kernels[0], how.inbox, bool(job.row.missing)
    ).line()
    return reply.compose(anchor, results, how.settings, reproduce=reproduce, notes=notes)


def _result(job: Job, kernel: str, deadline: float) -> reply.KernelResult:
    result = reply.kernel_result(job.directory / kernel, kernel)
    if result.run_dir is None and kernel in job.timed_out:
        return reply.KernelResult(kernel, None, f"timed out: stopped after {reply.span(deadline)}")
    return result
