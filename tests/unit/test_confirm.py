"""Confirmed before blamed: the verdict of the runs again, and what every output makes of it.

The per-run outcomes are synthetic (the runs themselves are the guest's, tested
with real boots elsewhere); what is checked here is the judgement and that the
matrix, series.json, the reply, b4-check, Patchwork and KCIDB all carry it.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from harness.commands.confirm import classify, confirm_count, turned
from harness.commands.series import SeriesReport, Step, write_reports
from harness.errors import UserError
from harness.mail import b4check, reply
from harness.mail.b4check import Status
from harness.mail.message import parse
from harness.oops import parse as parse_console
from harness.outcome import Outcome, Verdict
from harness.results import series_record
from harness.results.records import TestRun
from harness.results.series_record import Confirmation, ConfirmKind, RunResult, SeriesRecord

P, F, OOPS = Outcome.PASS, Outcome.FAIL, Outcome.OOPS
TEST = "uffd_api_unknown_feature"
TITLE = "kernel BUG in move_pages"
CONSOLE = """\
[   10.000000] ------------[ cut here ]------------
[   10.000001] kernel BUG at mm/userfaultfd.c:1234!
[   10.000002] Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
[   10.000003] CPU: 0 PID: 77 Comm: uffd Not tainted 6.12.0 #1
[   10.000004] RIP: 0010:move_pages+0x10/0x20
[   10.000005] Call Trace:
[   10.000006]  <TASK>
[   10.000007]  move_pages+0x10/0x20
[   10.000008]  userfaultfd_ioctl+0x30/0x40
[   10.000009]  </TASK>
[   10.000010] ---[ end trace 0000000000000000 ]---
"""


def _r(outcome: Outcome, title: str | None = None) -> RunResult:
    summary = "pass" if outcome is P else f"{outcome.value}: not ok 3 - unknown feature accepted"
    return RunResult(outcome, summary, (title,) if title else ())


def test_all_pass_before_and_all_bad_after_is_the_only_regression() -> None:
    assert classify([_r(P)] * 3, [_r(F)] * 3) == (ConfirmKind.REGRESSION, "")
    assert classify([_r(P)] * 3, [_r(OOPS, TITLE)] * 3)[0] is ConfirmKind.REGRESSION
    kind, note = classify([_r(P)] * 3, [_r(F), _r(P), _r(F)])
    assert kind is ConfirmKind.UNSTABLE and note == "split after the patch: passed 1 of 3 runs"
    kind, note = classify([_r(P), _r(F), _r(P)], [_r(F)] * 3)
    assert kind is ConfirmKind.UNSTABLE and "split before the patch: passed 2 of 3" in note
    kind, note = classify([_r(F)] * 3, [_r(F)] * 3)
    assert kind is ConfirmKind.PRE_EXISTING and note == "it fails before the patch too (3/3)"
    assert classify([_r(P)] * 3, [_r(P)] * 3)[0] is ConfirmKind.UNSTABLE, "did not come back"
    assert classify([], [_r(F)] * 3)[0] is ConfirmKind.UNSTABLE, "nothing to compare with"


def test_a_crash_title_the_base_showed_is_never_blamed() -> None:
    kind, note = classify([_r(P)] * 3, [_r(OOPS, TITLE)] * 3, {TITLE})
    assert kind is ConfirmKind.PRE_EXISTING and TITLE in note
    other = classify([_r(P)] * 3, [_r(OOPS, TITLE), _r(OOPS, "WARNING in x")] * 2, {TITLE})
    assert other[0] is ConfirmKind.REGRESSION, "a new title next to the old one is new"


def test_confirm_count_takes_zero_and_refuses_negatives() -> None:
    assert confirm_count("0") == 0 and confirm_count("5") == 5
    with pytest.raises(Exception, match="must be 0"):
        confirm_count("-1")


def _run(index: int, outcome: Outcome, n: int, title: str | None = None) -> TestRun:
    reports = tuple(parse_console(CONSOLE)) if title else ()
    assert not title or reports[0].title == title
    verdict = Verdict(outcome, "pass" if outcome is P else f"{outcome.value}: not ok 3 - x")
    where = Path(f"{index:02d}/{TEST}/run-{n}")
    return TestRun(TEST, f"{index:02d}", verdict, 1.0, where, reports=reports)


def _step(index: int, label: str, *outcomes: Outcome) -> Step:
    runs = tuple(_run(index, o, n) for n, o in enumerate(outcomes, 1))
    worst = next((o for o in outcomes if o is not P), P)
    return Step(index, label, ((TEST, worst),), 5.0, None, runs)


def _confirmed(kind: ConfirmKind, after: tuple[RunResult, ...]) -> Confirmation:
    before = (_r(P),) * 3 if kind is not ConfirmKind.PRE_EXISTING else (_r(F),) * 3
    note = "" if kind is ConfirmKind.REGRESSION else classify(before, after)[1]
    return Confirmation(TEST, 1, "[1/2] mm: one", 2, "[2/2] mm: two", kind, before, after, note)


def _report(kind: ConfirmKind | None, after: tuple[RunResult, ...] = ()) -> SeriesReport:
    steps = (
        _step(0, "base (no patches)", P),
        _step(1, "[1/2] mm: one", P),
        _step(2, "[2/2] mm: two", F),
    )
    found = (_confirmed(kind, after),) if kind else ()
    return SeriesReport((TEST,), steps, None, "abc123 (the series' base-commit)", found, 3)


def _write(tmp_path: Path, report: SeriesReport) -> tuple[Path, bool]:
    run = tmp_path / "20261202-120000-1"
    run.mkdir()
    return run, write_reports(report, run, why_tests=f"{TEST}: covers mm/userfaultfd.c")


def _mail(subject: str, mid: str) -> bytes:
    return (
        f"From: Dev <dev@example.org>\nTo: list@example.org\nSubject: {subject}\n"
        f"Message-ID: <{mid}>\n\n---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"
    ).encode()


def test_a_confirmed_regression_is_blamed_with_its_counts_everywhere(tmp_path: Path) -> None:
    run, regressed = _write(tmp_path, _report(ConfirmKind.REGRESSION, (_r(OOPS, TITLE),) * 3))
    assert regressed is True
    record = series_record.load(run)
    assert record.breaks() == {TEST: 2} and record.regressions == (TEST,)
    assert record.confirmations[0].kind is ConfirmKind.REGRESSION and record.confirm_runs == 3
    series = (run / "series.txt").read_text()
    assert "first broken by patch 2: [2/2] mm: two (confirmed: passed 3/3 on step 1, 0/3" in series
    table = series[series.index(f"{TEST}   ") :].splitlines()
    assert table[0].split() == [TEST, "patch", "1", "([1/2]", "mm:", "one)", "patch", "2",
                                "([2/2]", "mm:", "two)"]  # fmt: skip
    assert table[1].split() == ["pass", "3/3", "0/3"]
    assert table[2].split() == ["oops:", "kernel", "BUG", "in", "move_pages", "0/3", "3/3"]
    assert table[3] == "=> regression"
    anchor = parse(_mail("[PATCH 2/2] mm: two", "p2@x"))
    assert b4check.judge(anchor, run).status is Status.FAIL
    assert b4check.judge(anchor, run).to_json()["status"] == "fail"
    checks = json.loads((run / "patchwork.json").read_text())
    assert checks["checks"][0]["state"] == "fail"
    kcidb = json.loads((run / "kcidb.json").read_text())
    (mine,) = [t for t in kcidb["tests"] if t["id"].endswith(f":02:{TEST}")]
    assert mine["misc"]["series_verdict"] == "regression"
    message = reply.compose(
        anchor, [reply.KernelResult("selftest", run)], reply.Settings("k <k@x>"), "kharness x"
    )
    text = message.get_content()
    assert "tests: uffd_api_unknown_feature\n  why: uffd_api_unknown_feature: covers" in text
    assert "confirmed: 3 more runs of a test a patch turned from pass to fail" in text
    assert "  pass" in text and "0/3" in text and f"oops: {TITLE}" in text


def test_an_unstable_result_is_named_and_blames_no_patch(tmp_path: Path) -> None:
    run, regressed = _write(tmp_path, _report(ConfirmKind.UNSTABLE, (_r(F), _r(P), _r(F))))
    assert regressed is False
    record = series_record.load(run)
    assert record.breaks() == {} and record.regressions == ()
    lead = (run / "series.txt").read_text().split("\n\n")
    assert lead[0] == "kharness series: no regressions introduced by the series"
    assert lead[1].splitlines() == [
        "Unstable when run again (a split result: no patch blamed):",
        f"  {TEST}: split after the patch: passed 1 of 3 runs",
    ]
    anchor = parse(_mail("[PATCH 2/2] mm: two", "p2@x"))
    checked = b4check.judge(anchor, run)
    assert checked.status is Status.WARN and checked.summary.startswith("unstable when run again")
    cover = parse(_mail("[PATCH 0/2] mm", "c@x"))
    assert b4check.judge(cover, run).status is Status.WARN
    checks = json.loads((run / "patchwork.json").read_text())
    assert checks["checks"][0]["state"] == "warning"
    assert f"1 unstable when run again: {TEST}" in checks["checks"][0]["description"]
    assert {p["index"]: p["checks"][0]["state"] for p in checks["patches"]} == {
        1: "success",
        2: "warning",
    }
    kcidb = json.loads((run / "kcidb.json").read_text())
    (mine,) = [t for t in kcidb["tests"] if t["id"].endswith(f":02:{TEST}")]
    assert mine["misc"]["series_verdict"] == "unstable"


def test_a_pre_existing_failure_passes_with_a_note(tmp_path: Path) -> None:
    run, regressed = _write(tmp_path, _report(ConfirmKind.PRE_EXISTING, (_r(F),) * 3))
    assert regressed is False
    checked = b4check.judge(parse(_mail("[PATCH 2/2] mm: two", "p2@x")), run)
    assert checked.status is Status.PASS
    assert "fails without this patch too (pre-existing, not blamed)" in checked.summary
    assert "pre-existing after patch 2, not blamed" in (run / "series.txt").read_text()


def test_an_unconfirmed_step_showing_the_bases_crash_is_not_blamed(tmp_path: Path) -> None:
    base = Step(0, "base", ((TEST, P), ("other", OOPS)), 1.0, None,
                (_run(0, P, 0), TestRun("other", "00", Verdict(OOPS, "oops"), 1.0, Path("."),
                                        reports=_run(0, OOPS, 0, TITLE).reports)))  # fmt: skip
    bad = _run(1, OOPS, 0, TITLE)
    step = Step(1, "[1/1] mm: one", ((TEST, OOPS),), 1.0, None, (bad,))
    report = SeriesReport((TEST,), (base, step))
    assert report.first_break(TEST) is None
    assert turned(base, step) == [TEST]


def test_a_run_that_could_not_test_is_a_warning_naming_the_cause(tmp_path: Path) -> None:
    failed = Step(0, "base (no patches)", ((TEST, Outcome.BUILD_FAIL),), 0.0, "make: *** [vmlinux]")
    run, _ = _write(tmp_path, SeriesReport((TEST,), (failed,)))
    checked = b4check.judge(parse(_mail("[PATCH 1/1] mm: one", "p1@x")), run)
    assert checked.status is Status.WARN
    assert checked.summary == "could not test: the base did not build: make: *** [vmlinux]"
    home = tmp_path / "home"
    raw = _mail("[PATCH 1/1] mm: one", "p1@x")
    result = b4check.check(raw, "k", tmp_path / "no-such-kernels.yaml", home, "http://127.0.0.1:9/")
    assert result.status is Status.WARN and result.summary.startswith("could not test the series")


def test_the_series_record_round_trips_and_reads_schema_1(tmp_path: Path) -> None:
    run, _ = _write(tmp_path, _report(ConfirmKind.REGRESSION, (_r(OOPS, TITLE),) * 3))
    record = series_record.load(run)
    assert SeriesRecord.from_json(json.loads(json.dumps(record.to_json()))) == record
    old = tmp_path / "old"
    old.mkdir()
    (old / "series.json").write_text(json.dumps({
        "tests": [TEST], "base": "b", "not_applied": None,
        "steps": [{"index": 0, "label": "base", "outcomes": {TEST: "pass"}, "flaky": [],
                   "build_seconds": 1.0, "error": None}],
        "first_break": {TEST: None},
        "comparison": {"regressions": 0, "changes": []},
    }))  # fmt: skip
    read = series_record.load(old)
    assert read.schema == 1 and read.confirmations == () and read.step(0).outcome(TEST) is P  # type: ignore[union-attr]
    (old / "series.json").write_text('{"schema_version": 9}')
    with pytest.raises(UserError, match="schema version 9"):
        series_record.load(old)
    (old / "series.json").write_text('{"schema_version": 2, "tests": "x"}')
    with pytest.raises(UserError, match="tests is not a list of strings"):
        series_record.load(old)


def test_the_reproduce_line_is_one_shell_line_naming_the_series() -> None:
    anchor = parse(_mail("[PATCH 1/1] mm: one", "p1@x"))
    line = reply.reproduce_command("selftest", type("F", (), {"anchor": anchor, "link": None})())
    words = shlex.split(line)
    assert words[:6] == ["kharness", "series", "--kernel", "selftest", "--series", "<p1@x>"]


class _Guest:
    """A step's guest as StepGuests drives it: which runs, stops and shutdowns it got."""

    def __init__(self, name: str, bad: bool, log: list[str]) -> None:
        self.name, self.bad, self.log = name, bad, log

    def run(self, test: object, attempt: int = 0) -> TestRun:
        self.log.append(f"{self.name} run {attempt}")
        return _run(int(self.name), F if self.bad else P, attempt)

    def stop_guest(self) -> None:
        self.log.append(f"{self.name} stopped")

    def shutdown(self) -> None:
        self.log.append(f"{self.name} shut down")


class _Trial:
    def __init__(self, log: list[str]) -> None:
        self.tests = [type("T", (), {"name": TEST})()]
        self.log = log

    def guest(self, name: str, image: object) -> _Guest:
        return _Guest(name, image == "bad", self.log)


def test_step_guests_rerun_the_turned_test_on_both_steps_and_keep_one_guest_stopped() -> None:
    from harness.commands.confirm import StepGuests

    calls: list[str] = []
    found = []
    with StepGuests(_Trial(calls), 1, 2, lambda _line: None) as guests:  # type: ignore[arg-type]
        steps: list[Step] = []
        for index, image in enumerate(("good", "good", "bad")):
            done = guests.run(f"{index:02d}", image)  # type: ignore[arg-type]
            outcome = done[0].verdict.outcome
            steps.append(Step(index, f"p{index}", ((TEST, outcome),), 1.0, None, tuple(done)))
            found += guests.settle(steps[-1], steps[0])
    assert calls == [
        "00 run 0", "00 stopped",
        "01 run 0", "00 shut down", "01 stopped",
        "02 run 0", "02 run 2", "02 run 3", "01 run 2", "01 run 3", "01 shut down", "02 stopped",
        "02 shut down",
    ]  # fmt: skip
    (checked,) = found
    assert (checked.before, checked.after, checked.kind) == (1, 2, ConfirmKind.REGRESSION)
    assert checked.counts() == "passed 2/2 on step 1, 0/2 on step 2"
