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
from harness.oops.guilty import after_interrupt, canonical, choose
from harness.oops.kinds import CrashType, crash_type
from harness.oops.stack import (
    call_trace,
    find,
    names,
    normalize_func,
    rip_frame,
    suspects,
    trace_start,
)


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
    alt_titles: tuple[str, ...] = ()  # syzbot's other titles for the same bug
    crash_type: CrashType = CrashType.UNKNOWN  # syzbot's type, read off the title


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
_VERSIONS = tuple(re.compile(p) for p in F.VERSION)
_LINUX_VERSION = re.compile(F.LINUX_VERSION)
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
    booted = False
    for i, line in enumerate(lines):
        if not eligible[i]:
            continue
        ends = cur is not None and (
            bool(cur.row.end and cur.row.end.match(line)) or bool(_GENERIC_END.match(line))
        )
        hit = None if ends else _header(line)
        if hit and hit[0].fmt.reboot:
            # the first boot banner is the boot; only a second one is a reboot
            hit, booted = (hit if booted else None), True
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


def _stack_start(span: _Span, lines: Sequence[str]) -> int:
    """Where the stack of the culprit starts: the row's stack_start line, else the header."""
    pattern = span.row.stack_start
    found = find(pattern, lines, span.first + 1, span.last) if pattern else None
    return span.first if found is None else found


def _timestamp(line: str) -> float | None:
    m = _STAMP.match(line)
    return float(m.group("t")) if m else None


def _guilty(row: _Row, candidates: Sequence[str | None]) -> str | None:
    """The row's pick among the candidates that no skip list removes."""
    kept = [name for name in candidates if name and not row.skip.fullmatch(name)]
    return choose(row.fmt.pick, kept)


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


def _render(template: str, values: _Blank) -> str:
    return " ".join(template.format_map(values).split())


def _titles(fmt: Format, fields: dict[str, str | None], frame: str | None) -> tuple[str, ...]:
    """The title and syzbot's alternatives: each template rendered, the title first.

    A report whose stack should name a culprit and does not is titled
    "... in corrupted", as syzbot does; a frame named without its syscall
    wrapper prefix also gives the title with the name as printed.
    """
    values = _Blank({k: _clean(k, v) for k, v in fields.items() if v is not None})
    if frame is None and not fmt.expects_trace:
        templates = [t.replace(" in {FRAME}", "") for t in (fmt.title, *fmt.alt)]
        return tuple(dict.fromkeys(_render(t, values) for t in templates))
    raw = frame or "corrupted"
    values["FRAME"] = canonical(raw)
    titles = [_render(t, values) for t in (fmt.title, *fmt.alt)]
    if values["FRAME"] != raw:
        values["FRAME"] = raw
        titles += [_render(t, values) for t in (fmt.title, *fmt.alt)]
    return tuple(dict.fromkeys(titles))


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


def _reach(span: _Span, after: _Span | None, lines: Sequence[str], eligible: Sequence[bool]) -> int:
    """The last line the span's stack may be read from.

    Its own last line; but a WARNING under panic_on_warn is cut short by the
    panic's header, and the stack the panic prints right after is the
    WARNING's: a report without frames of its own reads on into it.
    """
    if after is None or after.row.fmt.type is not ReportType.PANIC:
        return span.last
    if after.first - span.last > F.CHAIN_WINDOW:
        return span.last
    start = _stack_start(span, lines)
    if call_trace(lines, eligible, trace_start(lines, start, span.last), span.last):
        return span.last
    return after.last


def _report(
    span: _Span,
    lines: Sequence[str],
    eligible: Sequence[bool],
    linux: str | None,
    raw: Sequence[str],
    after: _Span | None = None,
) -> KernelReport:
    """Read one cut-out span into a KernelReport (``after``: the span that follows it)."""
    fields = _fields(span, lines)
    start = _stack_start(span, lines)
    reach = _reach(span, after, lines, eligible)
    ip = rip_frame(lines, start, reach)
    rip = normalize_func(ip.func) if ip else None
    frames = call_trace(lines, eligible, trace_start(lines, start, reach), reach)
    trace = names(frames)
    func = fields.get("func")
    blamable = suspects(frames)
    lead = rip if span.row.fmt.ip else None
    if span.row.fmt.pick is F.Pick.STALL:
        blamable = after_interrupt(blamable)
    elif span.row.fmt.pick is F.Pick.HANG:
        lead = None  # a hung task's own stack, not where the dump was taken
    guilty = _guilty(span.row, [normalize_func(func) if func else None, lead, *blamable])
    body = lines[span.first : span.last + 1]
    taint, version = _version(body, linux)
    fmt = span.row.fmt
    title, *alt = _titles(fmt, fields, guilty)
    return KernelReport(
        type=fmt.type,
        title=title,
        guilty_frame=guilty,
        call_trace=tuple(trace),
        rip=rip,
        taint=taint,
        kernel_version=version,
        text="\n".join(body),
        first_line=span.first,
        last_line=span.last,
        corrupted=fmt.corrupted or (fmt.expects_trace and (not trace or guilty is None)),
        frames=tuple(frames),
        ip=ip,
        time=_timestamp(raw[span.first]),
        alt_titles=tuple(alt),
        crash_type=crash_type(title),
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
    spans = _segment(lines, eligible)
    after = [*spans[1:], None][: len(spans)]
    return [_report(s, lines, eligible, linux, raw, a) for s, a in zip(spans, after, strict=True)]
