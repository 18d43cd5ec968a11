"""Whether the bot tests a complete series, and with which tests: relevance in the loop.

A busy list carries hundreds of series a week, most touching nothing the
tests exercise (:mod:`harness.mail.relevance`).  Before a series is queued
the bot reads the paths its patches touch and asks which tests cover them:
none, and the series is recorded ``not-relevant`` with those paths and each
test's reason, and gets no reply; some, and it is queued with only those
tests, passed as ``--test NAME`` by the one argv builder
(:class:`harness.mail.commandline.SeriesCommand`).  ``--test-all-series``
tests every series with the bot's own ``--test`` list, as before.

The catalog (every test the bot's kernels run and what each covers) is read
once per bot, when the first series is decided.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.mail.message import parse
from harness.mail.relevance import CoveredTest, Relevance, relevant_tests, touched_paths
from harness.mail.rows import SeriesRow
from harness.mail.state import State

_SHOWN = 8  # touched paths named in a note
_WHY_LINES = 20  # tests named in --why-tests (the reply shows as many)
_WHY_LINE = 300  # characters of one test's reason


@dataclass(frozen=True)
class Verdict:
    """A series decided: tested or not, with which tests, and the record kept of why."""

    relevant: bool
    tests: tuple[str, ...] | None  # --test names for the child (None: the bot's --test list)
    note: str | None
    record: str  # JSON: the touched paths, each test's decision


class Gate:
    """Decides series against the catalog of the bot's tests (built on first use)."""

    def __init__(
        self,
        kernels_file: Path,
        kernels: tuple[str, ...],
        tests: tuple[str, ...],
        test_all: bool = False,
        catalog: tuple[CoveredTest, ...] | None = None,
    ) -> None:
        self.kernels_file = kernels_file
        self.kernels = kernels
        self.tests = tests
        self.test_all = test_all
        self._catalog = catalog
        self._guest: frozenset[str] | None = None

    def catalog(self) -> tuple[CoveredTest, ...]:
        """Every test the bot runs with what it covers (read once)."""
        if self._catalog is None:
            from harness.config import load_kernels, select  # the bot's start stays light
            from harness.mail.relevance import catalog
            from harness.testkinds.trial import select_tests

            guest = select_tests(list(self.tests))
            specs = select(load_kernels(self.kernels_file), list(self.kernels), self.kernels_file)
            self._catalog = catalog(guest, specs)
            self._guest = frozenset(t.name for t in guest)
        return self._catalog

    def decide(self, state: State, row: SeriesRow, limit: int) -> Verdict:
        """``row``'s verdict from its stored patches (at most ``limit`` of them)."""
        catalog = self.catalog()
        raws, _count = state.members(str(row.key), limit)
        paths, truncated = touched_paths(parse(r) for r in raws)
        found = relevant_tests(paths, catalog, test_all=self.test_all, truncated=truncated)
        record = _record(found)
        if self.test_all:
            return Verdict(True, None, None, record)
        if not found.relevant:
            shown = ", ".join(paths[:_SHOWN]) + (" and more" if len(paths) > _SHOWN else "")
            note = f"not relevant: touches {shown or 'no file'}; no test covers these paths"
            return Verdict(False, (), note, record)
        guest = self._guest
        chosen = tuple(t for t in found.tests if guest is None or t in guest)
        # only guest tests are --test names; an entry's kselftests and KUnit suites always run
        return Verdict(True, chosen or None, None, record)


def _record(found: Relevance) -> str:
    return json.dumps(
        {
            "touched": list(found.touched),
            "truncated": found.truncated,
            "decisions": [
                {"test": d.test, "run": d.run, "why": d.why, "matched": list(d.matched)}
                for d in found.decisions
            ],
        }
    )


def why_text(record: str | None) -> str:
    """Why each test runs, one line a test, from a row's relevance record (for the reply).

    ``""`` when there is no record (``--test-all-series``, an old row) or it
    cannot be read: the reply then says nothing rather than guess.
    """
    try:
        data = json.loads(record or "{}")
        decisions = [d for d in data.get("decisions", []) if isinstance(d, dict) and d.get("run")]
        lines = [f"{d['test']}: {d['why']}"[:_WHY_LINE] for d in decisions[:_WHY_LINES]]
    except (ValueError, TypeError, KeyError, AttributeError):
        return ""
    # the reasons quote paths a patch named: bounded here, before they become one argv word
    # (an oversized word would fail every exec of the child with E2BIG)
    return "\n".join(lines)
