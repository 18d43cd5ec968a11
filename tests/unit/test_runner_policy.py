"""The runner's policy, driven by the replay backend: no kernel boots, seconds in all.

Every console text here is cut from a log captured on a real Debian 6.12
kernel (tests/data/oops/*.log, see their headers); the replay machine plays it
through a real pipe into the real console watcher, and the runner decides as
it would on a real guest.  The waits are shrunk (``FAST``), not skipped.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from harness.arch import ARM64
from harness.config import KernelSpec, Timeouts
from harness.guest.keys import GuestKeys
from harness.kernels.base import KernelImage
from harness.outcome import Outcome
from harness.results.records import TestRun
from harness.results.summarize import failure_text
from harness.session import KernelGuest, Policy, RunContext
from harness.testkinds.compile import CompileResult
from harness.testkinds.testdef import GuestTest, Needs
from harness.testkinds.trial import PreparedImage
from tests.support.replay.machine import ReplayBackend
from tests.support.replay.script import Chunk, Script, Step, lines

OOPS_LOGS = Path(__file__).resolve().parents[1] / "data" / "oops"
FAST = Policy(
    settle=0.2, report_grace=0.3, end_marker=0.5, dying=0.5, dump_quiet=0.2, dump_wait=1.0
)


NULL_TITLE = "BUG: unable to handle kernel NULL pointer dereference in harness_oops_null"


def excerpt(log: str, first: str, last: str | None = None, count: int = 0) -> str:
    """Lines of a captured console log from the one matching ``first`` to ``last``."""
    text = (OOPS_LOGS / f"{log}.log").read_text(errors="replace").splitlines()
    start = next(i for i, line in enumerate(text) if re.search(first, line))
    if last is None:
        return "\n".join(text[start : start + (count or 1)])
    end = next(i for i in range(start, len(text)) if re.search(last, text[i]))
    return "\n".join(text[start : end + 1])


BOOT = lines(excerpt("6.12-boot", r"Linux version", r"Run /init as init process"))
WARN = excerpt("6.12-warn", r"cut here", r"end trace")
NULL_OOPS = excerpt("6.12-null", r"BUG: kernel NULL pointer", r"end trace")
PANIC = excerpt("6.12-panic_oops", r"BUG: kernel NULL pointer|Oops:", r"Kernel panic - not sync")
HUNG_TASK = excerpt("6.12-hung", r"INFO: task sh:\d+ blocked for more than 3", r"</TASK>")
BLOCKED_DUMP = "[    8.282645] sysrq: Show Blocked State\n" + HUNG_TASK.split("\n", 3)[3]
NO_INIT = excerpt("6.12-noinit", r"Run /init as init process", r"Kernel Offset:")
WARN_LOOP = excerpt("6.12-warnloop", r"cut here", r"harness: trigger warnloop returned")
#: a sound Debian kernel that TCG crashed while it patched its own text (real, from this machine)
TCG_INT3 = excerpt("6.12-tcg-int3-boot", r"Linux version", r"Kernel Offset:")
INIT_OOPS = excerpt("6.12-initoops", r"BUG: kernel NULL pointer", r"Kernel Offset:")


def guest_with(
    tmp_path: Path,
    script: Script,
    *tests: GuestTest,
    later: tuple[Script, ...] = (),
    **spec: object,
) -> tuple[KernelGuest, ReplayBackend]:
    """A KernelGuest on the replay backend with ``tests`` compiled (to nothing)."""
    backend = ReplayBackend(script, *later)
    keys = GuestKeys(tmp_path / "host", "ssh-ed25519 AAAA", tmp_path / "client", "ssh-ed25519 B")
    compiled = {t.name: CompileResult(t.name, tmp_path / t.name, "") for t in tests}
    ctx = RunContext(
        tmp_path / "results",
        keys,
        compiled,
        log=lambda _text: None,
        backend="replay",
        backends={"replay": lambda: backend},
        policy=FAST,
    )
    image = KernelImage(tmp_path / "vmlinuz", None, "6.12.0-replay", "replayed 6.12")
    kernel = KernelSpec(name="replay-6.12", source=PreparedImage(image), **spec)  # type: ignore[arg-type]
    return KernelGuest(kernel, ctx, list(tests)), backend


def test_(name: str, timeout: float = 20.0, **kw: object) -> GuestTest:
    """A guest test as its header would declare it."""
    return GuestTest(name, Path(f"/src/{name}.c"), timeout, **kw)  # type: ignore[arg-type]


test_.__test__ = False  # type: ignore[attr-defined]


def run_all(guest: KernelGuest, *tests: GuestTest) -> list[TestRun]:
    try:
        return [guest.run(t) for t in tests]
    finally:
        guest.shutdown()


def test_clean_tests_share_one_boot_and_pass(tmp_path: Path) -> None:
    script = Script(BOOT, steps=(Step("/opt/tests/a"), Step("/opt/tests/b", exit_code=4)))
    guest, backend = guest_with(tmp_path, script, test_("a"), test_("b"))
    a, b = run_all(guest, test_("a"), test_("b"))
    assert a.verdict.outcome is Outcome.PASS
    assert b.verdict.outcome is Outcome.SKIP
    assert len(backend.machines) == 1 and guest.outside == []
    assert (tmp_path / "results" / "replay-6.12" / "a" / "result.json").is_file()
    assert "HARNESS-START a-1-" in (a.directory / "console.txt").read_text()


def test_report_in_the_window_then_exit_0_is_oops_and_the_next_test_boots_fresh(
    tmp_path: Path,
) -> None:
    script = Script(BOOT, steps=(Step("/opt/tests/a", console=lines(WARN)), Step("/opt/tests/b")))
    guest, backend = guest_with(tmp_path, script, test_("a"), test_("b"))
    a, b = run_all(guest, test_("a"), test_("b"))
    assert a.verdict.outcome is Outcome.OOPS
    assert a.verdict.summary == "oops: WARNING in harness_oops_warn"
    assert a.result is not None and a.result.exit_code == 0
    assert b.verdict.outcome is Outcome.PASS and b.boot == 2
    assert len(backend.machines) == 2


def test_reboot_after_oops_false_keeps_the_guest(tmp_path: Path) -> None:
    script = Script(BOOT, steps=(Step("/opt/tests/a", console=lines(WARN)), Step("/opt/tests/b")))
    guest, backend = guest_with(tmp_path, script, test_("a"), test_("b"), reboot_after_oops=False)
    a, b = run_all(guest, test_("a"), test_("b"))
    assert a.verdict.outcome is Outcome.OOPS and b.verdict.outcome is Outcome.PASS
    assert b.boot == 1 and len(backend.machines) == 1


def test_oops_then_the_test_hangs_is_given_up_after_the_grace_period(tmp_path: Path) -> None:
    script = Script(BOOT, steps=(Step("/opt/tests/a", console=lines(NULL_OOPS), exit_code=None),))
    guest, _ = guest_with(tmp_path, script, test_("a", timeout=30))
    started = time.monotonic()
    (a,) = run_all(guest, test_("a", timeout=30))
    waited = time.monotonic() - started
    assert a.verdict.outcome is Outcome.OOPS
    assert a.verdict.summary == "oops: " + NULL_TITLE
    assert waited < 10, f"aborted after the grace period, not at the 30 s timeout ({waited:.1f}s)"


def test_panic_mid_test_is_noticed_at_once_and_the_next_test_boots_fresh(tmp_path: Path) -> None:
    panic = Step("/opt/tests/a", console=lines(PANIC), exit_code=None, kernel_exits=True, after=30)
    script = Script(BOOT, steps=(panic, Step("/opt/tests/b")))
    guest, backend = guest_with(tmp_path, script, test_("a", timeout=60), test_("b"))
    started = time.monotonic()
    a, b = run_all(guest, test_("a", timeout=60), test_("b"))
    assert time.monotonic() - started < 15
    assert a.verdict.outcome is Outcome.PANIC
    assert a.verdict.summary == "panic: " + NULL_TITLE
    assert b.verdict.outcome is Outcome.PASS and b.boot == 2 and len(backend.machines) == 2


def test_hang_with_the_channel_alive_dumps_blocked_tasks_over_it(tmp_path: Path) -> None:
    hang = Step("/opt/tests/a", exit_code=None)
    dump = Step("sysrq-trigger", console=lines(BLOCKED_DUMP))
    guest, backend = guest_with(tmp_path, Script(BOOT, steps=(hang, dump)), test_("a", timeout=1))
    (a,) = run_all(guest, test_("a", timeout=1))
    assert a.verdict.outcome is Outcome.HANG
    assert any("over the channel" in d for d in a.verdict.details)
    assert backend.machines[0].keys_pressed == []
    assert "Show Blocked State" in (a.directory / "console.txt").read_text()


def test_hang_with_the_channel_dead_uses_the_magic_key(tmp_path: Path) -> None:
    hang = Step("/opt/tests/a", exit_code=None, wedges=True)
    script = Script(BOOT, steps=(hang,), magic={"w": lines(BLOCKED_DUMP)})
    guest, backend = guest_with(tmp_path, script, test_("a", timeout=1))
    (a,) = run_all(guest, test_("a", timeout=1))
    assert a.verdict.outcome is Outcome.HANG
    assert any("magic sysrq key" in d for d in a.verdict.details)
    assert backend.machines[0].keys_pressed == ["w"]
    window = (a.directory / "console.txt").read_text()
    assert "Show Blocked State" in window and "task:sh" in window


def test_boot_panic_fails_every_test_at_once_with_the_crash_named(tmp_path: Path) -> None:
    script = Script(BOOT + lines(NO_INIT), ready=False, exit_after_boot=True)
    guest, backend = guest_with(tmp_path, script, test_("a"), test_("b"))
    started = time.monotonic()
    a, b = run_all(guest, test_("a"), test_("b"))
    assert time.monotonic() - started < 10
    assert a.verdict.outcome is Outcome.BOOT_FAIL
    assert a.verdict.summary == (
        "boot-fail: the kernel panicked during boot: Kernel panic: No working init found."
    )
    assert "last console lines" in a.verdict.details[0]
    # tried policy.boot_attempts times, then every test has the same verdict
    assert b.verdict == a.verdict and len(backend.machines) == FAST.boot_attempts > 1
    assert [o.boot for o in guest.outside] == list(range(1, FAST.boot_attempts + 1))


def test_a_boot_crashed_by_the_emulator_is_tried_once_more(tmp_path: Path) -> None:
    """The first boot dies in early boot (TCG's int3 crash); the second comes up.

    The tests run on the second boot and pass; the first boot's crash is kept
    as a report outside tests, so the results still show it.
    """
    crashed = Script(lines(TCG_INT3), ready=False, exit_after_boot=True)
    fine = Script(BOOT, steps=(Step("/opt/tests/a"),))
    guest, backend = guest_with(tmp_path, crashed, test_("a"), later=(fine,))
    (a,) = run_all(guest, test_("a"))
    assert a.verdict.outcome is Outcome.PASS and a.boot == 2, a.verdict
    assert len(backend.machines) == 2
    assert [(o.boot, o.when, o.report.title) for o in guest.outside][:1] == [
        (1, "boot", "int3 in sched_clock_cpu")
    ]
    assert (guest.directory / "boot-1" / "console.log").is_file()


def test_two_emulator_crashes_in_a_row_still_reach_a_guest(tmp_path: Path) -> None:
    """What one CI run saw on 2026-12-04: TCG's int3 crash in two boots in a row.  The third
    boot comes up and the test runs there; both crashes stay in the results."""
    crashed = Script(lines(TCG_INT3), ready=False, exit_after_boot=True)
    again = Script(lines(TCG_INT3), ready=False, exit_after_boot=True)
    fine = Script(BOOT, steps=(Step("/opt/tests/a"),))
    guest, backend = guest_with(tmp_path, crashed, test_("a"), later=(again, fine))
    (a,) = run_all(guest, test_("a"))
    assert a.verdict.outcome is Outcome.PASS and a.boot == 3, a.verdict
    assert len(backend.machines) == 3
    assert sorted({o.boot for o in guest.outside if o.when == "boot"}) == [1, 2]


def test_boot_that_oopsed_then_panicked_names_the_oops_not_the_panic(tmp_path: Path) -> None:
    """init oopsed, the kernel panicked ("Attempted to kill init!"): the oops is the crash."""
    script = Script(BOOT + lines(INIT_OOPS), ready=False, exit_after_boot=True)
    guest, _ = guest_with(tmp_path, script, test_("a"), timeouts=Timeouts(boot=300.0))
    started = time.monotonic()
    (a,) = run_all(guest, test_("a"))
    assert time.monotonic() - started < 60, "waited for the boot timeout, not the panic"
    assert a.verdict.summary == (
        "boot-fail: the kernel panicked during boot: "
        "BUG: unable to handle kernel NULL pointer dereference in harness_oops_null"
    )
    assert [r.title for r in a.reports] == [
        "BUG: unable to handle kernel NULL pointer dereference in harness_oops_null"
    ]
    tail = a.verdict.details[0]
    assert "last console lines" in tail and "Attempted to kill init" in tail
    text = failure_text(a)
    assert "kernel report: " + NULL_TITLE in text


def test_no_ready_line_is_a_boot_failure_bounded_by_the_boot_timeout(tmp_path: Path) -> None:
    script = Script(BOOT, ready=False)
    guest, _ = guest_with(tmp_path, script, test_("a"), timeouts=Timeouts(boot=1.0))
    (a,) = run_all(guest, test_("a"))
    assert a.verdict.outcome is Outcome.BOOT_FAIL
    assert "no ready line within 1s" in a.verdict.summary
    assert guest.boots == 1, "a boot that hangs would hang again: no second wait"


def test_a_warn_in_a_loop_is_one_report_with_its_count(tmp_path: Path) -> None:
    script = Script(BOOT, steps=(Step("/opt/tests/a", console=lines(WARN_LOOP)),))
    guest, _ = guest_with(tmp_path, script, test_("a"))
    (a,) = run_all(guest, test_("a"))
    assert a.verdict.outcome is Outcome.OOPS
    (report,) = a.reports
    assert (report.title, report.count) == ("WARNING in harness_oops_warn", 5)
    assert "kernel report: WARNING in harness_oops_warn (x5, " in failure_text(a)
    saved = json.loads((a.directory / "result.json").read_text())
    assert [(r["title"], r["count"]) for r in saved["reports"]] == [(report.title, 5)]


def test_report_between_tests_belongs_to_no_test(tmp_path: Path) -> None:
    hung = lines(HUNG_TASK)
    script = Script(BOOT, steps=(Step("/opt/tests/a", afterwards=(Chunk(b"", 0.2), *hung)),))
    guest, _ = guest_with(tmp_path, script, test_("a"), test_("b"))
    a = guest.run(test_("a"))
    assert guest.machine is not None
    deadline = time.monotonic() + 10  # the report comes 0.2 s after a ended, line by line
    while "</TASK>" not in guest.machine.console.text() and time.monotonic() < deadline:
        time.sleep(0.02)
    b = guest.run(test_("b"))
    guest.shutdown()
    assert a.verdict.outcome is Outcome.PASS and b.verdict.outcome is Outcome.PASS
    assert [(o.when, o.report.title) for o in guest.outside] == [
        ("between tests", "INFO: task hung in msleep")
    ]


def test_lost_channel_with_a_healthy_kernel_is_an_error_and_a_fresh_boot(tmp_path: Path) -> None:
    script = Script(BOOT, steps=(Step("/opt/tests/a", channel_breaks=True), Step("/opt/tests/b")))
    guest, backend = guest_with(tmp_path, script, test_("a"), test_("b"))
    a, b = run_all(guest, test_("a"), test_("b"))
    assert a.verdict.outcome is Outcome.ERROR
    assert "SSH session lost" in a.verdict.summary
    assert b.verdict.outcome is Outcome.PASS and b.boot == 2 and len(backend.machines) == 2


def test_guest_process_dying_silently_is_infrastructure_not_panic(tmp_path: Path) -> None:
    died = Step("/opt/tests/a", exit_code=None, kernel_exits=True)
    guest, backend = guest_with(tmp_path, Script(BOOT, steps=(died,)), test_("a"), test_("b"))
    a, b = run_all(guest, test_("a"), test_("b"))
    assert a.verdict.outcome is Outcome.ERROR
    assert a.verdict.summary.startswith("error: infrastructure: the guest's process ended")
    assert "no panic on the console" in a.verdict.summary
    assert b.verdict.outcome is Outcome.PASS and len(backend.machines) == 2


def test_expected_report_is_a_pass(tmp_path: Path) -> None:
    # the oops kills the task the reproducer waits for: it never exits by itself
    crash = Step("/opt/tests/a", console=lines(NULL_OOPS), exit_code=None)
    script = Script(BOOT, steps=(crash,))
    t = test_("a", expect_report=r"^BUG: unable to handle kernel NULL pointer dereference")
    guest, _ = guest_with(tmp_path, script, t)
    (a,) = run_all(guest, t)
    assert a.verdict.outcome is Outcome.PASS
    assert "expected kernel report seen" in a.verdict.summary


def test_numa_need_the_guest_cannot_meet_is_a_skip_naming_it(tmp_path: Path) -> None:
    probe = Step("node/online", stdout="0\n")
    t = test_("a", needs=Needs(numa_nodes=2))
    guest, _ = guest_with(tmp_path, Script(BOOT, steps=(probe,)), t)
    (a,) = run_all(guest, t)
    assert a.verdict.outcome is Outcome.SKIP
    assert "needs 2 NUMA nodes, the guest has 1" in a.verdict.summary


def test_new_taint_without_a_report_reboots(tmp_path: Path) -> None:
    script = Script(BOOT, steps=(Step("/opt/tests/a", new_taint=0x200), Step("/opt/tests/b")))
    guest, _ = guest_with(tmp_path, script, test_("a"), test_("b"))
    a, b = run_all(guest, test_("a"), test_("b"))
    assert a.new_taint == 0x200 and a.verdict.outcome is Outcome.PASS
    assert b.boot == 2


def test_the_evidence_records_the_boot(tmp_path: Path) -> None:
    guest, _ = guest_with(tmp_path, Script(BOOT, steps=(Step("/opt/tests/a"),)), test_("a"))
    run_all(guest, test_("a"))
    boot = tmp_path / "results" / "replay-6.12" / "boot-1"
    assert '"backend": "replay"' in (boot / "boot.json").read_text()
    assert "Linux version" in (boot / "console.log").read_text()


def test_a_host_only_backend_refuses_a_foreign_arch_before_compiling(tmp_path: Path) -> None:
    guest, _backend = guest_with(tmp_path, Script(BOOT), test_("a"), arch=ARM64)
    verdict = guest.prepare()
    assert verdict is not None and verdict.outcome is Outcome.ERROR
    assert "backend 'replay' boots only the host's architecture" in verdict.summary
    assert "kernel 'replay-6.12' is arm64: use --backend qemu" in verdict.summary
