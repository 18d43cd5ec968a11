"""One mail message as the bot sees it: parsed once, never raising on bad mail.

A mailing list carries everything: patches, cover letters, reviews, the
bot's own replies, spam, mail in Latin-1 with no charset, headers folded
wrongly, and messages with no Message-ID at all.  Everything here turns raw
bytes into a :class:`Mail` record whatever they hold; what could not be read
is recorded in ``problems`` and the message is then simply not a patch.

The subject tag (``[PATCH v2 3/5]``, ``[RFC PATCH net-next 0/2]``) is read
the way kernel maintainers write it: the version and the m/n place are
anywhere in the bracket, the list prefix may come before PATCH, and ``Re:``
in front makes it a reply, never a patch.
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

# A header the bot puts on its own replies: it never reacts to a message carrying it.
BOT_HEADER = "X-Kharness-Bot"

_TAG = re.compile(r"^\s*((?:\[[^\]]*\]\s*)+)(.*)$", re.DOTALL)
_PLACE = re.compile(r"(?<![\w.])(\d+)\s*/\s*(\d+)(?![\w.])")
_VERSION = re.compile(r"(?i)(?<![\w])v(\d+)(?![\w])")
_REPLY = re.compile(r"(?i)^\s*(re|aw|fwd?|antw)\s*:")
_MSGID = re.compile(r"<([^<>\s]+)>")
_BASE = re.compile(r"^base-commit:\s*([0-9a-f]{7,40})\s*$", re.MULTILINE)
_CHANGE_ID = re.compile(r"^change-id:\s*(\S+)\s*$", re.MULTILINE)
_DIFF = re.compile(r"^(diff --git |--- \S+\n\+\+\+ \S)", re.MULTILINE)


@dataclass(frozen=True)
class Tag:
    """What the subject's bracket says: ``[PATCH v2 3/5]`` is version 2, patch 3 of 5."""

    is_patch: bool = False
    version: int = 1
    number: int | None = None
    total: int | None = None
    prefixes: tuple[str, ...] = ()  # RFC, net-next, ... (the words besides PATCH and vN)

    @property
    def is_cover(self) -> bool:
        """``0/n``: a cover letter."""
        return self.is_patch and self.number == 0


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

    @property
    def has_diff(self) -> bool:
        """Whether the body holds a diff (a patch, not prose)."""
        return bool(_DIFF.search(self.body))

    @property
    def is_patch(self) -> bool:
        """A patch to apply: tagged PATCH (or numbered), not a reply, with a diff."""
        return (
            not self.is_reply
            and not self.from_bot
            and self.has_diff
            and (self.tag.is_patch or self.tag.number is not None)
        )

    @property
    def is_cover(self) -> bool:
        """A cover letter: ``[PATCH 0/n]`` that is not a reply."""
        return not self.is_reply and not self.from_bot and self.tag.is_cover

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
    """Parse raw message bytes (an mbox ``From `` line in front is allowed)."""
    problems: list[str] = []
    if raw.startswith(b"From ") and b"\n" in raw:
        raw = raw.split(b"\n", 1)[1]
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    for defect in message.defects:
        problems.append(type(defect).__name__)
    subject = " ".join(_header(message, "Subject", problems).split())
    is_reply = bool(_REPLY.match(subject))
    tag, title = parse_subject(subject)
    name, address = email.utils.parseaddr(_header(message, "From", problems))
    message_id = _first_id(_header(message, "Message-ID", problems))
    if message_id is None:
        problems.append("no Message-ID")
        message_id = f"kharness-no-id-{hashlib.sha1(raw).hexdigest()[:16]}@localhost"
    return Mail(
        message_id=message_id,
        subject=subject,
        title=title,
        sender=address.lower(),
        sender_name=name,
        date=_date(_header(message, "Date", problems)),
        in_reply_to=_first_id(_header(message, "In-Reply-To", problems)),
        references=tuple(_MSGID.findall(_header(message, "References", problems))),
        to=_addresses(message, "To", problems),
        cc=_addresses(message, "Cc", problems),
        list_id=_first_id(_header(message, "List-Id", problems)),
        body=_body(message, problems),
        tag=tag,
        is_reply=is_reply,
        from_bot=message.get(BOT_HEADER) is not None,
        raw=raw,
        problems=tuple(problems),
    )


def parse_subject(subject: str) -> tuple[Tag, str]:
    """The tag and the bare title of a subject line."""
    text = _REPLY.sub("", subject).strip()
    while _REPLY.match(text):
        text = _REPLY.sub("", text).strip()
    m = _TAG.match(text)
    if not m:
        return Tag(), text
    brackets, title = m.group(1), m.group(2).strip()
    words: list[str] = []
    for inner in re.findall(r"\[([^\]]*)\]", brackets):
        words += re.sub(r"(\d+)\s*/\s*(\d+)", r"\1/\2", inner).split()
    upper = [w.upper() for w in words]
    is_patch = any(w in ("PATCH", "RFC", "PATCHV2") or w.startswith("PATCH") for w in upper)
    version = 1
    number = total = None
    prefixes = []
    for word in words:
        v = _VERSION.fullmatch(word) or re.fullmatch(r"(?i)patchv(\d+)", word)
        place = _PLACE.fullmatch(word)
        if v:
            version = int(v.group(1))
        elif place:
            number, total = int(place.group(1)), int(place.group(2))
        elif word.upper() != "PATCH":
            prefixes.append(word)
    return Tag(is_patch, version, number, total, tuple(prefixes)), title


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
    except LookupError:
        return "utf-8"
    return name


def _first_id(text: str) -> str | None:
    m = _MSGID.search(text)
    if m:
        return m.group(1)
    bare = text.strip()
    return bare if bare and " " not in bare and "@" in bare else None


def _addresses(message: Message, name: str, problems: list[str]) -> tuple[str, ...]:
    text = _header(message, name, problems)
    return tuple(a.lower() for _n, a in email.utils.getaddresses([text]) if "@" in a)


def _date(text: str) -> float | None:
    if not text:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed else None


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
    text = payload.decode(charset, errors="replace")
    if "\ufffd" in text and charset != "latin-1":
        problems.append(f"body is not valid {charset}")
    return text.replace("\r\n", "\n")
