"""syzbot's rules in the oops parser: frame picks, prefixes, crash types, where the type goes.

The golden logs (tests/data/oops, test_oops.py) hold each real report's
expected title, alternatives and type; these tests pin the rules themselves
and the records every output is written from.
"""

from __future__ import annotations

import json
from pathlib import Path

import kcidb_io.schema  # a dev dependency: a missing package fails, never skips
import pytest
from _pytest.junitxml import LogXML

from harness.oops import parse
from harness.oops.formats import Pick
from harness.oops.guilty import after_interrupt, canonical, choose
from harness.oops.kinds import Category, CrashType, crash_type
from harness.plugin.shipping import Shipment
from harness.plugin.shipping_in import Inbox
from harness.reporters import kcidb
from harness.results.records import SCHEMA_VERSION, ReportRecord, RunSummary, TestRecord

DATA = Path(__file__).resolve().parents[1] / "data" / "oops"


def load(name: str) -> str:
    return (DATA / name).read_bytes().decode("utf-8", errors="replace").partition("\n\n")[2]


@pytest.mark.parametrize(
    ("title", "kind", "category"),
    [
        (
            "KASAN: slab-use-after-free Write in f",
            CrashType.KASAN_UAF_WRITE,
            Category.MEMORY_SAFETY,
        ),
        ("KASAN: slab-use-after-free Read in f", CrashType.KASAN_UAF_READ, Category.MEMORY_SAFETY),
        ("KASAN: slab-out-of-bounds Write in f", CrashType.KASAN_WRITE, Category.MEMORY_SAFETY),
        ("KASAN: invalid-free in f", CrashType.KASAN_INVALID_FREE, Category.MEMORY_SAFETY),
        ("possible deadlock in f", CrashType.LOCKDEP, Category.LOCKING),
        ("WARNING: suspicious RCU usage in f", CrashType.LOCKDEP, Category.LOCKING),
        (
            "BUG: sleeping function called from invalid context in f",
            CrashType.ATOMIC_SLEEP,
            Category.LOCKING,
        ),
        ("INFO: task hung in f", CrashType.HANG, Category.HANG),
        ("INFO: rcu detected stall in f", CrashType.HANG, Category.HANG),
        ("WARNING in f", CrashType.WARNING, Category.WARNING),
        ("WARNING: ODEBUG bug in f", CrashType.WARNING, Category.WARNING),
        ("WARNING: refcount bug in f", CrashType.REFCOUNT_WARNING, Category.MEMORY_SAFETY),
        ("memory leak in f", CrashType.LEAK, Category.LEAK),
        (
            "UBSAN: array-index-out-of-bounds in f",
            CrashType.MEMORY_SAFETY_UBSAN,
            Category.MEMORY_SAFETY,
        ),
        ("UBSAN: shift-out-of-bounds in f", CrashType.UBSAN, Category.UNKNOWN),
        ("kernel BUG in f", CrashType.BUG, Category.DOS),
        ("general protection fault in f", CrashType.DOS, Category.DOS),
        ("unexpected kernel reboot", CrashType.REBOOT, Category.REBOOT),
        ("OOM kill of hog", CrashType.UNKNOWN, Category.UNKNOWN),
    ],
)
def test_crash_type_is_read_off_the_title(title: str, kind: CrashType, category: Category) -> None:
    assert crash_type(title) is kind
    assert kind.category is category


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("__x64_sys_ioctl", "sys_ioctl"),
        ("__arm64_sys_ioctl", "sys_ioctl"),
        ("__do_sys_perf_event_open", "perf_event_open"),
        ("ksys_write", "write"),
        ("do_ip_setsockopt", "do_ip_setsockopt"),
    ],
)
def test_syscall_wrappers_are_stripped_from_the_frame(name: str, expected: str) -> None:
    assert canonical(name) == expected


def test_a_stall_is_blamed_on_the_frame_above_its_dispatcher() -> None:
    stack = ["delay_tsc", "hdbg_stall", "hdbg_write", "proc_reg_write", "vfs_write", "ksys_write"]
    assert choose(Pick.STALL, stack) == "proc_reg_write"
    assert choose(Pick.STALL, ["vfs_write", "ksys_write"]) == "vfs_write"
    assert choose(Pick.STALL, ["f", "smp_call_function_many_cond", "g"]) == "smp_call_function"
    assert choose(Pick.STALL, ["f", "g"]) is None  # no dispatcher: corrupted, as syzbot


def test_a_stall_is_read_below_the_timer_interrupt() -> None:
    names = ["rcu_sched_clock_irq", "update_process_times", "asm_sysvec_apic_timer_interrupt", "f"]
    assert after_interrupt(names) == ["f"]
    assert after_interrupt(["f", "g"]) == ["f", "g"]


def test_hangs_behind_rtnl_or_rcu_are_one_bucket_each() -> None:
    assert choose(Pick.HANG, ["schedule", "rtnl_lock", "f"]) == "rtnl_lock"
    assert choose(Pick.HANG, ["schedule", "synchronize_rcu_expedited", "f"]) == "synchronize_rcu"
    assert choose(Pick.HANG, ["schedule_timeout", "wait_for_completion", "f"]) == "f"


def test_both_printk_wordings_of_a_null_dereference_give_one_title() -> None:
    """5.x+ prints "BUG: kernel NULL pointer dereference, address:", 4.x "BUG: unable to
    handle kernel NULL pointer dereference at": syzbot's title is the same for both."""
    new = load("6.12-null.log")
    old = new.replace(
        "BUG: kernel NULL pointer dereference, address: 0000000000000000",
        "BUG: unable to handle kernel NULL pointer dereference at 0000000000000000",
    )
    assert old != new
    assert (
        [r.title for r in parse(old)]
        == [r.title for r in parse(new)]
        == ["BUG: unable to handle kernel NULL pointer dereference in harness_oops_null"]
    )


def test_a_report_cut_before_its_stack_is_titled_in_corrupted() -> None:
    lines = load("6.12-warn.log").split("\n")
    header = next(i for i, line in enumerate(lines) if "WARNING: CPU:" in line)
    # the header names a function: keep only a line that does not ("WARNING: at")
    cut = lines[: header + 1]
    cut[header] = cut[header].split("WARNING:")[0] + "WARNING: at kernel/x.c:1 dump_stack+0x1/0x2"
    (report,) = parse("\n".join(cut))
    assert report.title == "WARNING in corrupted"
    assert report.corrupted


def test_the_record_carries_the_type_and_alternatives_through_json() -> None:
    (report,) = parse(load("6.12-null.log"))
    record = ReportRecord.of(report)
    data = json.loads(json.dumps(record.to_json()))
    assert data["crash_type"] == "NULL-POINTER-DEREFERENCE"
    assert data["crash_category"] == "memory-safety"
    assert data["alt_titles"] == ["bad-access in harness_oops_null"]
    assert ReportRecord.from_json(data) == record
    del data["crash_type"], data["alt_titles"]  # a summary written before types existed
    assert ReportRecord.from_json(data).crash_type is CrashType.UNKNOWN


def test_the_kcidb_issue_names_the_crash_type() -> None:
    (report,) = parse(load("6.12-null.log"))
    record = ReportRecord.of(report).to_json()
    summary = RunSummary.from_json(
        {
            "schema_version": SCHEMA_VERSION,
            "run": "20261204-101010-1",
            "counts": {},
            "kernels": {"k": {"source": "debian x", "origin": "Debian x 1.0"}},
            "tests": [
                {
                    "test": "t",
                    "kernel": "k",
                    "outcome": "oops",
                    "expected": None,
                    "expected_reason": None,
                    "as_expected": False,
                    "summary": f"oops: {report.title}",
                    "seconds": 1.0,
                    "boot": 1,
                    "evidence": "/r/k/t",
                    "reports": [record | {"test": "t", "kernel": "k"}],
                }
            ],
        }
    )
    doc = json.loads(kcidb.render(summary))
    kcidb_io.schema.LATEST.validate(doc)
    (issue,) = doc["issues"]
    assert issue["report_subject"] == report.title
    assert issue["misc"]["crash_type"] == "NULL-POINTER-DEREFERENCE"
    assert issue["misc"]["crash_category"] == "memory-safety"
    assert issue["misc"]["alt_titles"] == ["bad-access in harness_oops_null"]


def test_a_kmemleak_report_names_the_allocating_function() -> None:
    """kmemleak's report as syzkaller's executor writes it to the kernel log."""
    (report,) = parse(load("6.12-debug-dbg_leak.log"))
    assert report.title == "memory leak in hdbg_leak"  # kmemleak_alloc, __kmalloc_* skipped
    assert report.crash_type is CrashType.LEAK


def test_a_second_boot_banner_is_an_unexpected_reboot() -> None:
    log = load("6.12-debug-reboot.log")
    (report,) = parse(log)
    assert report.title == "unexpected kernel reboot"
    assert report.crash_type is CrashType.REBOOT
    first_boot = log[: log.index("harness: case=reboot")]
    assert parse(first_boot) == []  # one banner is a boot, not a reboot


def test_a_leaked_netdev_reference_is_one_bug_however_long_it_waits() -> None:
    """The kernel names the device and the count every 10 s; syzbot's title names neither."""
    reports = parse(load("6.12-debug-dbg_netdev.log"))
    assert {r.title for r in reports} == {"unregister_netdevice: waiting for DEV to become free"}
    assert len(reports) >= 2 and all(r.crash_type is CrashType.DOS for r in reports)


def test_lockdep_blames_the_lock_taker_not_the_interrupted_context() -> None:
    """A softirq took the lock on an idle CPU: the RIP is default_idle, the culprit the timer."""
    (report,) = parse(load("6.12-debug-dbg_inconsistent.log"))
    assert report.rip == "default_idle"
    assert report.title == "inconsistent lock state in hdbg_timer_fn"


def test_junit_names_the_first_reports_title_and_type(tmp_path: Path) -> None:
    (report,) = parse(load("6.12-null.log"))
    record = TestRecord.from_json(
        {
            "test": "t",
            "kernel": "k",
            "outcome": "oops",
            "expected": None,
            "expected_reason": None,
            "as_expected": False,
            "summary": f"oops: {report.title}",
            "seconds": 1.0,
            "boot": 1,
            "evidence": "/r/k/t",
            "reports": [ReportRecord.of(report).to_json() | {"test": "t", "kernel": "k"}],
        }
    )
    test_report = pytest.TestReport("g.c::t", ("g.c", None, "t"), {}, "failed", None, "call")
    Shipment(records=(record,)).attach(test_report)
    xml = LogXML(str(tmp_path / "junit.xml"), None)
    Inbox().take(test_report, xml)
    properties = dict(xml.global_properties)
    assert properties["g.c::t report"] == report.title
    assert properties["g.c::t report type"] == "NULL-POINTER-DEREFERENCE"
