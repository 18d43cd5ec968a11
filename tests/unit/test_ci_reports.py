"""What CI systems read: KCIDB issues and incidents (schema-checked), Patchwork checks."""

from __future__ import annotations

import json
import re

import kcidb_io.schema  # a dev dependency: a missing package fails, never skips
import pytest

from harness.reporters import kcidb, patchwork
from harness.results.compare import compare
from harness.results.records import SCHEMA_VERSION, RunSummary

BUG = {"type": "BUG", "title": "kernel BUG in move_pages_huge_pmd", "guilty_frame": "m"}
WARN = {"type": "WARNING", "title": "WARNING in zap_pte_range", "guilty_frame": "zap_pte_range"}
GPF = {"type": "general protection fault", "title": "general protection fault in f"}


def _t(test: str, kernel: str, outcome: str, reports: list[dict] | None = None, **kw) -> dict:
    return {
        "test": test,
        "kernel": kernel,
        "outcome": outcome,
        "summary": kw.get("summary", outcome),
        "expected": kw.get("expected"),
        "reports": reports or [],
        "runs": kw.get("runs", []),
    }


def _summary(tests: list[dict], kernels=("k1", "k2"), **kw) -> RunSummary:
    return RunSummary.from_json(
        {
            "schema_version": SCHEMA_VERSION,
            "run": kw.get("run", "20261127-1"),
            "kernels": {k: {"source": "x"} for k in kernels},
            "tests": tests,
            "reports_outside_tests": kw.get("outside", []),
            "interrupted": kw.get("interrupted", False),
        }
    )


RUN = _summary(
    [
        _t("a", "k1", "oops", [BUG, WARN]),
        _t("b", "k1", "pass"),
        _t("a", "k2", "oops", [BUG]),
        _t("c", "k2", "panic", [GPF]),
    ],
    outside=[{"kernel": "k2", "boot": 1, "when": "boot", **WARN}],
)


def test_kcidb_has_one_issue_per_crash_title_and_one_incident_per_sighting() -> None:
    doc = json.loads(kcidb.render(RUN))
    kcidb_io.schema.LATEST.validate(doc)
    assert doc["version"] == {"major": 5, "minor": 3}
    issues = {i["report_subject"]: i for i in doc["issues"]}
    assert set(issues) == {BUG["title"], WARN["title"], GPF["title"]}
    assert issues[GPF["title"]]["categories"] == ["runtime.general_protection_fault"]
    by_issue: dict[str, list[dict]] = {}
    for incident in doc["incidents"]:
        by_issue.setdefault(incident["issue_id"], []).append(incident)
    bug = by_issue[kcidb.issue_id(BUG["title"])]
    tests = {t["id"]: t for t in doc["tests"]}
    assert sorted(tests[i["test_id"]]["build_id"].split(":")[-1] for i in bug) == ["k1", "k2"]
    warn = by_issue[kcidb.issue_id(WARN["title"])]
    assert len(warn) == 2, "the test's WARN and the boot's WARN"
    boot = next(i for i in warn if "test_id" not in i)
    assert boot["build_id"].endswith(":k2") and "during boot" in boot["comment"]
    ids = [i["id"] for i in doc["incidents"]]
    assert len(ids) == len(set(ids))
    # the same bug seen by another run is the same issue
    other = json.loads(kcidb.render(_summary([_t("z", "k9", "oops", [BUG])], ["k9"], run="r2")))
    kcidb_io.schema.LATEST.validate(other)
    assert other["issues"][0]["id"] == issues[BUG["title"]]["id"]


def test_kcidb_carries_the_pass_rate_of_repeated_tests() -> None:
    runs = [{"outcome": "pass", "summary": "pass"}, {"outcome": "fail", "summary": "fail"}]
    doc = json.loads(kcidb.render(_summary([_t("r", "k1", "fail", runs=runs)], ["k1"])))
    kcidb_io.schema.LATEST.validate(doc)
    misc = doc["tests"][0]["misc"]
    assert (misc["runs"], misc["passes"], misc["flaky"]) == (2, 1, True)


def test_kcidb_says_how_often_a_repeated_report_was_printed() -> None:
    """One bug printed five times is one incident that says so (and its first and last time)."""
    loop = {**WARN, "count": 5, "first_time": 6.9, "last_time": 8.2}
    doc = json.loads(kcidb.render(_summary([_t("w", "k1", "oops", [loop, BUG])], ["k1"])))
    kcidb_io.schema.LATEST.validate(doc)
    comments = {i["issue_id"]: i["comment"] for i in doc["incidents"]}
    assert comments[kcidb.issue_id(WARN["title"])].endswith("(printed 5 times, 6.9s to 8.2s)")
    assert "printed" not in comments[kcidb.issue_id(BUG["title"])]
    (report, _) = doc["tests"][0]["misc"]["reports"]
    assert (report["count"], report["first_time"], report["last_time"]) == (5, 6.9, 8.2)


def test_kcidb_without_reports_has_no_issues() -> None:
    doc = json.loads(kcidb.render(_summary([_t("b", "k1", "pass")], ["k1"])))
    kcidb_io.schema.LATEST.validate(doc)
    assert "issues" not in doc and "incidents" not in doc


def _valid(body: dict) -> None:
    assert set(body) <= {"state", "context", "description", "target_url"}
    assert body["state"] in patchwork.STATES
    assert re.fullmatch(r"[-A-Za-z0-9_]+", body["context"]), "Patchwork contexts are slugs"
    assert 0 < len(body["description"]) <= 255


def test_patchwork_checks_one_per_kernel_ready_to_post(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(patchwork.URL_ENV, "https://ci.example/results/")
    doc = json.loads(patchwork.render(RUN))
    for body in doc["checks"]:
        _valid(body)
    by_context = {c["context"]: c for c in doc["checks"]}
    assert set(by_context) == {"kharness-k1", "kharness-k2"}
    assert by_context["kharness-k1"]["state"] == "fail"
    assert by_context["kharness-k1"]["description"] == "1/2 passed on k1; 1 failure: a"
    assert by_context["kharness-k2"]["target_url"] == (
        "https://ci.example/results/20261127-1/index.html"
    )
    monkeypatch.delenv(patchwork.URL_ENV)
    assert "target_url" not in json.loads(patchwork.render(RUN))["checks"][0]


def test_patchwork_states_follow_the_comparison_with_the_base() -> None:
    flaky_runs = [{"outcome": "pass", "summary": "pass"}, {"outcome": "fail", "summary": "f"}]
    base = _summary(
        [_t("old_bug", "base", "fail"), _t("race", "base", "pass"), _t("ok", "base", "pass")],
        ["base"],
    )
    good = _summary(
        [
            _t("old_bug", "series", "fail"),
            _t("race", "series", "fail", runs=flaky_runs),
            _t("ok", "series", "pass"),
        ],
        ["series"],
    )
    (check,) = patchwork.checks(good, compare(base, good))
    assert check.state == "warning", "flaky and the base's own failure are not the series' fault"
    assert check.description == ("1/3 passed on series; 1 failure the base has too; 1 flaky")
    bad = _summary(
        [_t("old_bug", "series", "fail"), _t("race", "series", "pass"), _t("ok", "series", "oops")],
        ["series"],
    )
    (check,) = patchwork.checks(bad, compare(base, bad))
    assert check.state == "fail" and "1 regression: ok" in check.description
    _valid(check.to_json())
    clean = _summary([_t("ok", "k1", "pass"), _t("s", "k1", "skip")], ["k1"])
    assert [c.state for c in patchwork.checks(clean)] == ["success"]
    cut = _summary([_t("ok", "k1", "pass"), _t("s", "k1", "not-run")], ["k1"], interrupted=True)
    (check,) = patchwork.checks(cut)
    assert check.state == "warning" and "run interrupted" in check.description
