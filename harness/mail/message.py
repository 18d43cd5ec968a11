"""One mail message as the bot sees it: parsed once, never raising on bad mail.

A mailing list carries everything: patches, cover letters, reviews, the
bot's own replies, spam, mail in Latin-1 with no charset, headers folded
wrongly, and messages with no Message-ID at all.  Everything here turns raw
bytes into a :class:`Mail` record whatever they hold; what could not be read
is recorded in ``problems`` and the message is then simply not a patch.

The subject tag, replies, cover letters and diffs are read by
:mod:`harness.mail.grammar`, the one grammar :mod:`harness.kernels.patches`
uses too.

Every field is data from a stranger.  Numbers in a tag are bounded (a
version over :data:`MAX_VERSION`, a place over :data:`MAX_PATCHES`), every
Message-ID (its own, In-Reply-To, References) must be a plain RFC 5322
msg-id (:func:`valid_message_id`), and a message that breaks either is
*set aside*: :attr:`Mail.refused` says why, and nothing downstream builds a
series, a path or a command line from it.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from email.message import Message

from harness.mail.grammar import (
    MAX_PATCHES,
    MAX_SUBJECT,
    MAX_VERSION,
    Role,
    Tag,
    diff_start,
    is_reply,
    parse_subject,
    role,
)

# the subject's names are re-exported: a reader of a Mail finds its Tag here
__all__ = [
    "BOT_HEADER",
    "MAX_MAIL_BYTES",
    "MAX_MESSAGE_ID",
    "MAX_PATCHES",
    "MAX_SUBJECT",
    "MAX_VERSION",
    "NOT_A_MSGID",
    "PARSER_FAILED",
    "Mail",
    "Tag",
    "parse",
    "parse_subject",
    "valid_message_id",
]

# A header the bot puts on its own replies: it never reacts to a message carrying it.
BOT_HEADER = "X-Kharness-Bot"

# Bounds on what a message may be (a subject's: harness.mail.grammar).
MAX_MESSAGE_ID = 250  # characters of a msg-id between the angle brackets
MAX_MAIL_BYTES = 64 * 1024 * 1024  # a message larger than this is set aside unread

_MSGID = re.compile(r"<([^<>\s]+)>")
_ANY_ID = re.compile(r"<([^<>]*)>")  # spaces too: "<$(x y)@h>" is an invalid id, not none
_OWN_ID = re.compile(r"\s*<([^<>\s]+)>\s*(?:\([^()]*\)\s*)?")
# RFC 5322 atext without the characters a shell or a quoting mistake would act on
# ($ ` | ' &) and "/" (an id is the last step of an inbox URL), dots anywhere (real mail
# has "a..b@host"), one "@", the right side a domain-like text or a bracketed literal.
_ID_CHARS = r"A-Za-z0-9!#%*+\-=?^_{}~."
_VALID_ID = re.compile(rf"[{_ID_CHARS}]+@(?:[{_ID_CHARS}]+|\[[A-Za-z0-9.:\-]+\])")
_BASE = re.compile(r"^base-commit:\s*([0-9a-f]{7,40})\s*$", re.MULTILINE)
_CHANGE_ID = re.compile(r"^change-id:[ \t]*([A-Za-z0-9._+-]{1,100})[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Mail:
    """A parsed message: the fields the bot, the replies and b4-check read."""

    message_id: str  # without angle brackets; made up from the content if absent
    subject: str  # the whole subject, unfolded
    title: str  # the subject without Re: and the bracket tags
    sender: str  # the From address, or '' if unreadable
    sender_name: str
    date: float | None  # seconds since the epoch, None if absent or unreadable
    in_reply_to: str | None
    references: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    list_id: str | None
    body: str  # the text/plain body, decoded with replacement
    tag: Tag
    is_reply: bool  # Re:/Aw:/Fwd: in front
    from_bot: bool  # carries BOT_HEADER
    raw: bytes = field(repr=False, default=b"")
    problems: tuple[str, ...] = ()  # what could not be read
    refused: str | None = None  # why the bot sets this message aside (None: it may be used)

    @property
    def has_diff(self) -> bool:
        """Whether the body holds a diff (a patch, not prose)."""
        return diff_start(self.body) is not None

    @property
    def is_patch(self) -> bool:
        """A patch to apply: tagged PATCH (or numbered), not a reply, with a diff."""
        return (
            not self.from_bot
            and role(self.subject, self.tag, self.has_diff) is Role.PATCH
            and (self.tag.is_patch or self.tag.number is not None)
        )

    @property
    def is_cover(self) -> bool:
        """A cover letter: ``[PATCH 0/n]`` that is not a reply."""
        return not self.from_bot and role(self.subject, self.tag, self.has_diff) is Role.COVER

    @property
    def base_commit(self) -> str | None:
        """The ``base-commit:`` line git format-patch --base (and b4) puts in."""
        m = _BASE.search(self.body)
        return m.group(1) if m else None

    @property
    def change_id(self) -> str | None:
        """b4's ``change-id:`` line (b4 prep): the same in every version of a series."""
        m = _CHANGE_ID.search(self.body)
        return m.group(1) if m else None

    @property
    def thread_root(self) -> str:
        """The first message of the thread as far as this message knows it."""
        if self.references:
            return self.references[0]
        return self.in_reply_to or self.message_id


def parse(raw: bytes) -> Mail:
    """Parse raw message bytes (an mbox ``From `` line in front is allowed); never raises."""
    if len(raw) > MAX_MAIL_BYTES:
        return _set_aside(raw, f"the message is {len(raw)} bytes, over {MAX_MAIL_BYTES}")
    try:
        return _parse(raw)
    except Exception as exc:  # the last guard; the property tests fail on any mail reaching it
        return _set_aside(raw, f"{PARSER_FAILED}: {type(exc).__name__}: {_shown(str(exc))}")


# What Mail.refused starts with when the parser itself failed (a bug to fix, never a verdict).
PARSER_FAILED = "the message could not be parsed"


def _parse(raw: bytes) -> Mail:
    problems: list[str] = []
    if raw.startswith(b"From ") and b"\n" in raw:
        raw = raw.split(b"\n", 1)[1]
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    for defect in message.defects:
        problems.append(type(defect).__name__)
    subject = " ".join(_header(message, "Subject", problems).split())
    refused = None
    if len(subject) > MAX_SUBJECT:
        refused = f"a subject of {len(subject)} characters, over {MAX_SUBJECT}"
        problems.append(refused)
        subject = subject[:MAX_SUBJECT]
    reply = is_reply(subject)
    tag, title = parse_subject(subject)
    refused = refused or tag.problem
    name, address = email.utils.parseaddr(_header(message, "From", problems))
    header_id = _header(message, "Message-ID", problems)
    message_id = _own_id(header_id)
    if message_id is None or not valid_message_id(message_id):
        made_up = f"kharness-no-id-{hashlib.sha1(raw).hexdigest()[:16]}@localhost"
        if header_id.strip():
            refused = refused or f"Message-ID {_shown(header_id.strip())} {NOT_A_MSGID}"
            problems.append(refused)
        else:
            problems.append("no Message-ID")
        message_id = made_up
    in_reply_to, bad_parent = _thread_ids(_header(message, "In-Reply-To", problems))
    references, bad_reference = _thread_ids(_header(message, "References", problems))
    for header, bad in (("In-Reply-To", bad_parent), ("References", bad_reference)):
        if bad is not None:  # the thread (so the series) it names cannot be trusted
            problems.append(f"{header}: {_shown(bad)} {NOT_A_MSGID}")
            refused = refused or problems[-1]
    list_id = _first_id(_header(message, "List-Id", problems))
    if list_id is not None and not _VALID_LIST_ID.fullmatch(list_id):
        problems.append(f"List-Id {_shown(list_id)} is not a list id; ignored")
        list_id = None
    return Mail(
        message_id=message_id,
        subject=subject,
        title=title,
        sender=address.lower(),
        sender_name=name,
        date=_date(_header(message, "Date", problems)),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=references,
        to=_addresses(message, "To", problems),
        cc=_addresses(message, "Cc", problems),
        list_id=list_id,
        body=_body(message, problems),
        tag=tag,
        is_reply=reply,
        from_bot=message.get(BOT_HEADER) is not None,
        raw=raw,
        problems=tuple(problems),
        refused=refused,
    )


NOT_A_MSGID = (
    "is not a valid msg-id (RFC 5322 id-left@id-right in printable ASCII, at most "
    f"{MAX_MESSAGE_ID} characters, not starting with -, no space, quote, /, $, `, |, & or ;)"
)
_VALID_LIST_ID = re.compile(r"[A-Za-z0-9!#%*+\-/=?^_{}~.@]{1,250}")


def valid_message_id(text: str) -> bool:
    """Whether ``text`` (without angle brackets) is a msg-id the harness accepts.

    RFC 5322's ``id-left "@" id-right``, printable ASCII only and bounded, minus
    the characters a shell acts on: such an id is safe as a word of a command
    line, a database key and a directory name's seed; anything else is refused
    rather than escaped, because no honest mailer makes one."""
    return (
        len(text) <= MAX_MESSAGE_ID
        and not text.startswith("-")  # b4 and every child would read it as an option
        and _VALID_ID.fullmatch(text) is not None
    )


def _set_aside(raw: bytes, why: str) -> Mail:
    """A message the bot does not read further: its reason, a made-up id, nothing else."""
    return Mail(
        message_id=f"kharness-no-id-{hashlib.sha1(raw).hexdigest()[:16]}@localhost",
        subject="",
        title="",
        sender="",
        sender_name="",
        date=None,
        in_reply_to=None,
        references=(),
        to=(),
        cc=(),
        list_id=None,
        body="",
        tag=Tag(),
        is_reply=False,
        from_bot=False,
        problems=(why,),
        refused=why,
    )


def _shown(text: str, limit: int = 60) -> str:
    """A stranger's text inside a reason: escaped (repr) and cut, never raw."""
    return ascii(text if len(text) <= limit else text[:limit] + "...")


def _header(message: Message, name: str, problems: list[str]) -> str:
    """A header as text: RFC 2047 words decoded, bad bytes replaced, never an exception."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        parts = email.header.decode_header(str(value))
        text = ""
        for chunk, charset in parts:
            if isinstance(chunk, bytes):
                text += chunk.decode(_charset(charset), errors="replace")
            else:
                text += chunk
        return text.replace("\r", "").replace("\n", " ")
    except Exception as exc:  # malformed encoded words: keep the raw text
        problems.append(f"{name}: {exc}")
        return str(value).encode("utf-8", "replace").decode("utf-8", "replace")


def _charset(name: str | None) -> str:
    if not name or name.lower() in ("unknown-8bit", "x-unknown"):
        return "utf-8"
    try:
        "".encode(name)
    except (LookupError, ValueError, TypeError):  # unknown, or a name no codec could have
        return "utf-8"
    return name


def _first_id(text: str) -> str | None:
    m = _MSGID.search(text)
    if m:
        return m.group(1)
    bare = text.strip()
    return bare if bare and " " not in bare and "@" in bare else None


def _thread_ids(text: str) -> tuple[tuple[str, ...], str | None]:
    """The valid ids of an In-Reply-To or References header, and the first invalid one."""
    found = _ANY_ID.findall(text) or ([text.strip()] if "@" in text and "<" not in text else [])
    bad = next((i for i in found if not valid_message_id(i)), None)
    return tuple(i for i in found if valid_message_id(i)), bad


def _own_id(text: str) -> str | None:
    """A Message-ID header's one id: ``<id>`` (a trailing comment allowed) or a bare id;
    None when the header holds anything else (``<a<b@x>``, two ids, text around it)."""
    m = _OWN_ID.fullmatch(text)
    if m:
        return m.group(1)
    bare = text.strip()
    return bare if bare and not any(c in bare for c in "<> \t") else None


def _addresses(message: Message, name: str, problems: list[str]) -> tuple[str, ...]:
    text = _header(message, name, problems)
    return tuple(a.lower() for _n, a in email.utils.getaddresses([text]) if "@" in a)


def _date(text: str) -> float | None:
    if not text:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
        return parsed.timestamp() if parsed else None
    except (TypeError, ValueError, IndexError, OverflowError):  # year 99999, day 0, ...
        return None


def _body(message: Message, problems: list[str]) -> str:
    """The first text/plain part, decoded by its charset (UTF-8 if it names none or a bad one)."""
    part = message
    if message.is_multipart():
        found = next(
            (p for p in message.walk() if p.get_content_type() == "text/plain"),
            None,
        )
        if found is None:
            problems.append("no text/plain part")
            return ""
        part = found
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:  # broken base64 and friends
        problems.append(f"body: {exc}")
        return ""
    if not isinstance(payload, bytes):
        return str(part.get_payload())
    charset = _charset(part.get_content_charset())
    try:
        text = payload.decode(charset, errors="replace")
    except (UnicodeError, LookupError, TypeError):  # idna, punycode: no "replace" handler
        problems.append(f"body: charset {_shown(charset)} cannot decode it; read as UTF-8")
        charset = "utf-8"
        text = payload.decode(charset, errors="replace")
    if "\ufffd" in text and charset != "latin-1":
        problems.append(f"body is not valid {charset}")
    return text.replace("\r\n", "\n")
