"""What patch mail looks like: one grammar for the bot and for a series read from a file.

The subject tag (``[PATCH v2 3/5]``, ``[RFC PATCH net-next 0/2]``) is read
the way kernel maintainers write it: the version and the m/n place are
anywhere in the bracket, the list prefix may come before PATCH, and
``Re:``/``Aw:``/``Fwd:``/``Antw:`` in front make it a reply, never a patch.
Where a diff starts, what part a message plays in a series (:func:`role`)
and which places of a series are missing (:func:`missing_places`) are
decided here too, so :mod:`harness.mail.message` (the bot) and
:mod:`harness.kernels.patches` (``--series FILE``) cannot disagree.

Only the standard library is imported: both sides may depend on this
module without depending on each other.  Every number in a tag is bounded
before ``int()`` sees it; nothing here raises on a stranger's subject.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Bounds on what a subject may claim; a message over them is set aside, never parsed further.
MAX_VERSION = 999
MAX_PATCHES = 200  # patches one series may have (the kernel's biggest series stay well below)
MAX_SUBJECT = 1000  # characters of a subject read for its tag (RFC 5322 lines are <= 998)
_DIGITS = 6  # longer digit runs in a tag are refused before int() sees them

_TAG = re.compile(r"^\s*((?:\[[^\]]*\]\s*)+)(.*)$", re.DOTALL)
_PLACE = re.compile(r"(?<![\w.])(\d+)\s*/\s*(\d+)(?![\w.])")
_SPACED_PLACE = re.compile(r"(?<!\d)(\d+)\s*/\s*(\d+)")  # (?<!\d): linear on long digit runs
_VERSION = re.compile(r"(?i)(?<![\w])v(\d+)(?![\w])")
_REPLY = re.compile(r"(?i)^\s*(re|aw|fwd?|antw)\s*:")
# a git diff, a unified diff's ---/+++ pair, or quilt's "Index:" line over its ==== rule
_DIFF = re.compile(r"^(?:diff --git |--- \S[^\n]*\n\+\+\+ \S|Index: \S[^\n]*\n={10,}\n)", re.M)


@dataclass(frozen=True)
class Tag:
    """What the subject's bracket says: ``[PATCH v2 3/5]`` is version 2, patch 3 of 5."""

    is_patch: bool = False
    version: int = 1
    number: int | None = None
    total: int | None = None
    prefixes: tuple[str, ...] = ()  # RFC, net-next, ... (the words besides PATCH and vN)
    problem: str | None = None  # a number over its bound: the message is set aside

    @property
    def is_cover(self) -> bool:
        """``0/n``: a cover letter."""
        return self.is_patch and self.number == 0


class Role(enum.Enum):
    """The part a message plays in a series."""

    REPLY = "reply"  # Re:/Aw:/Fwd:/Antw: in front: never a patch, whatever it holds
    COVER = "cover"  # [PATCH 0/n]
    PATCH = "patch"  # holds a diff
    NO_DIFF = "no diff"  # neither: prose, or tagged PATCH without a diff


def is_reply(subject: str) -> bool:
    """Whether the subject starts with a reply or forward marker (``Re:``, ``Fwd:``, ...)."""
    return _REPLY.match(subject[:MAX_SUBJECT]) is not None


def diff_start(text: str) -> int | None:
    """Where the first diff of ``text`` starts (its first file header), None if it has none."""
    m = _DIFF.search(text)
    return m.start() if m else None


def role(subject: str, tag: Tag, has_diff: bool) -> Role:
    """What a message with this subject (parsed to ``tag``) is to its series."""
    if is_reply(subject):
        return Role.REPLY
    if tag.is_cover:
        return Role.COVER
    return Role.PATCH if has_diff else Role.NO_DIFF


def missing_places(total: int, present: Iterable[int | None]) -> tuple[int, ...]:
    """The places 1..total no message holds; never counted past :data:`MAX_PATCHES`."""
    there = set(present)
    return tuple(n for n in range(1, min(total, MAX_PATCHES) + 1) if n not in there)


def parse_subject(subject: str) -> tuple[Tag, str]:
    """The tag and the bare title of a subject line (``Tag.problem`` set for absurd numbers)."""
    text = _REPLY.sub("", subject[:MAX_SUBJECT]).strip()
    while _REPLY.match(text):
        text = _REPLY.sub("", text).strip()
    m = _TAG.match(text)
    if not m:
        return Tag(), text
    brackets, title = m.group(1), m.group(2).strip()
    words: list[str] = []
    for inner in re.findall(r"\[([^\]]*)\]", brackets):
        words += _SPACED_PLACE.sub(r"\1/\2", inner).split()
    upper = [w.upper() for w in words]
    is_patch = any(w in ("PATCH", "RFC", "PATCHV2") or w.startswith("PATCH") for w in upper)
    version = 1
    number = total = None
    prefixes = []
    problem = None
    for word in words:
        v = _VERSION.fullmatch(word) or re.fullmatch(r"(?i)patchv(\d+)", word)
        place = _PLACE.fullmatch(word)
        if v:
            found = _bounded(v.group(1), MAX_VERSION)
            if found is None:
                problem = problem or f"version v{_digits(v.group(1))} is over {MAX_VERSION}"
            else:
                version = found
        elif place:
            n, of = _bounded(place.group(1), MAX_PATCHES), _bounded(place.group(2), MAX_PATCHES)
            shown = f"{_digits(place.group(1))}/{_digits(place.group(2))}"
            if n is None or of is None:
                problem = problem or f"patch {shown}: more than {MAX_PATCHES} patches"
            elif n > of:
                problem = problem or f"patch {shown}: its number is over the total"
            else:
                number, total = n, of
        elif word.upper() != "PATCH":
            prefixes.append(word)
    return Tag(is_patch, version, number, total, tuple(prefixes), problem), title


def _bounded(digits: str, limit: int) -> int | None:
    """``int(digits)`` if it is at most ``limit``; None (never a huge int) otherwise."""
    if len(digits) > _DIGITS:
        return None
    value = int(digits)
    return value if value <= limit else None


def _digits(digits: str) -> str:
    """A number as a reason shows it: a long one cut, with its length."""
    return digits if len(digits) <= 12 else f"{digits[:12]}...({len(digits)} digits)"
