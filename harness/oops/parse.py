"""Find and classify kernel reports (oopses, warnings, lockups...) in a console log.

The parser is pure: text in, immutable reports out, nothing global changes.
All knowledge about report formats lives in `formats.py`; this module only
walks the lines:

1. Strip printk prefixes from every line. If most lines carry a printk
   timestamp, a line without one was printed by user space (or is a torn
   line) and may not start a report: "BUG: ..." echoed by a test script is
   not a kernel bug.
2. Cut the log into reports. A report starts at a header line of the table
   and ends at its own end line ("---[ end trace", the "====" of sanitizers,
   "Kernel Offset:" of a panic...), at the next header, or after too many
   lines that do not look like report body (then it is trimmed to its last
   body line). A "chained" header in a report's preamble (the die() line
   "Oops: 0000 [#1]" after "BUG: kernel NULL pointer dereference") belongs to
   that report.
3. Read each report: instruction pointer, call trace, guilty frame, taint,
   kernel version, and render its title from the table's template.

A panic is its own PANIC report, never merged into the oops that caused it:
"this test oopsed" is `any(r.type is not ReportType.PANIC ...)`, "the kernel
died" is `is_panic(text)`; a fatal oops yields both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.oops import formats as F
from harness.oops.formats import Format, ReportType
from harness.oops.frames import Decoded, Frame


@dataclass(frozen=True)
class KernelReport:
    """One kernel report found in a console log."""

    type: ReportType
    title: str
    guilty_frame: str | None
    call_trace: tuple[str, ...]
    rip: str | None
    taint: str | None
    kernel_version: str | None
    text: str
    first_line: int
    last_line: int
    corrupted: bool
    frames: tuple[Frame, ...] = ()  # the call trace with offsets and modules, "?" ones too
    ip: Frame | None = None  # the RIP/PC line's frame
    time: float | None = None  # printk timestamp of the header line (seconds since boot)
    count: int = 1  # how many times the same report was printed (see fold)
    last_time: float | None = None  # timestamp of the last repeat
    decoded: Decoded | None = None  # file:line and maintainers, when debug info is at hand


@dataclass(frozen=True)
class _Row:
    """A table row with its regexes compiled once, at import."""

    fmt: Format
    header: re.Pattern[str]
    end: re.Pattern[str] | None
    stack_start: re.Pattern[str] | None
    detail: re.Pattern[str] | None
    skip: re.Pattern[str]


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return None if pattern is None else re.compile(F.expand(pattern))


def _any_of(patterns: Sequence[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{F.expand(p)})" for p in patterns))


def _row(fmt: Format) -> _Row:
    return _Row(
        fmt=fmt,
        header=re.compile(F.expand(fmt.header)),
        end=_compile(fmt.end),
        stack_start=_compile(fmt.stack_start),
        detail=_compile(fmt.detail),
        skip=_any_of(F.SKIP_COMMON + fmt.skip),
    )


_ROWS: tuple[_Row, ...] = tuple(_row(f) for f in F.FORMATS)
_PREFIX = re.compile(F.PREFIX)
_TIMESTAMP = re.compile(F.TIMESTAMP)
_TORN = re.compile(F.TORN)
_GENERIC_END = re.compile(F.expand(F.GENERIC_END))
_ANCHOR = re.compile(F.expand(F.ANCHOR))
_BODY = _any_of(F.BODY)
_FRAME = re.compile(F.FRAME)
_FILLER = _any_of(F.TRACE_FILLER)
_RIP = re.compile(F.expand(F.RIP))
_CALL_TRACE = re.compile(F.CALL_TRACE)
_VERSIONS = tuple(re.compile(p) for p in F.VERSION)
_LINUX_VERSION = re.compile(F.LINUX_VERSION)
_SUFFIX = re.compile(F.FUNC_SUFFIX)
_FRAME_PARTS = re.compile(
    r"(?P<func>[A-Za-z_.$][\w.$]*)\+(?P<off>0x[0-9a-f]+)/(?P<size>0x[0-9a-f]+)"
    r"(?:\s+\[(?P<module>[\w-]+)\])?"
)
_STAMP = re.compile(r"^\r*(?:<\d{1,3}>)?\[\s*(?P<t>\d+\.\d+)\]")
_OFFSET = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[[\w-]+\])?")
_HEX = re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{8,}\b")


def strip_prefix(line: str) -> str:
    """Remove what printk and the serial line add in front of a message.

    That is "<4>" log levels, "[   12.345678]" timestamps, "[  T123]" /
    "[C1]" caller ids, and carriage returns, so formats can be matched at
    the start of the message. Indentation of the message itself is kept:
    it is how stack frames are told apart from other lines.
    """
    return _PREFIX.sub("", line, count=1).replace("\r", "").rstrip("\n")


def normalize_comm(comm: str) -> str:
    """Make a task name stable across runs: "kworker/0:1" -> "kworker"."""
    comm = comm.split("/", 1)[0]
    return re.sub(r"[-_.:]*\d+$", "", comm) or comm


def normalize_func(name: str) -> str:
    """Drop compiler suffixes (".constprop.0", ".cold"...) from a symbol."""
    return _SUFFIX.sub("", name)


def title_matches(report: KernelReport, pattern: str) -> bool:
    """True if the regex `pattern` is found in the report's title."""
    return re.search(pattern, report.title) is not None


def is_panic(text: str) -> bool:
    """True if the log shows the kernel died ("Kernel panic - not syncing")."""
    return any(r.type is ReportType.PANIC for r in parse(text))


@dataclass
class _Span:
    """A report being cut out of the log (mutable, local to one parse)."""

    row: _Row
    first: int
    last: int
    anchored: bool = False
    gap: int = 0
    done: bool = False


def _header(line: str) -> tuple[_Row, re.Match[str]] | None:
    for row in _ROWS:
        m = row.header.match(line)
        if m:
            return row, m
    return None


def _open(row: _Row, i: int, line: str) -> _Span:
    span = _Span(row=row, first=i, last=i)
    span.done = bool(row.end and row.end.match(line))
    return span


def _feed(span: _Span, i: int, line: str) -> None:
    """Let an open report consume a line that is not a new report's header."""
    if (span.row.end and span.row.end.match(line)) or _GENERIC_END.match(line):
        span.last, span.done = i, True
    elif _BODY.match(line):
        span.last, span.gap = i, 0
        span.anchored = span.anchored or bool(_ANCHOR.match(line))
    elif line.strip():
        span.gap += 1
        span.done = span.row.end is None and span.gap > F.MAX_GAP
    span.done = span.done or i - span.first >= F.MAX_LINES


def _absorbs(span: _Span, row: _Row, i: int) -> bool:
    """A chained header inside the preamble is part of the open report."""
    window = span.row.fmt.preamble or F.CHAIN_WINDOW
    return row.fmt.chained and not span.anchored and i - span.first <= window


def _segment(lines: Sequence[str], eligible: Sequence[bool]) -> list[_Span]:
    """Cut the log into report spans, in order."""
    spans: list[_Span] = []
    cur: _Span | None = None
    for i, line in enumerate(lines):
        if not eligible[i]:
            continue
        ends = cur is not None and (
            bool(cur.row.end and cur.row.end.match(line)) or bool(_GENERIC_END.match(line))
        )
        hit = None if ends else _header(line)
        if hit and cur is not None and _absorbs(cur, hit[0], i):
            cur.last = i
        elif hit:
            cur = _open(hit[0], i, line)
            spans.append(cur)
        elif cur is not None:
            _feed(cur, i, line)
        if cur is not None and cur.done:
            cur = None
    return spans


def _find(pattern: re.Pattern[str], lines: Sequence[str], start: int, last: int) -> int | None:
    for i in range(start, last + 1):
        if pattern.match(lines[i]):
            return i
    return None


def _stack_start(span: _Span, lines: Sequence[str]) -> int:
    """Where the stack of the culprit starts: the row's stack_start line, else the header."""
    pattern = span.row.stack_start
    found = _find(pattern, lines, span.first + 1, span.last) if pattern else None
    return span.first if found is None else found


def _trace_start(lines: Sequence[str], start: int, last: int) -> int:
    """The "Call Trace:" line after `start`, if any: frames printed before it
    (such as "Preemption disabled at:") are not the stack."""
    found = _find(_CALL_TRACE, lines, start, last)
    return start if found is None else found


def _frame(line: str, reliable: bool = True) -> Frame | None:
    """The function+offset/size [module] part of a frame or RIP line."""
    m = _FRAME_PARTS.search(line)
    if not m:
        return None
    off, size = int(m.group("off"), 16), int(m.group("size"), 16)
    return Frame(m.group("func"), off, size, m.group("module"), reliable)


def _call_trace(
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
        elif seen and eligible[i] and not _FILLER.match(lines[i]):
            break
    return frames


def _names(frames: Sequence[Frame]) -> list[str]:
    """The trace as function names; only "? " frames if the unwinder left nothing else.

    The guessing unwinder (CONFIG_UNWINDER_GUESS) marks every frame "?": its
    frames are then all there is to name the culprit, so they are kept.
    """
    reliable = [f for f in frames if f.reliable]
    return [normalize_func(f.func) for f in (reliable or frames)]


def _suspects(frames: Sequence[Frame]) -> list[str]:
    """The trace's names that may be blamed: `_names` without misnamed return addresses.

    A frame below the top one is a return address. At offset 0 it is the
    first byte of a function, so the call before it was the last instruction
    of the function in front (a noreturn call such as panic() at the end of
    sysrq_handle_crash): the printed name is that next function, which never
    ran. Blaming it would be wrong, so such frames are passed over.
    """
    kept = [f for i, f in enumerate(frames) if i == 0 or f.offset != 0]
    return _names(kept)


def _rip(lines: Sequence[str], start: int, last: int) -> Frame | None:
    for i in range(start, last + 1):
        m = _RIP.match(lines[i])
        if m:
            return _frame(lines[i][m.start("func") :])
    return None


def _timestamp(line: str) -> float | None:
    m = _STAMP.match(line)
    return float(m.group("t")) if m else None


def _guilty(row: _Row, candidates: Sequence[str | None]) -> str | None:
    for name in candidates:
        if name and not row.skip.fullmatch(name):
            return name
    return None


def _version(lines: Sequence[str], fallback: str | None) -> tuple[str | None, str | None]:
    """(taint, kernel version) from the report's "Tainted:" / "Not tainted" line."""
    for line in lines:
        for pattern in _VERSIONS:
            m = pattern.search(line)
            if m:
                taint = m.group("taint")
                return (taint.strip() if taint else None), m.group("version")
    return None, fallback


class _Blank(dict[str, str]):
    """Template fields that a report did not provide render as nothing."""

    def __missing__(self, key: str) -> str:
        return ""


def _clean(name: str, value: str) -> str:
    """Make a title field stable: no offsets, addresses or per-run numbers."""
    value = _OFFSET.sub("", value)
    if name in ("comm", "victim"):
        value = normalize_comm(value.strip())
    if name == "msg":
        value = re.split(r"(?<=[.!?])\s", value.strip(), maxsplit=1)[0]
    return " ".join(_HEX.sub("ADDR", value).split())


def _title(fmt: Format, fields: dict[str, str | None], frame: str | None) -> str:
    template = fmt.title if frame else fmt.title.replace(" in {FRAME}", "")
    values = _Blank({k: _clean(k, v) for k, v in fields.items() if v is not None})
    values["FRAME"] = frame or ""
    return " ".join(template.format_map(values).split())


def _fields(span: _Span, lines: Sequence[str]) -> dict[str, str | None]:
    """Named groups of the header, overridden by those of the row's detail regex."""
    m = span.row.header.match(lines[span.first])
    fields: dict[str, str | None] = dict(m.groupdict()) if m else {}
    if span.row.detail is not None:
        for line in lines[span.first : span.last + 1]:
            d = span.row.detail.search(line)
            if d:
                fields.update({k: v for k, v in d.groupdict().items() if v is not None})
                break
    return fields


def _report(
    span: _Span,
    lines: Sequence[str],
    eligible: Sequence[bool],
    linux: str | None,
    raw: Sequence[str],
) -> KernelReport:
    """Read one cut-out span into a KernelReport."""
    fields = _fields(span, lines)
    start = _stack_start(span, lines)
    ip = _rip(lines, start, span.last)
    rip = normalize_func(ip.func) if ip else None
    frames = _call_trace(lines, eligible, _trace_start(lines, start, span.last), span.last)
    trace = _names(frames)
    func = fields.get("func")
    suspects = _suspects(frames)
    guilty = _guilty(span.row, [normalize_func(func) if func else None, rip, *suspects])
    body = lines[span.first : span.last + 1]
    taint, version = _version(body, linux)
    fmt = span.row.fmt
    return KernelReport(
        type=fmt.type,
        title=_title(fmt, fields, guilty),
        guilty_frame=guilty,
        call_trace=tuple(trace),
        rip=rip,
        taint=taint,
        kernel_version=version,
        text="\n".join(body),
        first_line=span.first,
        last_line=span.last,
        corrupted=fmt.expects_trace and (not trace or guilty is None),
        frames=tuple(frames),
        ip=ip,
        time=_timestamp(raw[span.first]),
    )


def _untear(line: str) -> str:
    """Keep the kernel part of a line that user space wrote into.

    A serial console interleaves characters of user space with printk
    output: "Segmentation fau[    1.637375]  do_exit+0x811/0xb10" is the
    frame "do_exit" behind a torn "Segmentation fault".
    """
    m = _TORN.search(line, 1)
    return line[m.start() :] if m and not _TIMESTAMP.match(line) else line


def _eligibility(raw: Sequence[str]) -> list[bool]:
    """Which lines may be kernel output: all, unless the log is timestamped."""
    stamped = [bool(_TIMESTAMP.match(line)) for line in raw]
    nonempty = sum(1 for line in raw if line.strip())
    if not any(stamped) or 2 * sum(stamped) < nonempty:
        return [True] * len(raw)
    return stamped


def parse(text: str) -> list[KernelReport]:
    """All kernel reports in a console log, in order. Never raises on garbage."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    raw = [_untear(line) for line in str(text).split("\n")]
    lines = [strip_prefix(line) for line in raw]
    eligible = _eligibility(raw)
    m = _LINUX_VERSION.search(str(text))
    linux = m.group("version") if m else None
    return [_report(s, lines, eligible, linux, raw) for s in _segment(lines, eligible)]
