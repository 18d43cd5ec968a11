"""Helpers of the integration tests (the fixtures live in conftest.py).

What the plumbing and unit tests share with them lives in tests/support (paths,
processes, runs, junit) and is imported from here too, so an integration test
finds every helper in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.outcome import Outcome
from harness.session.extras import ExtrasKey
from tests.support.paths import GUEST_DATA, REPO
from tests.support.processes import (
    HARNESS_QEMU,
    TEST_TAG,
    default_sigint,
    harness_qemus,
    tagged_processes,
)
from tests.support.runs import (
    ANSI,
    SLEEPER,
    SLEEPS_100,
    SLOW,
    SUMMARY,
    add_tests,
    check_junit,
    ready_boots,
    start_sleeper_run,
    wait_until_sleeper_runs,
    write_kernels,
)

if TYPE_CHECKING:
    from harness.results.records import TestRun
    from harness.session import KernelGuest

__all__ = [  # the shared helpers, for the integration tests that import them from here
    "ANSI",
    "GUEST_DATA",
    "HARNESS_QEMU",
    "REPO",
    "SLEEPER",
    "SLEEPS_100",
    "SLOW",
    "SUMMARY",
    "TEST_TAG",
    "add_tests",
    "check_junit",
    "default_sigint",
    "harness_qemus",
    "ready_boots",
    "start_sleeper_run",
    "tagged_processes",
    "wait_until_sleeper_runs",
    "write_kernels",
]

#: The kernel most integration tests boot: the default kernels.yaml's 6.12 entry.
DEBIAN_612 = '{package: "linux-image-6.12.*-amd64-unsigned", suite: bookworm-security}'

#: The report classes provoked through harness_oops.ko (tests/data/oops/capture) by
#: tests/data/guest/oops_trigger.h, on x86_64 (test_kernel_reports) and arm64
#: (test_arm64): case -> (outcome, title regex).  One table for both: the parser
#: titles arm64's own headers ("Unable to handle kernel NULL pointer dereference",
#: "Internal error: Oops - BUG") as their x86 counterparts (ARM64_FORMATS in
#: harness/oops/formats.py; the 6.12-arm64-* logs in tests/data/oops).
REPORT_CASES: dict[str, tuple[Outcome, str]] = {
    "warn": (Outcome.OOPS, r"^WARNING in harness_oops_warn$"),
    "bug": (Outcome.OOPS, r"^kernel BUG in harness_oops_bug$"),
    "null": (
        Outcome.OOPS,
        r"^BUG: unable to handle kernel NULL pointer dereference in harness_oops_null$",
    ),
    "softlockup": (Outcome.OOPS, r"^BUG: soft lockup in proc_reg_write$"),
    "hung": (Outcome.OOPS, r"^INFO: task hung in msleep$"),
    "sysrq": (Outcome.PANIC, r"^Kernel panic: sysrq triggered crash$"),
}


def write_trigger(work: Path, case: str, header: str = "", defines: str = "") -> Path:
    """trig_<case>.c: a guest test that provokes ``case`` through oops_trigger.h."""
    trigger = case.removeprefix("expected_").removeprefix("stuck_")
    body = f'{header}{defines}#define CASE "{trigger}"\n#include "oops_trigger.h"\n'
    path = work / f"trig_{case}.c"
    path.write_text(body)
    return path


@dataclass
class TriggerModule:
    """harness_oops.ko built for one guest's kernel (kept in the guest's extras)."""

    path: Path | None = None


#: where a report-class fixture leaves the trigger module it built for its guest
TRIGGER_MODULE = ExtrasKey("harness_oops.ko", TriggerModule)


def run_with_module(guest: KernelGuest, name: str) -> TestRun:
    """Run guest test ``name`` with harness_oops.ko (:data:`TRIGGER_MODULE`) loaded first."""
    assert guest.ensure_booted() is None, guest.setup_error
    assert guest.channel is not None
    module = guest.extras.get(TRIGGER_MODULE).path
    assert module is not None, "the fixture builds the trigger module before the tests"
    guest.channel.push(module.read_bytes(), "/tmp/harness_oops.ko")
    loaded = guest.channel.run(
        "grep -q ^harness_oops /proc/modules || insmod /tmp/harness_oops.ko", 30
    )
    assert loaded.exit_code == 0, loaded.stderr
    return guest.run(next(t for t in guest.tests if t.name == name))


def check_report_case(guest: KernelGuest, case: str) -> TestRun:
    """Provoke ``case``: its outcome, its title, attributed to its test, then a fresh boot.

    ``guest`` must hold trig_<case> and pass_after_hang; the latter must run on
    the next boot and pass (the kernel is not trusted after a report).
    """
    outcome, title = REPORT_CASES[case]
    run = run_with_module(guest, f"trig_{case}")
    assert run.verdict.outcome is outcome, run.verdict
    assert run.reports, "the report must be attributed to the test"
    assert re.search(title, run.reports[0].title), run.reports[0].title
    assert run.result is not None and run.verdict.summary.startswith(outcome.value)
    if outcome is Outcome.PANIC:
        assert run.seconds < 60, "a panic must end the test at once, not at its timeout"
    after = guest.run(next(t for t in guest.tests if t.name == "pass_after_hang"))
    assert after.verdict.outcome is Outcome.PASS, after.verdict
    assert after.boot > run.boot, "no test runs on a kernel that reported"
    # boots in between may only be retried boots that never got ready
    assert ready_boots(guest.directory)[-2:] == [run.boot, after.boot], (
        f"boot-{run.boot} -> boot-{after.boot}: a ready boot ran no test"
    )
    return run
