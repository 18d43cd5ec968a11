"""compare OLD NEW: regressions, fixes, changed crashes, flaky tests, kernel matching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.commands.cli import main
from harness.errors import UserError
from harness.outcome import Outcome, Verdict
from harness.results.compare import ChangeKind, compare, parse_map
from harness.results.pass_rate import combine
from harness.results.records import SCHEMA_VERSION, RunSummary, TestRun
from harness.results.summarize import summarize


def _t(test: str, kernel: str, outcome: str, titles: tuple[str, ...] = (), **kw: object) -> dict:
    return {
        "test": test,
        "kernel": kernel,
        "outcome": outcome,
        "expected": kw.get("expected"),
        "summary": kw.get("summary", f"{outcome}: {', '.join(titles)}" if titles else outcome),
        "reports": [{"type": "BUG", "title": t} for t in titles],
        "runs": kw.get("runs", []),
    }


def _run(name: str, kernels: list[str], tests: list[dict]) -> RunSummary:
    return RunSummary.from_json(
        {
            "schema_version": SCHEMA_VERSION,
            "run": name,
            "kernels": {k: {"source": "x"} for k in kernels},
            "tests": tests,
        }
    )


def _flaky_runs(*outcomes: str) -> list[dict]:
    return [{"outcome": o, "summary": o} for o in outcomes]


OLD = _run(
    "old",
    ["k"],
    [
        _t("stays_good", "k", "pass"),
        _t("breaks", "k", "pass"),
        _t("gets_fixed", "k", "fail", summary="fail: not ok 1 - x"),
        _t("still_bad", "k", "oops", ("kernel BUG in f",)),
        _t("new_crash", "k", "oops", ("WARNING in g",)),
        _t("goes_flaky", "k", "pass"),
        _t("known", "k", "fail", expected="fail"),
        _t("cannot_run", "k", "pass"),
        _t("was_skipped", "k", "skip"),
        _t("now_skipped", "k", "fail"),
        _t("dropped", "k", "pass"),
    ],
)
NEW = _run(
    "new",
    ["k"],
    [
        _t("stays_good", "k", "pass"),
        _t("breaks", "k", "oops", ("BUG: kernel NULL pointer dereference in h",)),
        _t("gets_fixed", "k", "pass"),
        _t("still_bad", "k", "oops", ("kernel BUG in f",)),
        _t("new_crash", "k", "oops", ("kernel BUG in g",)),
        _t("goes_flaky", "k", "fail", runs=_flaky_runs("pass", "fail", "pass")),
        _t("known", "k", "fail", expected="fail"),
        _t("cannot_run", "k", "error", summary="error: no free port"),
        _t("was_skipped", "k", "fail"),
        _t("now_skipped", "k", "skip"),
        _t("added", "k", "fail"),
    ],
)


def test_each_pair_lands_in_exactly_its_kind() -> None:
    result = compare(OLD, NEW)
    kinds = {c.test: c.kind for c in result.changes}
    assert kinds == {
        "stays_good": ChangeKind.SAME,
        "breaks": ChangeKind.REGRESSION,
        "gets_fixed": ChangeKind.FIXED,
        "still_bad": ChangeKind.STILL_FAILING,
        "new_crash": ChangeKind.CHANGED_CRASH,
        "goes_flaky": ChangeKind.FLAKY,
        "known": ChangeKind.SAME,  # an expected failure is good in both runs
        "cannot_run": ChangeKind.NOT_COMPARABLE,
        "was_skipped": ChangeKind.REGRESSION,  # it runs now, and fails
        "now_skipped": ChangeKind.NOT_COMPARABLE,  # a skip is not a fix
    }
    assert result.only_old == (("dropped", "k"),) and result.only_new == (("added", "k"),)
    assert [c.test for c in result.regressions] == ["breaks", "was_skipped"]


def test_the_text_leads_with_the_regressions() -> None:
    text = compare(OLD, NEW).render()
    first, *_ = text.splitlines()
    assert first == "kharness compare old -> new: 2 regression(s)"
    sections = text.split("\n\n")
    assert sections[1].startswith("New failures (regressions):")
    assert "breaks on k: pass -> oops: BUG: kernel NULL pointer dereference in h" in sections[1]
    assert "new_crash on k: oops: WARNING in g -> oops: kernel BUG in g" in text
    assert "goes_flaky on k: passed 2 of 3 runs" in text
    assert "Fixed:\n  gets_fixed on k: fail: not ok 1 - x -> pass" in text
    assert "Still failing (the base had these already):\n  still_bad on k" in text
    assert "Only in NEW (not compared):\n  added on k" in text


def test_the_reverse_comparison_regresses_nothing_that_was_fixed() -> None:
    back = compare(NEW, OLD)
    assert [c.test for c in back.regressions] == ["gets_fixed", "now_skipped"]
    # goes_flaky was flaky and passes now: fixed; a failure that now skips is not
    assert {c.test for c in back.of(ChangeKind.FIXED)} == {"breaks", "goes_flaky"}
    assert [c.test for c in back.of(ChangeKind.NOT_COMPARABLE)] == ["cannot_run", "was_skipped"]


def test_kernels_are_matched_by_name_by_mapping_or_when_alone() -> None:
    a = _run("a", ["base"], [_t("t", "base", "pass")])
    b = _run("b", ["series"], [_t("t", "series", "fail")])
    alone = compare(a, b)
    assert alone.kernels == (("base", "series"),) and alone.note
    assert [c.where for c in alone.regressions] == ["t on base -> series"]
    two = _run("c", ["x", "y"], [_t("t", "x", "pass"), _t("t", "y", "fail")])
    with pytest.raises(UserError, match=r"no kernel name in common.*--map OLD_KERNEL=NEW_KERNEL"):
        compare(a, two)
    mapped = compare(a, two, parse_map(["base=y"]))
    assert [c.new_kernel for c in mapped.regressions] == ["y"]
    with pytest.raises(UserError, match=r"unknown kernels: 'nope' \(OLD has base\)"):
        compare(a, two, parse_map(["nope=y"]))
    with pytest.raises(UserError, match="must read OLD_KERNEL=NEW_KERNEL"):
        parse_map(["base"])


def _write(tmp_path: Path, name: str, summary: RunSummary) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "summary.json").write_text(json.dumps(summary.to_json()))
    return directory


def test_cli_exit_status_is_1_only_for_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _write(tmp_path, "old", OLD), _write(tmp_path, "new", NEW)
    assert main(["compare", str(old), str(new)]) == 1
    assert "New failures (regressions):" in capsys.readouterr().out
    fixed_only = _write(tmp_path, "fixed", _run("fixed", ["k"], [_t("gets_fixed", "k", "pass")]))
    assert main(["compare", str(old), str(fixed_only)]) == 0
    capsys.readouterr()
    assert main(["compare", str(old), str(new), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["regressions"] == 2
    assert {c["test"] for c in doc["changes"] if c["kind"] == "regression"} == {
        "breaks",
        "was_skipped",
    }


def test_cli_bad_directories_are_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _write(tmp_path, "old", OLD)
    assert main(["compare", str(old), str(tmp_path / "missing")]) == 2
    assert "missing: no such results directory" in capsys.readouterr().err
    assert main(["compare", str(old), str(tmp_path)]) == 2
    assert "no summary.json; is this a results directory?" in capsys.readouterr().err
    (tmp_path / "summary.json").write_text('{"schema_version": 2, "tests": [{"test": 1}]}')
    assert main(["compare", str(old), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a summary this harness can read" in err and "Traceback" not in err
    (tmp_path / "summary.json").write_text("{")
    assert main(["compare", str(old), str(tmp_path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def _testrun(outcome: Outcome, summary: str, n: int) -> TestRun:
    return TestRun("t", "k", Verdict(outcome, summary), 1.0, Path(f"/r/k/t/run-{n}"), boot=n)


def test_several_runs_are_one_record_with_a_pass_rate() -> None:
    runs = [
        _testrun(Outcome.PASS, "pass", 1),
        _testrun(Outcome.FAIL, "fail: not ok 1 - race", 2),
        _testrun(Outcome.PASS, "pass", 3),
    ]
    one = combine(runs)
    assert one.verdict.outcome is Outcome.FAIL
    assert one.verdict.summary == "flaky: passed 2 of 3 runs; run 2: fail: not ok 1 - race"
    assert one.directory == Path("/r/k/t/run-2") and one.seconds == 3.0
    summary = summarize("r", runs, [], [], {})
    (record,) = summary.tests
    assert record.flaky and record.passes == 2 and record.attempts == 3
    assert [a.outcome for a in record.runs] == [Outcome.PASS, Outcome.FAIL, Outcome.PASS]
    assert RunSummary.from_json(summary.to_json()) == summary
    steady = combine([_testrun(Outcome.PASS, "pass", 1), _testrun(Outcome.PASS, "pass", 2)])
    assert steady.verdict.summary == "pass (passed 2 of 2 runs)"
    assert combine(runs[:1]) is runs[0]
    bad = summarize("r", [_testrun(Outcome.FAIL, "fail", n) for n in (1, 2)], [], [], {})
    assert not bad.tests[0].flaky and bad.tests[0].passes == 0


def test_text_summary_shows_pass_rates_and_flaky_cells() -> None:
    from harness.reporters import text

    out = text.render(NEW)
    assert "FLAKY 2/3" in out
    assert "goes_flaky on k: fail" in out.split("Unexpected:")[1]
