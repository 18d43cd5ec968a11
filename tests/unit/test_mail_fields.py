"""Every field of a mail is data: bounded numbers, valid Message-IDs, quoted command lines.

The findings of issue 25 this answers, each reproduced here with the mail
that showed it: a 5,000-digit version or n/m made parsing raise (and a huge
total made ``missing`` loop over the whole range); a Message-ID holding
``$(...)``, quotes or backquotes reached a hand-written reproduce line; a
``<~/Maildir>`` that exists as a path was read as that path.  The reproduce
line is run by a real bash, with ``printf`` standing in for ``kharness``.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.errors import SeriesError
from harness.kernels.patches import read_series
from harness.mail import grouping, intake, reply
from harness.mail.commandline import SeriesCommand, harness_argv, message_target
from harness.mail.grammar import missing_places
from harness.mail.grouping import Candidate, SeriesKey
from harness.mail.message import MAX_PATCHES, MAX_VERSION, parse, parse_subject, valid_message_id

DIFF = "Why.\n---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"


def _raw(subject: str, mid: str = "<p1@example.org>", refs: str = "") -> bytes:
    head = f"From: Dev <dev@example.org>\nSubject: {subject}\nMessage-ID: {mid}\n"
    head += f"In-Reply-To: {refs}\nReferences: {refs}\n" if refs else ""
    return (head + "\n" + DIFF).encode()


# -- absurd numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ("[PATCH v" + "9" * 5000 + " 1/5] x", "a subject of 5015 characters, over 1000"),
        ("[PATCH v" + "9" * 900 + " 1/5] x", "version v999999999999...(900 digits) is over 999"),
        ("[PATCH 1/" + "0" * 900 + "1] x", "patch 1/000000000000...(901 digits): more than 200"),
        (f"[PATCH v{MAX_VERSION + 1} 1/2] x", "version v1000 is over 999"),
        (f"[PATCH 1/{MAX_PATCHES + 1}] x", "patch 1/201: more than 200 patches"),
        ("[PATCH 7/5] x", "patch 7/5: its number is over the total"),
    ],
)
def test_absurd_numbers_set_the_message_aside_with_its_reason(subject: str, reason: str) -> None:
    started = time.monotonic()
    mail = parse(_raw(subject))
    assert mail.refused is not None and mail.refused.startswith(reason)
    assert grouping.why_ignored(mail) == f"set aside: {mail.refused}"
    honest = parse(_raw("[PATCH] y: fix", "<h1@example.org>"))
    assert [c.anchor for c in grouping.group([mail, honest])] == ["h1@example.org"]
    assert time.monotonic() - started < 2.0


def test_the_largest_honest_numbers_are_still_a_series() -> None:
    tag, _title = parse_subject(f"[PATCH v{MAX_VERSION} {MAX_PATCHES}/{MAX_PATCHES}] x")
    assert (tag.version, tag.number, tag.total, tag.problem) == (999, 200, 200, None)


def test_a_long_subject_is_read_in_linear_time() -> None:
    """``(\\d+)\\s*/`` over a run of digits was quadratic: 20,000 digits took seconds."""
    started = time.monotonic()
    for subject in ("[" + "1" * 200_000 + "] x", "Re: " * 50_000 + "[PATCH 1/2] x"):
        parse_subject(subject)
        parse(_raw(subject))
    assert time.monotonic() - started < 1.0


def test_missing_never_walks_a_huge_range() -> None:
    candidate = Candidate(SeriesKey("a@b", 1), "t", "s", 10**18, (1, 2), "a@b", False)
    started = time.monotonic()
    assert candidate.missing == tuple(range(3, MAX_PATCHES + 1))
    assert time.monotonic() - started < 0.5


def test_series_key_text_it_did_not_write_is_a_value_error_not_a_huge_int() -> None:
    assert SeriesKey.parse("a@b#v12") == SeriesKey("a@b", 12)
    for text in ("a@b#v" + "9" * 5000, "a@b#vx", "#v1", "a@b"):
        with pytest.raises(ValueError, match="is not a series key"):
            SeriesKey.parse(text)


def test_a_body_in_a_charset_without_replace_is_read() -> None:
    raw = b"Subject: x\nMessage-ID: <a@b>\nContent-Type: text/plain; charset=idna\n\n\xff\xfe ok"
    mail = parse(raw)
    assert mail.refused is None and "ok" in mail.body
    assert any("charset 'idna'" in p for p in mail.problems)


@pytest.mark.parametrize(
    "subject", ["[PATCH 1/" + "9" * 900 + "] x", f"[PATCH 1/{MAX_PATCHES + 1}] x"]
)
def test_an_mbox_with_absurd_numbers_is_a_series_error(tmp_path: Path, subject: str) -> None:
    mbox = tmp_path / "s.mbox"
    mbox.write_text("From x@y Thu Jan  1 00:00:00 1970\n" + _raw(subject).decode())
    with pytest.raises(SeriesError, match=f"more than {MAX_PATCHES} patches"):
        read_series(mbox, allow_missing=True)


@pytest.mark.parametrize("marker", ["Re:", "AW:", "Fwd:", "Fw:", "Antw:", "Re: Fwd:"])
def test_a_series_file_and_the_bot_set_aside_the_same_replies(tmp_path: Path, marker: str) -> None:
    """One grammar: a forwarded or answered patch is no patch to either reader."""
    patch = _raw("[PATCH 1/1] f: change").decode()
    reply = _raw(f"{marker} [PATCH 1/1] f: change", mid="<r@example.org>").decode()
    assert parse(reply.encode()).is_patch is False and parse(patch.encode()).is_patch is True
    mbox = tmp_path / "s.mbox"
    mbox.write_text("".join(f"From x@y Thu Jan  1 00:00:00 1970\n{m}\n" for m in (patch, reply)))
    series = read_series(mbox)
    assert [p.subject for p in series.patches] == ["f: change"]
    assert series.skipped == (f"reply: {marker} [PATCH 1/1] f: change",)


def test_the_missing_places_are_counted_one_way() -> None:
    assert missing_places(5, [1, 3, None]) == (2, 4, 5)
    assert missing_places(10**9, []) == tuple(range(1, MAX_PATCHES + 1))


# -- Message-IDs ----------------------------------------------------------------------

VALID = [
    "20261202.1-a@b.org",
    "CAHk-=wj+Xy_9k@mail.gmail.com",
    "a..b@host",
    "x@[127.0.0.1]",
    "{odd}!#%*?^~=@example.org",
]
INVALID = [
    "$(touch /tmp/x)@evil",
    "$(id)@evil",
    "`id`@evil",
    "a'b@evil",
    'a"b@evil',
    "a;b@evil",
    "a|b@evil",
    "a&b@evil",
    "a b@evil",
    "a<b@evil",
    "no-at-sign",
    "a@b@c",
    "@host",
    "left@",
    "caf\u00e9@x",
    "a\x1b]52;c;@x",
    "a" * 300 + "@x",
    "~/Maildir",
    "-o/tmp/evil@x",  # b4 mbox would take it as its -o option
    "-ofoo@x",
    "a/../../b@x",  # a step of the inbox's URL
]


@pytest.mark.parametrize("mid", VALID)
def test_valid_message_ids_are_kept(mid: str) -> None:
    assert valid_message_id(mid)
    mail = parse(_raw("[PATCH] x", f"<{mid}>", refs=f"<{mid}>"))
    assert (mail.message_id, mail.in_reply_to, mail.references) == (mid, mid, (mid,))
    assert mail.refused is None


@pytest.mark.parametrize("mid", INVALID)
def test_an_invalid_message_id_sets_the_message_aside(mid: str) -> None:
    assert not valid_message_id(mid)
    mail = parse(_raw("[PATCH] x", f"<{mid}>", refs=f"<{mid}>"))
    assert mail.refused is not None and "is not a valid msg-id" in mail.refused
    assert mail.message_id.startswith("kharness-no-id-") and valid_message_id(mail.message_id)
    kept = [i for i in (mail.in_reply_to, *mail.references) if i is not None]
    assert all(valid_message_id(i) for i in kept), "an invalid reference is dropped"
    assert "<" in mid or kept == [], "(<a<b@evil> holds the valid <b@evil>)"
    assert grouping.group([mail]) == []
    assert "\x1b" not in mail.refused, "the reason shows the id escaped"
    with pytest.raises(ValueError, match="is not a valid msg-id"):
        message_target(mid)


@pytest.mark.parametrize("mid", [m for m in INVALID if "<" not in m])  # <a<b@x> holds <b@x>
def test_an_invalid_in_reply_to_or_reference_sets_the_message_aside(mid: str) -> None:
    """The thread a patch names decides its series and its reply: a bad id there is no series."""
    mail = parse(_raw("[PATCH 2/2] x", "<p2@example.org>", refs=f"<{mid}>"))
    assert (mail.message_id, mail.sender_name, mail.sender) == (
        "p2@example.org",
        "Dev",
        "dev@example.org",
    )
    assert mail.refused is not None and "is not a valid msg-id" in mail.refused, mail.problems
    assert grouping.group([mail]) == []


def test_a_bracketed_message_id_is_never_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Maildir" / "cur").mkdir(parents=True)
    (tmp_path / "<a@b.org>").write_text("a file named like a Message-ID")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for text in ("<~/Maildir>", f"<{tmp_path}/Maildir>", "id:<~/Maildir>"):
        with pytest.raises(SeriesError, match="the Message-ID is not a valid msg-id"):
            intake.parse_ref(text)
    ref = intake.parse_ref("<a@b.org>", "http://127.0.0.1:1/list")
    assert (ref.message_id, ref.path) == ("a@b.org", None)
    assert intake.parse_ref("~/Maildir").path == tmp_path / "Maildir"  # typed: a path
    assert intake.parse_ref("a@b.org").message_id == "a@b.org"  # typed, no such file
    with pytest.raises(SeriesError, match="not a valid msg-id"):
        intake.parse_ref("https://lore.kernel.org/all/%24(id)@evil/")
    with pytest.raises(SeriesError, match="not a valid msg-id"):
        intake.parse_ref("<$(touch x)@evil>")
    assert not (tmp_path / "x").exists()


# -- the one command-line builder --------------------------------------------------


def test_the_series_argv_names_a_message_in_angle_brackets() -> None:
    command = SeriesCommand.for_message(
        "a@b.org", "k", "http://h/l", allow_missing=True, tests=("t1",), reply_from="B <b@h>"
    )
    assert command.argv() == [
        "series", "--kernel", "k", "--series", "<a@b.org>", "--inbox", "http://h/l",
        "--reply-from", "B <b@h>", "--allow-missing", "--sandbox", "--test", "t1",
    ]  # fmt: skip
    assert shlex.split(command.line()) == ["kharness", *command.argv()]
    assert harness_argv("py", Path("/k.yaml"), ["series"]) == [
        "py", "-m", "harness", "--kernels-file", "/k.yaml", "series",
    ]  # fmt: skip
    assert SeriesCommand("k", "-odd.mbox").argv()[3] == "--series=-odd.mbox"


def _run_as_printf(line: str, cwd: Path) -> list[str]:
    """Run a reproduce line in bash with kharness replaced by printf: the words it got."""
    assert line.startswith("kharness ")
    script = "printf '%s\\n' " + line.removeprefix("kharness ")
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return proc.stdout.splitlines()


@pytest.mark.parametrize("mid", VALID)
def test_an_odd_but_valid_message_id_reaches_the_shell_literally(mid: str, tmp_path: Path) -> None:
    (tmp_path / "odd").mkdir()  # a glob or a ~ that expanded would name it
    inbox = f"http://127.0.0.1/l?a=1&b=$(touch {tmp_path}/pwned)"
    line = SeriesCommand.for_message(mid, "my kernel", inbox, allow_missing=True).line()
    words = _run_as_printf(line, tmp_path)
    assert words[:7] == [
        "series",
        "--kernel",
        "my kernel",
        "--series",
        f"<{mid}>",
        "--inbox",
        inbox,
    ]
    assert words == SeriesCommand.for_message(mid, "my kernel", inbox, allow_missing=True).argv()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd"], "nothing ran, nothing created"


def test_a_hostile_message_id_never_reaches_a_command_line(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"a'$(touch${{IFS}}{marker})'@evil"  # no space: the old parser took it
    old = f"kharness series --kernel k --series '<{hostile}>'"  # the reply's hand-made line
    _run_as_printf(old, tmp_path)
    assert marker.exists(), "the hand-written line ran the poster's command"
    marker.unlink()
    mail = parse(_raw("[PATCH] x", f"<{hostile}>"))
    assert mail.refused is not None and "is not a valid msg-id" in mail.refused
    assert grouping.why_ignored(mail) == f"set aside: {mail.refused}"
    with pytest.raises(ValueError, match="is not a valid msg-id"):
        SeriesCommand.for_message(hostile, "k")
    # and were it ever given to the builder raw, its quoting hands it over as it is
    words = _run_as_printf(SeriesCommand("k", f"<{hostile}>").line(), tmp_path)
    assert f"<{hostile}>" in words and not marker.exists()


def test_the_reply_reproduce_line_comes_from_the_builder(tmp_path: Path) -> None:
    anchor = parse(_raw("[PATCH] x", "<{odd}*?@example.org>"))
    line = reply.reproduce_command("k", SimpleNamespace(anchor=anchor, link=None))
    assert line == SeriesCommand.for_message("{odd}*?@example.org", "k").line()
    assert "<{odd}*?@example.org>" in _run_as_printf(line, tmp_path)
    linked = reply.reproduce_command("k", SimpleNamespace(anchor=anchor, link="http://h/$(x)/"))
    assert "http://h/$(x)/" in _run_as_printf(linked, tmp_path)


def test_why_tests_from_a_hostile_record_is_one_bounded_word_a_shell_keeps_literal(
    tmp_path: Path,
) -> None:
    """The reasons quote paths a patch named: shell syntax, escapes and newlines in them stay
    one argv word, which a host slot's ``shlex.join`` keeps literal; a huge path is cut."""
    import json

    from harness.mail.gate import why_text

    hostile = "mm/$(touch PWNED)`touch PWNED2`'\";\x1b]52;c;eA==\x07" + "x" * 200_000
    record = json.dumps(
        {
            "decisions": [
                {"test": "uffd_api_unknown_feature", "run": True, "why": f"touches {hostile}"},
                {"test": "skipped", "run": False, "why": "no"},
            ]
        }
    )
    why = why_text(record)
    assert why.startswith("uffd_api_unknown_feature: touches mm/$(touch PWNED)")
    assert "skipped" not in why and len(why) <= 300
    command = SeriesCommand("k", "<a@b>", why_tests=why)
    words = command.argv()
    assert [w for w in words if w.startswith("--why-tests=")] == [f"--why-tests={why}"]
    echoed = subprocess.run(
        ["bash", "-c", "printf '%s\\0' " + shlex.join(words)],
        cwd=tmp_path,
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert echoed.stdout.split(b"\0")[:-1] == [w.encode() for w in words]
    assert not list(tmp_path.iterdir()), "nothing in the reasons ran"
    assert why_text("{not json") == "" and why_text(None) == ""
