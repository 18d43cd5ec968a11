"""pytest items for kselftests: one per test of each ``selftests:`` target of a kernel.

A kernels.yaml ``build:`` entry with ``selftests: [mincore]`` gets the items
``kselftest/mincore/mincore_selftest::<kernel>`` (``-k mincore`` selects by
target or test name).  The tests are listed from the target's Makefile in
the tree before the series (:func:`harness.testkinds.kselftest.list_tests`); a target
the tree lacks is a usage error naming the kernel, the key and the fix,
before anything builds or boots.

Each item is a :class:`~harness.plugin.kind_guest.GuestItem` whose test is
``kselftest.<target>.<test>``: same outcome translation, same failure text,
same ``expect:`` (xfail), same summary and reports.  Building the target
happens in setup, so a target that does not build is an *error* carrying the
compiler's lines (build-fail), like a kernel that does not build.  The
test's KTAP subtests are recorded too (``kselftest.<target>.<test>.<sub>``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import config as config_mod
from harness.errors import HarnessError
from harness.kernels.build import BuildSource
from harness.kernels.kselftest_build import selftests_tree
from harness.plugin.items import HarnessItem, ItemKind
from harness.plugin.kind_guest import GuestItem
from harness.plugin.marks import mark_for_kernel
from harness.results.records import TestRun
from harness.session import KernelGuest
from harness.testkinds import kselftest_run
from harness.testkinds.kselftest import KselftestTest, list_tests


def kselftest_items(
    session: pytest.Session, specs: list[config_mod.KernelSpec], log: Callable[[str], None]
) -> list[pytest.Item]:
    """One item per (kernel, target, test), in kernels.yaml order; UsageError on bad input."""
    items: list[pytest.Item] = []
    for spec in specs:
        if not spec.selftests:
            continue
        assert isinstance(spec.source, BuildSource), "config.py admits build: only"
        try:
            tree = selftests_tree(spec.source, log)
            listed = [(t, list_tests(tree, t, spec.name)) for t in spec.selftests]
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from None
        for target, names in listed:
            items += [_item(session, spec, KselftestTest(target, name)) for name in names]
    return items


def _item(session: pytest.Session, spec: config_mod.KernelSpec, test: KselftestTest) -> Any:
    item = KselftestItem.from_parent(
        session,
        name=test.node_name,
        nodeid=f"{test.node_name}::{spec.name}",
        spec=spec,
        test=kselftest_run.guest_test(test),
        kself=test,
    )
    return mark_for_kernel(item, spec, test.record_name)


class KselftestItem(GuestItem):
    """One kselftest test on one kernel."""

    def __init__(self, *, kself: KselftestTest, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kself = kself

    def preflight(self, guest: KernelGuest) -> TestRun | None:
        """Kernel, target build and boot: their failure is an error, not a failed test."""
        return kselftest_run.preflight(guest, self.kself)

    def runtest(self) -> None:
        """Run it in the guest; record its subtests; translate the verdict."""
        run = kselftest_run.run(self.state.guest(self.spec), self.kself)
        self.state.runs.append(run)
        self.state.runs.extend(kselftest_run.subtest_runs(run))
        self.conclude(run)

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        """Where pytest says the item is: the test on its kernel (its node id)."""
        return HarnessItem.reportinfo(self)


#: built before the first boot when no KUnit item boots the kernel first (see kinds.KINDS)
KIND = ItemKind("kselftest", extra_items=kselftest_items)
