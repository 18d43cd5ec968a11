"""Which frame of a report's stack is the bug: the table's skip lists and picks applied.

The parser hands over the candidates in the order the kernel printed them
(the header's own function, the instruction pointer, the call trace); the
format row says which of them are machinery (`Format.skip` plus the common
lists) and how to choose among the rest (`Format.pick`).  The rules are
syzkaller's (pkg/report), so that a title here is the title syzbot gives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.oops import formats as F
from harness.oops.formats import Pick

_ANCHORS = re.compile("|".join(f"(?:{a})" for a in F.STALL_ANCHORS))
_INTERRUPT = re.compile(F.STALL_INTERRUPT)
_HANG_SKIP = re.compile("|".join(f"(?:{p})" for p in F.HANG_SKIP))


def canonical(name: str) -> str:
    """``name`` without a syscall wrapper prefix: the shortest single strip, as syzbot does."""
    return min((name.removeprefix(p) for p in F.STRIP_PREFIXES), key=len, default=name)


def after_interrupt(names: Sequence[str]) -> list[str]:
    """The frames below the last timer-interrupt entry (all of them if there is none).

    A stall is noticed by the timer interrupt: the frames above its entry
    are the detector, the ones below are the loop that stalled.
    """
    last = max((i for i, n in enumerate(names) if _INTERRUPT.fullmatch(n)), default=-1)
    return list(names[last + 1 :])


def choose(pick: Pick, names: Sequence[str]) -> str | None:
    """The guilty frame among ``names`` (already without skipped frames), or None."""
    if not names:
        return None
    if pick is Pick.STALL:
        for i, name in enumerate(names):
            if "smp_call_function" in name:
                return "smp_call_function"  # one bucket for its _single/_many/_any forms
            if _ANCHORS.search(name):
                return names[max(i - 1, 0)]
        return None
    if pick is Pick.HANG:
        for name in names:
            for needle, bucket in F.HANG_BUCKETS:
                if needle in name:
                    return bucket
        return next((n for n in names if not _HANG_SKIP.fullmatch(n)), None)
    return names[0]
