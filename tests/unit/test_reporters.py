"""Reporters built from a summary: the mail-reply text and KCIDB (schema-checked)."""

from __future__ import annotations

import json

import pytest

from harness.reporters import kcidb, text


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


SUMMARY = {
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
        **SUMMARY,
        "tests": [_t("a", "k1", "pass"), _t("b", "k1", "skip")],
        "reports_outside_tests": [],
    }
    assert ": all results as expected" in text.render(good).splitlines()[0]


def test_kcidb_document_is_valid_against_the_schema() -> None:
    schema = pytest.importorskip("kcidb_io.schema", reason="kcidb-io is a dev dependency")
    doc = json.loads(kcidb.render(SUMMARY))
    schema.LATEST.validate(doc)
    status = {(t["build_id"].split(":")[-1], t["path"]): t["status"] for t in doc["tests"]}
    assert status[("k1", "kharness.uffd_api")] == "PASS"
    assert status[("k2", "kharness.uffd_api")] == "FAIL"
    assert status[("k2", "kharness.uffd_move")] == "MISS"
    assert {b["config_name"]: b["status"] for b in doc["builds"]} == {"k1": "PASS", "k2": "FAIL"}
