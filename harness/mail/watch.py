"""``kharness watch``: a bot that tests every series posted to a list and answers in its thread.

One loop, each turn short: poll the inbox (backing off while it is down),
store what arrived, regroup the series (:mod:`harness.mail.grouping`),
promote the complete ones (and, after ``--wait-missing``, the incomplete
ones, whose reply says what never came), start the next series on a free
slot, advance the running ones, send the replies waiting in the outbox.

A series is tested by the same command a developer types, ``kharness
series --kernel K --series <Message-ID>``, once per kernel, as a child in
its own process group (stopped with the bot, also on ``kill -9``: the child
gets SIGTERM from the kernel and shuts its guests down).  Every child's
results go under ``<results>/watch/<series>/<kernel>/``; the reply is
written there (``reply.eml``) before it is sent, so a refused or failed
send loses nothing and is tried again on the next poll.

The queue is fair: the next series is the oldest of the author who has been
served least, so one prolific sender cannot starve the others.  A newer
version of a series stops the older one (queued or running): testing v2
after v3 arrived helps nobody.

Whoever can post to the list can send anything, so everything is bounded: a
message the bot cannot handle is set aside with its reason and the cursor
moves past it; a series over ``max_patches`` is not tested (its thread gets
a short reply saying why); a series' job is stopped after ``deadline``
seconds and its reply says so; a turn with no new mail reads no stored
message (only the series new mail touched are regrouped); each series has
its own results directory, named by a hash of its whole key; and one bot at
a time keeps a state directory (:class:`harness.mail.state.BotLock`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.hosts import Host
from harness.mail import reply, smtp
from harness.mail.botlock import BotLock
from harness.mail.commandline import SeriesCommand
from harness.mail.grouping import SeriesKey
from harness.mail.slots import Child, Slot, make_slots, owner_of
from harness.mail.state import (
    DONE,
    QUEUED,
    RUNNING,
    WAITING,
    SeriesRow,
    State,
)
from harness.mail.watch_intake import Intake, slug


@dataclass(frozen=True)
class Settings:
    """Everything the bot was told on its command line."""

    inbox: str
    kernels: tuple[str, ...]
    kernels_file: Path
    home: Path  # <results>/watch: the database, the inbox mirror, every series' results
    tests: tuple[str, ...] = ()
    interval: float = 60.0  # seconds between polls
    wait_missing: float = 1800.0  # how long an incomplete series waits for its patches
    jobs: int = 1  # series tested at once, here
    hosts: tuple[Host, ...] = ()  # --hosts: series tested on these machines instead
    smtp: smtp.Server | None = None
    sender: str = field(default_factory=reply.default_sender)
    from_start: bool = False  # test what the inbox already holds, not only what comes next
    once: bool = False  # stop when nothing is waiting, queued or running
    max_patches: int = 50  # a longer series is not tested (its reply says why)
    deadline: float = 7200.0  # seconds a series' job may take in all, every kernel together


@dataclass
class Job:
    """A series under test: one kernel at a time, each a ``kharness series`` child."""

    row: SeriesRow
    directory: Path
    remaining: list[str]
    slot: Slot
    child: Child | None = None
    kernel: str | None = None
    began: float = field(default_factory=time.monotonic)
    timed_out: tuple[str, ...] = ()  # kernels not (fully) tested: the deadline passed


class Watcher:
    """The bot's loop and the state it holds between turns."""

    def __init__(self, settings: Settings, log: Callable[[str], None]) -> None:
        self.settings = settings
        self.log = log
        self.lock = BotLock(settings.home)  # first: a second bot stops here, naming the first
        self.state = State(settings.home)
        self.intake = Intake(settings, self.state, log)
        self.jobs: dict[SeriesKey, Job] = {}
        self.slots = make_slots(
            settings.jobs, settings.hosts, settings.kernels_file, owner_of(settings.home)
        )

    # -- the loop
    def run(self) -> int:
        """Turn until stopped (SIGTERM, Ctrl-C) or, with ``once``, until idle."""
        for key in self.state.recover():
            self.log(f"resuming {key}: it was being tested when the bot stopped")
        try:
            while True:
                self.turn()
                if self.settings.once and self.stranded():
                    queued = len(self.state.series(QUEUED))
                    self.log(
                        f"no host can be reached; {queued} series stay queued for the next start"
                    )
                    return 1
                if self.settings.once and self.idle():
                    self.send_replies(retry=True)  # a last try before going
                    left = len(self.state.pending()) if self.settings.smtp else 0
                    if left:
                        self.log(f"{left} reply(ies) not sent; kept, tried at the next start")
                    return 0
                time.sleep(1.0)
        finally:
            self.stop_all()
            self.state.close()
            self.lock.release()

    def turn(self) -> None:
        """One pass over everything the bot does."""
        polled = time.monotonic() >= self.intake.next_poll
        if polled:
            self.intake.poll()
        for old in self.intake.regroup():  # superseded: a job of it stops
            job = self.jobs.pop(old, None)
            if job is not None:
                self._stop(job)
        self.promote()
        self.advance()
        self.start()
        self.send_replies(retry=polled)

    def stranded(self) -> bool:
        """Series wait for a slot, none runs, and every slot's host was unreachable."""
        now = time.time()
        return (
            not self.jobs
            and bool(self.state.series(QUEUED))
            and not any(s.ready(now) for s in self.slots)
        )

    def idle(self) -> bool:
        """Nothing to wait for: no job and no series waiting or queued."""
        return not self.jobs and not self.state.series(WAITING) and not self.state.series(QUEUED)

    # -- series
    def promote(self) -> None:
        """Complete series are queued; incomplete ones after waiting ``wait_missing``."""
        now = time.time()
        for row in self.state.series(WAITING):
            if not row.missing:
                self.state.move(row.key, QUEUED)
            elif now - row.last_arrival >= self.settings.wait_missing:
                missing = ", ".join(map(str, row.missing))
                self.log(f"{row.key}: patch(es) {missing} never came; testing what arrived")
                self.state.move(row.key, QUEUED, note=f"missing patch(es) {missing}")

    def start(self) -> None:
        """Fill the free slots from the fair queue."""
        while len(self.jobs) < len(self.slots):
            queued = self.state.series(QUEUED)
            if not queued:
                return
            busy = {id(j.slot) for j in self.jobs.values()}
            now = time.time()
            slot = next((s for s in self.slots if id(s) not in busy and s.ready(now)), None)
            if slot is None:
                return  # the free slots' hosts are unreachable for now
            row = min(queued, key=lambda r: (self.state.served(r.sender), r.first_seen))
            directory = self.settings.home / "series" / slug(row)
            done = [k for k in self.settings.kernels if reply.finished_run(directory / k)]
            job = Job(row, directory, [k for k in self.settings.kernels if k not in done], slot)
            self.state.move(row.key, RUNNING, directory=str(directory))
            where = f" on {slot.name}" if self.settings.hosts else ""
            self.log(f"testing {row.key}{where}: {row.title}")
            self.jobs[row.key] = job

    def advance(self) -> None:
        """Start each job's next kernel; a job with none left gets its reply."""
        for key, job in list(self.jobs.items()):
            if time.monotonic() - job.began > self.settings.deadline:
                self._expire(job)
                continue
            if job.child is not None:
                code = job.child.poll()
                if code is None:
                    continue
                if job.child.lost():
                    self._requeue(job)
                    continue
                job.slot.reached(True, time.time())
                job.child.collect()
                self.log(f"{key} on {job.kernel}: exit {code}")
                job.child = None
            if job.remaining:
                self._launch(job, job.remaining.pop(0))
                continue
            del self.jobs[key]
            self._finish(job)

    def _expire(self, job: Job) -> None:
        """The series' deadline passed: its child is stopped, the reply says so."""
        left = [job.kernel] if job.child is not None else []
        left += job.remaining
        self._stop(job)
        job.timed_out = tuple(k for k in left if k)
        job.remaining = []
        self.log(
            f"{job.row.key}: stopped, over the deadline of {reply.span(self.settings.deadline)}"
        )
        del self.jobs[job.row.key]
        self._finish(job)

    def _requeue(self, job: Job) -> None:
        """The job's host could not be reached: no verdict; the series waits for a slot."""
        delay = job.slot.reached(False, time.time())
        log = job.directory / str(job.kernel) / "series.log"
        self.log(
            f"{job.row.key}: {job.slot.name} could not be reached (see {log}); "
            f"queued again, that host is tried again in {delay:.0f}s"
        )
        del self.jobs[job.row.key]
        self.state.move(job.row.key, QUEUED, note=f"{job.slot.name} could not be reached")

    def _launch(self, job: Job, kernel: str) -> None:
        out = job.directory / kernel
        out.mkdir(parents=True, exist_ok=True)
        command = SeriesCommand.for_message(
            job.row.anchor,
            kernel,
            self.settings.inbox,
            allow_missing=bool(job.row.missing),  # it waited --wait-missing; test what arrived
            tests=self.settings.tests,
            reply_from=self.settings.sender,
        )
        job.child = job.slot.start(command.argv(), out)
        job.kernel = kernel

    def _finish(self, job: Job) -> None:
        """Compose the series' reply from every kernel's results; queue it for sending."""
        results = [self._result(job, k) for k in self.settings.kernels]
        anchor = reply.anchor_of(results) or self.intake.stored(job.row.anchor)
        if anchor is None:
            self.state.move(job.row.key, DONE, note="no message to answer")
            return
        notes = next((reply.origin_notes(r.run_dir) for r in results if r.run_dir), [])
        if not notes and job.row.note and "missing" in job.row.note:
            notes = [f"Note: {job.row.note} never reached the list."]
        if job.timed_out:
            notes = [
                f"Note: testing timed out: the series' deadline of "
                f"{reply.span(self.settings.deadline)} passed, so {', '.join(job.timed_out)} "
                "was stopped before it finished.",
                *notes,
            ]
        kernel = self.settings.kernels[0]
        message = reply.compose(
            anchor,
            results,
            reply.Settings(self.settings.sender),
            reproduce=SeriesCommand.for_message(
                job.row.anchor, kernel, self.settings.inbox, bool(job.row.missing)
            ).line(),
            notes=notes,
        )
        path = reply.save(message, job.directory)
        self.state.add_reply(job.row.key, path)
        self.state.move(job.row.key, DONE)
        self.log(f"{job.row.key}: reply written to {path}")

    def _result(self, job: Job, kernel: str) -> reply.KernelResult:
        result = reply.kernel_result(job.directory / kernel, kernel)
        if result.run_dir is None and kernel in job.timed_out:
            deadline = reply.span(self.settings.deadline)
            return reply.KernelResult(kernel, None, f"timed out: stopped after {deadline}")
        return result

    # -- replies
    def send_replies(self, retry: bool = True) -> None:
        """New replies now; one refused before only with ``retry`` (on a poll's turn)."""
        server = self.settings.smtp
        if server is None:
            return
        for pending in self.state.pending():
            if pending.attempts and not retry:
                continue
            try:
                refused = smtp.send(reply.load(pending.path), server)
            except smtp.SendFailed as exc:
                self.log(f"reply for {pending.series} not sent (kept, retried next poll): {exc}")
                self.state.send_failed(pending.series, str(exc))
                continue
            self.state.sent(pending.series)
            extra = f" (refused: {', '.join(refused)})" if refused else ""
            self.log(f"reply for {pending.series} sent through {server}{extra}")

    # -- stopping
    def stop_all(self) -> None:
        """Stop every running child (their series stay ``running``: resumed next start)."""
        for job in self.jobs.values():
            self._stop(job)
        self.jobs.clear()

    @staticmethod
    def _stop(job: Job) -> None:
        if job.child is not None:
            job.child.stop()
            job.child = None
