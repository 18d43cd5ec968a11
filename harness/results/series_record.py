"""``series.json`` and ``series-origin.json``: what a series run found, as typed records.

``kharness series`` writes them; the reply, ``b4-check`` and the bot read
them, often from a directory another process (or another version of the
harness) wrote.  So the files carry ``schema_version``, the readers get
frozen dataclasses instead of dicts, and a file that is missing, truncated
or of an unknown shape is one UserError naming the file and the field
(:func:`harness.results.schema.read_record`), never a ``KeyError`` three
modules away.  Version 1 (before confirmation runs, without the key) is
still read: it simply has no confirmations.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.outcome import Outcome
from harness.results import layout
from harness.results.schema import check_version, read_record

FILENAME = layout.SERIES_JSON
ORIGIN_FILENAME = layout.SERIES_ORIGIN_JSON
SCHEMA = 2
ORIGIN_SCHEMA = 1


class RecordError(ValueError):
    """A series.json or series-origin.json that cannot be read as one."""


class ConfirmKind(enum.Enum):
    """What the confirmation runs of a pass-to-fail step said."""

    REGRESSION = "regression"  # the step before passed every run, this step failed every run
    UNSTABLE = "unstable"  # a split result on either side: named so, no patch blamed
    PRE_EXISTING = "pre-existing"  # the step before (or the base) fails too: not blamed


@dataclass(frozen=True)
class RunResult:
    """One confirmation run of one test on one step."""

    outcome: Outcome
    summary: str
    titles: tuple[str, ...] = ()  # the kernel report titles of an oops, panic, hang
    evidence: str = ""  # its evidence directory

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "outcome": self.outcome.value,
            "summary": self.summary,
            "titles": list(self.titles),
            "evidence": self.evidence,
        }

    @classmethod
    def from_json(cls, data: object) -> RunResult:
        """Read back; RecordError names what is wrong."""
        d = _object(data, "run")
        return cls(
            _outcome(d.get("outcome"), "run.outcome"),
            _of(d, "summary", str, ""),
            tuple(_strings(d.get("titles", []), "run.titles")),
            _of(d, "evidence", str, ""),
        )


@dataclass(frozen=True)
class Confirmation:
    """A test that went from pass to fail on a step, run again there and on the step before."""

    test: str
    before: int  # the step compared with (0: the base)
    before_label: str
    after: int  # the step that turned it
    after_label: str
    kind: ConfirmKind
    before_runs: tuple[RunResult, ...]
    after_runs: tuple[RunResult, ...]
    note: str = ""  # why it is not blamed, when it is not

    def counts(self) -> str:
        """``passed 3/3 on step 0, 0/3 on step 2``: the table in one line."""
        before = sum(r.outcome is Outcome.PASS for r in self.before_runs)
        after = sum(r.outcome is Outcome.PASS for r in self.after_runs)
        return (
            f"passed {before}/{len(self.before_runs)} on step {self.before}, "
            f"{after}/{len(self.after_runs)} on step {self.after}"
        )

    def table(self) -> list[str]:
        """The runs before and after side by side, a row per result (the 0-day robot's
        parent/commit table); an oops, panic or hang row names its crash title."""
        left = "base (step 0)" if self.before == 0 else _column(self.before, self.before_label)
        right = _column(self.after, self.after_label)
        rows = list(dict.fromkeys(_row(r) for r in (*self.before_runs, *self.after_runs)))
        rows.sort(key=lambda row: row != "pass")
        width = max([len(self.test), *map(len, rows)]) + 3
        mid = max(len(left), 3 + len(str(len(self.before_runs))) * 2) + 3
        lines = [f"{self.test.ljust(width)}{left.ljust(mid)}{right}"]
        for row in rows:
            n_before = sum(_row(r) == row for r in self.before_runs)
            n_after = sum(_row(r) == row for r in self.after_runs)
            lines.append(
                f"{row.ljust(width)}{f'{n_before}/{len(self.before_runs)}'.ljust(mid)}"
                f"{n_after}/{len(self.after_runs)}"
            )
        verdict = f"{self.kind.value}" + (f": {self.note}" if self.note else "")
        return [*lines, f"=> {verdict}"]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "test": self.test,
            "before": self.before,
            "before_label": self.before_label,
            "after": self.after,
            "after_label": self.after_label,
            "kind": self.kind.value,
            "before_runs": [r.to_json() for r in self.before_runs],
            "after_runs": [r.to_json() for r in self.after_runs],
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: object) -> Confirmation:
        """Read back; RecordError names what is wrong."""
        d = _object(data, "confirmation")
        try:
            kind = ConfirmKind(d.get("kind"))
        except ValueError:
            raise RecordError(f"confirmation.kind {d.get('kind')!r} is not a kind") from None
        return cls(
            _of(d, "test", str),
            _of(d, "before", int),
            _of(d, "before_label", str, ""),
            _of(d, "after", int),
            _of(d, "after_label", str, ""),
            kind,
            tuple(RunResult.from_json(r) for r in _of(d, "before_runs", list, [])),
            tuple(RunResult.from_json(r) for r in _of(d, "after_runs", list, [])),
            _of(d, "note", str, ""),
        )


@dataclass(frozen=True)
class StepRecord:
    """One step of the matrix as the file keeps it."""

    index: int
    label: str
    outcomes: tuple[tuple[str, Outcome], ...] = ()
    flaky: tuple[str, ...] = ()
    build_seconds: float = 0.0
    error: str | None = None

    def outcome(self, test: str) -> Outcome | None:
        """This step's outcome for ``test`` (None: never ran)."""
        return dict(self.outcomes).get(test)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "index": self.index,
            "label": self.label,
            "outcomes": {t: o.value for t, o in self.outcomes},
            "flaky": list(self.flaky),
            "build_seconds": self.build_seconds,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: object) -> StepRecord:
        """Read back; RecordError names what is wrong."""
        d = _object(data, "step")
        outcomes = _object(d.get("outcomes", {}), "step.outcomes")
        return cls(
            _of(d, "index", int),
            _of(d, "label", str, ""),
            tuple((str(t), _outcome(o, f"step.outcomes.{t}")) for t, o in outcomes.items()),
            tuple(_strings(d.get("flaky", []), "step.flaky")),
            float(_of(d, "build_seconds", (int, float), 0.0)),
            _of(d, "error", (str, type(None)), None),
        )


@dataclass(frozen=True)
class NotApplied:
    """The series did not apply on its base (or was refused): nothing was built."""

    index: int
    patch: str
    error: str
    refused: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "index": self.index,
            "patch": self.patch,
            "error": self.error,
            "refused": self.refused,
        }


@dataclass(frozen=True)
class SeriesRecord:
    """``series.json``: the matrix, the breaks, the confirmations, what the run used."""

    tests: tuple[str, ...]
    base: str = ""  # which base the series was tested on, and why that one
    steps: tuple[StepRecord, ...] = ()
    not_applied: NotApplied | None = None
    first_break: tuple[tuple[str, int], ...] = ()  # confirmed (or unconfirmed, --confirm 0)
    regressions: tuple[str, ...] = ()  # tests the series made worse, last step against the base
    confirmations: tuple[Confirmation, ...] = ()
    confirm_runs: int = 0  # runs per side of each confirmation (0: none were made)
    untested: str | None = None  # why the run could not test at all (the base did not build...)
    config: str | None = None  # the kernel .config used, a file beside series.json
    why_tests: str = ""  # why these tests were run (the bot's relevance reason)
    schema: int = SCHEMA

    def step(self, index: int) -> StepRecord | None:
        """The step of ``index`` (None: never reached)."""
        return next((s for s in self.steps if s.index == index), None)

    def breaks(self) -> dict[str, int]:
        """Test -> the step that broke it."""
        return dict(self.first_break)

    def of(self, kind: ConfirmKind) -> tuple[Confirmation, ...]:
        """The confirmations of one kind."""
        return tuple(c for c in self.confirmations if c.kind is kind)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (the file)."""
        return {
            "schema_version": self.schema,
            "tests": list(self.tests),
            "base": self.base,
            "not_applied": self.not_applied.to_json() if self.not_applied else None,
            "steps": [s.to_json() for s in self.steps],
            "first_break": dict(self.first_break),
            "regressions": list(self.regressions),
            "confirmations": [c.to_json() for c in self.confirmations],
            "confirm_runs": self.confirm_runs,
            "untested": self.untested,
            "config": self.config,
            "why_tests": self.why_tests,
        }

    @classmethod
    def from_json(cls, data: object) -> SeriesRecord:
        """Read a file's JSON (schema 1 or 2); RecordError names what is wrong."""
        check_version(data, (1, SCHEMA), FILENAME, missing=1)
        d = _object(data, FILENAME)
        schema = _of(d, "schema_version", int, 1)
        na = d.get("not_applied")
        not_applied = None
        if na is not None:
            n = _object(na, "not_applied")
            not_applied = NotApplied(
                _of(n, "index", int),
                _of(n, "patch", str, ""),
                _of(n, "error", str, ""),
                bool(n.get("refused", False)),
            )
        breaks = _object(d.get("first_break") or {}, "first_break")
        first_break = tuple(
            (str(t), _int(i, f"first_break.{t}")) for t, i in breaks.items() if i is not None
        )
        if schema == 1:  # the count and the changes of the comparison, no names list
            changes = _object(d.get("comparison") or {}, "comparison").get("changes") or []
            regressions = tuple(
                str(c.get("test"))
                for c in changes
                if isinstance(c, Mapping) and c.get("kind") == "regression"
            )
        else:
            regressions = tuple(_strings(d.get("regressions", []), "regressions"))
        return cls(
            tuple(_strings(d.get("tests", []), "tests")),
            _of(d, "base", str, ""),
            tuple(StepRecord.from_json(s) for s in _of(d, "steps", list, [])),
            not_applied,
            first_break,
            regressions,
            tuple(Confirmation.from_json(c) for c in _of(d, "confirmations", list, [])),
            _of(d, "confirm_runs", int, 0),
            _of(d, "untested", (str, type(None)), None),
            _of(d, "config", (str, type(None)), None),
            _of(d, "why_tests", str, ""),
            schema,
        )


@dataclass(frozen=True)
class SeriesOrigin:
    """``series-origin.json``: where a series from a list came from, which base it went on."""

    message_id: str | None
    subject: str
    version: int | None = None
    link: str | None = None
    base_commit: str | None = None
    base: str = ""
    patches: tuple[str, ...] = ()
    missing: tuple[int, ...] = ()  # patch numbers that never reached the list
    schema: int = ORIGIN_SCHEMA

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (the file)."""
        return {
            "schema_version": self.schema,
            "message_id": self.message_id,
            "subject": self.subject,
            "version": self.version,
            "link": self.link,
            "base_commit": self.base_commit,
            "base": self.base,
            "patches": list(self.patches),
            "missing": list(self.missing),
        }

    @classmethod
    def from_json(cls, data: object) -> SeriesOrigin:
        """Read back; RecordError names what is wrong."""
        check_version(data, (ORIGIN_SCHEMA,), ORIGIN_FILENAME, missing=ORIGIN_SCHEMA)
        d = _object(data, ORIGIN_FILENAME)
        missing = _of(d, "missing", list, [])
        return cls(
            _of(d, "message_id", (str, type(None)), None),
            _of(d, "subject", str, ""),
            _of(d, "version", (int, type(None)), None),
            _of(d, "link", (str, type(None)), None),
            _of(d, "base_commit", (str, type(None)), None),
            _of(d, "base", str, ""),
            tuple(_strings(d.get("patches", []), "patches")),
            tuple(_int(n, "missing") for n in missing),
            _of(d, "schema_version", int, ORIGIN_SCHEMA),
        )


def load(run_dir: Path) -> SeriesRecord:
    """``run_dir``'s series.json; a UserError names a missing, cut or foreign file."""
    return read_record(
        run_dir / FILENAME,
        lambda data, _where: SeriesRecord.from_json(data),
        "series record",
        "the series run did not finish",
    )


def load_origin(run_dir: Path) -> SeriesOrigin | None:
    """``run_dir``'s series-origin.json, None when the series did not come from a list."""
    if not (run_dir / ORIGIN_FILENAME).exists():
        return None
    return read_record(
        run_dir / ORIGIN_FILENAME,
        lambda data, _where: SeriesOrigin.from_json(data),
        "series origin",
        "the series did not come from a list",
    )


def config_name(kernel: str) -> str:
    """The file name of the kernel config a series of ``kernel`` was built with."""
    return layout.SERIES_CONFIG.format(kernel=kernel)


_ROW = 70  # characters of a table row's label


def _column(index: int, label: str) -> str:
    return f"patch {index} ({label[:40]}{'...' if len(label) > 40 else ''})"


def _row(run: RunResult) -> str:
    """A table row's label: ``pass``, the failure's own line, or the outcome and crash title."""
    if run.outcome is Outcome.PASS:
        return "pass"
    if run.titles:
        text = f"{run.outcome.value}: {run.titles[0]}"
    else:
        first = (run.summary.splitlines() or [""])[0]
        text = first if first.startswith(run.outcome.value) else f"{run.outcome.value}: {first}"
    return text if len(text) <= _ROW else text[: _ROW - 3] + "..."


def _object(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise RecordError(f"{what} is a {type(data).__name__}, not an object")
    return data


def _of(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], *default: Any) -> Any:
    if key not in d:
        if default:
            return default[0]
        raise RecordError(f"'{key}' is missing")
    value = d[key]
    if (isinstance(value, bool) and kind is int) or not isinstance(value, kind):
        raise RecordError(f"'{key}' is {value!r:.60}, not {_names(kind)}")
    return value


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{what} is {value!r:.60}, not a number")
    return value


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise RecordError(f"{what} is not a list of strings")
    return list(value)


def _outcome(value: object, what: str) -> Outcome:
    try:
        return Outcome(value)
    except ValueError:
        raise RecordError(f"{what} {value!r:.60} is not an outcome") from None
