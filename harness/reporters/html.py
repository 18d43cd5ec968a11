"""``index.html``: one self-contained page to look at a run.

Opened straight from the file system (no server, no network: CSS and the
little script are inline, every link is relative to the results directory),
it shows

* the kernel x test matrix in colour, each cell linking to the test's card;
* a card per test: verdict, KTAP lines, kernel reports (call trace with the
  guilty frame marked, and any further field a report record carries), the
  console window, and links to every evidence file;
* the kernel reports outside any test, with their boot's console;
* a timeline per kernel: fetch/build, each boot, each test, in seconds.

Unlike the other reporters it reads the results directory besides the
summary (console windows, boot.json), so its ``render`` takes the directory.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.display.textsafe import printable
from harness.oops.formats import any_header
from harness.oops.frames import render_decoded
from harness.results import layout
from harness.results.records import KernelRecord, ReportRecord, RunSummary, TestRecord

FILENAME = layout.INDEX_HTML
#: console lines of a failure shown inline (the whole file is linked)
CONSOLE_LINES = 80
#: the files linked: a test's, a boot's, the run's (names: harness/results/layout.py)
_EVIDENCE_FILES = tuple(layout.TEST_EVIDENCE.values())
_BOOT_FILES = (layout.CONSOLE_LOG, layout.BOOT_JSON)
_RUN_FILES = (layout.SUMMARY_TXT, layout.SUMMARY_JSON, layout.JUNIT_XML, layout.KCIDB_JSON)
#: ReportRecord fields drawn by hand; any other field is shown as it is
_REPORT_FIELDS = {
    "type", "title", "guilty_frame", "rip", "taint", "call_trace",
    "count", "first_time", "last_time", "symbolized",
}  # fmt: skip
_BUILD_PHASES = ("fetch", "image")
#: the first line of any kernel report (harness/oops/formats.py), marked in console windows
_REPORT_HEADER = re.compile(any_header())

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.6em}
table.matrix{border-collapse:collapse}
.matrix th,.matrix td{border:1px solid #ccc;padding:.3em .6em;text-align:center}
.matrix th.kernel{text-align:left}
td.cell a{display:block;color:inherit;text-decoration:none;font-weight:600}
.o-pass{background:#c8ecc8}.o-skip{background:#e4e4e4}
.o-fail,.o-oops,.o-panic,.o-hang{background:#f6b3b3}
.o-boot-fail,.o-build-fail,.o-error{background:#f8d49a}
.o-not-run{background:#fafafa;color:#888}.expected{background:#bcd5f5}
.flaky{background:#fbeea0}
details.card{border:1px solid #ccc;border-radius:4px;margin:.5em 0;padding:.3em .8em}
details.card>summary{cursor:pointer;font-weight:600}
details.card:target{outline:3px solid #4a7fd4}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:12px}
.guilty{background:#ffe08a;font-weight:700}
.report-line{color:#b00;font-weight:700}
.timeline{display:flex;align-items:stretch;height:1.6em;margin:.3em 0 1em;min-width:40em}
.timeline div{border-right:1px solid #fff;font-size:11px;overflow:hidden;white-space:nowrap;
 padding:0 .2em;min-width:3px}
.t-fetch,.t-image{background:#b9c6e8}.t-boot{background:#9fd0d6}
.t-restore{background:#c9e9c0}.t-restore-failed{background:#f3b6b6}
.files a{margin-right:1em}
#filter{margin:.5em 0}
"""

SCRIPT = """
(function () {
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === 'DETAILS') { el.open = true; }
  }
  window.addEventListener('hashchange', openTarget);
  openTarget();
  var box = document.getElementById('only-unexpected');
  box.addEventListener('change', function () {
    var cards = document.querySelectorAll('details.card[data-good]');
    for (var i = 0; i < cards.length; i++) { cards[i].hidden = box.checked; }
  });
  document.body.dataset.ready = '1';
})();
"""


def _e(text: object) -> str:
    """HTML-escaped, control and bidi characters shown as escapes (guest text is a stranger's)."""
    return html.escape(printable(str(text)), quote=True)


def card_id(t: TestRecord) -> str:
    """The anchor of a test's card."""
    return f"t-{t.kernel}-{t.test}".replace(" ", "_")


def relative(run_dir: Path, evidence: str, kernel: str) -> Path | None:
    """An evidence path relative to the results directory (also after it moved)."""
    if not evidence:
        return None
    path = Path(evidence)
    try:
        return path.relative_to(run_dir)
    except ValueError:
        parts = path.parts
        if kernel in parts:  # results/<run>/<kernel>/<test>[/run-K], copied elsewhere
            start = len(parts) - 1 - parts[::-1].index(kernel)
            return Path(*parts[start:])
    return None


def _cell(t: TestRecord) -> tuple[str, str]:
    """(css class, label) of a matrix cell."""
    if t.flaky:
        return "flaky", f"FLAKY {t.passes}/{t.attempts}"
    rate = f" {t.passes}/{t.attempts}" if t.runs else ""
    if t.expected and t.as_expected:
        return "expected", f"{t.outcome.value} (expected){rate}"
    return f"o-{t.outcome.value}", t.outcome.rule.cell + rate


def _matrix(summary: RunSummary) -> list[str]:
    names = sorted({t.test for t in summary.tests})
    kernels = [k.name for k in summary.kernels] or sorted({t.kernel for t in summary.tests})
    by_key = {(t.kernel, t.test): t for t in summary.tests}
    out = ['<table class="matrix" id="matrix"><tr><th>kernel</th>']
    out += [f'<th scope="col">{_e(n)}</th>' for n in names]
    out.append("</tr>")
    for kernel in kernels:
        out.append(f'<tr><th class="kernel" scope="row">{_e(kernel)}</th>')
        for name in names:
            t = by_key.get((kernel, name))
            if t is None:
                out.append('<td class="cell missing">-</td>')
                continue
            cls, label = _cell(t)
            out.append(
                f'<td class="cell {cls}" data-kernel="{_e(kernel)}" data-test="{_e(name)}" '
                f'title="{_e(t.summary)}"><a href="#{_e(card_id(t))}">{_e(label)}</a></td>'
            )
        out.append("</tr>")
    out.append("</table>")
    return out


def _files(run_dir: Path, directory: Path | None, names: Iterable[str]) -> str:
    if directory is None:
        return ""
    links = [
        f'<a href="{_e((directory / n).as_posix())}">{_e(n)}</a>'
        for n in names
        if (run_dir / directory / n).is_file()
    ]
    where = "this run" if directory == Path() else directory.as_posix()
    return f'<p class="files">evidence ({_e(where)}): {" ".join(links)}</p>'


def _trace(report: ReportRecord) -> list[str]:
    """RIP and call trace, one frame a line, the guilty one (once) marked with a triangle."""
    frames = ([f"RIP: {report.rip}"] if report.rip else []) + [
        f"  {frame}" for frame in report.call_trace
    ]
    marked = False
    lines = []
    for frame in frames:
        guilty = not marked and report.guilty_frame is not None
        guilty = guilty and _names_frame(frame.removeprefix("RIP: "), report.guilty_frame or "")
        marked = marked or guilty
        mark = "&#9654; " if guilty else "  "
        cls = ' class="guilty"' if guilty else ""
        lines.append(f"<span{cls}>{mark}{_e(frame)}</span>")
    return lines


def _names_frame(frame: str, function: str) -> bool:
    name = frame.strip().removeprefix("? ").split("+")[0].split(" ")[0]
    return name == function


def _report(report: ReportRecord) -> list[str]:
    out = [f"<h4>kernel report: {_e(report.title)}</h4><ul>"]
    out.append(f"<li>type: {_e(report.type)}</li>")
    if report.guilty_frame:
        out.append(f'<li>guilty frame: <span class="guilty">{_e(report.guilty_frame)}</span></li>')
    if report.taint:
        out.append(f"<li>taint: {_e(report.taint)}</li>")
    if report.count > 1:
        times = (
            f", first at {report.first_time:.1f}s, last at {report.last_time:.1f}s"
            if report.first_time is not None and report.last_time is not None
            else ""
        )
        out.append(f'<li class="repeats">printed {report.count} times{_e(times)}</li>')
    for key, value in report.to_json().items():  # fields added later show as they are
        if key in _REPORT_FIELDS or value in (None, "", [], {}):
            continue
        out.append(f"<li>{_e(key)}: {_value(value)}</li>")
    out.append("</ul>")
    if report.symbolized is not None:
        out.append('<pre class="trace symbolized">' + "\n".join(_decoded(report)) + "</pre>")
    elif report.call_trace or report.rip:
        out.append('<pre class="trace">' + "\n".join(_trace(report)) + "</pre>")
    return out


def _decoded(report: ReportRecord) -> list[str]:
    """The symbolized trace (file:line, inlined frames, To/Cc), the guilty frame marked."""
    assert report.symbolized is not None
    marked = False
    lines = []
    for line in render_decoded(report.symbolized, indent=""):
        frame = line.removeprefix("RIP: ").strip()
        guilty = not marked and line.startswith(("RIP: ", " ")) and report.guilty_frame is not None
        guilty = guilty and _names_frame(frame, report.guilty_frame or "")
        marked = marked or guilty
        cls = ' class="guilty"' if guilty else ""
        lines.append(f"<span{cls}>{'&#9654; ' if guilty else '  '}{_e(line)}</span>")
    return lines


def _value(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "<pre>" + _e("\n".join(value)) + "</pre>"
    if isinstance(value, dict | list):
        return "<pre>" + _e(json.dumps(value, indent=1)) + "</pre>"
    return _e(value)


def _console(run_dir: Path, directory: Path | None) -> list[str]:
    if directory is None or not (run_dir / directory / layout.CONSOLE_TXT).is_file():
        return []
    text = (run_dir / directory / layout.CONSOLE_TXT).read_text(errors="replace").splitlines()
    if not text:
        return []
    shown = text[-CONSOLE_LINES:]
    lines = [
        f'<span class="report-line">{_e(line)}</span>' if _REPORT_HEADER.search(line) else _e(line)
        for line in shown
    ]
    head = f"console window (last {len(shown)} of {len(text)} lines)"
    return [f"<h4>{head}</h4>", '<pre class="console">' + "\n".join(lines) + "</pre>"]


def _attempts(run_dir: Path, t: TestRecord) -> list[str]:
    if not t.runs:
        return []
    out = [f"<h4>runs: passed {t.passes} of {t.attempts}</h4><ol>"]
    for a in t.runs:
        rel = relative(run_dir, a.evidence, t.kernel)
        out.append(
            f"<li>{_e(a.summary)} ({a.seconds:.1f}s) {_files(run_dir, rel, _EVIDENCE_FILES)}</li>"
        )
    out.append("</ol>")
    return out


def _card(run_dir: Path, t: TestRecord) -> list[str]:
    cls, label = _cell(t)
    good = t.as_expected and not t.flaky
    attrs = ' data-good="1"' if good else ""
    opened = "" if good else " open"
    rel = relative(run_dir, t.evidence, t.kernel)
    out = [
        f'<details class="card" id="{_e(card_id(t))}"{attrs}{opened}>',
        f'<summary><span class="{cls}">{_e(label)}</span> {_e(t.test)} on {_e(t.kernel)}'
        f" &mdash; {_e(t.summary)}</summary>",
        f"<p>verdict: <b>{_e(t.summary)}</b> ({t.seconds:.1f}s, boot {t.boot})</p>",
    ]
    if t.expected:
        out.append(f"<p>expected: {_e(t.expected.value)}: {_e(t.expected_reason or '')}</p>")
    if t.details:
        out.append('<h4>KTAP and details</h4><pre class="ktap">')
        out.append(_e("\n\n".join(d.rstrip() for d in t.details)) + "</pre>")
    for report in t.reports:
        out += _report(report)
    if not good:
        out += _console(run_dir, rel)
    out += _attempts(run_dir, t)
    out.append(_files(run_dir, rel, _EVIDENCE_FILES))
    if t.boot:
        boot = Path(t.kernel) / f"boot-{t.boot}"
        out.append(_files(run_dir, boot, _BOOT_FILES))
    out.append("</details>")
    return out


def _outside(run_dir: Path, summary: RunSummary) -> list[str]:
    if not summary.outside:
        return ["<p>none</p>"]
    out = []
    for o in summary.outside:
        boot = Path(o.kernel) / f"boot-{o.boot}"
        out.append(
            f'<details class="card outside" open><summary>{_e(o.kernel)} boot-{o.boot} '
            f"({_e(o.when)}): {_e(o.report.title)}</summary>"
        )
        out += _report(o.report)
        out.append(_files(run_dir, boot, (layout.CONSOLE_LOG,)))
        out.append("</details>")
    return out


def _boot_seconds(run_dir: Path, kernel: KernelRecord, boot: int) -> float | None:
    path = layout.boot_dir(run_dir / kernel.name, boot) / layout.BOOT_JSON
    try:
        return float(json.loads(path.read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _restore(run_dir: Path, kernel: KernelRecord, boot: int) -> tuple[str, str]:
    """The css class and label suffix of a boot: a cold boot, a restore, a failed restore."""
    path = layout.boot_dir(run_dir / kernel.name, boot) / layout.RESTORE_JSON
    try:
        problem = json.loads(path.read_text()).get("problem")
    except (OSError, ValueError, AttributeError):
        return "t-boot", ""
    return ("t-restore", " restore") if problem is None else ("t-restore-failed", " restore failed")


def _starts(k: KernelRecord) -> str:
    """One line: cold boots and restores with their times, the saved state, kept or not."""
    s = k.starts
    if s is None:
        return ""
    parts = [f"{len(s.cold_boots)} cold boot(s) ({', '.join(f'{t:.1f}s' for t in s.cold_boots)})"]
    if s.restores:
        parts.append(f"{len(s.restores)} restore(s) ({', '.join(f'{t:.2f}s' for t in s.restores)})")
    if s.saved_seconds is not None and s.saved_bytes is not None:
        parts.append(f"state saved in {s.saved_seconds:.2f}s ({s.saved_bytes / 1e6:.0f} MB)")
    if s.kept:
        parts.append(f"kept snapshot: {s.kept}")
    notes = "".join(f"<br>{_e(n)}" for n in s.notes)
    return f'<p class="starts">guest starts: {_e("; ".join(parts))}{notes}</p>'


def _segments(run_dir: Path, summary: RunSummary, k: KernelRecord) -> list[tuple[str, str, float]]:
    """(css class, label, seconds) in the order they happened; a restore is marked as one."""
    segs = [(f"t-{p}", p, k.timings[p]) for p in _BUILD_PHASES if k.timings.get(p)]
    booted: set[int] = set()
    for t in summary.tests:
        if t.kernel != k.name:
            continue
        if t.boot and t.boot not in booted:
            booted.add(t.boot)
            seconds = _boot_seconds(run_dir, k, t.boot)
            if seconds is not None:
                cls, how = _restore(run_dir, k, t.boot)
                segs.append((cls, f"boot-{t.boot}{how}", seconds))
        if t.seconds:
            segs.append((_cell(t)[0], t.test, t.seconds))
    return segs


def _timeline(run_dir: Path, summary: RunSummary) -> list[str]:
    out = []
    for k in summary.kernels:
        segs = _segments(run_dir, summary, k)
        total = sum(s for _c, _l, s in segs)
        sub = ", ".join(f"{p} {s:.1f}s" for p, s in k.timings.items())
        out.append(f"<h3>{_e(k.name)}: {total:.1f}s</h3><p>{_e(sub)}</p>{_starts(k)}")
        if not segs:
            continue
        out.append(f'<div class="timeline" data-kernel="{_e(k.name)}">')
        for cls, label, seconds in segs:
            width = max(seconds / total * 100, 0.5) if total else 1
            out.append(
                f'<div class="{cls}" style="width:{width:.2f}%" '
                f'title="{_e(label)}: {seconds:.1f}s">{_e(label)} {seconds:.1f}s</div>'
            )
        out.append("</div>")
    return out


def _verdict(summary: RunSummary) -> str:
    bad, not_run = summary.unexpected, summary.not_run
    if summary.interrupted:
        return f"INTERRUPTED, {len(not_run)} of {len(summary.tests)} test(s) did not run"
    if not summary.tests:
        return "no tests ran"
    return "all results as expected" if not bad else f"{len(bad)} unexpected result(s)"


def render(summary: RunSummary, run_dir: Path) -> str:
    """The page of one run whose evidence lies in ``run_dir``."""
    counts = ", ".join(f"{n} {o}" for o, n in sorted(summary.counts.items()))
    body = [
        f"<h1>kpatch-harness run {_e(summary.run)}: {_e(_verdict(summary))}</h1>",
        f"<p>{_e(counts)}</p>",
        "<h2>Matrix</h2>",
        *_matrix(summary),
        '<h2>Tests</h2><label id="filter"><input type="checkbox" id="only-unexpected"> '
        "only what needs a look</label>",
    ]
    for t in summary.tests:
        body += _card(run_dir, t)
    body += ["<h2>Kernel reports outside any test</h2>", *_outside(run_dir, summary)]
    body += ["<h2>Timeline</h2>", *_timeline(run_dir, summary)]
    body += ["<h2>Kernels</h2><ul>"]
    for k in summary.kernels:
        files = _files(run_dir, Path(k.name), (layout.KERNEL_JSON,))
        body.append(f"<li>{_e(k.name)}: {_e(k.origin or k.source)} [{_e(k.backend)}] {files}</li>")
    body.append("</ul>")
    links = _files(run_dir, Path(), _RUN_FILES)
    body.append(links)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>kharness {_e(summary.run)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )
