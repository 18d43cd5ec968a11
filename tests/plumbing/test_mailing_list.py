"""The list bot's plumbing on a real public-inbox and a real SMTP server, with no guest booted.

The kernel here is a tiny fake tree (tests/unit/fake_kbuild.py) in a git
repository: the series these tests post do not apply to it, so the harness
checks them out, finds the misfit before building, and answers.  That is
enough to exercise everything around the tests: the inbox read through its
git epochs, grouping, the bot's database across restarts, replies threaded
and sent through SMTP (refused, then retried), its own replies ignored,
the inbox going away and coming back, and ``kharness b4-check`` read by
b4's own parser.  The flows that boot kernels are in
tests/integration/test_mailing_list.py.
"""

from __future__ import annotations

import email
import email.policy
import http.server
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.errors import InboxUnavailable
from harness.machine.ports import free_port
from harness.mail.inbox import Backoff, Cursor, InboxReader
from harness.mail.message import BOT_HEADER, parse
from tests.support.mailinglist import (
    ADDRESS,
    PublicInbox,
    SmtpSink,
    format_series,
    kernels_yaml,
    misfit_series,
    watch_argv,
)
from tests.support.paths import REPO


def _other_side_patch(tree: Path, out: Path) -> list[bytes]:
    return misfit_series(tree, out)


_kernels, _watch = kernels_yaml, watch_argv


def _db(results: Path) -> sqlite3.Connection:
    return sqlite3.connect(results / "watch" / "watch.sqlite3")


def test_inbox_reader_reads_every_message_once_through_the_git_epochs(
    inbox: PublicInbox, tmp_path: Path
) -> None:
    reader = InboxReader(inbox.url, tmp_path / "mirror")
    first = [b"From: a@x.org\nSubject: one\nMessage-ID: <1@x>\n\nbody\n"]
    inbox.deliver(first[0])
    assert reader.poll(None).messages == ()  # first start: from now on
    everything = reader.poll(None, from_start=True)
    assert [parse(m).message_id for m in everything.messages] == ["1@x"]
    latin = b"From: \xe9 <b@x.org>\nSubject: [PATCH] caf\xe9\nMessage-ID: <2@x>\n\n\xff\n"
    inbox.deliver(latin)
    inbox.deliver(b"From: c@x.org\nSubject: three\nMessage-ID: <3@x>\n\nbody\n")
    saved = Cursor.from_json(everything.cursor.to_json())
    after = reader.poll(saved)
    assert [parse(m).message_id for m in after.messages] == ["2@x", "3@x"]
    assert b"\xff" in after.messages[0], "bytes pass through as they were sent"
    assert reader.poll(after.cursor).messages == ()
    local = InboxReader(str(inbox.inboxdir), tmp_path / "unused").poll(None, from_start=True)
    assert len(local.messages) == 3
    inbox.stop()
    with pytest.raises(InboxUnavailable, match="is it up"):
        reader.poll(after.cursor)
    inbox.deliver(b"From: d@x.org\nSubject: four\nMessage-ID: <4@x>\n\nbody\n")
    inbox.start()
    assert [parse(m).message_id for m in reader.poll(after.cursor).messages] == ["4@x"]


def test_a_server_answering_garbage_is_unavailable_not_a_traceback(tmp_path: Path) -> None:
    class Garbage(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>\x00\x01 not an inbox</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/list"
        with pytest.raises(InboxUnavailable, match=r"manifest\.js\.gz"):
            InboxReader(url, tmp_path / "m").poll(None)
    finally:
        server.shutdown()
        server.server_close()
    backoff = Backoff(first=5, cap=40)
    assert [backoff.next() for _ in range(5)] == [5, 10, 20, 40, 40]
    backoff.reset()
    assert backoff.next() == 5


def test_bot_answers_a_series_that_does_not_apply_once_and_ignores_the_rest(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    """Noise ignored; the misfit answered in its thread; SMTP refusal retried; no second test."""
    inbox.deliver(b"From: a@x.org\nSubject: hello list\nMessage-ID: <hi@x>\n\njust talk\n")
    inbox.deliver(b"From: \xff <b@x.org>\nSubject: [PATCH] \xe9\n\n\xfe\xff no diff, no id\n")
    inbox.deliver(
        f"From: bot@ci.example.org\nSubject: [PATCH] looks like one\n{BOT_HEADER}: series\n"
        "Message-ID: <own@x>\n\n---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n"
        "@@ -1 +1 @@\n-a\n+b\n".encode()
    )
    (patch,) = _other_side_patch(fake_tree, tmp_path / "series")
    inbox.deliver(patch)
    kernels = _kernels(tmp_path, fake_tree)
    results = tmp_path / "results"
    with SmtpSink() as sink:
        sink.refuse(1)
        argv = _watch(kernels, inbox, results, "--smtp", sink.address, "--from-start", "--once")
        argv += ["--smtp-retry", "0.25"]
        first = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO)
        assert first.returncode == 0, first.stderr[-3000:]
        assert "not sent (kept; next try in 0.25s): 451 4.3.0 try again later" in first.stderr
        (answer,) = sink.messages
        anchor = parse(patch)
        assert answer["In-Reply-To"] == f"<{anchor.message_id}>"
        assert answer["References"] == f"<{anchor.message_id}>"
        assert answer["To"] == anchor.sender and ADDRESS in str(answer["Cc"])
        assert answer["Subject"] == f"Re: {anchor.subject}"
        body = answer.get_content()
        assert "Patch 1 does not apply on that base, so nothing was built" in body, body
        assert "mm: fault returns six" in body and "(the kernel entry's base)" in body
        assert "Hunk #1 FAILED" in body or "does not apply" in body
        with _db(results) as db:
            states = dict(db.execute("SELECT key, state FROM series").fetchall())
            ignored = dict(db.execute("SELECT message_id, reason FROM ignored").fetchall())
            attempts = db.execute("SELECT attempts, sent_at FROM replies").fetchall()
        assert list(states.values()) == ["done"]
        assert sorted(ignored.values()) == [
            "not a patch",
            "tagged PATCH but holds no diff",
            "the bot's own reply",
        ]
        assert attempts[0][0] == 1 and attempts[0][1] is not None
        # again: nothing new is tested or answered; then the bot's reply comes back on the list
        again = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO)
        assert again.returncode == 0 and "testing" not in again.stderr, again.stderr[-2000:]
        inbox.deliver(answer.as_bytes())
        third = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO)
        assert third.returncode == 0 and len(sink.messages) == 1, third.stderr[-2000:]
        with _db(results) as db:
            assert db.execute("SELECT count(*) FROM ignored").fetchone()[0] == 4
            assert db.execute("SELECT count(*) FROM series").fetchone()[0] == 1
    run_dirs = [
        p
        for p in (results / "watch" / "series").glob("*/fake/*/series.json")
        if not p.parent.is_symlink()  # latest -> the run
    ]
    assert len(run_dirs) == 1, "tested once, across three starts"
    series = json.loads(run_dirs[0].read_text())
    assert series["not_applied"]["index"] == 1 and series["steps"] == []


def test_bot_backs_off_while_the_inbox_is_down_and_goes_on_when_it_is_back(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    """The inbox down: tried again after 0.5 s, 1 s, 2 s (``--unreachable-retry 0.5``; the
    turns every 0.2 s would show a busy loop); back up: the next try reads it."""
    inbox.stop()
    kernels = _kernels(tmp_path, fake_tree)
    results = tmp_path / "results"
    bot = subprocess.Popen(
        _watch(kernels, inbox, results, "--from-start", "--unreachable-retry", "0.5", interval=0.2),
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    lines = _Lines(bot)
    try:
        _until("three tries", lambda: len(lines.matching(UNAVAILABLE)) >= 3, 60)
        inbox.deliver(b"From: a@x.org\nSubject: hello\nMessage-ID: <back@x>\n\nhi\n")
        inbox.start()
        _until("the message read", lambda: _ignored(results), 60)
    finally:
        bot.terminate()
        bot.wait(timeout=60)
        lines.join()
    err = lines.text()
    tries = lines.matching(UNAVAILABLE)
    assert _ignored(results) == 1, err[-2000:]
    delays = [line.split("next try in ", 1)[1].split("s:", 1)[0] for _when, line in tries]
    assert delays == ["0.5", "1", "2", "4", "8"][: len(delays)], f"not a doubling: {delays}"
    assert 3 <= len(delays) <= 4, f"{len(delays)} tries in about 4 s: a busy loop?\n{err}"
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(tries)]
    assert gaps[0] > 0.5 - 0.15 and gaps[1] > 1.0 - 0.15, f"tried sooner than said: {gaps}"
    assert "Traceback" not in err


UNAVAILABLE = "inbox unavailable, next try in"


class _Lines:
    """A child's stderr read as it comes, each line with the moment it arrived."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.got: list[tuple[float, str]] = []
        assert proc.stderr is not None
        self.thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            self.got.append((time.monotonic(), line))
        stream.close()

    def matching(self, text: str) -> list[tuple[float, str]]:
        """The lines holding ``text``, each with when it came."""
        return [(t, x) for t, x in list(self.got) if text in x]

    def text(self) -> str:
        return "".join(x for _t, x in list(self.got))

    def join(self) -> None:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the bot's stderr never closed"


def _ignored(results: Path) -> int:
    if not (results / "watch" / "watch.sqlite3").exists():
        return 0
    with _db(results) as db:
        return db.execute("SELECT count(*) FROM ignored").fetchone()[0]


SLOW = "61.37"  # seconds the slow tree's configure step sleeps: a unique process to look for


def _sleepers() -> set[int]:
    found = subprocess.run(["pgrep", "-f", f"sleep {SLOW}"], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def _states(results: Path) -> dict[str, str]:
    if not (results / "watch" / "watch.sqlite3").exists():
        return {}
    with _db(results) as db:
        return dict(db.execute("SELECT key, state FROM series").fetchall())


def _until(what: str, check, seconds: float = 120):  # type: ignore[no-untyped-def]
    """``check()`` once it is true (looked at every 0.1 s: a pgrep or a small query)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"waited {seconds:.0f}s for {what}")


def test_a_newer_version_stops_the_one_under_test(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    """v3 posted while v2 is being tested: v2's job is stopped (its processes too), v3 runs."""
    git = ["git", "-C", str(fake_tree), "-c", "user.name=Dev", "-c", "user.email=dev@example.org"]
    makefile = fake_tree / "Makefile"
    makefile.write_text(
        makefile.read_text().replace("olddefconfig:\n", f"olddefconfig:\n> @sleep {SLOW}\n", 1)
    )
    subprocess.run([*git, "commit", "-qam", "a tree whose configure step is slow"], check=True)
    memory = fake_tree / "mm/memory.c"
    versions = {}
    for version, value in ((2, 7), (3, 8)):
        memory.write_text(f"int fault(void) {{ return {value}; }}\n")
        subprocess.run([*git, "commit", "-qam", "mm: fault returns more"], check=True)
        (versions[version],) = format_series(
            fake_tree, "HEAD~1..HEAD", tmp_path / f"v{version}", version, cover=False
        )
        subprocess.run([*git, "reset", "-q", "--hard", "HEAD~1"], check=True)
    assert not _sleepers(), "another run's slow tree is still configuring"
    results = tmp_path / "results"
    inbox.deliver(versions[2])
    bot = subprocess.Popen(
        _watch(_kernels(tmp_path, fake_tree), inbox, results, "--from-start"),
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        first = _until("v2 configuring", _sleepers)
        assert list(_states(results).values()) == ["running"]
        inbox.deliver(versions[3])
        states = _until(
            "v2 superseded and v3 running",
            lambda: (
                (s := _states(results)) and sorted(s.values()) == ["running", "superseded"] and s
            ),
        )
        second = _until("v3 configuring", lambda: _sleepers() - first)
        assert not first & _sleepers(), "v2's build must stop when v3 arrives"
    finally:
        bot.terminate()
        _out, err = bot.communicate(timeout=120)
    v2 = next(k for k, v in states.items() if v == "superseded")
    assert v2.endswith("#v2") and f"{v2}: superseded by" in err, err[-2000:]
    assert not _sleepers() & second, "a stopped bot leaves no build of its own running"
    assert "Traceback" not in err
    with _db(results) as db:
        (note,) = db.execute("SELECT note FROM series WHERE key = ?", (v2,)).fetchone()
    assert "v3 was posted" in note


def test_b4_check_answers_in_b4s_own_protocol(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    """b4's own check runner reads our JSON: the misfit patch fails, a non-patch warns."""
    from b4.review import checks  # b4's reader of check commands

    (patch,) = _other_side_patch(fake_tree, tmp_path / "series")
    inbox.deliver(patch)
    kernels = _kernels(tmp_path, fake_tree)
    argv = [sys.executable, "-m", "harness", "--kernels-file", str(kernels), "b4-check"]
    argv += ["--kernel", "fake", "--inbox", inbox.url, "--results-dir", str(tmp_path / "r")]
    message = email.message_from_bytes(patch, policy=email.policy.default)
    (result,) = checks._run_external_cmd(argv, message, str(REPO))
    assert result["tool"] == "kharness" and result["status"] == "fail", result
    assert result["summary"] == "patch 1 does not apply: mm: fault returns six"
    assert result["url"].startswith("file://") and "does not apply" in result["details"]
    talk = email.message_from_bytes(
        b"Subject: hi\nMessage-ID: <t@x>\n\nhello\n", policy=email.policy.default
    )
    (warned,) = checks._run_external_cmd(argv, talk, str(REPO))
    assert warned["status"] == "warn" and warned["summary"] == "not tested: not a patch"


def test_an_unreachable_host_requeues_the_series_and_is_retried_later(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    """``--hosts`` with a host whose ssh is refused: no reply (no verdict), the series stays
    queued, the host is tried again after a growing delay (``--unreachable-retry 1``: 1 s,
    2 s, then 4 s, after which the test looks again); ``--once`` ends saying so."""
    port = free_port()  # nothing listens there: ssh is refused at once
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host deadhost\n  HostName 127.0.0.1\n  Port {port}\n  ConnectTimeout 5\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
    )
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text(
        f"hosts:\n  - ssh: deadhost\n    path: {REPO}\n    ssh_config: {config}\n"
        f"    python: {sys.executable}\n"
    )
    (patch,) = _other_side_patch(fake_tree, tmp_path / "series")
    inbox.deliver(patch)
    results = tmp_path / "results"
    argv = _watch(
        _kernels(tmp_path, fake_tree), inbox, results, "--from-start", "--unreachable-retry", "1"
    )
    bot = subprocess.Popen(
        [*argv, "--hosts", str(hosts)], stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    lines = _Lines(bot)
    try:
        _until("the host tried 3 times", lambda: len(lines.matching("could not be")) >= 3, 60)
        time.sleep(1)  # the next try is 4 s after the third
    finally:
        bot.terminate()
        bot.wait(timeout=120)
        lines.join()
    err = lines.text()
    tries = err.count("could not be reached")
    assert tries == 3 == _tries(results), f"{tries} tries: a busy loop, or no retry?\n{err}"
    assert "tried again in 1s" in err and "tried again in 2s" in err, err[-2000:]
    assert "tried again in 4s" in err, err[-2000:]
    assert list(_states(results).values()) == ["queued"]
    with _db(results) as db:
        assert db.execute("SELECT count(*) FROM replies").fetchone()[0] == 0, "no verdict, no reply"
    (log,) = (results / "watch" / "series").glob("*/fake/series.log")
    assert "Connection refused" in log.read_text(errors="replace")
    once = subprocess.run(
        [*argv, "--hosts", str(hosts), "--once"], capture_output=True, text=True, timeout=120,
        cwd=REPO,
    )  # fmt: skip
    assert once.returncode == 1, once.stderr[-2000:]
    assert "no host can be reached; 1 series stay queued" in once.stderr
    assert "Traceback" not in err + once.stderr


def _tries(results: Path) -> int:
    logs = list((results / "watch" / "series").glob("*/fake/series.log"))
    return sum(log.read_text(errors="replace").count("kharness watch: on deadhost") for log in logs)


def test_series_by_message_id_uses_the_kernels_own_inbox(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    """No --inbox: the Message-ID is looked up on the entry's ``build: {inbox: URL}``."""
    (patch,) = _other_side_patch(fake_tree, tmp_path / "series")
    inbox.deliver(patch)
    kernels = tmp_path / "kernels.yaml"
    kernels.write_text(
        f"kernels:\n  - name: fake\n    build: {{source: {fake_tree}, inbox: '{inbox.url}'}}\n"
    )
    message_id = parse(patch).message_id
    argv = [sys.executable, "-m", "harness", "--kernels-file", str(kernels), "series"]
    argv += ["--kernel", "fake", "--series", f"<{message_id}>"]
    argv += ["--results-dir", str(tmp_path / "results")]
    env = {k: v for k, v in os.environ.items() if k != "KHARNESS_INBOX"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert done.returncode == 1, done.stderr[-2000:]  # fetched, then found not to apply
    assert f"from {inbox.url}" in done.stdout + done.stderr
    (origin,) = [
        p for p in (tmp_path / "results").glob("*/series-origin.json") if not p.parent.is_symlink()
    ]
    assert json.loads(origin.read_text())["message_id"] == message_id


def _numbered(series: int, number: int, total: int) -> bytes:
    """Patch ``number`` of ``total`` of a made-up series (threaded to its first patch)."""
    root = f"s{series}@x.org"
    mid = root if number == 1 else f"s{series}-{number}@x.org"
    thread = "" if number == 1 else f"In-Reply-To: <{root}>\nReferences: <{root}>\n"
    return (
        f"From: Dev {series % 7} <dev{series % 7}@x.org>\n"
        f"Subject: [PATCH {number}/{total}] t{series}: change {number}\n"
        f"Message-ID: <{mid}>\n{thread}\n---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n"
        "@@ -1 +1 @@\n-a\n+b\n"
    ).encode()


def test_an_idle_turn_reads_no_stored_message_at_5000_patches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn's work follows the new mail: with 5,000 patches stored, a turn with nothing
    new parses no message and reads no message's bytes; one new patch costs its series."""
    from harness.mail import grouping, watch, watch_intake

    settings = watch.Settings(
        inbox=str(tmp_path / "unused-inbox"),
        kernels=("fake",),
        kernels_file=tmp_path / "kernels.yaml",
        home=tmp_path / "watch",
        interval=3600,
        wait_missing=1e9,  # every series lacks its patch 6: they all stay waiting
    )
    watcher = watch.Watcher(settings, log=lambda line: None)
    try:
        mails = [parse(_numbered(s, n, 6)) for s in range(1000) for n in range(1, 6)]
        kept = [(m, str(grouping.series_key(m))) for m in mails]
        assert watcher.state.take(settings.inbox, "{}", kept, []) == 5000
        parsed: list[bytes] = []

        def counted(raw: bytes):  # type: ignore[no-untyped-def]
            parsed.append(raw)
            return parse(raw)

        monkeypatch.setattr(watch_intake, "parse", counted)
        watcher.intake.regroup()
        assert len(parsed) == 5000 and len(set(parsed)) == 5000, "each message parsed once"
        assert len(watcher.state.series(watch.WAITING)) == 1000
        statements: list[str] = []
        watcher.state.db.set_trace_callback(statements.append)
        parsed.clear()
        watcher.intake.next_poll = float("inf")  # no poll due: an idle turn
        watcher.turn()
        assert parsed == [], "an idle turn parses nothing"
        assert not [s for s in statements if "raw" in s], statements
        assert len(statements) < 20, f"{len(statements)} statements for an idle turn"
        statements.clear()
        new = parse(_numbered(7, 6, 6))
        watcher.state.take(settings.inbox, "{}", [(new, str(grouping.series_key(new)))], [])
        watcher.intake.regroup()
        assert len(parsed) == 6, "one new patch: only its series (6 messages) is regrouped"
        row = watcher.state.get(grouping.series_key(new))
        assert row is not None and row.present == (1, 2, 3, 4, 5, 6)
    finally:
        watcher.state.close()
        watcher.lock.release()


def test_a_second_bot_on_the_same_state_refuses_and_names_the_first(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    """One bot per state: the second says who holds it; once the first is killed (-9), its
    lock is gone with it and the next bot starts."""
    kernels = _kernels(tmp_path, fake_tree)
    results = tmp_path / "results"
    lock = results / "watch" / "watch.lock"
    first = subprocess.Popen(
        _watch(kernels, inbox, results), stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        _until(
            "the first bot's lock", lambda: lock.is_file() and str(first.pid) in lock.read_text()
        )
        second = subprocess.run(
            _watch(kernels, inbox, results, "--once"),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        assert second.returncode != 0, second.stderr[-2000:]
        assert f"pid {first.pid} on " in second.stderr and "started at" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.kill()  # -9: no clean-up of its own; the kernel drops its flock
        first.communicate(timeout=60)
    third = subprocess.run(
        _watch(kernels, inbox, results, "--once"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert third.returncode == 0, third.stderr[-2000:]


def test_a_series_over_its_deadline_is_stopped_and_its_reply_says_so(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    """--deadline 4 and a tree whose configure step sleeps a minute: the job is stopped
    (nothing of it left running), the bot goes on, the reply says the series timed out."""
    git = ["git", "-C", str(fake_tree), "-c", "user.name=Dev", "-c", "user.email=dev@example.org"]
    makefile = fake_tree / "Makefile"
    makefile.write_text(
        makefile.read_text().replace("olddefconfig:\n", f"olddefconfig:\n> @sleep {SLOW}\n", 1)
    )
    subprocess.run([*git, "commit", "-qam", "a tree whose configure step is slow"], check=True)
    (fake_tree / "mm/memory.c").write_text("int fault(void) { return 9; }\n")
    subprocess.run([*git, "commit", "-qam", "mm: fault returns nine"], check=True)
    (patch,) = format_series(fake_tree, "HEAD~1..HEAD", tmp_path / "p", cover=False)
    subprocess.run([*git, "reset", "-q", "--hard", "HEAD~1"], check=True)
    assert not _sleepers(), "another run's slow tree is still configuring"
    inbox.deliver(patch)
    results = tmp_path / "results"
    argv = _watch(_kernels(tmp_path, fake_tree), inbox, results, "--from-start", "--once")
    with SmtpSink() as sink:
        done = subprocess.run(
            [*argv, "--deadline", "4", "--smtp", sink.address],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        (answer,) = sink.messages
    body = answer.get_content()
    assert "timed out" in body and "deadline of 4 s" in body, body
    assert "stopped, over the deadline of 4 s" in done.stderr
    assert not _sleepers(), "the stopped job's build is gone"
    assert list(_states(results).values()) == ["done"]
