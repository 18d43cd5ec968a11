"""A plain-text summary fit for a mailing-list reply.

Short lines, no colour, a matrix of kernel x test, then only what needs a
reader's attention: unexpected results first, with the one-line verdict and
kernel report titles, then expected failures with their reasons.  An
interrupted run says so first and lists what did not run: the summary never
claims more than what ran.  Control characters a guest printed into a title
are escaped (:func:`harness.display.textsafe.printable`): this text is shown on
terminals and sent in mail.
"""

from __future__ import annotations

from harness.display.textsafe import printable
from harness.oops.frames import render_decoded
from harness.results.records import ReportRecord, RunSummary, TestRecord

FILENAME = "summary.txt"


def _cell(t: TestRecord) -> str:
    if t.flaky:
        return f"FLAKY {t.passes}/{t.attempts}"
    rate = f" {t.passes}/{t.attempts}" if t.runs else ""
    if t.expected and t.as_expected:
        return f"{t.outcome.value} (expected){rate}"
    return t.outcome.rule.cell + rate


def render(summary: RunSummary) -> str:
    """The text summary of one run."""
    tests = summary.tests
    names = sorted({t.test for t in tests})
    kernels = [k.name for k in summary.kernels] or sorted({t.kernel for t in tests})
    by_key = {(t.kernel, t.test): t for t in tests}
    bad = summary.unexpected
    not_run = summary.not_run
    if summary.interrupted:
        verdict = f"INTERRUPTED, {len(not_run)} of {len(tests)} test(s) did not run"
        verdict += f", {len(bad)} unexpected result(s) among those that did"
    elif not tests:
        verdict = "no tests ran"
    else:
        verdict = "all results as expected" if not bad else f"{len(bad)} unexpected result(s)"
    lines = [f"kpatch-harness run {summary.run}: {verdict}", ""]
    width = max([len(k) for k in kernels] + [6])
    for i, name in enumerate(names):
        lines.append(f"  [{i + 1}] {name}")
    lines += [
        "",
        f"  {'kernel':{width}}  " + "  ".join(f"[{i + 1}]".ljust(16) for i in range(len(names))),
    ]
    for kernel in kernels:
        cells = [_cell(by_key[(kernel, n)]) if (kernel, n) in by_key else "-" for n in names]
        lines.append(f"  {kernel:{width}}  " + "  ".join(c.ljust(16) for c in cells))
    shown: set[tuple[str, str]] = set()  # (kernel, title) whose trace is already printed
    lines += _section("Unexpected", bad, False, shown)
    lines += _section(
        "Expected failures", [t for t in tests if t.expected and t.as_expected], True, shown
    )
    if not_run:
        lines += ["", "Not run (interrupted):"]
        lines += [f"  {t.test} on {t.kernel}" for t in not_run]
    if summary.outside:
        lines += ["", "Kernel reports outside any test:"]
        for o in summary.outside:
            lines.append(
                f"  {o.kernel} boot-{o.boot} ({o.when}): {o.report.title}{o.report.times_printed()}"
            )
            lines += _decoded(o.kernel, o.report, "    ", shown)
    lines += ["", "Kernels:"]
    for k in summary.kernels:
        lines.append(f"  {k.name}: {k.origin or k.source} [{k.backend}]")
    # Titles and failure text come from a guest's console: escaped for the terminal and mail.
    return printable("\n".join(lines) + "\n")


def _decoded(kernel: str, r: ReportRecord, indent: str, shown: set[tuple[str, str]]) -> list[str]:
    """The symbolized trace and suggested To/Cc, when the run had debug info.

    Once per kernel and title: a boot failure errors every test of its
    kernel, and a mail needs its trace once.
    """
    if r.symbolized is None:
        return []
    if (kernel, r.title) in shown:
        return [f"{indent}(symbolized above)"]
    shown.add((kernel, r.title))
    return render_decoded(r.symbolized, indent)


def _section(
    title: str, tests: list[TestRecord], with_reason: bool, shown: set[tuple[str, str]]
) -> list[str]:
    if not tests:
        return []
    lines = ["", f"{title}:"]
    for t in tests:
        lines.append(f"  {t.test} on {t.kernel}: {t.summary}")
        for r in t.reports:
            lines.append(f"    kernel report: {r.title}{r.times_printed()}")
            lines += _decoded(t.kernel, r, "      ", shown)
        if with_reason and t.expected_reason:
            lines.append(f"    reason: {t.expected_reason}")
    return lines
