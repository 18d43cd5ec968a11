"""The records of a report's stack: frames as printed, and what they decode to.

The parser fills :class:`Frame` (text in, no files read); the symbolizer
(:mod:`harness.oops.symbolize`) turns them into :class:`SymbolizedFrame` values
with file:line per frame, inlined callers included; the maintainers lookup
(:mod:`harness.oops.maintainers`) adds who to tell.  Both attach a
:class:`Decoded` to the report, which every output renders the same way
(:func:`render_decoded`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Frame:
    """One frame as the kernel printed it: ``func+0x12/0x80 [module]``.

    Function+offset does not move with KASLR or module load addresses, so
    it is what gets looked up in vmlinux or the module's .ko.
    """

    func: str  # as printed, compiler suffixes kept (".constprop.0" is its own symbol)
    offset: int
    size: int
    module: str | None = None
    reliable: bool = True  # False for "? " frames (the unwinder guessed)

    @property
    def text(self) -> str:
        """Back as the kernel prints it."""
        mod = f" [{self.module}]" if self.module else ""
        return f"{self.func}+{self.offset:#x}/{self.size:#x}{mod}"


@dataclass(frozen=True)
class SourceLine:
    """One function at one line of a source file (path relative to the tree)."""

    function: str
    file: str
    line: int

    @property
    def where(self) -> str:
        """'mm/huge_memory.c:2491'."""
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class SymbolizedFrame:
    """A frame and the source lines it stands for.

    ``lines`` runs from the innermost inlined function to the function the
    frame names: a frame without inlining has one line.  Empty when the
    symbolizer found nothing (a symbol absent from the debug info).
    """

    frame: str  # as printed, without "? "
    lines: tuple[SourceLine, ...] = ()
    ip: bool = False  # the RIP/PC line, not a call-trace frame
    reliable: bool = True

    @property
    def where(self) -> str | None:
        """The exact line (the innermost inlined one), if known."""
        return self.lines[0].where if self.lines else None


@dataclass(frozen=True)
class Maintainer:
    """One address get_maintainer.pl suggested, and its role (maintainer, reviewer, list)."""

    address: str  # 'Andrew Morton <akpm@linux-foundation.org>' or 'linux-mm@kvack.org'
    role: str  # 'maintainer', 'reviewer', 'supporter', 'list', 'open list', ...

    @property
    def to(self) -> bool:
        """Maintainers go on To:, reviewers and lists on Cc:."""
        return self.role in ("maintainer", "supporter", "odd fixer")


@dataclass(frozen=True)
class Decoded:
    """What a report's trace decodes to, with the kernel's debug info at hand."""

    frames: tuple[SymbolizedFrame, ...] = ()
    guilty: SourceLine | None = None  # the guilty frame's own line
    maintainers: tuple[Maintainer, ...] = ()
    note: str = ""  # why something is missing ("no debug info for module x")

    @property
    def to(self) -> tuple[str, ...]:
        """Suggested To: addresses."""
        return tuple(m.address for m in self.maintainers if m.to)

    @property
    def cc(self) -> tuple[str, ...]:
        """Suggested Cc: addresses."""
        return tuple(m.address for m in self.maintainers if not m.to)


def render_decoded(decoded: Decoded, indent: str = "  ") -> list[str]:
    """The symbolized trace as lines, decode_stacktrace.sh style, for every text output.

    ``RIP: move_pages_huge_pmd+0x6b3/0x6c0 (mm/huge_memory.c:2491)``, one line
    per frame, each inlined function on its own line marked ``(inlined)``
    (not for ``?`` frames, which may be stale stack).
    """
    lines: list[str] = []
    if decoded.guilty is not None:
        lines.append(f"{indent}guilty: {decoded.guilty.function} ({decoded.guilty.where})")
    trace_started = False
    for frame in decoded.frames:
        if frame.ip:
            head = f"{indent}RIP: "
        else:
            if not trace_started:
                lines.append(f"{indent}Call Trace:")
                trace_started = True
            head = f"{indent} " + ("" if frame.reliable else "? ")
        if not frame.lines:
            lines.append(f"{head}{frame.frame} (?)")
            continue
        *inlined, own = frame.lines
        lines.append(f"{head}{frame.frame} ({own.where})")
        if not frame.reliable:
            continue  # a "?" frame may be stale stack: its line, not its inlining
        for line in reversed(inlined):
            lines.append(f"{indent}   {line.function} ({line.where}) (inlined)")
    if decoded.maintainers:
        if decoded.to:
            lines.append(f"{indent}To: {', '.join(decoded.to)}")
        if decoded.cc:
            lines.append(f"{indent}Cc: {', '.join(decoded.cc)}")
    if decoded.note:
        lines.append(f"{indent}({decoded.note})")
    return lines


def _line_json(line: SourceLine) -> dict[str, Any]:
    return {"function": line.function, "file": line.file, "line": line.line}


def _line_back(data: Mapping[str, Any]) -> SourceLine:
    return SourceLine(data["function"], data["file"], int(data["line"]))


def decoded_to_json(decoded: Decoded) -> dict[str, Any]:
    """A symbolized trace as plain JSON (summary.json, result.json)."""
    return {
        "guilty": _line_json(decoded.guilty) if decoded.guilty else None,
        "frames": [
            {
                "frame": f.frame,
                "ip": f.ip,
                "reliable": f.reliable,
                "lines": [_line_json(line) for line in f.lines],
            }
            for f in decoded.frames
        ],
        "to": list(decoded.to),
        "cc": list(decoded.cc),
        "maintainers": [{"address": m.address, "role": m.role} for m in decoded.maintainers],
        "note": decoded.note,
    }


def decoded_from_json(data: Mapping[str, Any]) -> Decoded:
    """Back from :func:`decoded_to_json` (``to``/``cc`` are derived, not read)."""
    return Decoded(
        tuple(
            SymbolizedFrame(
                f["frame"],
                tuple(_line_back(line) for line in f.get("lines", ())),
                bool(f.get("ip", False)),
                bool(f.get("reliable", True)),
            )
            for f in data.get("frames", ())
        ),
        _line_back(data["guilty"]) if data.get("guilty") else None,
        tuple(Maintainer(m["address"], m["role"]) for m in data.get("maintainers", ())),
        data.get("note", ""),
    )
