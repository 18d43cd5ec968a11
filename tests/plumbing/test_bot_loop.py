"""The bot as a maintainer keeps it on a busy list: relevance, dry run, moderation, relays,
retests; on a real public-inbox, real aiosmtpd (TLS and AUTH too) and the fake kernel tree.

The fake tree (tests/unit/fake_kbuild.py) boots nothing: the series posted
here do not apply to it, so each test of a series ends before a build and is
answered; that is enough to see which series the bot tests, with which
tests, where its replies go and when.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from harness.mail import reply
from harness.mail.message import parse
from tests.support.mailinglist import (
    ADDRESS,
    PublicInbox,
    SmtpSink,
    kernels_yaml,
    misfit_series,
    watch_argv,
)
from tests.support.paths import REPO
from tests.support.smtp_tls import TlsSmtpSink, make_ca

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
MODERATOR = "mod@example.org"
UFFD_MM = ["thp_sysfs", "uffd_wp_punch_faultaround"]  # what covers mm/memory.c, and always-run


def _unrelated(n: int, path: str, who: str) -> bytes:
    """A one-patch series touching ``path`` (nothing the guest tests cover)."""
    return (
        f"From: {who.title()} Dev <{who}@example.org>\nTo: {ADDRESS}\n"
        f"Subject: [PATCH] {who}: change {n}\nMessage-ID: <unrelated-{n}-{time.time_ns()}@x.org>\n"
        f"\n{who}: a change\n---\ndiff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        "@@ -1 +1 @@\n-a\n+b\n"
    ).encode()


def _run(argv: list[str], *extra: str, code: int = 0) -> str:
    done = subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == code, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stderr


def _admin(results: Path, *words: str) -> str:
    argv = [sys.executable, "-m", "harness", "watch-admin", *words, "--results-dir", str(results)]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _rows(results: Path, query: str) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(results / "watch" / "watch.sqlite3") as db:
        return db.execute(query).fetchall()


def _reply_to(held: EmailMessage, sender: str, body: str) -> bytes:
    """An answer to the held copy, posted where the bot reads (the list, to the bot)."""
    return (
        f"From: {sender}\nTo: bot@ci.example.org\nCc: {ADDRESS}\n"
        f"Subject: Re: {held['Subject']}\nMessage-ID: <answer-{time.time_ns()}@example.org>\n"
        f"In-Reply-To: {held['Message-ID']}\nReferences: {held['Message-ID']}\n\n{body}\n"
    ).encode()


def test_a_week_of_unrelated_series_is_recorded_not_relevant_and_only_one_is_tested(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    """Unrelated series get no test and no reply; the one touching mm/memory.c is tested
    with only the tests covering it; --dry-run writes its reply and sends nothing."""
    for n, (path, who) in enumerate(
        [
            ("net/core/dev.c", "net"),
            ("drivers/gpu/drm/drm_drv.c", "drm"),
            ("fs/ext4/inode.c", "fs"),
            ("sound/core/pcm.c", "snd"),
        ]
    ):
        inbox.deliver(_unrelated(n, path, who))
    (relevant,) = misfit_series(fake_tree, tmp_path / "mm")
    inbox.deliver(relevant)
    results = tmp_path / "results"
    argv = watch_argv(kernels_yaml(tmp_path, fake_tree), inbox, results, "--from-start", "--once")
    with SmtpSink() as sink:
        err = _run(argv, "--smtp", sink.address, "--dry-run")
        assert sink.messages == [], "a dry run sends nothing"
    states = dict(_rows(results, "SELECT title, state FROM series"))
    assert sorted(states.values()) == ["done"] + ["not-relevant"] * 4, states
    assert states["mm: fault returns six"] == "done"
    notes = dict(_rows(results, "SELECT title, note FROM series WHERE state='not-relevant'"))
    assert "touches net/core/dev.c; no test covers these paths" in notes["net: change 0"]
    (record,) = _rows(results, "SELECT relevance FROM series WHERE title='net: change 0'")
    decisions = json.loads(record[0])
    assert decisions["touched"] == ["net/core/dev.c"]
    assert {d["test"] for d in decisions["decisions"] if not d["run"]} >= set(UFFD_MM)
    (tests,) = _rows(results, "SELECT tests FROM series WHERE state='done'")
    assert json.loads(tests[0]) == UFFD_MM
    assert f"queued with {', '.join(UFFD_MM)}" in err
    (provenance,) = [
        p for p in (results / "watch" / "series").glob("*/fake/*/provenance.json")
        if not p.parent.is_symlink()
    ]  # fmt: skip
    made = json.loads(provenance.read_text())
    assert made["tests"] == UFFD_MM, "the child ran only the chosen tests"
    assert made["command"].count("--test") == 2
    # why each test runs reaches the child (the reply quotes it): one line a chosen test
    (why,) = [w for w in made["command"] if w.startswith("--why-tests=")]
    assert [line.split(":")[0] for line in why.removeprefix("--why-tests=").splitlines()] == UFFD_MM
    (row,) = _rows(results, "SELECT state, path FROM replies")
    assert row[0] == "dry-run" and Path(row[1]).is_file()
    assert parse(Path(row[1]).read_bytes()).in_reply_to == parse(relevant).message_id
    assert "dry run: not sent" in err
    listing = _admin(results, "list")
    assert "1 done, 4 not-relevant" in listing and "dry-run" in listing


def test_moderation_holds_every_reply_until_released_or_dropped(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    """--moderate: three replies go to the moderator, intended recipients shown; one released
    with watch-admin reaches the list, one dropped never does; a one-word reply from a
    stranger changes nothing, the moderator's releases."""
    posted = {
        who: misfit_series(fake_tree, tmp_path / who, f"Dev {who} <{who}@example.org>", who, True)
        for who in ("a", "b", "c")
    }
    for raws in posted.values():
        for raw in raws:
            inbox.deliver(raw)
    series = {who: raws[0] for who, raws in posted.items()}  # the cover letters
    results = tmp_path / "results"
    argv = watch_argv(kernels_yaml(tmp_path, fake_tree), inbox, results, "--from-start", "--once")
    with SmtpSink() as sink:
        argv += ["--smtp", sink.address, "--moderate", f"Mod <{MODERATOR}>", "--smtp-retry", "1"]
        _run(argv)
        held = {str(m[reply.BOT_HEADER] and m["X-Kharness-Intended-To"]): m for m in sink.messages}
        assert len(held) == 3 and all(m["To"] == MODERATOR for m in held.values())
        for who in series:
            copy = held[f"{who}@example.org"]
            assert ADDRESS in str(copy["X-Kharness-Intended-Cc"])
            first = copy.get_content().splitlines()[0]
            assert first.startswith("Held for moderation (#") and f"{who}@example.org" in first
            assert ADDRESS in first
        assert {s for (s,) in _rows(results, "SELECT state FROM replies")} == {"held"}
        ids = dict(_rows(results, "SELECT series, id FROM replies"))
        by_who = {
            who: ids[key]
            for who in series
            for (key,) in _rows(results, f"SELECT key FROM series WHERE sender='{who}@example.org'")
        }
        assert "held" in _admin(results, "list")
        assert "released" in _admin(results, "release", str(by_who["a"]))
        assert "dropped" in _admin(results, "drop", str(by_who["b"]))
        inbox.deliver(_reply_to(held["c@example.org"], "Mallory <mallory@evil.example>", "release"))
        err = _run(argv)
        assert f"not the moderator {MODERATOR}: ignored" in err
        sent = sink.messages[3:]
        assert [m["In-Reply-To"] for m in sent] == [f"<{parse(series['a']).message_id}>"]
        assert sent[0]["To"] == "a@example.org" and ADDRESS in str(sent[0]["Cc"])
        assert "X-Kharness-Intended-To" not in sent[0], "released: the reply as it was written"
        inbox.deliver(_reply_to(held["c@example.org"], f"Mod <{MODERATOR}>", "Release\n\n> ..."))
        err = _run(argv)
        assert "the moderator released reply" in err
        last = sink.messages[4:]
        assert [m["In-Reply-To"] for m in last] == [f"<{parse(series['c']).message_id}>"]
    states = dict(_rows(results, "SELECT id, state FROM replies"))
    assert states == {by_who["a"]: "sent", by_who["b"]: "dropped", by_who["c"]: "sent"}


def test_replies_go_through_starttls_and_a_login_and_a_busy_relay_is_retried_with_backoff(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    ca = make_ca(tmp_path / "ca")
    password = tmp_path / "password"
    password.write_text("s3cret pass\n")
    (patch,) = misfit_series(fake_tree, tmp_path / "mm")
    inbox.deliver(patch)
    results = tmp_path / "results"
    argv = watch_argv(kernels_yaml(tmp_path, fake_tree), inbox, results, "--from-start", "--once")
    with TlsSmtpSink(ca, "starttls", "bot", "s3cret pass") as sink:
        sink.refuse(2)  # 451 twice: tried again after 0.25 s, then 0.5 s
        argv += ["--smtp", f"127.0.0.1:{sink.port}", "--smtp-tls", "starttls"]
        argv += ["--smtp-user", "bot", "--smtp-password-file", str(password)]
        argv += ["--smtp-ca", str(ca.ca_pem), "--smtp-retry", "0.25"]
        err = _run(argv)
        (answer,) = sink.messages
        assert sink.keeper.refused == 2 and sink.login.mechanisms and not sink.login.failures
    assert answer["In-Reply-To"] == f"<{parse(patch).message_id}>"
    assert "next try in 0.25s): 451 4.3.0 try again later" in err
    assert "next try in 0.5s): 451" in err
    assert "s3cret" not in err
    (row,) = _rows(results, "SELECT state, attempts, created, sent_at FROM replies")
    assert row[0] == "sent" and row[1] == 2
    assert row[3] - row[2] >= 0.75, "tried at 0 s, 0.25 s, then 0.75 s: no busy loop"


def test_a_permanent_refusal_is_given_up_after_the_policys_attempts(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    ca = make_ca(tmp_path / "ca")
    password = tmp_path / "password"
    password.write_text("wrong\n")
    (patch,) = misfit_series(fake_tree, tmp_path / "mm")
    inbox.deliver(patch)
    results = tmp_path / "results"
    argv = watch_argv(kernels_yaml(tmp_path, fake_tree), inbox, results, "--from-start", "--once")
    with TlsSmtpSink(ca, "starttls", "bot", "right") as sink:
        argv += ["--smtp", f"127.0.0.1:{sink.port}", "--smtp-tls", "starttls"]
        argv += ["--smtp-user", "bot", "--smtp-password-file", str(password)]
        err = _run([*argv, "--smtp-ca", str(ca.ca_pem), "--smtp-retry", "0.25"])
        assert sink.messages == [] and sink.login.failures == 3
    assert "given up after 3 attempt(s), kept as failed: 535" in err
    (row,) = _rows(results, "SELECT state, attempts, last_error FROM replies")
    assert row[0] == "failed" and row[1] == 3 and "535" in row[2]
    assert "535" in _admin(results, "list")


def test_a_retest_asked_in_the_thread_is_run_with_its_fix_and_answered(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    """``#kharness test`` with a fix from the series' author: retested, the fix after the
    series, answered in reply to the request; the same from a stranger: ignored."""
    (patch,) = misfit_series(fake_tree, tmp_path / "mm")
    anchor = parse(patch)
    inbox.deliver(patch)
    results = tmp_path / "results"
    argv = watch_argv(kernels_yaml(tmp_path, fake_tree), inbox, results, "--from-start", "--once")
    fix = (
        "diff --git a/mm/memory.c b/mm/memory.c\n--- a/mm/memory.c\n+++ b/mm/memory.c\n"
        "@@ -1 +1 @@\n-int fault(void) { return 5; }\n+int fault(void) { return 7; }\n"
    )

    def request(sender: str, body: str) -> bytes:
        return (
            f"From: {sender}\nTo: {ADDRESS}\nSubject: Re: {anchor.subject}\n"
            f"Message-ID: <ask-{time.time_ns()}@example.org>\n"
            f"In-Reply-To: <{anchor.message_id}>\nReferences: <{anchor.message_id}>\n\n{body}"
        ).encode()

    with SmtpSink() as sink:
        argv += ["--smtp", sink.address]
        _run(argv)
        assert len(sink.messages) == 1
        asked = request(
            "Dev One <dev@example.org>", f"Fixed, please retest:\n#kharness test\n{fix}"
        )
        stranger = request("Mallory <mallory@evil.example>", "#kharness test\n")
        inbox.deliver(asked)
        inbox.deliver(stranger)
        err = _run(argv)
        answers = sink.messages[1:]
    assert "who posted none of the series' messages" in err
    assert [m["In-Reply-To"] for m in answers] == [f"<{parse(asked).message_id}>"]
    body = answers[0].get_content()
    assert "Retest asked by dev@example.org; the fix patch of that message was applied" in body
    assert answers[0]["To"] == "dev@example.org"
    (retest,) = _rows(results, "SELECT state, fix, directory FROM retests")
    assert retest[0] == "done" and Path(retest[1]).read_text() == fix
    (origin,) = [
        p for p in Path(retest[2]).glob("fake/*/series-origin.json") if not p.parent.is_symlink()
    ]
    assert json.loads(origin.read_text())["patches"][-1] == "kharness-test-fix"
    reasons = [r for (r,) in _rows(results, "SELECT reason FROM ignored")]
    assert any(r.startswith("retest request: queued as retest #1") for r in reasons)
    assert any("mallory@evil.example" in r and "ignored" in r for r in reasons)


def test_evidence_url_links_each_run_under_the_results_directory(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run = results / "watch" / "series" / "v1-mm-0123" / "fake" / "20261204-1"
    run.mkdir(parents=True)
    (run / "series.txt").write_text("kharness series: 1 test broke\n\nmatrix\n")
    (run / "series.json").write_text("{}")
    anchor = parse(b"From: Dev <dev@example.org>\nSubject: [PATCH] mm\nMessage-ID: <m@x>\n\nx\n")
    settings = reply.Settings("bot <bot@x.org>", "https://ci.example.org/r/", results)
    body = reply.compose(anchor, [reply.KernelResult("fake", run)], settings, "k").get_content()
    assert "https://ci.example.org/r/watch/series/v1-mm-0123/fake/20261204-1/" in body
    assert str(tmp_path) not in body, "no path of the bot's machine"
