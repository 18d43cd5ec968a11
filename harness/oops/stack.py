"""Reading a report's stack out of its console lines: frames, the trace, the instruction pointer.

Text in, :class:`~harness.oops.frames.Frame` records out; which frame is the
bug is :mod:`harness.oops.guilty`'s business, where a report starts and ends
is :mod:`harness.oops.parse`'s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.oops import formats as F
from harness.oops.frames import Frame

_FRAME = re.compile(F.FRAME)
_FILLER = re.compile("|".join(f"(?:{F.expand(p)})" for p in F.TRACE_FILLER))
_RIP = re.compile(F.expand(F.RIP))
_CALL_TRACE = re.compile(F.CALL_TRACE)
_SUFFIX = re.compile(F.FUNC_SUFFIX)
_FRAME_PARTS = re.compile(
    r"(?P<func>[A-Za-z_.$][\w.$]*)\+(?P<off>0x[0-9a-f]+)/(?P<size>0x[0-9a-f]+)"
    r"(?:\s+\[(?P<module>[\w-]+)\])?"
)


def normalize_func(name: str) -> str:
    """Drop compiler suffixes (".constprop.0", ".cold"...) from a symbol."""
    return _SUFFIX.sub("", name)


def find(pattern: re.Pattern[str], lines: Sequence[str], start: int, last: int) -> int | None:
    for i in range(start, last + 1):
        if pattern.match(lines[i]):
            return i
    return None


def trace_start(lines: Sequence[str], start: int, last: int) -> int:
    """The "Call Trace:" line after `start`, if any: frames printed before it
    (such as "Preemption disabled at:") are not the stack."""
    found = find(_CALL_TRACE, lines, start, last)
    return start if found is None else found


def _frame(line: str, reliable: bool = True) -> Frame | None:
    """The function+offset/size [module] part of a frame or RIP line."""
    m = _FRAME_PARTS.search(line)
    if not m:
        return None
    off, size = int(m.group("off"), 16), int(m.group("size"), 16)
    return Frame(m.group("func"), off, size, m.group("module"), reliable)


def _interleaved(lines: Sequence[str], i: int, last: int) -> bool:
    """Line ``i`` is one line of another CPU's output inside a trace (a frame follows it)."""
    return i + 1 <= last and bool(_FRAME.match(lines[i + 1]))


def call_trace(
    lines: Sequence[str], eligible: Sequence[bool], start: int, last: int
) -> list[Frame]:
    """The first block of frames from `start`, "? " frames marked unreliable."""
    frames: list[Frame] = []
    seen = False
    for i in range(start, last + 1):
        m = _FRAME.match(lines[i]) if eligible[i] else None
        frame = _frame(lines[i][m.start("func") :], not m.group("unreliable")) if m else None
        if frame is not None:
            seen = True
            frames.append(frame)
        elif (
            seen
            and eligible[i]
            and not _FILLER.match(lines[i])
            and not _interleaved(lines, i, last)
        ):
            break
    return frames


def names(frames: Sequence[Frame]) -> list[str]:
    """The trace as function names; only "? " frames if the unwinder left nothing else.

    The guessing unwinder (CONFIG_UNWINDER_GUESS) marks every frame "?": its
    frames are then all there is to name the culprit, so they are kept.
    """
    reliable = [f for f in frames if f.reliable]
    return [normalize_func(f.func) for f in (reliable or frames)]


def suspects(frames: Sequence[Frame]) -> list[str]:
    """The trace's names that may be blamed: `_names` without misnamed return addresses.

    A frame below the top one is a return address. At offset 0 it is the
    first byte of a function, so the call before it was the last instruction
    of the function in front (a noreturn call such as panic() at the end of
    sysrq_handle_crash): the printed name is that next function, which never
    ran. Blaming it would be wrong, so such frames are passed over.
    """
    kept = [f for i, f in enumerate(frames) if i == 0 or f.offset != 0]
    return names(kept)


def rip_frame(lines: Sequence[str], start: int, last: int) -> Frame | None:
    for i in range(start, last + 1):
        m = _RIP.match(lines[i])
        if m:
            return _frame(lines[i][m.start("func") :])
    return None
