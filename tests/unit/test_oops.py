"""Tests of harness.oops on console logs captured from real kernels.

Each tests/data/oops/*.log is a few "KEY: value" header lines, a blank line,
then the raw console output (CRLF and all). Per report found, in order, the
header holds TYPE, TITLE, ALT (syzbot's alternative titles, if any), SYZTYPE
(syzbot's crash type), GUILTY and CORRUPTED lines; "TYPE: none" means no
report; PANIC says whether is_panic() must hold. SOURCE and NOTE say where the
log came from (tests/data/oops/capture/ re-captures them).

To regenerate the expectations after changing the parser or adding a log:

    OOPS_UPDATE=1 python -m pytest -q tests/unit/test_oops.py -p no:cacheprovider

then review the header diff: the tests themselves always compare against
what is stored.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest

from harness.oops import (
    FORMATS,
    KernelReport,
    ReportType,
    is_panic,
    normalize_comm,
    parse,
    strip_prefix,
    title_matches,
)
from harness.oops.formats import expand
from harness.oops.kinds import Category, CrashType

DATA = Path(__file__).resolve().parents[1] / "data" / "oops"
LOGS = sorted(DATA.glob("*.log"))
EXPECTED_KEYS = ("TYPE", "TITLE", "ALT", "SYZTYPE", "GUILTY", "CORRUPTED", "PANIC")


def read_case(path: Path) -> tuple[list[tuple[str, str]], str]:
    """(header lines as (key, value), raw console log) of a test log."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    head, _, log = raw.partition("\n\n")
    pairs = [line.split(": ", 1) for line in head.splitlines() if ": " in line]
    return [(k, v) for k, v in pairs], log


def header_values(pairs: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in pairs if k == key]


def expectations(log: str) -> list[tuple[str, str]]:
    """The header lines the parser produces for `log` (used by OOPS_UPDATE)."""
    reports = parse(log)
    if not reports:
        pairs = [("TYPE", "none")]
    else:
        pairs = []
        for r in reports:
            pairs += [("TYPE", r.type.name), ("TITLE", r.title)]
            pairs += [("ALT", alt) for alt in r.alt_titles]
            pairs += [("SYZTYPE", r.crash_type.value)]
            pairs += [("GUILTY", r.guilty_frame or "-")]
            pairs += [("CORRUPTED", "yes" if r.corrupted else "no")]
    return [*pairs, ("PANIC", "yes" if is_panic(log) else "no")]


def rewrite(path: Path, pairs: list[tuple[str, str]], log: str) -> None:
    """Store fresh expectations, keeping SOURCE/NOTE lines and the raw log."""
    kept = [(k, v) for k, v in pairs if k not in EXPECTED_KEYS]
    lines = [f"{k}: {v}" for k, v in [*expectations(log), *kept]]
    path.write_bytes(("\n".join(lines) + "\n\n" + log).encode())


def load(name: str) -> str:
    return read_case(DATA / name)[1]


def only(name: str) -> KernelReport:
    reports = parse(load(name))
    assert len(reports) == 1, [r.title for r in reports]
    return reports[0]


# --- every stored log --------------------------------------------------------


def test_there_are_logs() -> None:
    assert len(LOGS) >= 30
    assert any(path.name.startswith("format-") for path in LOGS)


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.name)
def test_log_matches_stored_expectations(path: Path) -> None:
    pairs, log = read_case(path)
    if os.environ.get("OOPS_UPDATE"):
        rewrite(path, pairs, log)
        pairs, log = read_case(path)
    stored = [(k, v) for k, v in pairs if k in EXPECTED_KEYS]
    assert expectations(log) == stored


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.name)
def test_log_reports_are_well_formed(path: Path) -> None:
    _, log = read_case(path)
    reports = parse(log)
    lines = log.split("\n")
    previous_last = -1
    for r in reports:
        assert previous_last < r.first_line <= r.last_line < len(lines)
        previous_last = r.last_line
        assert len(r.text.split("\n")) == r.last_line - r.first_line + 1
        # a line user space wrote into ends with the kernel's part (the report's)
        assert strip_prefix(lines[r.first_line]).endswith(r.text.split("\n")[0])
        assert not re.search(r"0x|\+0x|ffff|#\d|CPU\d|\[\d", r.title), r.title
        assert r.title == r.title.strip() and "  " not in r.title
    assert parse(log) == reports  # deterministic


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.name)
def test_captured_logs_name_their_kernel(path: Path) -> None:
    pairs, log = read_case(path)
    source = " ".join(header_values(pairs, "SOURCE"))
    if "NOT captured" in source:
        pytest.skip("format-derived log")
    version = re.search(r"(?:Debian|kernel) (\S+),", source)
    assert version, source
    assert f"Linux version {version.group(1)}" in log
    for r in parse(log):
        assert r.kernel_version == version.group(1)


# --- same bug, same title, on different kernels ------------------------------


def _cases(prefix: str) -> dict[str, list[str]]:
    return {
        p.name.removeprefix(prefix): header_values(read_case(p)[0], "TITLE")
        for p in LOGS
        if p.name.startswith(prefix)
    }


def test_titles_are_stable_across_kernel_versions() -> None:
    old, new = _cases("6.1-"), _cases("6.12-")
    common = sorted(set(old) & set(new) - {"sched_atomic-torn.log"})
    assert len(common) >= 10
    for case in common:
        assert old[case] == new[case], case


# --- specific fields on real logs --------------------------------------------


def test_null_deref_fields_6_12() -> None:
    r = only("6.12-null.log")
    assert r.type is ReportType.PAGE_FAULT
    assert r.title == "BUG: unable to handle kernel NULL pointer dereference in harness_oops_null"
    assert r.alt_titles == ("bad-access in harness_oops_null",)
    assert r.crash_type is CrashType.NULL_DEREF_BUG
    assert r.crash_type.category is Category.MEMORY_SAFETY
    assert r.rip == "harness_oops_null"
    assert r.call_trace == (
        "harness_oops_write",
        "proc_reg_write",
        "vfs_write",
        "ksys_write",
        "do_syscall_64",
        "entry_SYSCALL_64_after_hwframe",
    )
    assert r.taint == "G           OE"
    assert r.kernel_version == "6.12.117+deb12-amd64"
    assert r.text.startswith("BUG: kernel NULL pointer dereference, address: 0000000000000000")
    assert r.text.endswith("---[ end trace 0000000000000000 ]---")
    assert not r.corrupted


def test_warning_fields_and_taint_after_warn() -> None:
    warn, null = parse(load("6.12-two.log"))
    assert (warn.type, null.type) == (ReportType.WARNING, ReportType.PAGE_FAULT)
    assert warn.guilty_frame == warn.rip == "harness_oops_warn"
    assert warn.taint == "G           OE"
    assert null.taint == "G        W  OE"  # the warning tainted the kernel


def test_not_tainted_is_none_7_3() -> None:
    r = only("7.3-sysrq.log")
    assert r.taint is None
    assert r.kernel_version == "7.3.4+deb13-amd64"
    assert r.guilty_frame == "sysrq_handle_crash"  # vpanic/panic are machinery


def test_unreliable_frames_are_dropped() -> None:
    seen_unreliable = False
    for path in LOGS:
        for r in parse(read_case(path)[1]):
            seen_unreliable |= bool(re.search(r"^ +\? \w", r.text, re.M))
            if r.frames and not any(f.reliable for f in r.frames):
                continue  # a guessing unwinder's trace: "?" frames are all there is
            for name in r.call_trace:
                assert re.search(rf"^ *(?:\[<\w+>\] )?{re.escape(name)}[+.]", r.text, re.M)
    assert seen_unreliable


def test_a_trace_of_only_unreliable_frames_still_names_the_culprit() -> None:
    """CONFIG_UNWINDER_GUESS prints every frame with "? ": the title must not lose its frame."""
    (guess,) = parse(load("format-guess-unwinder.log"))
    (reliable, *_) = parse(load("6.12-hung.log"))
    assert guess.frames and not any(f.reliable for f in guess.frames)
    # syzbot's hang rule: the first frame that is not scheduling, waiting or locking
    assert guess.title == reliable.title == "INFO: task hung in msleep"
    assert guess.call_trace[:3] == ("__schedule", "schedule", "schedule_timeout")


def test_compiler_suffixes_are_dropped_from_frames() -> None:
    r = only("6.1-sysrq.log")
    assert "__handle_sysrq" in r.call_trace  # printed as __handle_sysrq.cold


def test_hung_task_skips_scheduler_frames() -> None:
    reports = parse(load("6.12-hung.log"))
    assert len(reports) == 3  # reported at 3, 6 and 9 seconds
    r = reports[0]
    assert r.call_trace[:4] == ("__schedule", "schedule", "schedule_timeout", "msleep")
    assert r.guilty_frame == "msleep"  # "schedule" frames skipped, as syzbot does
    assert r.alt_titles == ("hang in msleep",)
    assert r.crash_type is CrashType.HANG
    assert r.rip is None


def test_rcu_stall_uses_the_stalled_cpu_stack_not_the_gp_kthread() -> None:
    r = only("6.12-rcustall-starved.log")
    assert "rcu_gp_kthread" in r.text
    assert "rcu_gp_kthread" not in r.call_trace
    assert "harness_oops_softlockup" in (r.rip, *r.call_trace)
    # syzbot's stall rule: the frame above the first dispatcher (vfs_write)
    assert r.guilty_frame == "proc_reg_write"


def test_kfence_stack_is_the_access_stack_not_the_allocation_stack() -> None:
    r = only("6.12-kfence.log")
    assert r.call_trace[0] == "harness_oops_kfence"
    assert r.call_trace.count("harness_oops_kfence") == 1
    assert r.text.endswith("=" * 66)


def test_oom_report_spans_header_to_kill_line() -> None:
    r = only("6.12-oom.log")
    assert r.text.startswith("hog invoked oom-killer:")
    assert r.text.split("\n")[-1].startswith("Out of memory: Killed process")
    assert r.title == "OOM kill of hog"


# --- chained headers, several reports, panics ---------------------------------


def test_die_line_belongs_to_the_bug_line_before_it() -> None:
    r = only("6.12-list.log")  # list_add corruption + kernel BUG at + Oops: invalid opcode
    assert r.title == "BUG: corrupted list in harness_oops_list"
    assert "kernel BUG at lib/list_debug.c" in r.text
    assert "Oops: invalid opcode" in r.text


def test_oopsed_and_died_are_told_apart() -> None:
    oops_only = load("6.12-null.log")
    fatal = load("6.12-panic_oops.log")
    assert not is_panic(oops_only)
    assert is_panic(fatal)
    kinds = [r.type for r in parse(fatal)]
    assert kinds == [ReportType.PAGE_FAULT, ReportType.PANIC]
    assert parse(fatal)[1].title == "Kernel panic: Fatal exception"


def test_panic_titles_drop_per_run_details() -> None:
    titles = [r.title for r in parse(load("6.12-initoops.log"))]
    assert titles[-1] == "Kernel panic: Attempted to kill init!"  # no exitcode=0x...
    assert only("6.12-noinit.log").title == "Kernel panic: No working init found."


def test_title_matches() -> None:
    r = only("6.12-bug.log")
    assert title_matches(r, r"^kernel BUG in harness_oops_bug$")
    assert title_matches(r, "kernel BUG")
    assert not title_matches(r, "WARNING")


# --- false positives and interleaving -----------------------------------------


def test_user_space_text_that_looks_like_reports_is_ignored() -> None:
    log = load("6.12-noise.log")
    assert "BUG: this line was printed by userspace" in log
    assert parse(log) == []
    assert not is_panic(log)


def test_same_text_with_a_kernel_timestamp_is_a_report() -> None:
    log = load("6.12-noise.log").replace(
        "\nBUG: this line was printed by userspace", "\n[    2.000000] BUG: bad rss-counter state"
    )
    assert [r.title for r in parse(log)] == ["BUG: bad rss-counter state"]


def test_untimestamped_log_is_parsed_too() -> None:
    log = "\n".join(strip_prefix(line) for line in load("6.12-bug.log").split("\n"))
    assert [r.title for r in parse(log)] == ["kernel BUG in harness_oops_bug"]


def test_user_space_torn_into_a_frame_line() -> None:
    # Captured: "Segmentation fau[    1.637375]  do_exit+0x811/0xb10"
    log = load("6.1-sched_atomic-torn.log")
    assert "Segmentation fau[" in log
    second = parse(log)[1]
    assert second.call_trace[3:6] == ("do_task_dead", "do_exit", "do_group_exit")
    assert second.guilty_frame == "do_exit"


def test_reports_from_two_cpus_in_a_row() -> None:
    reports = parse(load("6.12-softlockup2.log"))
    cpus = [re.search(r"CPU#(\d)", r.text.split("\n")[0]).group(1) for r in reports]
    assert set(cpus) == {"0", "1"}
    assert {r.title for r in reports} == {"BUG: soft lockup in proc_reg_write"}


def test_boot_logs_have_no_reports() -> None:
    for name in ("6.12-boot.log", "6.1-boot.log", "7.3-boot.log"):
        log = load(name)
        assert "report a bug" in log  # "PCI: ... if necessary, use "pci=nocrs" and report a bug"
        assert parse(log) == [], name


# --- strip_prefix ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[   12.345678] BUG: foo", "BUG: foo"),
        ("[   12.345678]  harness_oops_write+0xe2/0x100", " harness_oops_write+0xe2/0x100"),
        ("[    0.000000][    T0] Linux version 6.12", "Linux version 6.12"),
        ("[   12.345678][  T123] BUG: foo", "BUG: foo"),
        ("[   12.345678][    C1] rcu: INFO: x", "rcu: INFO: x"),
        ("[  T123] BUG: foo", "BUG: foo"),
        ("<4>[   12.345678] WARNING: x", "WARNING: x"),
        ("<4>WARNING: x", "WARNING: x"),
        ("[   12.345678] BUG: foo\r", "BUG: foo"),
        ("\r[   12.345678] BUG: foo\r\n", "BUG: foo"),
        (" harness_oops_write+0xe2/0x100", " harness_oops_write+0xe2/0x100"),
        ("[    140]     0   140    48561 hog", "[    140]     0   140    48561 hog"),
        ("", ""),
    ],
)
def test_strip_prefix(line: str, expected: str) -> None:
    assert strip_prefix(line) == expected


def test_caller_id_prefixed_log_parses_like_the_plain_one() -> None:
    plain = load("6.12-warn.log")
    with_ids = "\n".join(
        re.sub(r"^(\[\s*\d+\.\d+\])", r"\1[   T138]", line) for line in plain.split("\n")
    )
    assert [r.title for r in parse(with_ids)] == [r.title for r in parse(plain)]


@pytest.mark.parametrize(
    ("comm", "expected"),
    [
        ("kworker/0:1", "kworker"),
        ("kworker/u8:3", "kworker"),
        ("syz-executor.0", "syz-executor"),
        ("hog", "hog"),
        ("migration/1", "migration"),
        ("123", "123"),
    ],
)
def test_normalize_comm(comm: str, expected: str) -> None:
    assert normalize_comm(comm) == expected


# --- robustness ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "\r\n\r\n",
        "\x00\xff garbage \x1b[0m",
        "BUG:",
        "WARNING:",
        "[ 1.0]",
        "x" * 100000,
        "Call Trace:\n ? \n <TASK>",
        "RIP: 0010:",
    ],
)
def test_garbage_is_no_report(text: str) -> None:
    assert parse(text) == []


def test_a_bare_panic_line_is_a_panic_without_a_reason() -> None:
    (report,) = parse("Kernel panic - not syncing: ")
    assert (report.type, report.title) == (ReportType.PANIC, "Kernel panic:")


def test_shuffled_real_lines_never_raise() -> None:
    lines = load("6.12-two.log").split("\n") + load("format-lockdep.log").split("\n")
    rng = random.Random(1234)
    for _ in range(50):
        rng.shuffle(lines)
        for r in parse("\n".join(lines[: rng.randrange(len(lines))])):
            assert r.first_line <= r.last_line


def test_truncated_oops_is_corrupted() -> None:
    lines = load("6.12-null.log").split("\n")
    cut = next(i for i, line in enumerate(lines) if "Call Trace:" in line)
    r = parse("\n".join(lines[:cut]))[0]
    assert r.type is ReportType.PAGE_FAULT
    assert r.corrupted
    title = "BUG: unable to handle kernel NULL pointer dereference in harness_oops_null"
    assert r.title == title  # from RIP


def test_every_truncation_of_a_fatal_oops_is_corrupted_until_its_stack() -> None:
    """Cut anywhere: no report before the header, then the oops, complete from its first frame."""
    lines = load("6.12-panic_oops.log").split("\n")
    header = next(i for i, line in enumerate(lines) if "BUG: kernel NULL pointer" in line)
    first_frame = next(i for i, line in enumerate(lines) if "Call Trace:" in line) + 2  # <TASK>
    panic = next(i for i, line in enumerate(lines) if "Kernel panic - not syncing" in line)
    for cut in range(header - 10, len(lines) + 1):
        reports = parse("\n".join(lines[:cut]))
        if cut <= header:
            assert reports == [], cut
            continue
        types = [r.type for r in reports]
        panicked = [ReportType.PANIC] if cut > panic else []
        assert types == [ReportType.PAGE_FAULT, *panicked], cut
        title = "BUG: unable to handle kernel NULL pointer dereference in "
        assert reports[0].title.startswith(title), cut
        assert reports[0].corrupted is (cut <= first_frame), cut


# --- the table -------------------------------------------------------------------


def test_table_has_no_unexpanded_placeholders() -> None:
    for fmt in FORMATS:
        for pattern in (fmt.header, fmt.end, fmt.stack_start, fmt.detail):
            if pattern is not None:
                assert not re.search(r"\{[A-Z]+\}", expand(pattern)), pattern
                re.compile(expand(pattern))


def test_every_report_type_has_a_format_and_a_log() -> None:
    in_table = {fmt.type for fmt in FORMATS}
    in_logs = {v for p in LOGS for v in header_values(read_case(p)[0], "TYPE")}
    assert in_table == set(ReportType)
    assert {t.name for t in ReportType} <= in_logs
