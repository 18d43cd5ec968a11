"""Running one kselftest test on a kernel's guest, as the kselftest runner would.

The runner (``kselftest/runner.sh``) starts each test as ``./<test>`` in its
target's directory with the target's ``settings`` timeout (45 s by default).
The harness does the same over its channel, between its kmsg markers, so the
test gets the reproducers' outcome model: exit 0 pass, 1 fail, 4 skip, a
kernel report in its window oops, a dead kernel panic, no exit before the
timeout hang.  Its KTAP subtests become records of their own
(``kselftest.<target>.<test>.<subtest>``).

The target's installed files go into the guest once per boot, as a gzip tar
on the channel's stdin, under :data:`harness.testkinds.kselftest.GUEST_DIR`; a script
whose ``#!`` interpreter the guest lacks (bash in the busybox initramfs) is a
skip that names it.
"""

from __future__ import annotations

import io
import shlex
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import GuestUnreachable
from harness.kernels.build import BuildSource
from harness.kernels.kselftest_build import BuiltTarget, build_targets
from harness.outcome import SetupFacts, Verdict, classify_setup
from harness.results import evidence
from harness.results.records import TestRun
from harness.session import KernelGuest
from harness.session.extras import ExtrasKey
from harness.testkinds.kselftest import (
    DEFAULT_TIMEOUT,
    GUEST_DIR,
    KselftestTest,
    interpreter,
    safe_name,
    subtests,
)
from harness.testkinds.testdef import GuestTest

_PUSH_TIMEOUT = 300.0


@dataclass
class KselftestState:
    """What one guest has of the kselftests: targets built so far, targets pushed per boot."""

    built: dict[str, BuiltTarget] = field(default_factory=dict)
    pushed: set[tuple[int, str]] = field(default_factory=set)  # (boot, target)


#: each guest's kselftest state, kept in the guest's extras (the session never names it)
STATE = ExtrasKey("kselftest", KselftestState)


def built_target(guest: KernelGuest, target: str) -> BuiltTarget:
    """``target`` built for this kernel, on first use (a deselected target costs nothing)."""
    state = guest.extras.get(STATE)
    if target not in state.built:
        assert isinstance(guest.spec.source, BuildSource), "config.py admits build: only"
        started = time.monotonic()
        built = build_targets(guest.spec.source, (target,), guest.ctx.log, guest.progress)
        state.built[target] = built[target]
        guest.add_timing("kselftest-build", time.monotonic() - started)
    return state.built[target]


def guest_test(test: KselftestTest, built: BuiltTarget | None = None) -> GuestTest:
    """The test as the runner's records name it, with its target's timeout."""
    if built is None or built.install is None:
        return GuestTest(test.record_name, Path(test.node_name), DEFAULT_TIMEOUT)
    return GuestTest(test.record_name, built.directory / test.name, built.timeout)


def evidence_dir(guest: KernelGuest, test: KselftestTest) -> Path:
    """``<kernel>/kselftest/<target>/<test>``."""
    return guest.directory / "kselftest" / test.target / test.name


def preflight(guest: KernelGuest, test: KselftestTest) -> TestRun | None:
    """Kernel, target build, boot: a TestRun (build-fail, boot-fail, error) if one failed."""
    started = time.monotonic()
    record = guest_test(test)
    where = evidence_dir(guest, test)
    problem = guest.prepare()
    if problem is not None:
        return guest.record_setup(record, problem, started, where)
    built = built_target(guest, test.target)
    if built.error is not None:
        verdict = classify_setup(SetupFacts("build", built.error, built.details))
        return guest.record_setup(record, verdict, started, where)
    if test.name not in built.tests:
        listed = ", ".join(built.tests) or "nothing"
        message = (
            f"'{test.name}' is not among the tests the built target '{test.target}' lists "
            f"({listed}); did the series remove or rename it?"
        )
        verdict = classify_setup(SetupFacts("kselftest", message))
        return guest.record_setup(record, verdict, started, where)
    problem = guest.ensure_booted()
    if problem is not None:
        return guest.record_setup(record, problem, started, where)
    return None


def run(guest: KernelGuest, test: KselftestTest) -> TestRun:
    """Run ``test`` in the guest (after :func:`preflight`) and classify it."""
    started = time.monotonic()
    failed = preflight(guest, test)
    if failed is not None:
        return failed
    built = built_target(guest, test.target)
    record, where = guest_test(test, built), evidence_dir(guest, test)
    problem = _push(guest, built) or _missing_interpreter(guest, built, test)
    if problem is not None:
        return guest.record_setup(record, problem, started, where)
    directory = f"{GUEST_DIR}/{test.target}"
    command = f"cd {shlex.quote(directory)} && ./{shlex.quote(test.name)}"
    return guest.execute(record, started, (), command, where)


def _push(guest: KernelGuest, built: BuiltTarget) -> Verdict | None:
    """Copy the installed target into this boot's guest once; an error verdict if it failed."""
    key = (guest.boots, built.target)
    state = guest.extras.get(STATE)
    if key in state.pushed:
        return None
    assert guest.channel is not None and built.install is not None
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz", compresslevel=1) as tar:
        tar.add(built.install, arcname=".")
    command = f"mkdir -p {GUEST_DIR} && tar -xzf - -C {GUEST_DIR}"
    try:
        result = guest.channel.run(command, _PUSH_TIMEOUT, stdin=data.getvalue())
    except GuestUnreachable as exc:
        result = None
        why = str(exc)
    if result is None or result.exit_code != 0:
        why = result.stderr.strip() if result is not None else why
        message = f"cannot copy kselftest target '{built.target}' into the guest: {why}"
        return classify_setup(SetupFacts("kselftest", message))
    state.pushed.add(key)
    return None


def _missing_interpreter(
    guest: KernelGuest, built: BuiltTarget, test: KselftestTest
) -> Verdict | None:
    """A skip naming the ``#!`` interpreter of a script test the guest does not have."""
    program = interpreter(built.directory / test.name)
    if program is None or program in ("/bin/sh", "sh"):
        return None
    assert guest.channel is not None
    probe = f"command -v {shlex.quote(program)}"
    try:
        found = guest.channel.run(probe, 30).exit_code == 0
    except GuestUnreachable:
        return None  # the test's own run will say what broke
    if found:
        return None
    return classify_setup(
        SetupFacts(
            "need",
            f"{test.name} is a script for {program}, which the guest lacks (the QEMU "
            "backend's guest is busybox; backend: virtme runs the host's own tools)",
        )
    )


def subtest_runs(run: TestRun) -> list[TestRun]:
    """One record per top-level KTAP result of ``run``'s output, evidence beside it."""
    if run.result is None:
        return []
    found = []
    for sub in subtests(run.result.stdout, run.result.stderr):
        name = safe_name(sub.name)
        record = TestRun(
            f"{run.test}.{name}",
            run.kernel,
            Verdict(sub.outcome, sub.summary, sub.details),
            0.0,
            run.directory / "subtests" / name,
            boot=run.boot,
        )
        evidence.save_test(record, "")
        found.append(record)
    return found
