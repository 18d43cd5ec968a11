"""pytest items for KUnit: one per ``kunit:`` glob of a kernel, one record per case.

A kernels.yaml entry with ``kunit: [list-kunit-test, "example*"]`` gets the
items ``kunit/list-kunit-test::<kernel>`` and ``kunit/example*::<kernel>``
(``-k list`` selects by suite name), run before the kernel's guest tests so
the boot KUnit ran on is the one the guest tests reuse.  Each item reads its
suites' KTAP off that boot's console (:mod:`harness.testkinds.kunit`); every case becomes
one record (``kunit.<suite>.<case>`` in summary.json, summary.txt, kcidb.json,
with its console segment as evidence), and the item fails listing the cases
that failed, oopsed or died, or skips when all of them skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harness import config as config_mod
from harness.outcome import RULES, Outcome
from harness.plugin.items import HarnessItem, ItemKind
from harness.plugin.marks import mark_for_kernel
from harness.testkinds.kunit import KunitSuite, boot_console, case_run, parse_kunit, select

#: case outcomes that fail the item: those pytest calls failed (from a case
#: :func:`harness.testkinds.kunit.case_run` gives fail, oops or panic; never hang)
_BAD = frozenset(o for o, rule in RULES.items() if rule.pytest == "failed")


class KunitFailed(Exception):
    """Some KUnit cases of the item failed; the message lists them."""


def kunit_items(
    session: pytest.Session, specs: list[config_mod.KernelSpec], log: Callable[[str], None]
) -> list[pytest.Item]:
    """One item per (kernel, kunit glob), in kernels.yaml order (kernels without: none)."""
    items = [
        KunitItem.from_parent(
            session, name=f"kunit/{glob}", nodeid=f"kunit/{glob}::{spec.name}", spec=spec, glob=glob
        )
        for spec in specs
        for glob in spec.kunit
    ]
    return [mark_for_kernel(item, item.spec, None) for item in items]


class KunitItem(HarnessItem):
    """The KUnit suites matching one glob, on one kernel (a record per case)."""

    def __init__(self, *, glob: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.glob = glob

    def runtest(self) -> None:
        """Boot (or reuse the first boot), read KUnit's KTAP, record each case."""
        guest = self.state.guest(self.spec)
        problem, console = boot_console(guest)
        every = parse_kunit(console)
        suites = select(every, self.glob)
        if not suites:
            if problem is not None:
                pytest.fail(f"{problem.summary}\n" + "\n".join(problem.details), pytrace=False)
            seen = ", ".join(s.name for s in every) or "none"
            pytest.fail(
                f"no KUnit suite matching '{self.glob}' ran on {self.spec.name} (suites on "
                f"its console: {seen}); is the suite built in (=y) by a config fragment?",
                pytrace=False,
            )
        runs = [case_run(guest, c) for s in suites for c in s.cases]
        self.state.runs.extend(runs)
        bad = [r for r in runs if r.verdict.outcome in _BAD]
        if bad:
            raise KunitFailed(_failure_text(suites, bad))
        if all(r.verdict.outcome is Outcome.SKIP for r in runs):
            pytest.skip(f"every case skipped: {runs[0].verdict.summary}" if runs else "no cases")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """The failed cases, not a traceback of the plugin."""
        if isinstance(excinfo.value, KunitFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


def _failure_text(suites: list[KunitSuite], bad: list[Any]) -> str:
    counts = ", ".join(
        f"{s.name}: {sum(c.outcome is Outcome.PASS for c in s.cases)}/{len(s.cases)} passed"
        for s in suites
    )
    lines = [f"{len(bad)} KUnit case(s) not ok ({counts})"]
    for run in bad:
        lines.append(f"  {run.test}: {run.verdict.summary}")
        lines += [f"      {d}" for d in run.verdict.details[:6]]
        lines.append(f"      evidence: {run.directory}")
    return "\n".join(lines)


#: KUnit runs at boot: its items come before a kernel's other items (see kinds.KINDS)
KIND = ItemKind("KUnit glob", extra_items=kunit_items)
