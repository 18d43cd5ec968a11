"""Replies held for a moderator (``--moderate ADDRESS``): the copy they get, their answer.

A bot new to a list should not mail it on day one unseen.  With
``--moderate`` each reply goes to the moderator instead: the same text, with
the recipients it was meant for in ``X-Kharness-Intended-To`` and
``-Cc`` headers and in its first lines, and a subject saying it is held and
its ID.  The moderator releases it (it goes to the thread unchanged) or
drops it, with ``kharness watch-admin release|drop ID`` or by answering
the held copy with one word, ``release`` or ``drop``, first in the body.

An answer counts only when it comes from the moderator's address and
replies to the held copy (its In-Reply-To or References name the copy's
Message-ID, which only its recipients know): anyone else's mail, and the
moderator's mail about anything else, change nothing.  The held copy
carries the bot's header, so the bot never takes it for a patch.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from email.message import EmailMessage

from harness.mail.message import BOT_HEADER, Mail
from harness.mail.smtp import recipients

INTENDED_TO = "X-Kharness-Intended-To"
INTENDED_CC = "X-Kharness-Intended-Cc"
WORDS = ("release", "drop")
_FIRST_WORD = re.compile(r"[A-Za-z]+")


def held_copy(message: EmailMessage, reply_id: int, moderator: str) -> EmailMessage:
    """The copy of ``message`` the moderator gets: to them alone, the intended recipients
    shown, a Message-ID of its own (what their answer must refer to)."""
    to, cc = str(message.get("To", "")), str(message.get("Cc", ""))
    sender = str(message.get("From", ""))
    own = email.utils.parseaddr(sender)[1]
    domain = own.rsplit("@", 1)[-1] if "@" in own else "localhost"
    copy = EmailMessage(policy=message.policy)
    copy["From"] = sender
    copy["To"] = moderator
    copy["Subject"] = f"[kharness held #{reply_id}] {message.get('Subject', '')}"
    copy["Date"] = email.utils.formatdate(localtime=False)
    copy["Message-ID"] = email.utils.make_msgid(f"kharness-held-{reply_id}", domain=domain)
    copy[INTENDED_TO] = to
    if cc:
        copy[INTENDED_CC] = cc
    copy[BOT_HEADER] = "held"
    intended = ", ".join(recipients(message)) or "nobody"
    text = message.get_content() if not message.is_multipart() else ""
    head = [
        f"Held for moderation (#{reply_id}); intended for: {intended}",
        f"  To: {to}",
        *([f"  Cc: {cc}"] if cc else []),
        f"  In-Reply-To: {message.get('In-Reply-To', '')}",
        "Answer with 'release' or 'drop' as the first word of your reply, or run",
        f"kharness watch-admin release {reply_id} (or drop {reply_id}).",
        "",
        "-" * 72,
    ]
    body = "\n".join(head) + "\n" + text
    copy.set_content(body, cte="7bit" if body.isascii() else "8bit")
    return copy


@dataclass(frozen=True)
class Answer:
    """What a message that answers a held copy says, and whether it counts."""

    word: str | None  # release or drop (None: no command word)
    ignored: str | None  # why it does not count (None: it does)


def answer(mail: Mail, moderator: str) -> Answer:
    """How the bot takes ``mail``, a reply to a held copy (the caller found the copy)."""
    if mail.sender.lower() != moderator.lower():
        who = mail.sender or "an unreadable From"
        return Answer(None, f"from {who}, not the moderator {moderator}: ignored")
    word = first_word(mail.body)
    if word not in WORDS:
        return Answer(None, f"the moderator's reply has no command word ({' or '.join(WORDS)})")
    return Answer(word, None)


def first_word(body: str) -> str | None:
    """The body's first word, lower-cased (quoted lines and blank ones skipped)."""
    for line in body.splitlines()[:50]:
        text = line.strip()
        if not text or text.startswith(">"):
            continue
        found = _FIRST_WORD.match(text)
        return found.group(0).lower()[:20] if found else None
    return None
