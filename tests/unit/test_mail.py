"""Mail for the list bot: parsing any message, grouping series, replies, b4's check verdicts."""

from __future__ import annotations

import email
import email.policy
import json
import time
from pathlib import Path

import pytest

from harness.commands.series import NotApplied, SeriesReport, Step, write_reports
from harness.errors import SeriesError
from harness.kernels.patches import first_misfit, read_series
from harness.mail import b4check, grouping, intake, reply
from harness.mail.grouping import SeriesKey
from harness.mail.message import BOT_HEADER, parse, parse_subject
from harness.mail.outbox import Outbox, ReplyState
from harness.mail.rows import DONE, QUEUED, RUNNING, WAITING
from harness.mail.state import State
from harness.outcome import Outcome, Verdict
from harness.results.records import TestRun
from tests.unit.fake_kbuild import format_patch, make_tree

P, F = Outcome.PASS, Outcome.FAIL


def _mail(
    subject: str,
    mid: str,
    refs: str = "",
    sender: str = "Dev One <dev@example.org>",
    diff: bool = True,
    extra: str = "",
    body_extra: str = "",
) -> bytes:
    body = (
        "Why.\n---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n" if diff else "Hi\n"
    ) + body_extra
    head = f"From: {sender}\nTo: list@example.org\nCc: rev@example.org\nSubject: {subject}\n"
    head += f"Message-ID: <{mid}>\nDate: Wed, 02 Dec 2026 10:00:00 +0000\n"
    if refs:
        ids = refs.split()
        head += f"In-Reply-To: <{ids[-1]}>\nReferences: {' '.join(f'<{r}>' for r in ids)}\n"
    return (head + extra + "\n" + body).encode()


@pytest.mark.parametrize(
    ("subject", "version", "number", "total", "prefixes"),
    [
        ("[PATCH v2 3/5] mm: x", 2, 3, 5, ()),
        ("[RFC PATCH net-next v3 0/2] foo", 3, 0, 2, ("RFC", "net-next")),
        ("[PATCHv4 2/3] x", 4, 2, 3, ()),
        ("[PATCH 01/10] y", 1, 1, 10, ()),
        ("[PATCH] single", 1, None, None, ()),
        ("[PATCH 2 / 3] spaced", 1, 2, 3, ()),
    ],
)
def test_subject_tags_as_maintainers_write_them(
    subject: str, version: int, number: int | None, total: int | None, prefixes: tuple[str, ...]
) -> None:
    tag, title = parse_subject(subject)
    assert (tag.is_patch, tag.version, tag.number, tag.total) == (True, version, number, total)
    assert tag.prefixes == prefixes and title == subject.split("] ", 1)[1]


def test_bad_mail_parses_and_is_never_a_patch() -> None:
    latin = (
        b"From: \xe9ric <e@x.org>\nSubject: [PATCH] caf\xe9\nContent-Type: text/plain\n\n\xff\xfe"
    )
    mail = parse(latin)
    assert mail.message_id.startswith("kharness-no-id-") and "no Message-ID" in mail.problems
    assert not mail.is_patch  # no diff
    assert parse(b"\x00\x01garbage without headers").is_patch is False
    broken = parse(b"Subject: =?utf-8?B?not base64!?=\nMessage-ID: <a@b>\n\nx")
    assert broken.message_id == "a@b"
    reply_mail = parse(_mail("Re: [PATCH 1/2] a", "r@x", "c@x"))
    assert reply_mail.is_reply and not reply_mail.is_patch
    own = parse(_mail("[PATCH 1/2] a", "o@x", extra=f"{BOT_HEADER}: series\n"))
    assert own.from_bot and grouping.why_ignored(own) == "the bot's own reply"


def test_series_grouped_by_thread_and_version_and_superseded() -> None:
    mails = [
        parse(_mail("[PATCH 0/2] mm: speed", "c1@x", diff=False)),
        parse(_mail("[PATCH 1/2] mm: a", "p1@x", "c1@x")),
        parse(_mail("[PATCH v2 0/2] mm: speed", "c2@x", diff=False)),
        parse(_mail("[PATCH v2 1/2] mm: a", "q1@x", "c2@x")),
        parse(_mail("[PATCH v2 2/2] mm: b", "q2@x", "c2@x")),
        parse(_mail("Re: [PATCH v2 1/2] mm: a", "rv@x", "c2@x q1@x")),
        parse(_mail("[PATCH] other: fix", "s1@x", sender="Other <o@example.org>")),
        parse(_mail("hello", "n@x", diff=False)),
    ]
    found = {str(c.key): c for c in grouping.group(mails)}
    assert sorted(found) == ["c1@x#v1", "c2@x#v2", "s1@x#v1"]
    assert found["c1@x#v1"].missing == (2,) and not found["c1@x#v1"].complete
    assert found["c2@x#v2"].complete and found["c2@x#v2"].anchor == "c2@x"
    assert found["s1@x#v1"].complete and found["s1@x#v1"].total == 1
    assert grouping.superseded(list(found.values())) == {SeriesKey("c1@x", 1): SeriesKey("c2@x", 2)}


def test_b4_change_id_ties_versions_whose_title_changed() -> None:
    b4 = "change-id: 20261201-uffd-move-1a2b3c\n"
    mails = [
        parse(_mail("[PATCH 0/1] mm: speed", "c1@x", diff=False, body_extra=b4)),
        parse(_mail("[PATCH 1/1] mm: a", "p1@x", "c1@x")),
        parse(_mail("[PATCH v2 0/1] mm: faster still", "c2@x", diff=False, body_extra=b4)),
        parse(_mail("[PATCH v2 1/1] mm: a", "q1@x", "c2@x")),
        parse(_mail("[PATCH v3 0/1] mm: speed", "c3@x", diff=False)),  # another series
        parse(_mail("[PATCH v3 1/1] mm: a", "r1@x", "c3@x")),
    ]
    found = {str(c.key): c for c in grouping.group(mails)}
    assert found["c2@x#v2"].change_id == "20261201-uffd-move-1a2b3c"
    assert grouping.superseded(list(found.values())) == {SeriesKey("c1@x", 1): SeriesKey("c2@x", 2)}


def test_series_refs_name_the_forms_accepted(tmp_path: Path) -> None:
    mbox = tmp_path / "s.mbox"
    mbox.write_text("x")
    assert intake.parse_ref(str(mbox)).path == mbox
    url = intake.parse_ref("https://lore.kernel.org/linux-mm/20261202.1-a@b.org/T/#t")
    assert (url.message_id, url.inbox) == ("20261202.1-a@b.org", "https://lore.kernel.org/linux-mm")
    bare = intake.parse_ref("<a.b@c.org>", "http://127.0.0.1:1/list/")
    assert (bare.message_id, bare.inbox) == ("a.b@c.org", "http://127.0.0.1:1/list")
    with pytest.raises(SeriesError, match="not a file, a Message-ID or an inbox URL"):
        intake.parse_ref("no such thing")


def test_a_series_that_does_not_apply_is_found_without_touching_the_tree(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux")
    mbox = tmp_path / "s.mbox"
    mbox.write_text(
        format_patch(
            "mm/filemap.c",
            "int map_pages(void) { return 2; }",
            "int map_pages(void) { return 3; }",
            "one",
            "1/2",
        )
        + format_patch("mm/memory.c", "int fault(void) { return 7; }", "x", "two", "2/2")
    )
    before = (tree / "mm/filemap.c").read_text()
    index, failed = first_misfit(read_series(mbox).patches, tree, tmp_path / "scratch")  # type: ignore[misc]
    assert index == 2 and "two" in str(failed) and "does not apply" in str(failed)
    assert (tree / "mm/filemap.c").read_text() == before and not (tmp_path / "scratch").exists()
    assert first_misfit(read_series(mbox).patches[:1], tree, tmp_path / "scratch") is None


def _run_dir(tmp_path: Path, report: SeriesReport) -> Path:
    run = tmp_path / "20261202-1"
    run.mkdir()
    write_reports(report, run)
    return run


def _step(index: int, label: str, outcome: Outcome) -> Step:
    verdict = Verdict(outcome, f"{outcome.value}: uffd says no")
    run = TestRun("uffd_api", f"{index:02d}", verdict, 1.0, Path("."))
    return Step(index, label, (("uffd_api", outcome),), 3.0, None, (run,))


def test_reply_threads_to_the_cover_and_names_the_breaking_patch(tmp_path: Path) -> None:
    steps = (
        _step(0, "base (no patches)", P),
        _step(1, "[1/2] mm: a", P),
        _step(2, "[2/2] mm: b", F),
    )
    run = _run_dir(
        tmp_path, SeriesReport(("uffd_api",), steps, None, "abc123 (the series' base-commit)")
    )
    anchor = parse(_mail("[PATCH v2 0/2] mm: speed", "c2@x", "c1@x", diff=False))
    settings = reply.Settings("kharness <bot@ci.example.org>")
    message = reply.compose(
        anchor, [reply.KernelResult("k", run)], settings, "kharness series --kernel k ..."
    )
    assert message["In-Reply-To"] == "<c2@x>" and message["References"] == "<c1@x> <c2@x>"
    assert message["Subject"] == "Re: [PATCH v2 0/2] mm: speed"
    assert message["To"] == "dev@example.org" and message[BOT_HEADER] == "series"
    assert reply.recipients(message) == ["dev@example.org", "list@example.org", "rev@example.org"]
    text = message.get_content()
    assert "k: 1 regression(s) introduced by the series" in text
    assert "uffd_api after patch 2 ([2/2] mm: b):" in text
    assert "\n  fail: uffd says no\n" in text and "fail: fail" not in text
    assert "base: abc123 (the series' base-commit)" in text
    assert "kharness series --kernel k ..." in text
    saved = reply.load(reply.save(message, run))
    assert saved["Message-ID"] == message["Message-ID"]
    again = email.message_from_bytes(
        (run / reply.FILENAME).read_bytes(), policy=email.policy.default
    )
    assert parse(again.as_bytes()).from_bot


def test_b4_check_verdicts_per_patch_and_per_series(tmp_path: Path) -> None:
    steps = (
        _step(0, "base (no patches)", P),
        _step(1, "[1/2] mm: a", P),
        _step(2, "[2/2] mm: b", F),
    )
    run = _run_dir(tmp_path, SeriesReport(("uffd_api",), steps))
    one = parse(_mail("[PATCH 1/2] mm: a", "p1@x", "c@x"))
    two = parse(_mail("[PATCH 2/2] mm: b", "p2@x", "c@x"))
    cover = parse(_mail("[PATCH 0/2] mm", "c@x", diff=False))
    assert b4check.judge(one, run).status == "pass"
    assert b4check.judge(two, run).summary == "this patch breaks uffd_api"
    assert b4check.judge(cover, run).status == "fail"
    entry = b4check.judge(two, run).to_json()
    assert (
        set(entry) == {"tool", "status", "summary", "url", "details"}
        and entry["tool"] == "kharness"
    )
    misfit = tmp_path / "misfit"
    misfit.mkdir()
    write_reports(SeriesReport(("uffd_api",), (), NotApplied(2, "[2/2] mm: b", "hunk")), misfit)
    assert b4check.judge(one, misfit).status == "pass"
    assert b4check.judge(two, misfit).summary == "patch 2 does not apply: [2/2] mm: b"
    assert json.loads((misfit / "series.json").read_text())["not_applied"]["index"] == 2


def test_state_keeps_messages_once_and_resumes_a_cut_run(tmp_path: Path) -> None:
    state = State(tmp_path)
    cover = parse(_mail("[PATCH 0/1] mm", "c@x", diff=False))
    patch = parse(_mail("[PATCH 1/1] mm: a", "p@x", "c@x"))
    kept = [(cover, "c@x#v1"), (patch, "c@x#v1")]
    assert state.take("inbox", '{"0": "abc"}', kept, []) == 2
    assert state.take("inbox", '{"0": "abc"}', kept, [(parse(_mail("hi", "h@x")), "x")]) == 0
    assert state.cursor("inbox") == '{"0": "abc"}' and state.ignored_count() == 1
    (candidate,) = grouping.group(state.mails())
    state.upsert(candidate, WAITING)
    state.move(candidate.key, RUNNING)
    state.close()
    again = State(tmp_path)
    assert again.recover() == [candidate.key]
    row = again.get(candidate.key)
    assert row is not None and row.state == QUEUED and row.started_at is not None
    again.move(candidate.key, DONE)
    outbox = Outbox(again.db)
    number = outbox.add(str(candidate.key), tmp_path / "reply.eml", ReplyState.PENDING)
    outbox.retry(number, "451 try later", next_try=time.time() + 60)
    (pending,) = outbox.all([ReplyState.PENDING])
    assert pending.attempts == 1 and pending.last_error == "451 try later"
    assert outbox.due(time.time()) == [], "not before its next try"
    outbox.sent(number)
    assert outbox.all([ReplyState.PENDING]) == [] and again.served("dev@example.org") == 1
