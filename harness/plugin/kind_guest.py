"""Guest test files: guest-tests/c/*.c reproducers and guest-tests/sh/*.sh shell tests.

Each file becomes one item per selected kernel, with the node id
``guest-tests/c/<test>.c::<kernel>`` or ``guest-tests/sh/<test>.sh::<kernel>``;
its header (:mod:`harness.testkinds.testdef`) says how it runs.  The kernel, the image
and the boot happen in the item's setup, so their failure is an *error*.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.plugin.items import HarnessItem, ItemKind
from harness.plugin.marks import mark_for_kernel
from harness.plugin.state import STATE
from harness.results import pass_rate
from harness.results.records import TestRun
from harness.results.summarize import failure_text
from harness.session import KernelGuest
from harness.testkinds.testdef import KINDS as SUFFIXES
from harness.testkinds.testdef import GuestTest, read_test


def is_guest_test(path: Path) -> bool:
    """guest-tests/c/*.c or guest-tests/sh/*.sh (:data:`harness.testkinds.testdef.KINDS`)."""
    kind = path.parent.name
    return SUFFIXES.get(kind) == path.suffix and path.parent.parent.name == "guest-tests"


def is_guest_dir(path: Path) -> bool:
    """guest-tests/c or guest-tests/sh: a folder of one language's guest tests."""
    return path.name in SUFFIXES and path.parent.name == "guest-tests"


def collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    """The collector of a guest test file, None for any other file."""
    if is_guest_test(file_path):
        return GuestTestFile.from_parent(parent, path=file_path)
    return None


class GuestTestFile(pytest.File):
    """A guest test file (a C reproducer or a shell test): one item per kernel."""

    def collect(self) -> Iterator[pytest.Item]:
        """Read the header (errors name file and line), then yield the items."""
        state = self.config.stash[STATE]
        try:
            test = read_test(self.path)
        except HarnessError as exc:
            raise self.CollectError(str(exc)) from None
        other = state.tests.get(test.name)
        if other is not None and other.source != test.source:
            raise self.CollectError(
                f"{self.path}: guest test name '{test.name}' is taken by {other.source}; "
                "rename one (tests share one directory in the guest)"
            )
        state.tests[test.name] = test
        for spec in state.specs():
            item = GuestItem.from_parent(self, name=spec.name, spec=spec, test=test)
            yield mark_for_kernel(item, spec, test.name)


class GuestItem(HarnessItem):
    """One guest test on one kernel."""

    def __init__(self, *, test: GuestTest, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test = test

    @property
    def record_key(self) -> tuple[str, str] | None:
        """(test, kernel): the one record this item makes."""
        return self.test.name, self.spec.name

    def setup(self) -> None:
        """Kernel, image and boot happen here, so that their failure is an *error*."""
        failed = self.preflight(self.state.guest(self.spec))
        if failed is not None:
            self.state.runs.append(failed)
            self.result = failed
            self.attach(failed)
            # pytest renders setup errors itself (not via repr_failure): pytrace=False
            # keeps the report to our text instead of a traceback of the plugin.
            pytest.fail(failure_text(failed), pytrace=False)

    def preflight(self, guest: KernelGuest) -> TestRun | None:
        """What must be done before the test can run; a TestRun when it could not be."""
        return guest.preflight(self.test)

    def runtest(self) -> None:
        """Run in the guest; translate the verdict into pytest's vocabulary."""
        count = self.config.getoption("runs")
        guest = self.state.guest(self.spec)
        runs = [guest.run(self.test, n + 1 if count > 1 else 0) for n in range(count)]
        self.state.runs.extend(runs)
        self.conclude(pass_rate.combine(runs))  # several runs: the first failure, and the rate

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        """Where pytest says the test is."""
        return self.path, 0, f"{self.test.name} on {self.spec.name}"


KIND = ItemKind(
    "guest test file",
    collect_file=collect_file,
    is_test_file=is_guest_test,
    is_test_dir=is_guest_dir,
)
