"""Reporters built from a summary: the mail-reply text and KCIDB (schema-checked)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import kcidb_io.schema  # a dev dependency: a missing package fails, never skips
import pytest

from harness.errors import UserError
from harness.outcome import Outcome
from harness.reporters import DIR_REPORTERS, REPORTERS, kcidb, text, write_all
from harness.results.records import SCHEMA_VERSION, RunSummary, load_summary


def _t(test: str, kernel: str, outcome: str, expected: str | None = None, **kw: object) -> dict:
    as_expected = outcome == expected if expected else outcome in ("pass", "skip")
    return {
        "test": test,
        "kernel": kernel,
        "outcome": outcome,
        "expected": expected,
        "expected_reason": "known bug" if expected else None,
        "as_expected": as_expected,
        "summary": kw.get("summary", outcome),
        "seconds": 1.5,
        "boot": 1,
        "evidence": f"/r/{kernel}/{test}",
        "reports": kw.get("reports", []),
    }


SUMMARY_JSON = {
    "schema_version": SCHEMA_VERSION,
    "run": "20261121-101010-1",
    "counts": {},
    "reports_outside_tests": [
        {
            "kernel": "k2",
            "boot": 1,
            "when": "boot",
            "type": "WARNING",
            "title": "WARNING in acpi_thing",
            "guilty_frame": "acpi_thing",
        }
    ],
    "kernels": {
        "k1": {"source": "debian x", "origin": "Debian x 1.0"},
        "k2": {"source": "image y", "origin": None},
    },
    "tests": [
        _t("uffd_api", "k1", "pass"),
        _t("uffd_move", "k1", "fail", expected="fail", summary="fail: not ok 10 - race"),
        _t(
            "uffd_api",
            "k2",
            "oops",
            summary="oops: kernel BUG in move_pages_huge_pmd",
            reports=[
                {
                    "type": "BUG",
                    "title": "kernel BUG in move_pages_huge_pmd",
                    "guilty_frame": "move_pages_huge_pmd",
                    "test": "uffd_api",
                    "kernel": "k2",
                }
            ],
        ),
        _t("uffd_move", "k2", "build-fail", summary="build-fail: mm/foo.c:1: error"),
    ],
}
SUMMARY = RunSummary.from_json(SUMMARY_JSON)


def test_text_summary_puts_the_unexpected_first() -> None:
    out = text.render(SUMMARY)
    assert out.startswith("kpatch-harness run 20261121-101010-1: 2 unexpected result(s)")
    unexpected = out.split("Unexpected:")[1].split("Expected failures:")[0]
    assert "uffd_api on k2: oops: kernel BUG in move_pages_huge_pmd" in unexpected
    assert "kernel report: kernel BUG in move_pages_huge_pmd" in unexpected
    assert "uffd_move on k1" not in unexpected
    assert "reason: known bug" in out.split("Expected failures:")[1]
    assert "k2 boot-1 (boot): WARNING in acpi_thing" in out
    assert max(len(line) for line in out.splitlines()) < 100, "fit for a mail reply"


def test_text_summary_all_good() -> None:
    good = {
        **SUMMARY_JSON,
        "tests": [_t("a", "k1", "pass"), _t("b", "k1", "skip")],
        "reports_outside_tests": [],
    }
    assert ": all results as expected" in text.render(RunSummary.from_json(good)).splitlines()[0]


def test_interrupted_run_says_so_and_lists_what_did_not_run() -> None:
    passed = RunSummary.from_json({**SUMMARY_JSON, "tests": [_t("a", "k1", "pass")]})
    cut = replace(
        passed,
        interrupted=True,
        tests=(
            *passed.tests,
            *RunSummary.from_json(
                {**SUMMARY_JSON, "tests": [_t("b", "k1", "not-run"), _t("a", "k2", "not-run")]}
            ).tests,
        ),
    )
    out = text.render(cut)
    first = out.splitlines()[0]
    assert "INTERRUPTED, 2 of 3 test(s) did not run" in first
    assert "all results as expected" not in out
    assert "Not run (interrupted):\n  b on k1\n  a on k2" in out
    doc = json.loads(kcidb.render(cut))
    kcidb_io.schema.LATEST.validate(doc)
    assert [t["status"] for t in doc["tests"]] == ["PASS", "MISS", "MISS"]
    again = RunSummary.from_json(cut.to_json())
    assert again == cut and again.interrupted and len(again.not_run) == 2


def test_an_empty_run_claims_nothing() -> None:
    empty = RunSummary.from_json({**SUMMARY_JSON, "tests": [], "reports_outside_tests": []})
    assert ": no tests ran" in text.render(empty).splitlines()[0]


def test_summary_round_trips_through_the_results_directory(tmp_path: Path) -> None:
    written = write_all(SUMMARY, tmp_path)
    assert {p.name for p in written} == {"summary.json", *REPORTERS, *DIR_REPORTERS}
    back = load_summary(tmp_path)
    assert back == SUMMARY
    assert back.tests[2].outcome is Outcome.OOPS and back.tests[2].reports[0].guilty_frame


def test_summary_of_another_schema_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({**SUMMARY_JSON, "schema_version": 1}))
    with pytest.raises(UserError, match="schema version 1, this harness reads"):
        load_summary(tmp_path)
    with pytest.raises(UserError, match=r"no summary\.json"):
        load_summary(tmp_path / "nope")


def test_kcidb_document_is_valid_against_the_schema() -> None:
    doc = json.loads(kcidb.render(SUMMARY))
    kcidb_io.schema.LATEST.validate(doc)
    status = {(t["build_id"].split(":")[-1], t["path"]): t["status"] for t in doc["tests"]}
    assert status[("k1", "kharness.uffd_api")] == "PASS"
    assert status[("k2", "kharness.uffd_api")] == "FAIL"
    assert status[("k2", "kharness.uffd_move")] == "MISS"
    assert {b["config_name"]: b["status"] for b in doc["builds"]} == {"k1": "PASS", "k2": "FAIL"}
