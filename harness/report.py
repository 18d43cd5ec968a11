"""Turning test runs into text and JSON for people and bots.

The pytest failure text (also the JUnit failure body) and the JSON summary
are built here from :class:`~harness.runner.TestRun` values and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.outcome import Outcome

if TYPE_CHECKING:
    from harness.oops import KernelReport
    from harness.runner import KernelGuest, TestRun

_REPORT_LINES = 60


def failure_text(run: TestRun) -> str:
    """What a developer reads first: verdict, KTAP failures, kernel report, evidence."""
    lines = [f"{run.verdict.summary}   [{run.test} on {run.kernel}]"]
    for detail in run.verdict.details:
        lines += ["", detail.rstrip()]
    for report in run.reports:
        text = report.text.splitlines()
        lines += ["", f"kernel report: {report.title}", *text[:_REPORT_LINES]]
        if len(text) > _REPORT_LINES:
            lines.append(f"... ({len(text) - _REPORT_LINES} more lines in console.txt)")
    if run.new_taint:
        lines += ["", f"new taint: {run.new_taint:#x} ({taint_letters(run.new_taint)})"]
    lines += ["", f"evidence: {run.directory}"]
    return "\n".join(lines)


#: /proc/sys/kernel/tainted bits in order, one letter each
#: (Documentation/admin-guide/tainted-kernels.rst)
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"


def taint_letters(value: int) -> str:
    """Decode a taint bitmask into the kernel's letters, e.g. 0x200 -> 'W'."""
    letters = [ch for bit, ch in enumerate(TAINT_LETTERS) if value & (1 << bit)]
    return "".join(letters) or "-"


def summary_json(
    runs: list[TestRun], guests: dict[str, KernelGuest], run_id: str = ""
) -> dict[str, Any]:
    """The machine-readable record of a run (summary.json).

    It is plain data on purpose: the text and KCIDB reporters are built from it
    alone, so a CI bot can regenerate them from a results directory later.
    """
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.verdict.outcome.value] = counts.get(run.verdict.outcome.value, 0) + 1
    return {
        "run": run_id,
        "counts": counts,
        "reports_outside_tests": [
            {"kernel": o.kernel, "boot": o.boot, "when": o.when, **report_json(o.report)}
            for g in guests.values()
            for o in g.outside
        ],
        "kernels": {name: _kernel(g) for name, g in guests.items()},
        "tests": [_test(r, guests.get(r.kernel)) for r in runs],
    }


def _kernel(g: KernelGuest) -> dict[str, Any]:
    return {
        "source": g.spec.source.describe(),
        "origin": g.image.origin if g.image else None,
        "release": g.boot_info.release if g.boot_info else None,
        "boots": g.boots,
        "timings": g.timings.phases,
        "boot_taint": g.boot_info.boot_taint if g.boot_info else None,
    }


def _test(r: TestRun, guest: KernelGuest | None) -> dict[str, Any]:
    expect = guest.spec.expect.get(r.test) if guest else None
    return {
        "test": r.test,
        "kernel": r.kernel,
        "outcome": r.verdict.outcome.value,
        "expected": expect.outcome.value if expect else None,
        "expected_reason": expect.reason if expect else None,
        "as_expected": _as_expected(r.verdict.outcome, expect.outcome if expect else None),
        "summary": r.verdict.summary,
        "seconds": round(r.seconds, 3),
        "boot": r.boot,
        "evidence": str(r.directory),
        "reports": [{"test": r.test, "kernel": r.kernel, **report_json(rep)} for rep in r.reports],
    }


def _as_expected(outcome: Outcome, expected: Outcome | None) -> bool:
    if expected is not None:
        return outcome is expected
    return outcome in (Outcome.PASS, Outcome.SKIP)


def report_json(rep: KernelReport) -> dict[str, Any]:
    """One kernel report as JSON: the same shape in result.json and summary.json."""
    return {
        "type": rep.type.value,
        "title": rep.title,
        "guilty_frame": rep.guilty_frame,
        "rip": rep.rip,
        "taint": rep.taint,
        "call_trace": list(rep.call_trace),
    }
