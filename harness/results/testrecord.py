"""One test on one kernel as a run's summary records it, with its runs under ``--runs N``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.outcome import Outcome, as_expected, is_flaky
from harness.results.report import ReportRecord


@dataclass(frozen=True)
class Attempt:
    """One of several runs of a test on a kernel (``--runs N``)."""

    outcome: Outcome
    summary: str
    seconds: float = 0.0
    evidence: str = ""
    titles: tuple[str, ...] = ()  # kernel report titles of this run

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "outcome": self.outcome.value,
            "summary": self.summary,
            "seconds": round(self.seconds, 3),
            "evidence": self.evidence,
            "titles": list(self.titles),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attempt:
        """Back from :meth:`to_json`."""
        return cls(
            Outcome(data["outcome"]),
            data.get("summary", ""),
            data.get("seconds", 0.0),
            data.get("evidence", ""),
            tuple(data.get("titles", ())),
        )


@dataclass(frozen=True)
class TestRecord:
    """One test on one kernel in a run's summary.

    A test run several times (``--runs N``) is still one record: its outcome
    is the first failing run's (or the common one), ``runs`` holds every run.
    """

    __test__ = False

    test: str
    kernel: str
    outcome: Outcome
    summary: str
    seconds: float = 0.0
    boot: int = 0
    evidence: str = ""
    expected: Outcome | None = None
    expected_reason: str | None = None
    details: tuple[str, ...] = ()
    reports: tuple[ReportRecord, ...] = ()
    runs: tuple[Attempt, ...] = ()  # every run when the test ran more than once

    @property
    def as_expected(self) -> bool:
        """Whether this is what the run should have given (see outcome.as_expected)."""
        return as_expected(self.outcome, self.expected)

    @property
    def passes(self) -> int:
        """How many of its runs passed."""
        if not self.runs:
            return int(self.outcome is Outcome.PASS)
        return sum(a.outcome is Outcome.PASS for a in self.runs)

    @property
    def attempts(self) -> int:
        """How many times it ran (1 unless ``--runs N``)."""
        return len(self.runs) or 1

    @property
    def flaky(self) -> bool:
        """Both passed and failed across its runs: never a regression by itself."""
        return is_flaky(a.outcome for a in self.runs)

    @property
    def titles(self) -> tuple[str, ...]:
        """The kernel report titles of this test, in order, each once."""
        seen = [r.title for r in self.reports] + [t for a in self.runs for t in a.titles]
        return tuple(dict.fromkeys(seen))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "test": self.test,
            "kernel": self.kernel,
            "outcome": self.outcome.value,
            "expected": self.expected.value if self.expected else None,
            "expected_reason": self.expected_reason,
            "as_expected": self.as_expected,
            "summary": self.summary,
            "details": list(self.details),
            "seconds": round(self.seconds, 3),
            "boot": self.boot,
            "evidence": self.evidence,
            "reports": [r.to_json() for r in self.reports],
            **(self._runs_json() if self.runs else {}),
        }

    def _runs_json(self) -> dict[str, Any]:
        return {
            "runs": [a.to_json() for a in self.runs],
            "passes": self.passes,
            "flaky": self.flaky,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestRecord:
        """Back from :meth:`to_json`."""
        return cls(
            data["test"],
            data["kernel"],
            Outcome(data["outcome"]),
            data["summary"],
            data.get("seconds", 0.0),
            data.get("boot", 0),
            data.get("evidence", ""),
            Outcome(data["expected"]) if data.get("expected") else None,
            data.get("expected_reason"),
            tuple(data.get("details", ())),
            tuple(ReportRecord.from_json(r) for r in data.get("reports", ())),
            tuple(Attempt.from_json(a) for a in data.get("runs", ())),
        )
