"""The records that cross modules while a run goes on, and those of its results directory.

:class:`TestRun` is what the runner hands the pytest plugin, the series and
bisect drivers; :class:`OutsideReport` a kernel report no test owns.  The
records of the results directory's files (summary.json and those it holds,
result.json, kernel.json) live in :mod:`harness.results`, each with its
schema version; they are re-exported here so ``from harness.results.records import
RunSummary`` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.command_result import CommandResult
from harness.oops import KernelReport
from harness.outcome import Verdict
from harness.results.kernel import KernelFile, KernelRecord, load_kernel_file
from harness.results.report import ReportRecord
from harness.results.result import TestResult, load_result
from harness.results.summary import (
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    OutsideRecord,
    RunSummary,
    load_summary,
)
from harness.results.testrecord import Attempt, TestRecord

__all__ = [
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "Attempt",
    "KernelFile",
    "KernelRecord",
    "OutsideRecord",
    "OutsideReport",
    "ReportRecord",
    "RunSummary",
    "TestRecord",
    "TestResult",
    "TestRun",
    "load_kernel_file",
    "load_result",
    "load_summary",
]


@dataclass(frozen=True)
class OutsideReport:
    """A kernel report that no test's window holds: the boot's or the harness's."""

    kernel: str
    boot: int
    when: str  # "boot", "between tests", "after the last test"
    report: KernelReport


@dataclass(frozen=True)
class TestRun:
    """Everything known about one test on one kernel, after the fact."""

    __test__ = False

    test: str
    kernel: str
    verdict: Verdict
    seconds: float
    directory: Path
    result: CommandResult | None = None
    reports: tuple[KernelReport, ...] = ()
    new_taint: int = 0
    boot: int = 0
