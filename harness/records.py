"""The typed records that cross modules: a test run, a run's summary.

:class:`TestRun` is what the runner hands the pytest plugin, the series and
bisect drivers.  :class:`RunSummary` (with :class:`TestRecord`,
:class:`KernelRecord`, :class:`ReportRecord`) is what every reporter reads;
it is written to ``summary.json`` and read back from it (``python -m harness
report``, ``compare``) with a schema version, so no reporter ever walks a
dict whose shape it has to guess.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.arch import X86_64
from harness.command import CommandResult
from harness.errors import UserError
from harness.kernels.base import Exact
from harness.oops import KernelReport
from harness.oops.frames import Decoded, decoded_from_json, decoded_to_json
from harness.oops.kinds import CrashType
from harness.outcome import Outcome, Verdict, as_expected, is_flaky
from harness.starts import GuestStarts

#: summary.json's shape; bump when a field changes meaning or disappears
#: (3: a report record may stand for repeats, ``count``; ``symbolized`` added)
SCHEMA_VERSION = 3
#: older shapes this harness still reads (fields they lack take their defaults)
READABLE_VERSIONS = (2, 3)


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


def _crash_type(value: object) -> CrashType:
    """A stored crash type back (records written before types existed have none)."""
    try:
        return CrashType(value)
    except ValueError:
        return CrashType.UNKNOWN


@dataclass(frozen=True)
class ReportRecord:
    """A kernel report as the reports show it (the same in result.json and summary.json)."""

    type: str
    title: str
    guilty_frame: str | None = None
    rip: str | None = None
    taint: str | None = None
    call_trace: tuple[str, ...] = ()
    count: int = 1  # the same report printed this many times (one bug, one record)
    first_time: float | None = None  # printk timestamps (s since boot) of first and last
    last_time: float | None = None
    symbolized: Decoded | None = None  # file:line per frame and maintainers, if debug info
    crash_type: CrashType = CrashType.UNKNOWN  # syzbot's type (crash_type.category: its group)
    alt_titles: tuple[str, ...] = ()  # syzbot's other titles for the same bug

    def times_printed(self, word: str = "x{n}") -> str:
        """'' if printed once, else ' (x12, 41.2s to 521.9s)'; ``word`` words the count."""
        if self.count <= 1:
            return ""
        count = word.format(n=self.count)
        if self.first_time is None or self.last_time is None:
            return f" ({count})"
        return f" ({count}, {self.first_time:.1f}s to {self.last_time:.1f}s)"

    @classmethod
    def of(cls, rep: KernelReport) -> ReportRecord:
        """From the parser's report."""
        return cls(
            rep.type.value,
            rep.title,
            rep.guilty_frame,
            rep.rip,
            rep.taint,
            tuple(rep.call_trace),
            rep.count,
            rep.time,
            rep.last_time if rep.last_time is not None else rep.time,
            rep.decoded,
            rep.crash_type,
            rep.alt_titles,
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "type": self.type,
            "title": self.title,
            "guilty_frame": self.guilty_frame,
            "rip": self.rip,
            "taint": self.taint,
            "call_trace": list(self.call_trace),
            "count": self.count,
            "first_time": self.first_time,
            "last_time": self.last_time,
            "symbolized": decoded_to_json(self.symbolized) if self.symbolized else None,
            "crash_type": self.crash_type.value,
            "crash_category": self.crash_type.category.value,
            "alt_titles": list(self.alt_titles),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportRecord:
        """Back from :meth:`to_json` (schema 2 records have no count nor symbolized)."""
        symbolized = data.get("symbolized")
        return cls(
            data["type"],
            data["title"],
            data.get("guilty_frame"),
            data.get("rip"),
            data.get("taint"),
            tuple(data.get("call_trace", ())),
            int(data.get("count", 1)),
            data.get("first_time"),
            data.get("last_time"),
            decoded_from_json(symbolized) if symbolized else None,
            _crash_type(data.get("crash_type")),
            tuple(data.get("alt_titles", ())),
        )


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


@dataclass(frozen=True)
class KernelRecord:
    """One kernel of a run: where it came from and what booting it cost."""

    name: str
    source: str
    origin: str | None = None
    release: str | None = None
    backend: str = "qemu"
    boots: int = 0
    boot_taint: int | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    arch: str = X86_64.name  # harness/arch.py name (summaries before arm64: x86_64)
    exact: Exact | None = None  # what the kernel was made from, exactly (kharness rerun)
    starts: GuestStarts | None = None  # cold boots and restores (``boots`` counts both)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (the name is the key it is stored under)."""
        return {
            **({"exact": self.exact.to_json()} if self.exact else {}),
            **({"starts": self.starts.to_json()} if self.starts else {}),
            "arch": self.arch,
            "source": self.source,
            "origin": self.origin,
            "release": self.release,
            "backend": self.backend,
            "boots": self.boots,
            "boot_taint": self.boot_taint,
            "timings": dict(self.timings),
        }

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> KernelRecord:
        """Back from :meth:`to_json`."""
        return cls(
            name,
            data.get("source", ""),
            data.get("origin"),
            data.get("release"),
            data.get("backend", "qemu"),
            data.get("boots", 0),
            data.get("boot_taint"),
            dict(data.get("timings", {})),
            data.get("arch", X86_64.name),
            Exact.from_json(data["exact"]) if data.get("exact") else None,
            GuestStarts.from_json(data["starts"]) if data.get("starts") else None,
        )


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
    def from_json(cls, data: Mapping[str, Any], where: str = "summary.json") -> RunSummary:
        """Back from :meth:`to_json`; a UserError for a file of another schema."""
        version = data.get("schema_version") if isinstance(data, Mapping) else None
        if version not in READABLE_VERSIONS:
            raise UserError(
                f"{where}: schema version {version!r}, this harness reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}; "
                "re-run the tests or use the harness version that wrote it"
            )
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
    path = run_dir / "summary.json"
    if not path.is_file():
        raise UserError(f"{run_dir}: no summary.json; is this a results directory?")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); the run may have been killed") from None
    try:
        return RunSummary.from_json(data, str(path))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(
            f"{path}: not a summary this harness can read ({type(exc).__name__}: {exc}); "
            "was it written by kharness, and completely?"
        ) from None
