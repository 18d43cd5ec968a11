"""Running guest tests on one kernel image outside pytest: for series runs and bisect.

pytest drives the normal matrix; the per-patch series mode and the bisect
predicate need the same thing programmatically: boot a kernel that was just
built, run a few reproducers (some of them several times), get
:class:`~harness.results.records.TestRun` values back and stop QEMU.  This module builds
the :class:`~harness.session.RunContext` the way the pytest plugin does
(results directory, keys, compiled tests) and wraps a finished image as a
kernel source, so the runner itself is used unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import Isolation, KernelSpec
from harness.display.progress import NO_PROGRESS, Progress
from harness.errors import UserError
from harness.kernels.base import KernelImage
from harness.paths import REPO_ROOT
from harness.results.records import TestRun
from harness.session import KernelGuest, RunContext, new_context
from harness.testkinds.testdef import GuestTest, discover, read_test

DEFAULT_TESTS_DIR = REPO_ROOT / "guest-tests" / "c"


@dataclass(frozen=True)
class PreparedImage:
    """A kernel source for an image that already exists (just built)."""

    image: KernelImage
    kind: str = "built"

    def describe(self) -> str:
        """Where the image came from."""
        return self.image.origin

    def resolve(self, log: Callable[[str], None], progress: Progress = NO_PROGRESS) -> KernelImage:
        """Nothing to fetch: the image is there."""
        return self.image


def select_tests(names: list[str], tests_dir: Path = DEFAULT_TESTS_DIR) -> list[GuestTest]:
    """The named guest tests (all of ``tests_dir`` when none); UserError lists the known ones."""
    dirs = (tests_dir, tests_dir.parent / "sh")  # shell tests live beside guest-tests/c
    known = {p.stem: p for d in dirs for p in discover(d)}
    if not known:
        raise UserError(f"{tests_dir} holds no *.c guest tests")
    wanted = [n.removesuffix(".c").removesuffix(".sh") for n in names] or sorted(known)
    missing = [n for n in wanted if n not in known]
    if missing:
        raise UserError(
            f"no guest test named {', '.join(missing)} in {tests_dir}; "
            f"known: {', '.join(sorted(known))}"
        )
    return [read_test(known[n]) for n in wanted]


def trial_spec(name: str, image: KernelImage, spec: KernelSpec | None = None) -> KernelSpec:
    """The spec a trial boots ``image`` with, under ``name``.

    With a kernels.yaml ``spec`` its settings (cmdline, memory, CPUs, accel,
    timeouts, expectations, reboot policy) are kept and only the source is
    swapped for the image; without one, the defaults.
    """
    source = PreparedImage(image)
    if spec is None:
        return KernelSpec(name=name, source=source)
    return dataclasses.replace(spec, name=name, source=source)


@dataclass
class Trial:
    """Boots images and runs tests on them, all under one results directory.

    ``spec``: the kernels.yaml entry whose settings every image of this trial
    boots with (None: the defaults).
    """

    results: Path
    tests: list[GuestTest]
    log: Callable[[str], None] = print
    spec: KernelSpec | None = None
    progress: Progress = NO_PROGRESS
    isolation: Isolation | None = None  # overrides the spec's isolation: (series: test)
    _ctx: RunContext | None = field(default=None, repr=False)

    def context(self) -> RunContext:
        """Keys and compiled tests, made once for every kernel of this trial."""
        if self._ctx is None:
            self._ctx = new_context(
                self.results,
                self.tests,
                log=self.log,
                progress=self.progress,
                isolation=self.isolation,
            )
        return self._ctx

    def guest(self, name: str, image: KernelImage) -> KernelGuest:
        """The (not yet booted) guest of ``image``, with this trial's kernel settings."""
        return KernelGuest(trial_spec(name, image, self.spec), self.context(), self.tests)

    def run(
        self,
        name: str,
        image: KernelImage,
        runs: int = 1,
        stop: Callable[[TestRun], bool] = lambda _run: False,
    ) -> list[TestRun]:
        """Run every test ``runs`` times on ``image``; ``stop`` ends a test's repeats early."""
        guest = self.guest(name, image)
        done: list[TestRun] = []
        try:
            for test in self.tests:
                for attempt in range(runs):
                    run = guest.run(test, attempt + 1 if runs > 1 else 0)
                    done.append(run)
                    self.log(f"{name}: {test.name} run {attempt + 1}/{runs}: {run.verdict.summary}")
                    if stop(run):
                        break
        finally:
            guest.shutdown()
        return done
