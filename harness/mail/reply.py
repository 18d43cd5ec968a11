"""The answer to a series' thread: a plain-text mail a maintainer reads in their client.

Written from the results directories alone (``series.json``, ``summary.json``,
``series-origin.json``, read as :mod:`harness.results.series_record`
records), so the same reply comes out of ``kharness series``, of the watch
bot, and of a results directory copied elsewhere.  It leads with the verdict
per kernel, then says what was tested (the base and where it came from, the
kernel config file, the tests and why those), the matrix with the
confirmation runs' counts side by side (base 3/3 pass, patch 2 0/3 with the
crash title of each run), the first patch that broke each test with its
symbolized frames, and the one command that reproduces it locally.
Threading follows RFC 5322: In-Reply-To the cover letter (or the first
patch), References its references plus it, the author in To, the list and
the other Cc'd addresses in Cc.

Every reply carries :data:`harness.mail.message.BOT_HEADER`: the bot never
reacts to a message that has it, so it never answers itself.

A reply is bounded whatever the series made: a line is cut at
:data:`MAX_LINE` characters, the body at :data:`MAX_BODY` bytes (the
details are cut, with a line saying where the whole evidence is; the
verdicts and the reproduce line always stay), control characters are
shown escaped (:func:`harness.display.textsafe.printable`), and the Cc list at
:data:`MAX_CC` addresses (the poster chooses the Cc: the bot must not mail
thousands of addresses because a message named them).
"""

from __future__ import annotations

import email.policy
import email.utils
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from harness.display.textsafe import printable
from harness.errors import UserError
from harness.mail.commandline import SeriesCommand
from harness.mail.message import BOT_HEADER, Mail, parse
from harness.results import layout, series_record
from harness.results.records import ReportRecord, TestRecord, load_summary
from harness.results.series_record import SeriesRecord

FILENAME = layout.REPLY_EML
_POLICY = email.policy.SMTP.clone(max_line_length=998)
_FRAMES = 8  # symbolized frames shown per crash
MAX_BODY = 64 * 1024  # bytes of a reply's text
MAX_LINE = 1000  # characters of one line of it
MAX_CC = 50  # addresses a reply is copied to
MAX_SUBJECT = 300  # characters of the subject it answers


@dataclass(frozen=True)
class Settings:
    """Who the reply is from and where the evidence can be read."""

    sender: str  # 'kharness <kharness@host>'
    results_url: str | None = None  # where run directories are served, if they are
    results_root: Path | None = None  # the directory served there (links are relative to it)


@dataclass(frozen=True)
class KernelResult:
    """One kernel's run of the series: its results directory, or why there is none."""

    kernel: str
    run_dir: Path | None
    error: str | None = None  # the harness could not test it (build infra, fetch, ...)


def default_sender() -> str:
    """kharness <kharness@this-host>."""
    return f"kharness <kharness@{socket.getfqdn() or 'localhost'}>"


def reproduce_command(kernel: str, fetched: object) -> str:
    """The one command that tests the same series the same way on a developer's machine."""
    anchor = getattr(fetched, "anchor", None)
    link = getattr(fetched, "link", None)
    if link is None and anchor is not None:
        return SeriesCommand.for_message(anchor.message_id, kernel).line()
    return SeriesCommand(kernel, link or "SERIES").line()


def compose(
    anchor: Mail,
    results: Sequence[KernelResult],
    settings: Settings,
    reproduce: str,
    notes: Sequence[str] = (),
) -> EmailMessage:
    """The reply to ``anchor``'s thread; ``notes`` lead (missing patches, superseded, ...)."""
    return _message(anchor, settings, body(anchor, results, settings, reproduce, notes))


def refusal(anchor: Mail, settings: Settings, why: str) -> EmailMessage:
    """The short reply to a series the bot does not test (``why``: over which bound)."""
    text = "\n".join([
        f"Hi {_who(anchor)},",
        "",
        _cut(f'kharness did not test "{anchor.title}": {why}.'),
        "",
        "To test it anyway, post it in smaller series, or run kharness series on it by hand.",
        "",
        *_SIGNATURE,
    ])  # fmt: skip
    return _message(anchor, settings, text + "\n")


_SIGNATURE = ["-- ", "kharness: per-patch kernel testing under QEMU; this reply was sent by a bot."]


def _message(anchor: Mail, settings: Settings, text: str) -> EmailMessage:
    """``text`` as a reply in ``anchor``'s thread: From, To, Cc, threading, the bot's mark."""
    message = EmailMessage(policy=_POLICY)
    message["From"] = settings.sender
    own = email.utils.parseaddr(settings.sender)[1].lower()
    message["To"] = anchor.sender or own
    cc = [a for a in (*anchor.to, *anchor.cc) if a not in (own, anchor.sender)]
    if cc:
        message["Cc"] = ", ".join(list(dict.fromkeys(cc))[:MAX_CC])
    message["Subject"] = _subject(printable(anchor.subject[:MAX_SUBJECT], newlines=False))
    message["Date"] = email.utils.formatdate(localtime=False)
    domain = own.rsplit("@", 1)[-1] if "@" in own else "localhost"
    message["Message-ID"] = email.utils.make_msgid("kharness", domain=domain)
    message["In-Reply-To"] = f"<{anchor.message_id}>"
    message["References"] = " ".join(f"<{r}>" for r in (*anchor.references, anchor.message_id))
    message[BOT_HEADER] = "series"
    text = printable(text)  # a subject's escape sequence is text in the reply, not an order
    # plain 8bit text, as mailing lists want it: no quoted-printable in a reply people quote
    message.set_content(text, cte="7bit" if text.isascii() else "8bit")
    return message


def _subject(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def body(
    anchor: Mail,
    results: Sequence[KernelResult],
    settings: Settings,
    reproduce: str,
    notes: Sequence[str] = (),
) -> str:
    """The reply's text: verdicts first, evidence after, how to reproduce last; at most
    :data:`MAX_BODY` bytes (the evidence part is cut first)."""
    head = [f"Hi {_who(anchor)},", ""]
    head.append(f'kharness tested "{anchor.title}" on {len(results)} kernel(s):')
    head += [f"  {r.kernel}: {_headline(r)}" for r in results]
    head.append("")
    head += [*notes, ""] if notes else []
    details = [line for result in results for line in _section(result, settings)]
    tail = ["To reproduce locally:", f"  {reproduce}", "", *_SIGNATURE]
    where = [_where(r.run_dir, settings) for r in results if r.run_dir is not None]
    return "\n".join(_fit(head, details, tail, where)) + "\n"


def _who(anchor: Mail) -> str:
    return anchor.sender_name.split()[0][:100] if anchor.sender_name.strip() else "there"


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE else f"{line[:MAX_LINE]} [... cut]"


def _fit(head: list[str], details: list[str], tail: list[str], where: list[str]) -> list[str]:
    """head + details + tail, each line cut to MAX_LINE, the details cut to fit MAX_BODY."""
    head, details, tail = ([_cut(x) for x in part] for part in (head, details, tail))

    def size(lines: list[str]) -> int:
        return sum(len(x.encode("utf-8", "replace")) + 1 for x in lines)

    if size(head) + size(details) + size(tail) <= MAX_BODY:
        return head + details + tail
    evidence = ", ".join(where) or "the bot's results directory"
    marker = [
        f"[... the rest is cut: a reply is kept under {MAX_BODY // 1024} KiB; "
        f"the whole evidence is in {evidence}]",
        "",
    ]
    budget = MAX_BODY - size(head) - size(tail) - size(marker)
    kept: list[str] = []
    for line in details:
        budget -= size([line])
        if budget < 0:
            break
        kept.append(line)
    return head + kept + [_cut(x) for x in marker] + tail


def origin_notes(run_dir: Path) -> list[str]:
    """What the reader must know first about what was tested (patches that never came)."""
    try:
        origin = series_record.load_origin(run_dir)
    except UserError:
        return []
    if origin is None or not origin.missing:
        return []
    numbers = ", ".join(str(n) for n in origin.missing)
    return [
        f"Patch(es) {numbers} of this series never reached the list; what follows "
        f"covers the {len(origin.patches)} patch(es) that did."
    ]


def _series(run_dir: Path) -> SeriesRecord | None:
    """The run's series.json; None when it is missing or unreadable (the matrix says more)."""
    try:
        return series_record.load(run_dir)
    except UserError:
        return None


def _headline(result: KernelResult) -> str:
    if result.run_dir is None:
        return f"not tested: {result.error or 'no results'}"
    series = _series(result.run_dir)
    na = series.not_applied if series else None
    if na is not None:
        return f"{'refused' if na.refused else 'does not apply'} (patch {na.index}: {na.patch})"
    if series is not None and series.untested:
        return f"could not test: {series.untested}"
    first = (result.run_dir / layout.SERIES_TXT).read_text(errors="replace").splitlines()
    return first[0].removeprefix("kharness series: ") if first else "no report"


def _section(result: KernelResult, settings: Settings) -> list[str]:
    """One kernel's details: what was tested, the matrix and counts, each break's crash."""
    if result.run_dir is None:
        return [f"== {result.kernel}: not tested", f"  {result.error}", ""]
    series = _series(result.run_dir)
    lines = [f"== {result.kernel}"]
    na = series.not_applied if series else None
    if series is not None and na is not None:
        if series.base:
            lines.append(f"base: {series.base}")
        first = (
            f"Patch {na.index} was refused: it names a path outside the tree, so nothing "
            f"was applied or built: {na.patch}"
            if na.refused
            else f"Patch {na.index} does not apply on that base, so nothing was built: {na.patch}"
        )
        return [*lines, first, "", *[f"  {x}" for x in na.error.splitlines()[:30]], ""]
    if series is not None:
        lines += _tested(result.run_dir, series, settings)
    text = (result.run_dir / layout.SERIES_TXT).read_text(errors="replace")
    matrix = text.split("\n\n")
    lines += ["", *[f"  {x}".rstrip() for x in "\n\n".join(matrix[1:]).strip().splitlines()], ""]
    lines += _breaks(result, series)
    lines += [f"Evidence (consoles, logs, reports): {_where(result.run_dir, settings)}", ""]
    return lines


def _tested(run_dir: Path, series: SeriesRecord, settings: Settings) -> list[str]:
    """What was tested: where the series came from, the config file, the tests and why."""
    lines = []
    try:
        origin = series_record.load_origin(run_dir)
    except UserError:
        origin = None
    if origin is not None and origin.link:
        lines.append(f"series: {origin.link}")
    if series.config:
        where = _where(run_dir, settings)
        lines.append(f"kernel config: {where.rstrip('/')}/{series.config}")
    if series.confirm_runs:
        lines.append(
            f"confirmed: {series.confirm_runs} more runs of a test a patch turned from pass "
            "to fail, on that patch and on the one before"
        )
    lines.append(f"tests: {', '.join(series.tests)}")
    lines += [f"  why: {x}" for x in series.why_tests.splitlines()[:20]]
    return lines


def _where(run_dir: Path, settings: Settings) -> str:
    """Where a run's evidence can be read: its URL when served, else its directory."""
    if settings.results_url:
        relative = Path(run_dir.name)
        if settings.results_root is not None and run_dir.is_relative_to(settings.results_root):
            relative = run_dir.relative_to(settings.results_root)
        return f"{settings.results_url.rstrip('/')}/{relative.as_posix()}/"
    return str(run_dir)


def _breaks(result: KernelResult, series: SeriesRecord | None) -> list[str]:
    """Per test broken by a patch: the failure on that step, its crash and frames."""
    assert result.run_dir is not None
    if series is None or not series.first_break:
        return []
    try:
        summary = load_summary(result.run_dir)
    except Exception:  # a partial directory: the matrix above still says what broke
        return []
    lines: list[str] = []
    for test, index in series.first_break:
        record = next(
            (t for t in summary.tests if t.test == test and t.kernel == f"{index:02d}"), None
        )
        step = series.step(index)
        lines.append(f"{test} after patch {index} ({step.label if step else '?'}):")
        if record is not None:
            lines += _failure(record)
        lines.append("")
    return lines


def _failure(record: TestRecord) -> list[str]:
    head = record.summary  # already says its outcome ("fail: not ok 2 ...", "oops: ...")
    if not head.startswith(f"{record.outcome.value}"):
        head = f"{record.outcome.value}: {head}"
    lines = [f"  {head}"]
    for report in record.reports[:2]:
        lines += _crash(report)
    if not record.reports:
        lines += [f"    {d}" for d in "\n".join(record.details).splitlines()[:12]]
    return lines


def _crash(report: ReportRecord) -> list[str]:
    lines = [f"  crash: {report.title}{report.times_printed()}"]
    decoded = report.symbolized
    if decoded is not None and decoded.frames:
        for frame in decoded.frames[:_FRAMES]:
            where = frame.lines[-1].where if frame.lines else "?"
            lines.append(f"    {frame.frame} ({where})")
        if decoded.maintainers:
            lines.append(f"  maintainers: {', '.join(m.address for m in decoded.maintainers)}")
    else:
        lines += [f"    {f}" for f in report.call_trace[:_FRAMES]]
    return lines


def save(message: EmailMessage, run_dir: Path) -> Path:
    """reply.eml in the run's results directory: the reply exists before any sending."""
    path = run_dir / FILENAME
    path.write_bytes(message.as_bytes())
    return path


def load(path: Path) -> EmailMessage:
    """A saved reply, to send it (again)."""
    parsed = email.message_from_bytes(path.read_bytes(), policy=_POLICY)
    assert isinstance(parsed, EmailMessage)
    return parsed


def recipients(message: EmailMessage) -> list[str]:
    """Every To and Cc address of a reply."""
    fields = [str(message.get(h, "")) for h in ("To", "Cc")]
    return [a for _n, a in email.utils.getaddresses(fields) if a]


def finished_run(base: Path) -> Path | None:
    """The newest run under ``base`` that finished (wrote series.json): layout.newest_run."""
    return layout.newest_run(base, done=layout.SERIES_JSON)


def kernel_result(base: Path, kernel: str) -> KernelResult:
    """One kernel's result from its directory: the finished run, else why there is none
    (the last line the child said, from its log)."""
    run = finished_run(base)
    if run is not None:
        return KernelResult(kernel, run)
    log = base / layout.SERIES_LOG
    lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    error = next((x for x in reversed(lines) if x.startswith("kharness:")), None)
    return KernelResult(kernel, None, error or (lines[-1] if lines else "did not run"))


def anchor_of(results: Sequence[KernelResult]) -> Mail | None:
    """The message the series' runs answered (their copy of it), if any run kept one."""
    for result in results:
        if result.run_dir is not None and (result.run_dir / "series" / "anchor.eml").is_file():
            return parse((result.run_dir / "series" / "anchor.eml").read_bytes())
    return None


def span(seconds: float) -> str:
    """'2 h', '90 min', '5 s': a duration as a reply says it."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:g} s"
