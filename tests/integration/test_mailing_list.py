"""The list bot end to end: real series on a real public-inbox, real builds, boots and replies.

The series are ``git format-patch --thread`` of the self-test kernel tree's
history (tests/integration/selftest_history.py), posted to a public-inbox
served on 127.0.0.1; the bot (``kharness watch``) tests them on the
self-test kernel's recipe (the same build slot: every step is an
incremental build) and answers through a real SMTP server:

* ``[PATCH v1]`` putting the UFFDIO_API bug in, then its v2 ``[PATCH v2
  1/2]`` whose 2/2 never arrives: v1 is superseded and never tested; after
  ``--wait-missing`` v2 is tested as it is, and the reply (in its thread)
  names the patch that broke the reproducer, confirmed on a real kernel
  before it is blamed, and the patch that never came;
* the bot is killed with SIGKILL while it tests v2: its guests go with it,
  and the next start resumes v2 (still missing its 2/2) without testing
  anything twice;
* on a host over ssh (namespace hosts, tests/integration/nshosts.py): kill
  -9 and a clean stop leave nothing there, and a harmless series is tested
  patch by patch on its ``base-commit:`` and answered in its cover's thread
  with a clean verdict.

The flows without a boot (misfits, SMTP refusals, the inbox going down,
b4-check) are in tests/plumbing/test_mailing_list.py.

Where the time goes (2-core TCG machine, warm ccache): each step of a series
is an incremental build in the bot's sandboxed slot (10-20 s: two config runs
and make), then a boot and a saved guest (3-4 s); the guest runs take well
under a second.  So these tests count builds: every series here has the
fewest steps its assertions need, and the bot is stopped as soon as what it
stops is running.  Each test prints its phases (``-s``).
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.mail.message import parse
from tests.integration.helpers import REPO, harness_qemus
from tests.integration.nshosts import NsHost, namespace_hosts
from tests.integration.selftest_history import BISECT_TEST, History
from tests.support.mailinglist import PublicInbox, SmtpSink, format_series

pytestmark = [pytest.mark.build, pytest.mark.boot]


def host_qemus(host: NsHost) -> set[int]:
    """This session's QEMUs running inside ``host``'s namespace."""
    return harness_qemus() & set(host.pids())


def _building(host: NsHost) -> bool:
    """A build runs on ``host`` (a make, in bubblewrap): the job is in its longest phase."""
    return bool({"make", "bwrap"} & set(host.strays().values()))


#: the first guest waits for a cold (sandboxed, ccache-less) build on a fresh machine: 15 min
#: was too short for one loaded 2-core machine (measured: a baseline run waited in vain)
COLD_BUILD = 2400


def _rows(db_path: Path) -> dict[str, str]:
    with sqlite3.connect(db_path) as db:
        return dict(db.execute("SELECT key, state FROM series").fetchall())


def _wait_for(
    what: str,
    check: Callable[[], object],
    seconds: float,
    proc: subprocess.Popen[bytes] | None = None,
    sink: SmtpSink | None = None,
) -> None:
    """Polls ``check``; fails at once when the bot exits or, with ``sink``, answers first (its
    series ended without what is awaited: a broken boot would otherwise wait ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the bot exited ({proc.returncode}) before {what}")
        if sink is not None and sink.messages:
            body = sink.messages[0].get_content()[-3000:]
            raise AssertionError(f"the bot answered before {what}:\n{body}")
        time.sleep(0.2)
    raise AssertionError(f"waited {seconds:.0f}s for {what}")


class _Phases:
    """Prints how long each phase of a test took (seen with ``-s``): where to cut next."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()

    def __call__(self, what: str) -> None:
        now = time.monotonic()
        print(f"[phase] {what}: {now - self.last:.1f}s (at {now - self.started:.1f}s)")
        self.last = now


def test_bot_tests_each_series_once_and_answers_in_its_thread(
    history: History,
    tmp_path: Path,
) -> None:
    repo = history.repo
    inbox = PublicInbox(tmp_path / "list")
    inbox.start()
    results = tmp_path / "results"
    db = results / "watch" / "watch.sqlite3"
    kernels = history.kernels_file(tmp_path)
    phase = _Phases()
    # history: base, two harmless commits, the bug, one harmless commit.  One series tested to
    # the end, the fewest builds (base, patch 1) that show a regression confirmed and blamed;
    # the clean verdict and a cover letter's thread are the host test's (its series has them)
    v1 = format_series(repo, f"{history.bug}~1..{history.bug}", tmp_path / "v1", 1, cover=False)
    v2 = format_series(repo, f"{history.bug}~1..{history.head}", tmp_path / "v2", 2, cover=False)
    assert len(v1) == 1 and len(v2) == 2
    argv = [sys.executable, "-m", "harness", "--kernels-file", str(kernels), "watch"]
    argv += ["--inbox", inbox.url, "--kernel", "selftest", "--test", BISECT_TEST]
    # --test-all-series: the verdicts are this test's subject (relevance has plumbing tests);
    # --wait-missing: v2's 2/2 is waited for that long before anything runs (1 s: one turn)
    argv += ["--interval", "1", "--wait-missing", "1", "--from-start", "--test-all-series"]
    argv += ["--results-dir", str(results), "--reply-from", "kharness <bot@ci.example.org>"]
    try:
        with SmtpSink() as sink:
            argv += ["--smtp", sink.address]
            inbox.deliver(v1[0])
            inbox.deliver(v2[0])  # its 2/2 never comes
            v2_posted = time.time()
            phase("series posted")
            log = (tmp_path / "bot-1.log").open("w")
            bot = subprocess.Popen(argv, stdout=log, stderr=log, cwd=REPO)
            try:
                _wait_for(
                    "v2 under test with a guest up",
                    lambda: db.exists() and "running" in _rows(db).values() and harness_qemus(),
                    COLD_BUILD,
                    bot,
                    sink,
                )
            finally:
                phase("first bot: v2's base built, its guest booting")
                bot.send_signal(signal.SIGKILL)
                bot.wait()
                log.close()
            _wait_for("the killed bot's guests to go", lambda: not harness_qemus(), 60)
            phase("killed (-9): its guests gone")
            first = (tmp_path / "bot-1.log").read_text()
            assert "patch(es) 2 never came; testing what arrived" in first, first[-2000:]
            rows = _rows(db)
            assert sorted(rows.values()) == ["running", "superseded"], rows
            started = time.monotonic()
            again = subprocess.run(
                [*argv, "--once"], capture_output=True, text=True, timeout=1800, cwd=REPO
            )
            phase("second start (--once): v2 tested and answered")
            print(f"second start ran {time.monotonic() - started:.0f}s\n{again.stderr[-4000:]}")
            assert again.returncode == 0, again.stderr[-3000:]
            assert "resuming" in again.stderr
            rows = _rows(db)
            assert sorted(rows.values()) == ["done", "superseded"], rows
            (broken,) = sink.messages
            (received,) = sink.keeper.received
    finally:
        inbox.stop()
    first_patch = parse(v2[0])
    assert broken["In-Reply-To"] == f"<{first_patch.message_id}>"
    assert broken["References"] == f"<{first_patch.message_id}>"
    assert broken["Subject"] == f"Re: {first_patch.subject}"
    text = broken.get_content()
    print(text)
    assert "selftest: 1 regression(s) introduced by the series" in text
    assert f"{BISECT_TEST} after patch 1 ([1/2] SELFTEST BUG" in text
    # confirmed before blamed: 3 more runs on patch 1 and on the base, each a restore of the
    # step's saved guest (no build, no cold boot), side by side
    table = text[text.index(f"  {BISECT_TEST}   ") :].splitlines()
    assert "base (step 0)" in table[0] and "patch 1 ([1/2] SELFTEST BUG" in table[0], table
    assert table[1].split() == ["pass", "3/3", "0/3"], table
    assert table[2].split()[-2:] == ["0/3", "3/3"] and table[3].strip() == "=> regression"
    assert "fail: fail" not in text
    assert "Patch(es) 2 of this series never reached the list" in text
    assert "the series names no base-commit" in text
    runs = [
        p.parent
        for p in (results / "watch" / "series").glob("*/selftest/*/series.json")
        if not p.parent.is_symlink()
    ]
    assert len(runs) == 1, f"v2 tested once to the end, across the kill: {runs}"
    print(f"posted to reply: {received - v2_posted:.0f}s (with the kill and restart)")


def test_bot_tests_on_a_host_over_ssh_and_stops_there_cleanly(
    history: History, tmp_path: Path, session_tag: str, kernel_cache: Path
) -> None:
    """``--hosts``: the series runs on a namespace host over ssh.  ``kill -9`` of the bot with
    the host's guest up stops everything there (SIGHUP) and the next start sweeps its scratch;
    stopping the bot while its child builds there leaves nothing there (no process, no scratch
    directory); the next start tests it and answers.

    The clean stop comes mid-build, not with a guest up: the guest's stop on SIGHUP is the kill
    -9's check, a build is where a job spends most of its time (and has the most processes to
    leave behind), and waiting for a second guest would cost a whole base build."""
    phase = _Phases()
    with namespace_hosts(tmp_path, session_tag, kernel_cache, count=1) as (host,):
        inbox = PublicInbox(tmp_path / "list")
        inbox.start("0.0.0.0")  # the host reaches this machine by its veth address
        url = f"http://{host.outer}:{inbox.port}/test"
        hosts = tmp_path / "hosts.yaml"
        hosts.write_text(
            f"hosts:\n  - ssh: {host.alias}\n    path: {REPO}\n    python: {sys.executable}\n"
            f"    ssh_config: {tmp_path / 'ssh_config'}\n"
        )
        results = tmp_path / "results"
        span = f"{history.base}..{history.bug}~2"
        series = format_series(
            history.repo, span, tmp_path / "v1", 1, base=history.base, title="mm: on a host"
        )
        kernels = history.kernels_file(tmp_path)
        argv = [sys.executable, "-m", "harness", "--kernels-file", str(kernels)]
        argv += ["watch", "--inbox", url, "--kernel", "selftest", "--test", BISECT_TEST]
        argv += ["--interval", "1", "--from-start", "--hosts", str(hosts), "--test-all-series"]
        argv += ["--results-dir", str(results), "--reply-from", "kharness <bot@ci.example.org>"]
        scratch = lambda: list(Path("/tmp").glob("kharness-watch-*"))  # noqa: E731
        try:
            with SmtpSink() as sink:
                argv += ["--smtp", sink.address]
                for raw in series:
                    inbox.deliver(raw)
                _wait_for("the host idle (its ssh checks ended)", lambda: not host.strays(), 10)
                phase("host made, series posted")
                # kill -9 with the host's guest up: the closed connection stops the child
                # there (SIGHUP); its scratch directory stays until the next start sweeps it
                with (tmp_path / "bot-1.log").open("w") as log:
                    bot = subprocess.Popen(argv, stdout=log, stderr=log, cwd=REPO)
                    try:
                        guest_up = lambda: host_qemus(host)  # noqa: E731
                        _wait_for("a guest up on the host", guest_up, COLD_BUILD, bot, sink)
                    finally:
                        phase("first bot: base built on the host, its guest booting")
                        bot.kill()
                        bot.wait(120)
                _wait_for("the killed bot's guest on the host to go",
                          lambda: not host_qemus(host), 60)  # fmt: skip
                phase("killed (-9): the host's guest gone")
                _wait_for("the killed bot's child on the host to go",
                          lambda: not host.strays(), 60)  # fmt: skip
                orphans = scratch()
                assert len(orphans) == 1, orphans
                # a new start sweeps it; then stopped cleanly while its own child builds
                with (tmp_path / "bot-2.log").open("w") as log:
                    bot = subprocess.Popen(argv, stdout=log, stderr=log, cwd=REPO)
                    try:
                        building = lambda: _building(host)  # noqa: E731
                        _wait_for("the child building on the host", building, COLD_BUILD, bot, sink)
                        assert not orphans[0].exists(), "the next start sweeps what kill -9 left"
                        print(f"stopping the bot with these on the host: {host.strays()}")
                    finally:
                        phase("second bot: its child building on the host")
                        bot.terminate()
                        bot.wait(120)
                _wait_for("the host's processes and scratch to go",
                          lambda: not host.strays() and not scratch(), 60)  # fmt: skip
                phase("stopped (SIGTERM): nothing left on the host")
                first = (tmp_path / "bot-1.log").read_text()
                assert "on kh0#0" in first, first[-2000:]
                again = subprocess.run(
                    [*argv, "--once"], capture_output=True, text=True, timeout=1800, cwd=REPO
                )
                assert again.returncode == 0, again.stderr[-3000:]
                phase("third start (--once): tested on the host and answered")
                (answer,) = sink.messages
        finally:
            inbox.stop()
    assert not scratch(), "the host's scratch directory must go once its results came back"
    cover = parse(series[0])
    assert answer["In-Reply-To"] == f"<{cover.message_id}>"
    assert answer["References"] == f"<{cover.message_id}>"
    assert answer["Subject"] == "Re: [PATCH v1 0/1] mm: on a host"
    text = answer.get_content()
    assert "selftest: no regressions introduced by the series" in text, text
    assert f"{history.base[:12]} (the series' base-commit)" in text
    assert f"{BISECT_TEST}: not broken" in text
    steps = [line.split()[:3] for line in text.splitlines()]
    assert ["0", "pass", "base"] in steps and ["1", "pass", "[1/1]"] in steps, text
    (run,) = [
        p.parent
        for p in (results / "watch" / "series").glob("*/selftest/*/series.json")
        if not p.parent.is_symlink()
    ]
    logs = (run.parent / "series.log").read_text(errors="replace")
    assert f"on {host.alias}:" in logs, "the series ran on the host"
    assert (run / "summary.json").is_file() and list(run.glob("*/boot-1/console.log"))
