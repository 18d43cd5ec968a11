"""The bot's loop driven in-process: a fake clock (no sleeping) and fake slots.

:class:`harness.mail.watch.Watcher` takes its clock and its slot factory, so
hours of the bot's life (``--wait-missing``, the deadline, a refused reply's
backoff) run here in a second.  Mail is stored as a poll would store it; a
fake slot "runs" a series at once and writes the results directory a
``kharness series`` child writes (the typed records of harness/results/), so
the replies are composed from it as from a real run.  The replies that are
sent go to a real SMTP server (aiosmtpd, tests/support/mailinglist.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.commands import cli
from harness.errors import UserError
from harness.hosts import Host
from harness.mail import grouping, watch
from harness.mail.message import parse
from harness.mail.rows import SeriesState
from harness.mail.slots import Slot, make_slots
from harness.mail.smtp import RetryPolicy, SmtpRelay
from harness.outcome import Outcome
from harness.results import layout
from harness.results.series_record import SeriesOrigin, SeriesRecord, StepRecord
from tests.support.mailinglist import SmtpSink, kernels_yaml
from tests.unit.fake_kbuild import make_tree

KERNEL = "fake"


@dataclass
class FakeClock:
    """Time moves only when the test (or the loop's sleep) says so."""

    wall: float = field(default_factory=time.time)
    mono: float = 1000.0
    slept: float = 0.0

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


@dataclass
class FakeChild:
    """A child that ended at once (``hangs``: runs until stopped)."""

    hangs: bool
    stopped: bool = False

    def poll(self) -> int | None:
        return None if self.hangs and not self.stopped else 0

    def collect(self) -> None:
        """Its results are written already."""

    def lost(self) -> bool:
        return False

    def stop(self) -> None:
        self.stopped = True


@dataclass
class FakeSlot:
    """Records each start and writes the finished run a ``kharness series`` child writes."""

    clock: FakeClock
    name: str
    hang: bool = False  # its children run until stopped (no results)
    started: list[list[str]] = field(default_factory=list)
    children: list[FakeChild] = field(default_factory=list)

    def ready(self, now: float) -> bool:
        return True

    def reached(self, ok: bool, now: float) -> float:
        return 0.0

    def start(self, argv: list[str], out: Path) -> FakeChild:
        self.started.append(argv)
        child = FakeChild(hangs=self.hang)
        self.children.append(child)
        if not self.hang:
            run = out / layout.run_name(pid=4242, when=self.clock.time())
            run.mkdir(parents=True)
            target = argv[argv.index("--series") + 1].strip("<>")
            origin = SeriesOrigin(target, "a series", patches=("0001.patch",))
            (run / layout.SERIES_ORIGIN_JSON).write_text(json.dumps(origin.to_json()))
            step = StepRecord(1, "1/1", outcomes=(("selftest", Outcome.PASS),))
            record = SeriesRecord(tests=("selftest",), steps=(step,))
            (run / layout.SERIES_TXT).write_text("kharness series: no regression\n")
            (run / layout.SERIES_JSON).write_text(json.dumps(record.to_json()))  # the last
        return child


@dataclass
class Bot:
    watcher: watch.Watcher
    clock: FakeClock
    slot: FakeSlot
    lines: list[str]

    def mail(self, *raws: bytes) -> None:
        """Store messages as a poll stores them."""
        mails = [parse(r) for r in raws]
        kept = [(m, str(grouping.series_key(m))) for m in mails]
        self.watcher.state.take(self.watcher.settings.inbox, "{}", kept, [])

    def turns(self, count: int) -> None:
        """``count`` turns, a second of the fake clock apart (no poll: mail is stored)."""
        for _ in range(count):
            self.watcher.intake.next_poll = float("inf")
            self.watcher.turn()
            self.clock.sleep(1.0)

    def state(self, raw: bytes) -> SeriesState:
        row = self.watcher.state.get(grouping.series_key(parse(raw)))
        assert row is not None
        return row.state

    def replies(self) -> list[str]:
        return sorted(p.read_text() for p in self.watcher.settings.home.rglob(layout.REPLY_EML))


def _patch(root: str, number: int, total: int, version: int = 1, who: str = "one") -> bytes:
    """Patch ``number`` of ``total`` of a made-up series threaded to its first patch."""
    mid = root if number == 1 else f"{root}-{number}"
    thread = "" if number == 1 else f"In-Reply-To: <{root}>\nReferences: <{root}>\n"
    tag = "PATCH" if version == 1 else f"PATCH v{version}"
    return (
        f"From: Dev {who} <{who}@x.org>\nTo: list@x.org\n"
        f"Subject: [{tag} {number}/{total}] mm: change {who}\n"
        f"Message-ID: <{mid}>\n{thread}\nmm: a change\n---\n"
        "diff --git a/mm/memory.c b/mm/memory.c\n--- a/mm/memory.c\n+++ b/mm/memory.c\n"
        "@@ -1 +1 @@\n-a\n+b\n"
    ).encode()


@pytest.fixture
def make_bot(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    made: list[Bot] = []

    def make(hang: bool = False, smtp: SmtpRelay | None = None, **settings: object) -> Bot:
        tree = tmp_path / "linux"
        if not tree.is_dir():
            make_tree(tree)
        clock = FakeClock()
        slot = FakeSlot(clock, "fake-0", hang=hang)

        def slots(
            jobs: int, hosts: tuple[Host, ...], kernels: Path, owner: str, retry: float
        ) -> list[Slot]:
            assert jobs == 1 and hosts == () and retry == 5.0
            return [slot]

        config = watch.Settings(
            inbox=str(tmp_path / "unused-inbox"),
            kernels=(KERNEL,),
            kernels_file=kernels_yaml(tmp_path, tree),
            home=tmp_path / f"watch-{len(made)}",
            test_all=True,
            smtp=smtp,
            sender="kharness <bot@ci.example.org>",
            **settings,  # type: ignore[arg-type]
        )
        lines: list[str] = []
        bot = Bot(watch.Watcher(config, lines.append, clock=clock, slots=slots), clock, slot, lines)
        made.append(bot)
        return bot

    yield make
    for bot in made:
        bot.watcher.stop_all()
        bot.watcher.state.close()
        bot.watcher.lock.release()


def test_a_complete_series_is_queued_and_run_once(make_bot) -> None:  # type: ignore[no-untyped-def]
    bot = make_bot()
    first, second = _patch("a@x.org", 1, 2), _patch("a@x.org", 2, 2)
    bot.mail(first, second)
    bot.turns(20)
    assert len(bot.slot.started) == 1, bot.slot.started
    (argv,) = bot.slot.started
    assert argv[argv.index("--series") + 1] == "<a@x.org>"
    assert "--allow-missing" not in argv
    assert bot.state(first) is SeriesState.DONE
    (text,) = bot.replies()
    assert "In-Reply-To: <a@x.org>" in text and "fake: no regression" in text, text
    assert "tests: selftest" in text, "the reply is composed from the run the slot wrote"
    assert bot.clock.slept == 20.0, "the loop's only waits are the fake clock's"


def test_an_incomplete_series_waits_for_wait_missing_then_runs_with_allow_missing(
    make_bot,  # type: ignore[no-untyped-def]
) -> None:
    bot = make_bot(wait_missing=1800.0)
    first, third = _patch("b@x.org", 1, 3), _patch("b@x.org", 3, 3)
    bot.mail(first, third)
    bot.turns(5)
    assert bot.state(first) is SeriesState.WAITING and bot.slot.started == []
    bot.clock.advance(1800.0 - 10)  # not yet: 5 s went in the turns, 5 s are left
    bot.turns(3)
    assert bot.state(first) is SeriesState.WAITING and bot.slot.started == []
    bot.clock.advance(5.0)
    bot.turns(5)
    (argv,) = bot.slot.started
    assert "--allow-missing" in argv
    assert bot.state(first) is SeriesState.DONE
    (text,) = bot.replies()
    assert "missing patch(es) 2 never reached the list" in text, text


def test_a_newer_version_stops_the_older_and_is_tested_instead(
    make_bot,  # type: ignore[no-untyped-def]
) -> None:
    bot = make_bot(hang=True)
    old = _patch("c@x.org", 1, 1)
    bot.mail(old)
    bot.turns(3)
    assert bot.state(old) is SeriesState.RUNNING and len(bot.slot.children) == 1
    new = _patch("c2@x.org", 1, 1, version=2)
    bot.mail(new)
    bot.turns(3)
    assert bot.slot.children[0].stopped, "the older version's child is stopped"
    assert bot.state(old) is SeriesState.SUPERSEDED
    assert bot.state(new) is SeriesState.RUNNING
    assert [a[a.index("--series") + 1] for a in bot.slot.started] == ["<c@x.org>", "<c2@x.org>"]
    assert not bot.slot.children[1].stopped


def test_the_deadline_stops_a_job_when_the_clock_passes_it(
    make_bot,  # type: ignore[no-untyped-def]
) -> None:
    bot = make_bot(hang=True, deadline=7200.0)
    patch = _patch("d@x.org", 1, 1)
    bot.mail(patch)
    bot.turns(3)
    bot.clock.advance(7200.0 - 10)
    bot.turns(3)
    assert bot.state(patch) is SeriesState.RUNNING and not bot.slot.children[0].stopped
    bot.clock.advance(10.0)
    bot.turns(2)
    assert bot.slot.children[0].stopped
    assert bot.state(patch) is SeriesState.DONE
    assert any("stopped, over the deadline of 2 h" in line for line in bot.lines), bot.lines
    (text,) = bot.replies()
    assert "testing timed out" in text and "deadline of 2 h" in text, text


def test_a_refused_reply_is_sent_again_after_the_backoff(
    make_bot,  # type: ignore[no-untyped-def]
) -> None:
    with SmtpSink() as sink:
        host, port = sink.address.split(":")
        bot = make_bot(smtp=SmtpRelay(host, int(port)), retry=RetryPolicy(first=300.0))
        sink.refuse(1)
        bot.mail(_patch("e@x.org", 1, 1))
        bot.turns(5)
        assert sink.keeper.refused == 1 and sink.messages == []
        bot.turns(290)  # the backoff is 300 s on the fake clock: not yet
        assert sink.keeper.refused == 1 and sink.messages == []
        bot.clock.advance(10.0)
        bot.turns(1)
        (sent,) = sink.messages
        assert sent["In-Reply-To"] == "<e@x.org>"
        assert any("next try in 300s" in line for line in bot.lines), bot.lines


def _pauses(bot: Bot, end_after: int = 0) -> list[tuple[float, bool]]:
    """The loop's sleeps from now on, each with whether a child was running; a hanging
    child ends after ``end_after`` sleeps of its own."""
    pauses: list[tuple[float, bool]] = []

    def sleep(seconds: float) -> None:
        pauses.append((seconds, bool(bot.watcher.jobs)))
        if sum(busy for _s, busy in pauses) == end_after and bot.slot.children:
            bot.slot.children[0].hangs = False
        bot.clock.advance(seconds)

    bot.clock.sleep = sleep  # type: ignore[method-assign]
    bot.watcher.intake.next_poll = float("inf")  # the mail is stored: nothing to poll
    return pauses


def test_a_running_child_is_looked_at_often_so_its_end_is_seen_soon(
    make_bot,  # type: ignore[no-untyped-def]
) -> None:
    bot = make_bot(hang=True, once=True)
    bot.mail(_patch("f@x.org", 1, 1))
    pauses = _pauses(bot, end_after=5)
    assert bot.watcher.run() == 0
    assert pauses == [(watch.BUSY_TICK, True)] * 5, pauses
    (text,) = bot.replies()
    assert "In-Reply-To: <f@x.org>" in text


@pytest.mark.parametrize(("interval", "pause"), [(30.0, watch.TICK), (0.25, 0.25)])
def test_an_idle_loop_turns_every_second_or_at_a_shorter_interval(
    make_bot,  # type: ignore[no-untyped-def]
    interval: float,
    pause: float,
) -> None:
    bot = make_bot(once=True, interval=interval, wait_missing=3.0)
    bot.mail(_patch("g@x.org", 1, 2))  # patch 2 never comes: waiting, no child
    pauses = _pauses(bot)
    assert bot.watcher.run() == 0
    idle = [p for p in pauses if not p[1]]
    assert idle and set(idle) == {(pause, False)}, pauses
    assert len(idle) == round(3.0 / pause), "waited --wait-missing in turns of that pause"


def test_an_unreachable_host_is_tried_again_after_the_given_delay(tmp_path: Path) -> None:
    """``--unreachable-retry``: the first delay of a host's back-off, doubling to 10 min."""
    host = Host(ssh="deadhost", path="/srv/kharness", python="python3", workers=2)
    slots = make_slots(1, (host,), tmp_path / "kernels.yaml", "bot", 0.5)
    assert len(slots) == 2
    delays = [slots[0].reached(False, 100.0) for _ in range(13)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0] and delays[-1] == 600.0, delays
    assert not slots[0].ready(100.0) and slots[0].ready(700.0) and slots[1].ready(100.0)
    assert slots[0].reached(True, 100.0) == 0.0 and slots[0].reached(False, 100.0) == 0.5


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_retry_delay_that_is_not_a_positive_number_is_refused(tmp_path: Path, value: str) -> None:
    tree = make_tree(tmp_path / "linux")
    argv = ["watch", "--kernels-file", str(kernels_yaml(tmp_path, tree)), "--kernel", KERNEL]
    argv += ["--inbox", "http://127.0.0.1:9/x", "--results-dir", str(tmp_path / "r")]
    for option in ("--unreachable-retry", "--smtp-retry"):
        args = cli.parse([*argv, option, value])
        with pytest.raises(UserError, match=rf"^{option} {float(value)}: give a delay > 0 sec"):
            args.func(args)
    assert not (tmp_path / "r").exists(), "refused before the bot starts"
