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

A complete series is tested only when it touches a path some test covers,
with those tests (:mod:`harness.mail.gate`); the rest are recorded
``not-relevant`` and get no reply.  Replies leave through
:mod:`harness.mail.delivery` (live, held for a moderator, or only written);
mail that talks to the bot (a moderator's answer, ``#kharness test``) is
taken by :mod:`harness.mail.commands`, and a retest is one more job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.hosts import Host
from harness.mail import reply
from harness.mail.botlock import BotLock
from harness.mail.clock import Clock, SystemClock
from harness.mail.commands import Commands, Listening
from harness.mail.delivery import Delivery, Sending
from harness.mail.gate import Gate
from harness.mail.grouping import SeriesKey
from harness.mail.jobs import Answering, Job, answer
from harness.mail.outbox import Outbox
from harness.mail.retest import Retests, RetestState
from harness.mail.rows import DONE, NOT_RELEVANT, QUEUED, RUNNING, WAITING, SeriesRow
from harness.mail.slots import Slot, SlotFactory, make_slots, owner_of
from harness.mail.smtp import RetryPolicy, SmtpRelay
from harness.mail.state import State
from harness.mail.watch_intake import Intake, slug

#: with --once, a refused reply whose next try is this close is waited for
ONCE_WAIT = 60.0
#: seconds between turns with no child running (less when ``--interval`` is shorter)
TICK = 1.0
#: seconds between turns while a child runs: its end is seen this soon (a turn with nothing
#: new reads no stored message, so this costs a few small queries)
BUSY_TICK = 0.2


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
    smtp: SmtpRelay | None = None
    sender: str = field(default_factory=reply.default_sender)
    from_start: bool = False  # test what the inbox already holds, not only what comes next
    once: bool = False  # stop when nothing is waiting, queued or running
    max_patches: int = 50  # a longer series is not tested (its reply says why)
    deadline: float = 7200.0  # seconds a series' job may take in all, every kernel together
    test_all: bool = False  # --test-all-series: no relevance check
    dry_run: bool = False  # replies written, none sent
    moderator: str | None = None  # --moderate: replies go there first
    retest_from: tuple[str, ...] = ()  # may ask for retests besides the thread's posters
    evidence_url: str | None = None  # where <results> is served: replies link each run
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    unreachable_retry: float = 5.0  # first delay before an unreachable inbox or host, doubling


class Watcher:
    """The bot's loop and the state it holds between turns.

    ``clock`` is where every wait and stamp reads the time (the real one by
    default); ``slots`` makes the places a series runs (:func:`make_slots` by
    default).  A test passes its own of both and drives the loop in-process.
    """

    def __init__(
        self,
        settings: Settings,
        log: Callable[[str], None],
        clock: Clock | None = None,
        slots: SlotFactory = make_slots,
    ) -> None:
        self.settings = settings
        self.log = log
        self.clock: Clock = clock or SystemClock()
        self.lock = BotLock(settings.home)  # first: a second bot stops here, naming the first
        self.state = State(settings.home, self.clock)
        self.retests = Retests(self.state.db, self.clock)
        sending = Sending(settings.smtp, settings.moderator, settings.dry_run, settings.retry)
        self.delivery = Delivery(Outbox(self.state.db, self.clock), sending, log, self.clock)
        listening = Listening(settings.moderator, settings.retest_from, settings.max_patches)
        self.commands = Commands(
            self.state, self.delivery.outbox, self.retests, listening, self._series_dir, log
        )
        self.intake = Intake(
            settings, self.state, log, self.commands.take, self.delivery.queue, self.clock
        )
        self.gate = Gate(settings.kernels_file, settings.kernels, settings.tests, settings.test_all)
        self.jobs: dict[str, Job] = {}
        retry = settings.unreachable_retry  # after an unreachable host
        self.slots = slots(
            settings.jobs, settings.hosts, settings.kernels_file, owner_of(settings.home), retry
        )
        reply_settings = reply.Settings(
            settings.sender, settings.evidence_url, settings.home.parent.resolve()
        )
        self.answering = Answering(
            settings.kernels, settings.inbox, settings.deadline, reply_settings
        )

    # -- the loop
    def run(self) -> int:
        """Turn until stopped (SIGTERM, Ctrl-C) or, with ``once``, until idle."""
        for key in self.state.recover():
            self.log(f"resuming {key}: it was being tested when the bot stopped")
        for number in self.retests.recover():
            self.log(f"resuming retest #{number}: it was running when the bot stopped")
        try:
            while True:
                self.turn()
                if self.settings.once and self.stranded():
                    queued = len(self.state.series(QUEUED))
                    self.log(
                        f"no host can be reached; {queued} series stay queued for the next start"
                    )
                    return 1
                if self.settings.once and self.idle() and not self._retry_soon():
                    left = len(self.delivery.waiting()) if self.settings.smtp else 0
                    if left:
                        self.log(f"{left} reply(ies) not sent; kept, tried at the next start")
                    return 0
                self.clock.sleep(BUSY_TICK if self.jobs else min(TICK, self.settings.interval))
        finally:
            self.stop_all()
            self.state.close()
            self.lock.release()

    def turn(self) -> None:
        """One pass over everything the bot does."""
        if self.clock.monotonic() >= self.intake.next_poll:
            self.intake.poll()
        for old in self.intake.regroup():  # superseded: a job of it stops
            job = self.jobs.pop(str(old), None)
            if job is not None:
                job.stop()
        self.promote()
        self.advance()
        self.start()
        self.delivery.send_due()

    def stranded(self) -> bool:
        """Series wait for a slot, none runs, and every slot's host was unreachable."""
        now = self.clock.time()
        return (
            not self.jobs
            and bool(self.state.series(QUEUED) or self.retests.queued())
            and not any(s.ready(now) for s in self.slots)
        )

    def idle(self) -> bool:
        """Nothing to wait for: no job and no series waiting or queued, no retest queued."""
        return (
            not self.jobs
            and not self.state.series(WAITING)
            and not self.state.series(QUEUED)
            and not self.retests.queued()
        )

    def _retry_soon(self) -> bool:
        """A refused reply is tried again within ONCE_WAIT seconds (``--once`` waits)."""
        due = self.delivery.next_try()
        return due is not None and due - self.clock.time() <= ONCE_WAIT

    def _series_dir(self, key: str) -> Path:
        """A series' results directory (where its retests go too)."""
        row = self.state.get(SeriesKey.parse(key))
        if row is not None and row.directory:
            return Path(row.directory)
        return self.settings.home / "series" / (slug(row) if row else "unknown")

    # -- series
    def promote(self) -> None:
        """Complete series are decided (relevant: queued with their tests; not: recorded);
        incomplete ones after waiting ``wait_missing``."""
        now = self.clock.time()
        for row in self.state.series(WAITING):
            if not row.missing:
                self._decide(row)
            elif now - row.last_arrival >= self.settings.wait_missing:
                missing = ", ".join(map(str, row.missing))
                self.log(f"{row.key}: patch(es) {missing} never came; testing what arrived")
                self._decide(row, note=f"missing patch(es) {missing}")

    def _decide(self, row: SeriesRow, note: str | None = None) -> None:
        verdict = self.gate.decide(self.state, row, self.settings.max_patches + 2)
        if not verdict.relevant:
            self.log(f"{row.key}: {verdict.note}")
            self.state.move(row.key, NOT_RELEVANT, note=verdict.note, relevance=verdict.record)
            return
        self.state.move(row.key, QUEUED, note=note, tests=verdict.tests, relevance=verdict.record)
        if verdict.tests is not None:
            self.log(f"{row.key}: queued with {', '.join(verdict.tests)}")

    def start(self) -> None:
        """Fill the free slots: retests asked in a thread first, then the fair queue."""
        while len(self.jobs) < len(self.slots):
            busy = {id(j.slot) for j in self.jobs.values()}
            now = self.clock.time()
            slot = next((s for s in self.slots if id(s) not in busy and s.ready(now)), None)
            if slot is None:
                return  # the free slots' hosts are unreachable for now
            job = self._next_retest(slot) or self._next_series(slot)
            if job is None:
                return
            where = f" on {slot.name}" if self.settings.hosts else ""
            self.log(f"testing {job.name}{where}: {job.row.title}")
            self.jobs[job.name] = job

    def _next_series(self, slot: Slot) -> Job | None:
        queued = self.state.series(QUEUED)
        if not queued:
            return None
        row = min(queued, key=lambda r: (self.state.served(r.sender), r.first_seen))
        directory = self.settings.home / "series" / slug(row)
        done = [k for k in self.settings.kernels if reply.finished_run(directory / k)]
        remaining = [k for k in self.settings.kernels if k not in done]
        job = Job(row, directory, remaining, slot, self.clock.monotonic())
        self.state.move(row.key, RUNNING, directory=str(directory))
        return job

    def _next_retest(self, slot: Slot) -> Job | None:
        for asked in self.retests.queued():
            row = self.state.get(SeriesKey.parse(asked.series))
            if row is None or asked.directory is None or str(row.key) in self.jobs:
                continue  # its series is being tested: the retest comes after
            self.retests.move(asked.id, RetestState.RUNNING)
            done = [k for k in self.settings.kernels if reply.finished_run(asked.directory / k)]
            remaining = [k for k in self.settings.kernels if k not in done]
            return Job(row, asked.directory, remaining, slot, self.clock.monotonic(), retest=asked)
        return None

    def advance(self) -> None:
        """Start each job's next kernel; a job with none left gets its reply."""
        for key, job in list(self.jobs.items()):
            if self.clock.monotonic() - job.began > self.settings.deadline:
                self._expire(job)
                continue
            if job.child is not None:
                code = job.child.poll()
                if code is None:
                    continue
                if job.child.lost():
                    self._requeue(job)
                    continue
                job.slot.reached(True, self.clock.time())
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
        job.expire()
        self.log(f"{job.name}: stopped, over the deadline of {reply.span(self.settings.deadline)}")
        del self.jobs[job.name]
        self._finish(job)

    def _requeue(self, job: Job) -> None:
        """The job's host could not be reached: no verdict; the series waits for a slot."""
        delay = job.slot.reached(False, self.clock.time())
        log = job.directory / str(job.kernel) / "series.log"
        self.log(
            f"{job.name}: {job.slot.name} could not be reached (see {log}); "
            f"queued again, that host is tried again in {delay:g}s"
        )
        del self.jobs[job.name]
        if job.retest is not None:
            self.retests.move(job.retest.id, RetestState.QUEUED)
            return
        self.state.move(job.row.key, QUEUED, note=f"{job.slot.name} could not be reached")

    def _launch(self, job: Job, kernel: str) -> None:
        out = job.directory / kernel
        out.mkdir(parents=True, exist_ok=True)
        command = job.command(
            kernel, self.settings.inbox, self.settings.tests, self.settings.sender
        )
        job.child = job.slot.start(command.argv(), out)
        job.kernel = kernel

    def _finish(self, job: Job) -> None:
        """Compose the job's reply from every kernel's results; queue it for sending."""
        message = answer(job, self.answering, self.intake.stored)
        if job.retest is not None:
            self.retests.move(job.retest.id, RetestState.DONE)
        elif message is None:
            self.state.move(job.row.key, DONE, note="no message to answer")
        if message is None:
            return
        path = reply.save(message, job.directory)
        self.delivery.queue(str(job.row.key), path, "retest" if job.retest else "series")
        if job.retest is None:
            self.state.move(job.row.key, DONE)

    # -- stopping
    def stop_all(self) -> None:
        """Stop every running child (their series stay ``running``: resumed next start)."""
        for job in self.jobs.values():
            job.stop()
        self.jobs.clear()
