"""A run's summary.json: what every reporter, ``report``, ``compare`` and ``rerun`` read.

:class:`RunSummary` (with :class:`~harness.results.testrecord.TestRecord`,
:class:`~harness.results.kernel.KernelRecord`,
:class:`~harness.results.report.ReportRecord`) is written to ``summary.json``
and read back with a schema version, so no reporter ever walks a dict whose
shape it has to guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.outcome import Outcome
from harness.results.kernel import KernelRecord
from harness.results.layout import SUMMARY_JSON
from harness.results.report import ReportRecord
from harness.results.schema import check_version, read_record
from harness.results.testrecord import TestRecord

#: summary.json's shape; bump when a field changes meaning or disappears
#: (3: a report record may stand for repeats, ``count``; ``symbolized`` added)
SCHEMA_VERSION = 3
#: older shapes this harness still reads (fields they lack take their defaults)
READABLE_VERSIONS = (2, 3)


@dataclass(frozen=True)
class OutsideRecord:
    """A kernel report outside any test's window, in a run's summary."""

    kernel: str
    boot: int
    when: str
    report: ReportRecord

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (the report's fields inline)."""
        return {
            "kernel": self.kernel,
            "boot": self.boot,
            "when": self.when,
            **self.report.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutsideRecord:
        """Back from :meth:`to_json`."""
        return cls(data["kernel"], data["boot"], data["when"], ReportRecord.from_json(data))


@dataclass(frozen=True)
class RunSummary:
    """A whole run: what every reporter (text, KCIDB, JUnit's sidecar) reads."""

    run: str
    kernels: tuple[KernelRecord, ...] = ()
    tests: tuple[TestRecord, ...] = ()
    outside: tuple[OutsideRecord, ...] = ()
    interrupted: bool = False  # Ctrl-C, SIGTERM: NOT_RUN tests are those it never reached

    @property
    def counts(self) -> dict[str, int]:
        """Tests per outcome."""
        counts: dict[str, int] = {}
        for t in self.tests:
            counts[t.outcome.value] = counts.get(t.outcome.value, 0) + 1
        return counts

    @property
    def unexpected(self) -> list[TestRecord]:
        """Results a reader must look at (not-run tests are listed apart)."""
        return [t for t in self.tests if not t.as_expected and t.outcome is not Outcome.NOT_RUN]

    @property
    def not_run(self) -> list[TestRecord]:
        """Tests an interruption kept from running."""
        return [t for t in self.tests if t.outcome is Outcome.NOT_RUN]

    def to_json(self) -> dict[str, Any]:
        """summary.json."""
        return {
            "schema_version": SCHEMA_VERSION,
            "run": self.run,
            "interrupted": self.interrupted,
            "counts": self.counts,
            "reports_outside_tests": [o.to_json() for o in self.outside],
            "kernels": {k.name: k.to_json() for k in self.kernels},
            "tests": [t.to_json() for t in self.tests],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = SUMMARY_JSON) -> RunSummary:
        """Back from :meth:`to_json`; a UserError for a file of another schema."""
        check_version(data, READABLE_VERSIONS, where, missing=None)
        return cls(
            data.get("run", ""),
            tuple(KernelRecord.from_json(n, k) for n, k in data.get("kernels", {}).items()),
            tuple(TestRecord.from_json(t) for t in data.get("tests", ())),
            tuple(OutsideRecord.from_json(o) for o in data.get("reports_outside_tests", ())),
            bool(data.get("interrupted", False)),
        )


def load_summary(run_dir: Path) -> RunSummary:
    """Read a results directory's summary.json back into its record.

    Here beside the record (not with the reporters) so that ``compare`` and
    ``report`` read a summary without depending on any output format.
    """
    return read_record(
        run_dir / SUMMARY_JSON, RunSummary.from_json, "summary", "is this a results directory?"
    )
