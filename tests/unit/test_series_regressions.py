"""Series mode leads with the regressions the series brings, against its own base."""

from __future__ import annotations

import json
from pathlib import Path

from harness.commands.series import SeriesReport, Step, write_reports
from harness.outcome import Outcome, Verdict
from harness.results.records import TestRun, load_summary

P, F, OOPS = Outcome.PASS, Outcome.FAIL, Outcome.OOPS


def _step(index: int, label: str, results: dict[str, tuple[Outcome, ...]]) -> Step:
    runs = tuple(
        TestRun(test, f"{index:02d}", Verdict(o, f"{o.value}: {test} {n}"), 1.0, Path("."))
        for test, outcomes in results.items()
        for n, o in enumerate(outcomes, 1)
    )
    outcomes = tuple(
        (test, next((o for o in os_ if o is not P), P)) for test, os_ in results.items()
    )
    return Step(index, label, outcomes, 10.0, None, runs)


def _report() -> SeriesReport:
    tests = ("broken_by_2", "old_bug", "racy", "fine")
    steps = (
        _step(0, "base (no patches)", {"broken_by_2": (P, P), "old_bug": (F, F),
                                       "racy": (P, P), "fine": (P, P)}),
        _step(1, "[1/2] mm: one", {"broken_by_2": (P, P), "old_bug": (F, F),
                                   "racy": (P, F), "fine": (P, P)}),
        _step(2, "[2/2] mm: two", {"broken_by_2": (OOPS, OOPS), "old_bug": (F, F),
                                   "racy": (F, P), "fine": (P, P)}),
    )  # fmt: skip
    return SeriesReport(tests, steps)


def test_the_lead_names_regressions_apart_from_the_base_failures(tmp_path: Path) -> None:
    report = _report()
    assert report.first_break("racy") is None, "flaky is never a break by itself"
    assert report.first_break("broken_by_2").index == 2  # type: ignore[union-attr]
    run = tmp_path / "20261127-1"
    run.mkdir()
    assert write_reports(report, run) is True
    text = (run / "summary.txt").read_text()
    lead = text.split("\n\n")
    assert lead[0] == "kharness series: 1 regression(s) introduced by the series"
    assert lead[1].splitlines() == [
        "Regressions (good on the base, failing after the series):",
        "  broken_by_2: pass (2/2 runs passed) -> oops: broken_by_2 1 (passed 0 of 2 runs)",
        "    first broken by patch 2: [2/2] mm: two",
    ]
    assert lead[2].splitlines() == [
        "Flaky after the series (not counted as regressions):",
        "  racy: passed 1 of 2 runs",
    ]
    assert lead[3].startswith("Failures the base already had:\n  old_bug:")
    assert "kpatch-harness run 20261127-1" in text, "the full summary follows the lead"
    series = (run / "series.txt").read_text()
    assert series.startswith(lead[0]) and "racy" in series and "flaky" in series
    summary = load_summary(run)
    assert [k.name for k in summary.kernels] == ["00", "01", "02"]
    assert {t.kernel for t in summary.tests if t.flaky} == {"01", "02"}
    checks = json.loads((run / "patchwork.json").read_text())
    assert [c["state"] for c in checks["checks"]] == ["fail"]
    assert checks["checks"][0]["context"] == "kharness-series"
    per_patch = {p["index"]: p["checks"][0]["state"] for p in checks["patches"]}
    assert per_patch == {1: "warning", 2: "fail"}  # patch 1: only flaky and the base's bug
    assert json.loads((run / "series.json").read_text())["comparison"]["regressions"] == 1


def test_a_series_that_only_keeps_the_base_failures_passes(tmp_path: Path) -> None:
    steps = (
        _step(0, "base (no patches)", {"old_bug": (F,), "fine": (P,)}),
        _step(1, "[1/1] fix docs", {"old_bug": (F,), "fine": (P,)}),
    )
    run = tmp_path / "r"
    run.mkdir()
    assert write_reports(SeriesReport(("old_bug", "fine"), steps), run) is False
    text = (run / "summary.txt").read_text()
    assert text.startswith("kharness series: no regressions introduced by the series\n")
    assert "Failures the base already had:\n  old_bug" in text
    assert json.loads((run / "patchwork.json").read_text())["checks"][0]["state"] == "warning"
