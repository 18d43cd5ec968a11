"""The list bot pointed at a list whose posters are hostile, on a real public-inbox and SMTP.

Anyone who can post to a list can put anything in a header: shell
metacharacters, escape sequences for the reader's terminal, numbers with
thousands of digits, a title and an hour that make two authors' series look
alike.  The bot is run over such a list with ``--once`` (the fake kernel
tree of test_mailing_list.py: no kernel is built or booted): it must end by
itself, answer every honest series in its own thread, set the rest aside
with their reasons, run nothing a header says, and write no raw escape byte
where a terminal or a log reader sees it.
"""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import uuid
from pathlib import Path

from harness.mail import reply
from harness.mail.message import parse
from tests.support.mailinglist import (
    PublicInbox,
    SmtpSink,
    kernels_yaml,
    misfit_series,
    watch_argv,
)
from tests.support.paths import REPO

OSC52 = "\x1b]52;c;SGVsbG8gY2xpcGJvYXJk\x07"  # "write 'Hello clipboard' to the clipboard"
DIFF = "---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"


def _encoded(text: str) -> str:
    """``text`` as one RFC 2047 word: control bytes reach the parser intact."""
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


def _header(raw: bytes, name: str, value: str) -> bytes:
    """``raw`` with its header ``name`` replaced by ``value``."""
    head, sep, body = raw.partition(b"\n\n")
    lines = [x for x in head.split(b"\n") if not x.lower().startswith(name.lower().encode() + b":")]
    return b"\n".join([*lines, f"{name}: {value}".encode()]) + sep + body


def _hostile(pwn: Path) -> list[bytes]:
    """Messages the bot must set aside; any of them run, a file appears in ``pwn``."""
    head = "From: Mallory <mallory@evil.example>\nTo: test@lists.example.org\n"
    nines = "9" * 5000
    return [
        (
            f"{head}Subject: [PATCH] id $(touch {pwn}/mid)\n"
            f"Message-ID: <$(touch {pwn}/mid)@evil.example>\n\n{DIFF}"
        ).encode(),
        (
            f"{head}Subject: [PATCH 2/2] reply `touch {pwn}/irt`\n"
            f"Message-ID: <irt-{uuid.uuid4().hex}@evil.example>\n"
            f"In-Reply-To: <`touch {pwn}/irt`@evil.example>\n"
            f"References: <`touch {pwn}/irt`@evil.example>\n\n{DIFF}"
        ).encode(),
        (
            f"{head}Subject: [PATCH v{nines} 1/1] a version of 5000 digits\n"
            f"Message-ID: <version-{uuid.uuid4().hex}@evil.example>\n\n{DIFF}"
        ).encode(),
        (
            f"{head}Subject: [PATCH 1/{nines}] a total of 5000 digits\n"
            f"Message-ID: <total-{uuid.uuid4().hex}@evil.example>\n\n{DIFF}"
        ).encode(),
    ]


def test_the_bot_survives_a_hostile_list_and_answers_each_honest_series(
    inbox: PublicInbox, fake_tree: Path, tmp_path: Path
) -> None:
    pwn = tmp_path / "pwn"
    pwn.mkdir()
    honest = misfit_series(fake_tree, tmp_path / "honest", "Dev Three <three@example.org>")
    one = misfit_series(fake_tree, tmp_path / "one", "Dev One <one@example.org>", "same", True)
    two = misfit_series(fake_tree, tmp_path / "two", "Dev Two <two@example.org>", "same", True)
    (metachar,) = misfit_series(fake_tree, tmp_path / "meta", "Dev Four <four@example.org>")
    metachar = _header(metachar, "From", f'"$(touch {pwn}/from)" <four@example.org>')
    metachar = _header(metachar, "Message-ID", f"<meta-{uuid.uuid4().hex}@example.org>")
    subject = f"[PATCH] mm: $(touch {pwn}/subject) `touch {pwn}/bq` {OSC52} clip"
    metachar = _header(metachar, "Subject", _encoded(subject))
    (big,) = misfit_series(fake_tree, tmp_path / "big", "Dev Five <five@example.org>")
    big = _header(big, "Subject", "[PATCH 1/150] mm: the first of 150")
    big = _header(big, "Message-ID", f"<big-{uuid.uuid4().hex}@example.org>")
    answered = [*honest, one[0], two[0], metachar, big]  # what each reply must answer
    for raw in [*_hostile(pwn), *honest, *one, *two, metachar, big]:
        inbox.deliver(raw)
    results = tmp_path / "results"
    argv = watch_argv(kernels_yaml(tmp_path, fake_tree), inbox, results, "--from-start", "--once")
    with SmtpSink() as sink:
        argv += ["--smtp", sink.address]
        first = subprocess.run(argv, capture_output=True, timeout=600, cwd=REPO)
        out = (first.stdout + first.stderr).decode(errors="replace")
        assert first.returncode == 0, out[-3000:]
        replies = sink.messages
        again = subprocess.run(argv, capture_output=True, timeout=300, cwd=REPO)
        more = (again.stdout + again.stderr).decode(errors="replace")
        assert again.returncode == 0 and len(sink.messages) == len(replies), more[-2000:]
    assert "set aside" not in more, "a message set aside is never met again"
    # each honest series answered once, in its own thread; the oversized one told why
    wanted = sorted(f"<{parse(m).message_id}>" for m in answered)
    assert sorted(str(r["In-Reply-To"]) for r in replies) == wanted, out[-3000:]
    by_thread = {str(r["In-Reply-To"]): r for r in replies}
    refusal = by_thread[f"<{parse(big).message_id}>"].get_content()
    assert "not tested: it has 150 patches, over this bot's limit of 50" in refusal
    # the two same-titled series of two authors: two directories, two replies
    with sqlite3.connect(results / "watch" / "watch.sqlite3") as db:
        rows = db.execute("SELECT anchor, directory, state FROM series").fetchall()
        aside = db.execute("SELECT reason FROM set_aside").fetchall()
    directories = {anchor: directory for anchor, directory, _state in rows}
    ones, twos = directories[parse(one[0]).message_id], directories[parse(two[0]).message_id]
    assert ones and twos and ones != twos
    assert len(aside) >= 4, aside  # the bad Message-ID, In-Reply-To, version, total
    # nothing a header said was run; nothing reached the terminal or a log raw
    assert sorted(p.name for p in pwn.iterdir()) == []
    assert "Traceback" not in out
    assert b"\x1b" not in first.stdout + first.stderr + again.stdout + again.stderr
    assert all("\x1b" not in r.as_string() for r in replies), "a reply shows it escaped"
    logs = [p for p in (results / "watch").rglob("*.log") if b"\x1b" in p.read_bytes()]
    assert logs == [], f"raw ESC in {logs}"


def test_a_reply_is_bounded_whatever_the_results_hold(tmp_path: Path) -> None:
    """A megabyte of failure text, a 10,000-character line, 1,000 Cc'd addresses: the reply
    stays under 64 KiB, says where the whole evidence is, keeps its verdict and reproduce
    line, and is copied to at most 50 addresses."""
    run = tmp_path / "run"
    run.mkdir()
    matrix = "\n".join(f"  test_{n:06d}  fail  " + "x" * 80 for n in range(12_000))
    (run / "series.txt").write_text(f"kharness series: 1 test broke\n\n{'y' * 10_000}\n{matrix}\n")
    (run / "series.json").write_text("{}")
    cc = ", ".join(f"m{n}@example.org" for n in range(1000))
    anchor = parse(
        f"From: Dev <dev@example.org>\nCc: {cc}\nSubject: [PATCH] mm: big\n"
        f"Message-ID: <big@example.org>\n\n{DIFF}".encode()
    )
    message = reply.compose(
        anchor,
        [reply.KernelResult("fake", run)],
        reply.Settings("kharness <bot@example.org>"),
        reproduce="kharness series --kernel fake --series '<big@example.org>'",
    )
    body = message.get_content()
    assert len(body.encode()) <= reply.MAX_BODY
    assert "fake: 1 test broke" in body and "--series '<big@example.org>'" in body
    assert f"the whole evidence is in {run}" in body
    assert max(len(line) for line in body.splitlines()) <= reply.MAX_LINE + 20
    assert len(str(message["Cc"]).split(",")) == reply.MAX_CC
