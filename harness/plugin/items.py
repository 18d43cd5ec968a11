"""The one base class of every harness item, and the row a kind of item registers with.

Whatever the kind (a C reproducer, a shell test, a KUnit glob, a kselftest),
an item belongs to one kernel, keeps the run it concluded with, and says its
verdict in pytest's vocabulary the same way.  The hooks only ever check for
:class:`HarnessItem`; what differs between kinds lives in their own modules
(``kind_*.py``), listed in :data:`harness.plugin.kinds.KINDS`.

Outcome translation (the only place it happens; :mod:`harness.outcome`
decides the outcome itself):

* pass -> passed; skip -> skipped with the reproducer's reason;
* fail / oops / panic / hang -> failed, raised as the outcome's exception
  (:data:`harness.outcome.EXCEPTIONS`) so a kernels.yaml expectation can
  turn exactly that outcome into xfail;
* boot-fail / build-fail / error -> error (raised during setup).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import config as config_mod
from harness.outcome import EXCEPTIONS, Outcome
from harness.plugin.reprs import GuestFailureRepr
from harness.plugin.state import STATE, RunState
from harness.results import layout
from harness.results.records import TestRun
from harness.results.summarize import failure_text


class HarnessItem(pytest.Item):
    """Something run on one kernel's guest: the base of every kind of harness item."""

    def __init__(self, *, spec: config_mod.KernelSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.result: TestRun | None = None  # the run it concluded with, if it stands for one

    @property
    def state(self) -> RunState:
        """The session's state (kernels, guests, the runs made so far)."""
        return self.config.stash[STATE]

    @property
    def record_key(self) -> tuple[str, str] | None:
        """(test, kernel) of the one record this item stands for; None if it records parts.

        These pairs are what a run should give: an interrupted run lists the
        missing ones as not run.  A KUnit item records each case it finds.
        """
        return None

    def conclude(self, run: TestRun) -> None:
        """Attach the run's evidence and say its verdict in pytest's vocabulary."""
        self.result = run
        self.attach(run)
        outcome = run.verdict.outcome
        if outcome is Outcome.PASS:
            return
        if outcome is Outcome.SKIP:
            # Report the skip at the test's own location, as a skip marker would.
            raise pytest.skip.Exception(run.verdict.summary, _use_item_location=True)
        if outcome in EXCEPTIONS:
            raise EXCEPTIONS[outcome](run.verdict.summary, run)
        # setup outcomes (boot-fail, build-fail, error) come from preflight, in setup()
        pytest.fail(failure_text(run), pytrace=False)

    def attach(self, run: TestRun) -> None:
        """Kernel, outcome, evidence, guest output and console window, for every report.

        Not as user_properties: pytest writes those as ``<properties>`` inside
        ``<testcase>``, which the xunit2 schema (pytest's default junit_family)
        forbids.  The facts head the log section instead, which lands in the
        testcase's ``<system-out>`` (junit_logging = log or all) and in pytest's
        own report, and are suite-level properties named ``<nodeid> <fact>``
        whatever junit_logging says (added where the report arrives,
        :meth:`harness.plugin.shipping_in.Inbox.take`, on the controller under xdist).
        """
        facts = {
            "kernel": self.spec.name,
            "outcome": run.verdict.outcome.value,
            "evidence": str(run.directory),
        }
        log = "".join(f"{key}: {value}\n" for key, value in facts.items())
        if run.result is not None:
            self.add_report_section("call", "stdout", run.result.stdout)
            self.add_report_section("call", "stderr", run.result.stderr)
        console = run.directory / layout.CONSOLE_TXT
        if console.is_file() and console.stat().st_size:
            log += "\n" + console.read_text(errors="replace")
        self.add_report_section("call", "log", log)

    def explain(self, report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
        """A failed item reports its verdict, not a traceback of the plugin.

        The crash message (JUnit's failure message, pytest's short summary)
        is the verdict's one line: for an oops, the kernel report's title.
        call.excinfo is None for a strict XPASS: pytest's own text says it best.
        """
        if self.result is not None and report.failed and call.excinfo:
            report.longrepr = GuestFailureRepr(self.result, self.path)

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        """Where pytest says the item is: its node id."""
        return self.path, None, self.nodeid


def last_of_kernel(item: HarnessItem, nextitem: pytest.Item | None) -> bool:
    """Whether ``item`` is its kernel's last (the next one runs elsewhere, or none does)."""
    return not isinstance(nextitem, HarnessItem) or nextitem.spec.name != item.spec.name


def order_by_kernel(items: list[pytest.Item], specs: list[config_mod.KernelSpec]) -> None:
    """Sort ``items`` kernel by kernel, in kernels.yaml order, so each kernel boots once.

    The sort is stable: within a kernel, items keep their collection order.
    """
    order = {s.name: n for n, s in enumerate(specs)}
    items.sort(key=lambda i: order.get(i.spec.name, -1) if isinstance(i, HarnessItem) else -1)


def record_keys(items: list[pytest.Item]) -> list[tuple[str, str]]:
    """(test, kernel) of each item standing for one record, in run order."""
    return [k for i in items if isinstance(i, HarnessItem) and (k := i.record_key) is not None]


#: extra items a kind adds to a run of the guest-tests directory:
#: (session, selected kernels, log) -> items, in kernels.yaml order
ExtraItems = Callable[
    [pytest.Session, list[config_mod.KernelSpec], Callable[[str], None]], list[pytest.Item]
]


@dataclass(frozen=True)
class ItemKind:
    """One row of :data:`harness.plugin.kinds.KINDS`: how a kind of item gets collected.

    ``collect_file`` makes the pytest collector of a file the kind owns (or
    None for other files); ``is_test_dir`` says whether a directory holds only
    that kind's files (so naming it on the command line is a guest-test run);
    ``extra_items`` adds items that no file stands for (KUnit globs, kselftests
    listed from the tree) to a run of the whole guest-tests directory.
    """

    name: str
    collect_file: Callable[[Path, pytest.Collector], pytest.File | None] | None = None
    is_test_file: Callable[[Path], bool] | None = None
    is_test_dir: Callable[[Path], bool] | None = None
    extra_items: ExtraItems | None = None
