"""``<kernel>/<test>/result.json``: one test's verdict, beside its stdout, stderr and console.

Written by :func:`harness.results.evidence.save_test` the moment the test's verdict is
known, so an interrupted run keeps each finished test's result even without
a summary.json; read back with :func:`load_result`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.outcome import Outcome
from harness.results.layout import RESULT_JSON
from harness.results.report import ReportRecord
from harness.results.schema import check_version, read_record

#: result.json's shape; bump when a field changes meaning or disappears
RESULT_SCHEMA = 1


@dataclass(frozen=True)
class TestResult:
    """One test on one kernel, as its own directory records it."""

    __test__ = False

    test: str
    kernel: str
    outcome: Outcome
    summary: str
    details: tuple[str, ...] = ()
    seconds: float = 0.0
    boot: int = 0
    exit_code: int | None = None  # None: the test never returned (a hang, a crash)
    new_taint: int = 0
    reports: tuple[ReportRecord, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """result.json."""
        return {
            "schema_version": RESULT_SCHEMA,
            "test": self.test,
            "kernel": self.kernel,
            "outcome": self.outcome.value,
            "summary": self.summary,
            "details": list(self.details),
            "seconds": round(self.seconds, 3),
            "boot": self.boot,
            "exit_code": self.exit_code,
            "new_taint": self.new_taint,
            "reports": [r.to_json() for r in self.reports],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = RESULT_JSON) -> TestResult:
        """Back from :meth:`to_json` (files written before the version are version 1)."""
        check_version(data, (RESULT_SCHEMA,), where, missing=1)
        return cls(
            data["test"],
            data["kernel"],
            Outcome(data["outcome"]),
            data.get("summary", ""),
            tuple(data.get("details", ())),
            float(data.get("seconds", 0.0)),
            int(data.get("boot", 0)),
            data.get("exit_code"),
            int(data.get("new_taint", 0)),
            tuple(ReportRecord.from_json(r) for r in data.get("reports", ())),
        )


def load_result(test_dir: Path) -> TestResult:
    """A test directory's result.json; a UserError for one missing, cut or foreign."""
    return read_record(
        test_dir / RESULT_JSON, TestResult.from_json, "test result", "did the test finish?"
    )
