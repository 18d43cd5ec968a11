"""One report per bug: repeated reports in real console logs fold into one with a count.

Every log is a real capture (tests/data/oops, see each header): a WARN in a
loop (6.12-warnloop), a hung task re-reported every interval (6.*-hung), soft
lockups and RCU stalls that keep firing.  The count and the first and last
printk timestamps must reach every output: summary.json, the text summary,
the failure text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.oops import ReportType, fold, parse, times_seen
from harness.outcome import Outcome, Verdict
from harness.reporters import text
from harness.results.records import ReportRecord, RunSummary, TestRecord, TestRun
from harness.results.summarize import failure_text

DATA = Path(__file__).resolve().parents[1] / "data" / "oops"


def load(name: str) -> str:
    return (DATA / name).read_text(errors="replace").partition("\n\n")[2]


@pytest.mark.parametrize(
    ("log", "title", "count", "first", "last"),
    [
        ("6.12-warnloop.log", "WARNING in harness_oops_warn", 5, 6.0, 9.0),
        ("6.12-hung.log", "INFO: task hung in msleep", 3, 6.0, 13.0),
        ("6.1-hung.log", "INFO: task hung in msleep", 3, 6.0, 13.5),
        ("6.12-softlockup.log", "BUG: soft lockup in proc_reg_write", 3, 4.0, 13.0),
        (
            "6.12-hardlockup.log",
            "INFO: rcu detected stall in proc_reg_write",
            2,
            6.0,
            16.0,
        ),
    ],
)
def test_repeats_fold_into_one_report_with_count_and_times(
    log: str, title: str, count: int, first: float, last: float
) -> None:
    raw = parse(load(log))
    assert len([r for r in raw if r.title == title]) == count  # printed that often
    (report,) = [r for r in fold(raw) if r.title == title]
    assert report.count == count
    assert report.time is not None and report.last_time is not None
    assert first <= report.time < report.last_time <= last
    assert report.text == raw[0].text  # the first one's text: closest to the cause
    assert times_seen(report) == f" (x{count}, {report.time:.1f}s to {report.last_time:.1f}s)"


def test_different_reports_stay_apart_and_in_order() -> None:
    reports = fold(parse(load("6.12-two.log")))
    assert [r.count for r in reports] == [1] * len(reports)
    assert [r.title for r in reports] == [r.title for r in parse(load("6.12-two.log"))]


def test_a_fatal_oops_and_its_panic_are_two_reports() -> None:
    reports = fold(parse(load("6.12-panic_oops.log")))
    assert [r.type is ReportType.PANIC for r in reports] == [False, True]


def test_folded_report_reaches_summary_json_text_and_failure_text(tmp_path: Path) -> None:
    (report,) = fold(parse(load("6.12-warnloop.log")))
    record = ReportRecord.of(report)
    back = ReportRecord.from_json(record.to_json())
    assert (back.count, back.first_time, back.last_time) == (
        5,
        report.time,
        report.last_time,
    )
    verdict = Verdict(Outcome.OOPS, f"oops: {report.title}")
    summary = RunSummary(
        "r1",
        tests=(TestRecord("t", "k", Outcome.OOPS, verdict.summary, reports=(record,)),),
    )
    rendered = text.render(RunSummary.from_json(summary.to_json()))
    assert f"kernel report: WARNING in harness_oops_warn{times_seen(report)}" in rendered
    run = TestRun("t", "k", verdict, 1.0, tmp_path, reports=(report,))
    assert "kernel report: WARNING in harness_oops_warn (x5, " in failure_text(run)


def test_schema_2_summaries_still_load() -> None:
    data = RunSummary("old").to_json()
    data["schema_version"] = 2
    data["tests"] = [
        {
            "test": "t",
            "kernel": "k",
            "outcome": "oops",
            "summary": "oops",
            "reports": [{"type": "WARNING", "title": "WARNING in f"}],
        }
    ]
    (t,) = RunSummary.from_json(data).tests
    assert t.reports[0].count == 1 and t.reports[0].symbolized is None
