"""Which messages of a list make which series, and which series a newer one replaces.

Pure functions over :class:`Mail` records, so the rules are tested on their
own and the bot's database only stores what they return.  The rules are the
list's own conventions:

* a series is the patches of one thread and one version: ``git format-patch
  --thread`` makes every patch refer to the cover letter (or to patch 1 when
  there is none), so the thread root names the series; a ``[PATCH v2]``
  posted in reply to v1 shares v1's root but not its version;
* it is complete when every patch 1..n is there (a lone ``[PATCH]`` is a
  series of one);
* a newer version replaces an older one of the same author and title,
  whether it came in the same thread or in a new one (the usual way);
* replies, the bot's own mail, and messages without a diff are not patches;
* a message :mod:`harness.mail.message` set aside (an absurd number in its
  tag, an invalid Message-ID) is in no series: its reason is what the bot
  records, so one bad message never stops the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.mail.grammar import MAX_VERSION, missing_places
from harness.mail.message import Mail


@dataclass(frozen=True)
class SeriesKey:
    """One version of one series: the thread root and the version."""

    root: str
    version: int

    def __str__(self) -> str:
        return f"{self.root}#v{self.version}"

    @classmethod
    def parse(cls, text: str) -> SeriesKey:
        """Back from :meth:`__str__`; ValueError (never a huge int) for text it did not write."""
        root, _sep, version = text.rpartition("#v")
        if not root or not version.isascii() or not version.isdigit() or len(version) > 6:
            raise ValueError(f"{text[:80]!r} is not a series key (ROOT#vN, N <= {MAX_VERSION})")
        return cls(root, int(version))


@dataclass(frozen=True)
class Candidate:
    """What the list holds of one series version so far."""

    key: SeriesKey
    title: str  # the cover letter's title, else patch 1's
    sender: str
    total: int  # patches the subject tags promise
    present: tuple[int, ...]  # patch numbers that arrived
    anchor: str  # Message-ID a reply answers: the cover letter, else the lowest patch
    has_cover: bool
    change_id: str | None = None  # b4's change-id, when the series was sent with b4

    @property
    def missing(self) -> tuple[int, ...]:
        """Patch numbers promised but not there (never more than MAX_PATCHES to look at)."""
        return missing_places(self.total, self.present)

    @property
    def complete(self) -> bool:
        """Every patch 1..n arrived."""
        return not self.missing

    @property
    def identity(self) -> tuple[str, str]:
        """What stays the same across versions: the author, and b4's change-id if the series
        has one (a title may change between versions), else its normalized title."""
        if self.change_id:
            return (self.sender, f"change-id {self.change_id}")
        return (self.sender, normalize_title(self.title))


def why_ignored(mail: Mail) -> str | None:
    """Why a message is no part of any series (None: it is a patch or a cover letter)."""
    if mail.from_bot:
        return "the bot's own reply"
    if mail.is_reply:
        return "a reply"
    if mail.refused is not None:
        return f"set aside: {mail.refused}"
    if mail.is_cover or mail.is_patch:
        return None
    if mail.tag.is_patch and not mail.has_diff:
        return "tagged PATCH but holds no diff"
    return "not a patch"


def series_key(mail: Mail) -> SeriesKey:
    """The series version ``mail`` (a patch or cover letter) belongs to."""
    return SeriesKey(mail.thread_root, mail.tag.version)


def group(mails: Iterable[Mail]) -> list[Candidate]:
    """Every series version among ``mails`` (patches and cover letters only), oldest first."""
    by_key: dict[SeriesKey, list[Mail]] = {}
    for mail in mails:
        if why_ignored(mail) is None:
            by_key.setdefault(series_key(mail), []).append(mail)
    return [_candidate(key, members) for key, members in by_key.items()]


def _candidate(key: SeriesKey, members: Sequence[Mail]) -> Candidate:
    cover = next((m for m in members if m.is_cover), None)
    patches = sorted((m for m in members if m.is_patch), key=lambda m: m.tag.number or 1)
    totals = [m.tag.total for m in members if m.tag.total]
    total = max(totals) if totals else max(1, len(patches))
    present = tuple(sorted({m.tag.number or 1 for m in patches}))
    first = cover or (patches[0] if patches else members[0])
    return Candidate(
        key=key,
        title=first.title,
        sender=first.sender,
        total=total,
        present=present,
        anchor=first.message_id,
        has_cover=cover is not None,
        change_id=next((m.change_id for m in (cover, *patches) if m and m.change_id), None),
    )


def superseded(candidates: Sequence[Candidate]) -> dict[SeriesKey, SeriesKey]:
    """Older version -> the newest version of the same author and title."""
    newest: dict[tuple[str, str], Candidate] = {}
    for c in candidates:
        best = newest.get(c.identity)
        if best is None or c.key.version > best.key.version:
            newest[c.identity] = c
    return {
        c.key: newest[c.identity].key
        for c in candidates
        if newest[c.identity].key.version > c.key.version
    }


def normalize_title(title: str) -> str:
    """The title as versions keep it: case, spacing and a trailing period ignored."""
    return re.sub(r"\s+", " ", title).strip().rstrip(".").lower()
