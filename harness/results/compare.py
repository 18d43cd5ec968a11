"""Two runs side by side: what a change made worse, what it fixed, what stayed broken.

``kharness compare OLD NEW`` reads the summary.json of two results
directories and matches tests by name and kernels by name (or by an explicit
``--map old=new``; when each run has exactly one kernel they are matched to
each other).  Every matched (test, kernel) pair falls into one
:class:`Change` kind:

* **regression**: good in OLD (as expected), failing in NEW, consistently
  (a build or boot failure of the NEW kernel counts: the change broke it);
* **fixed**: failing in OLD, good in NEW;
* **still failing**, and **changed crash** when the outcome or the kernel
  report titles differ between the two (a different bug, same test);
* **flaky**: NEW both passed and failed across its runs (``--runs N``):
  listed, never a regression by itself;
* **not comparable**: one side could not test (error, not run).

Only regressions make the exit status 1.  The comparison is a typed value
(:class:`Comparison`) so the series mode and the Patchwork reporter use the
same judgement as the command line.
"""

from __future__ import annotations

import argparse
import enum
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.outcome import NOT_COMPARABLE, Outcome
from harness.results.records import RunSummary, TestRecord, load_summary


class ChangeKind(enum.Enum):
    """How one test on one kernel moved from OLD to NEW."""

    REGRESSION = "regression"
    FIXED = "fixed"
    STILL_FAILING = "still failing"
    CHANGED_CRASH = "changed crash"
    FLAKY = "flaky"
    NOT_COMPARABLE = "not comparable"
    SAME = "same"  # good in both


#: the order and headings of the text report
HEADINGS: dict[ChangeKind, str] = {
    ChangeKind.REGRESSION: "New failures (regressions)",
    ChangeKind.CHANGED_CRASH: "Changed crash (still failing, differently)",
    ChangeKind.FLAKY: "Flaky in NEW (passed and failed; not counted as regressions)",
    ChangeKind.FIXED: "Fixed",
    ChangeKind.STILL_FAILING: "Still failing (the base had these already)",
    ChangeKind.NOT_COMPARABLE: "Not comparable (one side could not test)",
}


def state(t: TestRecord) -> str:
    """``good``, ``skipped``, ``failing``, ``flaky`` or ``unknown``: what a comparison sees."""
    if t.flaky:
        return "flaky"
    if t.outcome in NOT_COMPARABLE:
        return "unknown"
    if t.outcome is Outcome.SKIP and t.expected is None:
        return "skipped"
    if t.as_expected:
        return "good"
    return "failing"


@dataclass(frozen=True)
class Change:
    """One test on one kernel pair, OLD against NEW."""

    kind: ChangeKind
    test: str
    old_kernel: str
    new_kernel: str
    old: TestRecord
    new: TestRecord

    @property
    def where(self) -> str:
        """``test on kernel`` (both kernel names when they differ)."""
        if self.old_kernel == self.new_kernel:
            return f"{self.test} on {self.new_kernel}"
        return f"{self.test} on {self.old_kernel} -> {self.new_kernel}"

    def line(self) -> str:
        """One line for the text report."""
        if self.kind is ChangeKind.CHANGED_CRASH:
            return f"{self.where}: {_crash(self.old)} -> {_crash(self.new)}"
        if self.kind is ChangeKind.FLAKY:
            return f"{self.where}: passed {self.new.passes} of {self.new.attempts} runs"
        if self.kind is ChangeKind.STILL_FAILING and self.old.summary == self.new.summary:
            return f"{self.where}: {self.new.summary}"
        return f"{self.where}: {_short(self.old)} -> {self.new.summary}"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "kind": self.kind.value,
            "test": self.test,
            "old_kernel": self.old_kernel,
            "new_kernel": self.new_kernel,
            "old": {"outcome": self.old.outcome.value, "summary": self.old.summary},
            "new": {"outcome": self.new.outcome.value, "summary": self.new.summary},
            "old_titles": list(self.old.titles),
            "new_titles": list(self.new.titles),
            "new_passes": self.new.passes,
            "new_runs": self.new.attempts,
        }


def _short(t: TestRecord) -> str:
    rate = f" ({t.passes}/{t.attempts} runs passed)" if t.runs else ""
    return t.outcome.value + rate if t.outcome is Outcome.PASS else t.summary


def _crash(t: TestRecord) -> str:
    titles = ", ".join(t.titles)
    return f"{t.outcome.value}: {titles}" if titles else t.summary


def change_between(old: TestRecord, new: TestRecord) -> ChangeKind:
    """The kind of change from ``old`` to ``new`` (same test, matched kernels)."""
    before, after = state(old), state(new)
    if after == "flaky":
        return ChangeKind.FLAKY
    if after == "skipped":  # a skip proves nothing: not a fix of what failed before
        return ChangeKind.SAME if before in ("good", "skipped") else ChangeKind.NOT_COMPARABLE
    if before == "skipped":  # a test that could not run before and fails now is new
        before = "good"
    if "unknown" in (before, after):
        return ChangeKind.NOT_COMPARABLE if before != after else ChangeKind.SAME
    if before == "good":
        return ChangeKind.REGRESSION if after == "failing" else ChangeKind.SAME
    if after == "good":
        return ChangeKind.FIXED
    if old.outcome is not new.outcome or set(old.titles) != set(new.titles):
        return ChangeKind.CHANGED_CRASH
    return ChangeKind.STILL_FAILING


@dataclass(frozen=True)
class Comparison:
    """Every matched pair's change, plus what only one side ran."""

    old_run: str
    new_run: str
    kernels: tuple[tuple[str, str], ...]  # (old, new) pairs compared
    changes: tuple[Change, ...]
    only_old: tuple[tuple[str, str], ...] = ()  # (test, kernel) OLD ran and NEW did not
    only_new: tuple[tuple[str, str], ...] = ()
    note: str = ""  # how the kernels were matched, when not by name

    def of(self, kind: ChangeKind) -> list[Change]:
        """The changes of one kind, in run order."""
        return [c for c in self.changes if c.kind is kind]

    @property
    def regressions(self) -> list[Change]:
        """What makes ``compare`` exit 1."""
        return self.of(ChangeKind.REGRESSION)

    def render(self) -> str:
        """The text report: regressions first, then everything else that moved."""
        n = len(self.regressions)
        verdict = f"{n} regression(s)" if n else "no regressions"
        lines = [f"kharness compare {self.old_run} -> {self.new_run}: {verdict}"]
        pairs = ", ".join(o if o == w else f"{o} -> {w}" for o, w in self.kernels)
        lines.append(f"  kernels: {pairs}" + (f" ({self.note})" if self.note else ""))
        for kind, heading in HEADINGS.items():
            found = self.of(kind)
            if found:
                lines += ["", f"{heading}:"]
                lines += [f"  {c.line()}" for c in found]
        for label, pairs_ in (("Only in OLD", self.only_old), ("Only in NEW", self.only_new)):
            if pairs_:
                lines += ["", f"{label} (not compared):"]
                lines += [f"  {test} on {kernel}" for test, kernel in pairs_]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (``--json``)."""
        return {
            "old_run": self.old_run,
            "new_run": self.new_run,
            "kernels": [list(p) for p in self.kernels],
            "regressions": len(self.regressions),
            "changes": [c.to_json() for c in self.changes if c.kind is not ChangeKind.SAME],
            "only_old": [list(p) for p in self.only_old],
            "only_new": [list(p) for p in self.only_new],
        }


def parse_map(values: list[str]) -> dict[str, str]:
    """``--map old=new`` values; a UserError names a malformed one."""
    mapping: dict[str, str] = {}
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not old or not new:
            raise UserError(f"--map '{value}' must read OLD_KERNEL=NEW_KERNEL")
        mapping[old] = new
    return mapping


def kernel_pairs(
    old: RunSummary, new: RunSummary, mapping: dict[str, str]
) -> tuple[tuple[tuple[str, str], ...], str]:
    """Which OLD kernel is compared with which NEW one, and how they were matched."""
    old_names, new_names = _kernels(old), _kernels(new)
    if mapping:
        bad = [f"'{o}' (OLD has {_list(old_names)})" for o in mapping if o not in old_names]
        bad += [
            f"'{n}' (NEW has {_list(new_names)})" for n in mapping.values() if n not in new_names
        ]
        if bad:
            raise UserError(f"--map names unknown kernels: {'; '.join(bad)}")
        return tuple(mapping.items()), "as mapped"
    common = tuple((k, k) for k in old_names if k in new_names)
    if common:
        return common, ""
    if len(old_names) == 1 and len(new_names) == 1:
        return ((old_names[0], new_names[0]),), "the only kernel of each run"
    raise UserError(
        f"no kernel name in common: OLD has {_list(old_names)}, NEW has {_list(new_names)}; "
        "say which to compare with --map OLD_KERNEL=NEW_KERNEL (repeatable)"
    )


def _kernels(summary: RunSummary) -> list[str]:
    names = [k.name for k in summary.kernels]
    return names + sorted({t.kernel for t in summary.tests} - set(names))


def _list(names: list[str]) -> str:
    return ", ".join(names) if names else "no kernels"


def compare(old: RunSummary, new: RunSummary, mapping: dict[str, str] | None = None) -> Comparison:
    """Match the two runs' tests and judge every pair (see the module docstring)."""
    pairs, note = kernel_pairs(old, new, mapping or {})
    old_tests = {(t.test, t.kernel): t for t in old.tests}
    new_tests = {(t.test, t.kernel): t for t in new.tests}
    changes: list[Change] = []
    only_old: list[tuple[str, str]] = []
    only_new: list[tuple[str, str]] = []
    for old_k, new_k in pairs:
        names = [t.test for t in old.tests if t.kernel == old_k]
        names += [t.test for t in new.tests if t.kernel == new_k and t.test not in names]
        for name in names:
            before, after = old_tests.get((name, old_k)), new_tests.get((name, new_k))
            if before is None:
                only_new.append((name, new_k))
            elif after is None:
                only_old.append((name, old_k))
            else:
                kind = change_between(before, after)
                changes.append(Change(kind, name, old_k, new_k, before, after))
    return Comparison(
        old.run, new.run, pairs, tuple(changes), tuple(only_old), tuple(only_new), note
    )


def load_run(path: str) -> RunSummary:
    """A results directory's summary; UserErrors name a missing or broken one."""
    directory = Path(path)
    if not directory.exists():
        raise UserError(f"{path}: no such results directory")
    if not directory.is_dir():
        raise UserError(f"{path}: not a directory; give a results directory such as results/latest")
    return load_summary(directory)


def cmd_compare(args: argparse.Namespace) -> int:
    """The ``compare`` subcommand: 1 when NEW regressed, else 0."""
    result = compare(load_run(args.old), load_run(args.new), parse_map(args.map))
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    else:
        sys.stdout.write(result.render())
    return 1 if result.regressions else 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``compare`` on the harness CLI."""
    p = subparsers.add_parser(
        "compare", help="regressions, fixes and changed crashes between two results directories"
    )
    p.add_argument("old", help="the results directory of the base (e.g. results/<run>)")
    p.add_argument("new", help="the results directory to judge")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="compare OLD's kernel with NEW's of another name (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="the comparison as JSON")
    p.set_defaults(func=cmd_compare)
