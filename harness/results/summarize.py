"""Turning test runs into text and JSON for people and bots.

The pytest failure text (also the JUnit failure body) and the run's summary
record are built here from :class:`~harness.results.records.TestRun` values and
kernel records, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from harness.results import pass_rate
from harness.oops import times_seen
from harness.oops.frames import render_decoded
from harness.outcome import Outcome
from harness.results.records import (
    Attempt,
    KernelRecord,
    OutsideRecord,
    OutsideReport,
    ReportRecord,
    RunSummary,
    TestRecord,
    TestRun,
)

_REPORT_LINES = 60


def failure_text(run: TestRun) -> str:
    """What a developer reads first: verdict, KTAP failures, kernel report, evidence."""
    lines = [f"{run.verdict.summary}   [{run.test} on {run.kernel}]"]
    for detail in run.verdict.details:
        lines += ["", detail.rstrip()]
    for report in run.reports:
        text = report.text.splitlines()
        lines += ["", f"kernel report: {report.title}{times_seen(report)}"]
        if report.decoded is not None:
            lines += ["symbolized:", *render_decoded(report.decoded), "", "as printed:"]
        lines += text[:_REPORT_LINES]
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


def summarize(
    run_id: str,
    runs: Iterable[TestRun],
    kernels: Iterable[KernelRecord],
    outside: Iterable[OutsideReport],
    expects: Mapping[tuple[str, str], tuple[Outcome, str]],
    not_run: Iterable[tuple[str, str]] = (),
    interrupted: bool = False,
) -> RunSummary:
    """The typed record of a run that summary.json and every reporter are made from.

    ``expects`` maps (test, kernel) to kernels.yaml's expectation; ``not_run``
    lists the (test, kernel) pairs an interruption kept from running.  Several
    runs of one test on one kernel (``--runs N``) make one record.
    """
    return build_summary(
        run_id,
        kernels,
        test_records(runs),
        expects,
        not_run,
        outside_records(outside),
        interrupted,
    )


def build_summary(
    run_id: str,
    kernels: Iterable[KernelRecord],
    records: Iterable[TestRecord],
    expects: Mapping[tuple[str, str], tuple[Outcome, str]] | None = None,
    not_run: Iterable[tuple[str, str]] = (),
    outside: Iterable[OutsideRecord] = (),
    interrupted: bool = False,
) -> RunSummary:
    """The one way a run's records become a :class:`RunSummary` (pytest plugin, series).

    Records arrive without kernels.yaml's expectations (a worker ships them
    so); ``expects`` adds them here, and the pairs an interruption kept from
    running (``not_run``) become NOT_RUN records carrying theirs too.
    """
    expects = expects or {}
    tests = tuple(
        replace(r, expected=e[0], expected_reason=e[1])
        if (e := expects.get((r.test, r.kernel)))
        else r
        for r in records
    )
    return RunSummary(
        run_id,
        tuple(kernels),
        tests + tuple(not_run_records(not_run, expects)),
        tuple(outside),
        interrupted,
    )


def outside_records(outside: Iterable[OutsideReport]) -> tuple[OutsideRecord, ...]:
    """Kernel reports outside any test, as the summary records them."""
    return tuple(
        OutsideRecord(o.kernel, o.boot, o.when, ReportRecord.of(o.report)) for o in outside
    )


def test_records(runs: Iterable[TestRun]) -> tuple[TestRecord, ...]:
    """One record per (test, kernel): several runs of a test (``--runs N``) make one.

    What a pytest run (serial or a worker) ships with its reports; kernels.yaml's
    expectations are added where the summary is written.
    """
    return tuple(_record(group) for group in pass_rate.group(runs))


def _record(runs: list[TestRun]) -> TestRecord:
    """One test's record from its run(s)."""
    combined = pass_rate.combine(runs)
    attempts = tuple(pass_rate.attempt(r) for r in runs) if len(runs) > 1 else ()
    return test_record(combined, None, attempts)


def test_record(
    run: TestRun,
    expect: tuple[Outcome, str] | None = None,
    runs: tuple[Attempt, ...] = (),
) -> TestRecord:
    """The summary's record of a runner TestRun (with kernels.yaml's expectation).

    ``runs``: every run when the test ran several times (``run`` is then
    their combination, :func:`harness.results.pass_rate.combine`).
    """
    return TestRecord(
        run.test,
        run.kernel,
        run.verdict.outcome,
        run.verdict.summary,
        run.seconds,
        run.boot,
        str(run.directory),
        expect[0] if expect else None,
        expect[1] if expect else None,
        run.verdict.details,
        tuple(ReportRecord.of(r) for r in run.reports),
        runs,
    )


def not_run_records(
    pairs: Iterable[tuple[str, str]], expects: Mapping[tuple[str, str], tuple[Outcome, str]]
) -> list[TestRecord]:
    """Records for (test, kernel) pairs an interruption kept from running."""
    return [
        TestRecord(
            test,
            kernel,
            Outcome.NOT_RUN,
            "not run: the run was interrupted before this test finished",
            expected=expects[(test, kernel)][0] if (test, kernel) in expects else None,
            expected_reason=expects[(test, kernel)][1] if (test, kernel) in expects else None,
        )
        for test, kernel in pairs
    ]


test_record.__test__ = False  # type: ignore[attr-defined]
