"""Property tests of the parsers a stranger's mail reaches: any bytes in, a result or a reason out.

Hypothesis makes the mail: plain random bytes, and messages built from the
parts a hostile poster controls (subjects with absurd tag numbers, Message-IDs
with shell metacharacters, charsets no codec can replace with, multipart,
encoded words, mbox separators).  The mail parser, the subject reader and the
grouping must return (never raise); the message parser's last guard
(``PARSER_FAILED``) must never be what answers; and the patch reader of
kernels/patches.py must give a Series or a SeriesError, nothing else.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import SeriesError
from harness.kernels.patches import Series, read_series, split_mbox
from harness.mail import grouping, intake
from harness.mail.message import (
    MAX_PATCHES,
    MAX_VERSION,
    PARSER_FAILED,
    Mail,
    parse,
    parse_subject,
    valid_message_id,
)

# No example database: a failure is reproduced from the example Hypothesis prints.
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


_HOSTILE = ["$(touch /tmp/x)", "`id`", "'", '"', ";", "|", "&", "<", ">", " ", "\x00", "\x1b]52;"]
_NUMBERS = st.one_of(
    st.integers(0, 250).map(str),
    st.integers(0, 10**30).map(str),
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.just("0" * 300 + "1"),
)
_WORDS = st.sampled_from(["PATCH", "RFC", "net-next", "PATCHv2", "Re:", "Fwd:", "v", "[", "]", "/"])


@st.composite
def subjects(draw: st.DrawFn) -> str:
    """A subject tag as maintainers write it, and as an attacker would."""
    parts = draw(st.lists(_WORDS, max_size=3))
    if draw(st.booleans()):
        parts.append("v" + draw(_NUMBERS))
    if draw(st.booleans()):
        parts.append(f"{draw(_NUMBERS)}{draw(st.sampled_from(['/', ' / ']))}{draw(_NUMBERS)}")
    prefix = draw(st.sampled_from(["", "Re: ", "Re: Re: ", "Aw:"]))
    title = draw(st.text(max_size=40))
    return f"{prefix}[{' '.join(parts)}] {title}"


@st.composite
def message_ids(draw: st.DrawFn) -> str:
    left = draw(st.text(alphabet="abc.+=-_", min_size=1, max_size=12))
    evil = draw(st.lists(st.sampled_from(_HOSTILE), max_size=2))
    right = draw(st.sampled_from(["example.org", "[127.0.0.1]", "", "x@y"]))
    text = left + "".join(evil) + "@" + right
    return draw(st.sampled_from([f"<{text}>", text, f"<{text}> junk", "<~/Maildir>", ""]))


@st.composite
def mails(draw: st.DrawFn) -> bytes:
    """A message from parts a poster controls, as bytes."""
    headers = {
        "From": draw(st.sampled_from(["Dev <dev@example.org>", "=?utf-8?B?!!?= <x@y>", "", "<>"])),
        "Subject": draw(subjects()),
        "Message-ID": draw(message_ids()),
        "In-Reply-To": draw(message_ids()),
        "References": " ".join(draw(st.lists(message_ids(), max_size=3))),
        "Date": draw(
            st.sampled_from(
                ["Wed, 02 Dec 2026 10:00:00 +0000", "Mon, 1 Jan 99999 0:0:0 +0000", "x"]
            )
        ),
        "List-Id": draw(st.sampled_from(["<l.example.org>", "Name <a b>", "<\x1b[31m>"])),
    }
    charset = draw(st.sampled_from(["utf-8", "idna", "punycode", "rot13", "nope", "utf-7", "\x00"]))
    head = "".join(
        f"{k}: {v}\n" for k, v in headers.items() if draw(st.booleans()) or k == "Subject"
    )
    if draw(st.booleans()):
        head += f'Content-Type: text/plain; charset="{charset}"\n'
        head += draw(st.sampled_from(["", "Content-Transfer-Encoding: base64\n"]))
    elif draw(st.booleans()):
        head += 'Content-Type: multipart/mixed; boundary="b"\n'
    body = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        body += b"---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"
    if draw(st.booleans()):
        body = b"--b\nContent-Type: text/plain; charset=idna\n\n" + body + b"\n--b--\n"
    raw = head.encode("utf-8", "surrogateescape") + b"\n" + body
    return draw(st.sampled_from([b"", b"From x@y Thu Jan  1 00:00:00 1970\n"])) + raw


_ANY_MAIL = st.one_of(st.binary(max_size=600), mails())


def _check(mail: Mail) -> None:
    """What every parsed mail promises, whatever it was made of."""
    assert isinstance(mail, Mail)
    assert mail.refused is None or not mail.refused.startswith(PARSER_FAILED), mail.refused
    assert valid_message_id(mail.message_id), mail.message_id
    assert mail.in_reply_to is None or valid_message_id(mail.in_reply_to)
    assert all(valid_message_id(r) for r in mail.references)
    assert valid_message_id(mail.thread_root)
    assert 0 <= mail.tag.version <= MAX_VERSION
    assert mail.tag.total is None or mail.tag.total <= MAX_PATCHES
    reason = grouping.why_ignored(mail)
    assert reason is None or isinstance(reason, str)
    if mail.refused is not None:
        assert reason is not None, "a message set aside is in no series"


@PROPERTY
@given(_ANY_MAIL)
def test_any_bytes_parse_to_a_mail_or_a_reason(raw: bytes) -> None:
    _check(parse(raw))


@PROPERTY
@given(st.one_of(subjects(), st.text(max_size=300)))
def test_any_subject_gives_a_bounded_tag(subject: str) -> None:
    tag, title = parse_subject(subject)
    assert 0 <= tag.version <= MAX_VERSION and isinstance(title, str)
    if tag.number is not None:
        assert tag.total is not None and 0 <= tag.number <= tag.total <= MAX_PATCHES
    assert tag.problem is None or len(tag.problem) < 200, "a reason quotes a long number cut"


def _mostly(honest: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    """``honest`` about four times in five, ``odd`` otherwise."""
    return st.integers(0, 9).flatmap(lambda n: odd if n in (4, 5) else honest)


@st.composite
def series_mails(draw: st.DrawFn) -> bytes:
    """A patch or cover letter of a few threads and versions (so series really form), its
    numbers now and then absurd, its ids now and then hostile."""
    root = draw(st.sampled_from(["r1@x.org", "r2@x.org", "r3@x.org"]))
    version = draw(_mostly(st.integers(1, 2), st.sampled_from([0, 999, 1000, 10**40])))
    total = draw(_mostly(st.integers(1, 5), st.sampled_from([200, 201, 10**30])))
    number = draw(_mostly(st.integers(0, total) if total < 10 else st.just(1), st.integers(0, 9)))
    mid = draw(_mostly(st.integers(0, 40).map("m{}@x.org".format), message_ids()))
    refs = draw(_mostly(st.just(f"<{root}>"), st.sampled_from(["", f"<{root}> <`id`@x>"])))
    author = draw(st.sampled_from(["A <a@x.org>", "B <b@x.org>"]))
    subject = f"[PATCH v{version} {number}/{total}] {draw(st.sampled_from(['mm: a', 'MM: A.']))}"
    head = f"From: {author}\nSubject: {subject}\nMessage-ID: <{mid}>\n"
    head += f"In-Reply-To: {refs.split(' ')[-1]}\nReferences: {refs}\n" if refs else ""
    body = "Hi\n" if number == 0 else "---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n"
    body += draw(st.sampled_from(["", "change-id: 20261201-a-1\n", "change-id: $(x)\n"]))
    return (head + "\n" + body).encode()


@PROPERTY
@given(st.lists(_mostly(series_mails(), _ANY_MAIL), max_size=12))
def test_any_mails_group_into_bounded_series(raws: list[bytes]) -> None:
    parsed = [parse(r) for r in raws]
    candidates = grouping.group(parsed)
    for candidate in candidates:
        assert candidate.total <= MAX_PATCHES and set(candidate.present) <= set(range(201))
        assert len(candidate.missing) <= MAX_PATCHES
        assert candidate.key.version <= MAX_VERSION
        assert valid_message_id(candidate.anchor) and valid_message_id(candidate.key.root)
        assert grouping.SeriesKey.parse(str(candidate.key)) == candidate.key
    superseded = grouping.superseded(candidates)
    assert all(new.version > old.version for old, new in superseded.items())


@st.composite
def mboxes(draw: st.DrawFn) -> bytes:
    """An mbox of hostile messages, or bytes that only look like one."""
    messages = draw(st.lists(_ANY_MAIL, min_size=1, max_size=5))
    separator = b"From x@y Thu Jan  1 00:00:00 1970\n"
    return b"".join(m if m.startswith(b"From ") else separator + m + b"\n" for m in messages)


@PROPERTY
@given(st.one_of(st.binary(max_size=600), mboxes()), st.booleans())
def test_any_mbox_reads_as_a_series_or_a_series_error(raw: bytes, allow_missing: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "series.mbox"
        path.write_bytes(raw)
        try:
            series = read_series(path, allow_missing=allow_missing)
        except SeriesError as exc:
            assert str(exc), "a SeriesError names what is wrong"
            return
    assert isinstance(series, Series) and series.patches
    for patch in series.patches:
        assert patch.total is None or patch.total <= MAX_PATCHES
    assert all(isinstance(m, str) for m in split_mbox(raw.decode("utf-8", "replace")))


@PROPERTY
@given(st.one_of(message_ids(), st.text(max_size=80), st.builds("<{}>".format, st.text())))
def test_any_series_text_is_a_ref_or_a_series_error(text: str) -> None:
    """``--series TEXT``: a SeriesRef or a SeriesError; ``<...>`` is never a path."""
    try:
        ref = intake.parse_ref(text, "http://127.0.0.1:1/list")
    except SeriesError as exc:
        assert "--series" in str(exc)
        return
    if ref.message_id is not None:
        assert valid_message_id(ref.message_id) and ref.path is None
    if text.strip().startswith("<") and text.strip().endswith(">"):
        assert ref.path is None, f"{text!r} read as the path {ref.path}"
