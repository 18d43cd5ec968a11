"""The table of kernel report formats: data, not code.

Every kind of report the console parser recognises is one `Format` row in
`FORMATS`. Adding a kind of report means adding a row here, not code in
`parse.py`. Rows are tried in order and the first header that matches wins,
so specific rows ("BUG: KASAN:") come before generic ones ("BUG:").

Regexes are written with small placeholders ({FUNC}, {ADDR}, {NUM}, ...) so
that a row reads like the line the kernel prints; `expand()` turns them into
real regex syntax. All header regexes are matched at the start of a console
line after its printk prefix (timestamp, caller id, level) was removed.

Titles are templates: `{FRAME}` is the guilty frame (the first frame that is
not report machinery), other `{name}`s are named groups of the header (or of
the row's `detail` regex, searched in the whole report). A title must be the
same on every run of the same bug, so it never contains addresses, pids, CPU
numbers or offsets.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ReportType(enum.Enum):
    """What kind of kernel report this is; coarse on purpose (tests branch on it)."""

    BUG = "BUG"
    WARNING = "WARNING"
    OOPS = "OOPS"
    GPF = "GPF"
    PAGE_FAULT = "PAGE_FAULT"
    KASAN = "KASAN"
    KFENCE = "KFENCE"
    UBSAN = "UBSAN"
    KMSAN = "KMSAN"
    LOCKDEP = "LOCKDEP"
    RCU_STALL = "RCU_STALL"
    HUNG_TASK = "HUNG_TASK"
    SOFT_LOCKUP = "SOFT_LOCKUP"
    HARD_LOCKUP = "HARD_LOCKUP"
    PANIC = "PANIC"
    OOM = "OOM"


# Placeholders usable in any regex of this module. Each named one may appear
# at most once per regex (it becomes a named group).
PLACEHOLDERS: dict[str, str] = {
    "{FUNC}": r"(?P<func>[\w.$]+)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[[\w-]+\])?",
    "{ADDR}": r"(?:0x)?[0-9a-f]+",
    "{NUM}": r"\d+",
    "{FILE}": r"\S+",
    "{COMM}": r"(?P<comm>.+?)",
}


def expand(pattern: str) -> str:
    """Replace the readable placeholders of `pattern` by regex syntax."""
    for name, regex in PLACEHOLDERS.items():
        pattern = pattern.replace(name, regex)
    return pattern


# --- frames that are report machinery, not the bug -------------------------
# Full-match regexes on a function name (compiler suffixes such as
# ".constprop.0" or ".cold" are removed before matching).

SKIP_COMMON: tuple[str, ...] = (
    r"_*dump_stack\w*",
    r"show_(?:stack|regs|trace_log_lvl)\w*",
    r"_*warn(?:_\w+)?",
    r"warn_slowpath\w*",
    r"report_bug\w*",
    r"handle_bug",
    r"exc_\w+",
    r"asm_\w+",
    r"do_error_trap",
    r"do_trap\w*",
    r"do_int3\w*",
    r"_*die(?:_\w+)?",
    r"oops_\w+",
    r"v?panic",
    r"check_panic_on_warn",
    r"page_fault_oops",
    r"kernelmode_fixup_or_oops\w*",
    r"_*bad_area\w*",
    r"no_context",
    r"do_(?:user|kern)_addr_fault",
    r"_*do_page_fault",
    r"handle_page_fault",
    r"spurious_kernel_fault",
    r"fixup_exception",
    r"bust_spinlocks",
    r"print_(?:report|address_description|circular_bug|usage_bug|deadlock_bug)\w*",
    r"__sysvec_\w+",
    r"sysvec_\w+",
    r"_*irq_exit\w*",
    r"_*raw_spin_\w+",
    r"(?:native_)?queued_spin_lock_slowpath",
    r"do_raw_spin_\w+",
    r"delay_tsc",
    r"_*(?:const_)?udelay",
    r"delay_loop",
    r"_*mem(?:cpy|set|move|cmp)\w*",
    # the padding in front of a function (CONFIG_FUNCTION_PADDING): its address
    # is on the stack as a function pointer (a timer or kthread callback), so
    # a guessing unwinder prints it; it is never a caller
    r"__pfx_\w+",
)

SKIP_SCHED: tuple[str, ...] = (
    # the context switch itself: arm64 prints it on top of a blocked task's
    # stack ("__switch_to", above "__schedule"), x86 does not
    r"__switch_to\w*",
    r"cpu_switch_to",
    r"_*schedule\w*",
    r"io_schedule\w*",
    r"msleep\w*",
    r"usleep_range\w*",
    r"do_nanosleep",
    r"_*mutex_lock\w*",
    r"rwsem_down_\w+",
    r"_*down(?:_\w+)?",
    r"_*wait_for_common\w*",
    r"do_wait_for_common",
    r"wait_for_completion\w*",
    r"_*rt_mutex\w*",
    r"rt_spin_lock\w*",
    r"folio_wait\w*",
    r"bit_wait\w*",
    r"_*wait_on_bit\w*",
    r"out_of_line_wait_on_bit\w*",
    r"_*flush_work",
    r"synchronize_rcu\w*",
)

SKIP_TIMER_IRQ: tuple[str, ...] = (
    r"rcu_\w+",
    r"print_cpu_stall\w*",
    r"check_cpu_stall",
    r"update_process_times",
    r"tick_\w+",
    r"_*hrtimer_\w+",
    r"_*run_hrtimer",
    r"watchdog_\w+",
    r"stop_machine_yield",
    r"cpu_relax",
    r"nmi_cpu_backtrace\w*",
    r"nmi_trigger_cpumask_backtrace",
    r"arch_trigger_cpumask_backtrace",
    r"trigger_\w*backtrace",
    r"perf_\w+",
    r"_*perf_event_\w+",
    r"x86_pmu_\w+",
    r"intel_pmu_\w+",
    r"amd_pmu_\w+",
    r"_*nmi_handle",
    r"default_do_nmi",
    r"_*handle_softirqs",
    r"_*do_softirq\w*",
)

SKIP_SANITIZER: tuple[str, ...] = (
    r"_*kasan_\w+",
    r"_*asan_\w+",
    r"check_memory_region\w*",
    r"_*kfence_\w+",
    r"_*kmsan_\w+",
    r"_*msan_\w+",
    r"_*ubsan_\w+",
)

SKIP_LOCKDEP: tuple[str, ...] = (
    r"_*lock_acquire\w*",
    r"_*lock_release\w*",
    r"lockdep_\w+",
    r"check_(?:prev_add|prevs_add|noncircular|irq_usage|deadlock|flags)\w*",
    r"validate_chain",
    r"mark_lock\w*",
    r"valid_state",
    r"_*might_(?:sleep|resched|fault)",
)

SKIP_ALLOC: tuple[str, ...] = (
    r"dump_header",
    r"oom_kill_process",
    r"out_of_memory",
    r"_*\w*alloc_pages\w*",
    r"_*\w*alloc_frozen_pages\w*",
    r"_*\w*alloc_folio\w*",
    r"_*folio_alloc\w*",
    r"alloc_pages_mpol\w*",
)

SKIP_LIST: tuple[str, ...] = (r"_*list_\w+",)
SKIP_REFCOUNT: tuple[str, ...] = (r"_*refcount_\w+",)


@dataclass(frozen=True)
class Format:
    """One kind of report: how it starts, how it is titled, where its stack is.

    header:        regex (with placeholders) matched at the start of a line.
    title:         template; {FRAME} is the guilty frame, {name} a named group.
    type:          the ReportType it produces.
    skip:          extra frame regexes that are machinery for this kind.
    expects_trace: a report without a call trace is flagged corrupted.
    chained:       the header may be printed by the kernel as the second line
                   of another report (the "Oops: ... [#1]" line after "BUG: ...",
                   "kernel BUG at" after "list_add corruption", "WARNING: CPU:"
                   after "refcount_t:"); such a line does not start a new
                   report while the current one is still in its preamble.
    end:           regex of this kind's last line (inclusive), if it has one.
    stack_start:   regex of the line from which the relevant stack is read
                   (default: the report's first line).
    detail:        regex searched in the whole report for more title fields.
    preamble:      how many lines after this header a chained header is still
                   part of it (default CHAIN_WINDOW); arm64 prints a dozen
                   lines of fault decoding before its die() line.
    """

    header: str
    title: str
    type: ReportType
    skip: tuple[str, ...] = ()
    expects_trace: bool = True
    chained: bool = False
    end: str | None = None
    stack_start: str | None = None
    detail: str | None = None
    preamble: int | None = None


SANITIZER_END = r"={20,}\s*$"

FORMATS: tuple[Format, ...] = (
    # -- sanitizers (debug kernels) -------------------------------------------
    Format(
        header=r"BUG: KASAN: (?P<kind>[\w-]+)(?: in {FUNC})?",
        title="KASAN: {kind} {access} in {FRAME}",
        type=ReportType.KASAN,
        skip=SKIP_SANITIZER,
        end=SANITIZER_END,
        detail=r"(?P<access>Read|Write) of size \d+",
    ),
    Format(
        header=r"BUG: KFENCE: (?P<kind>[\w -]+?) in {FUNC}",
        title="KFENCE: {kind} in {FRAME}",
        type=ReportType.KFENCE,
        skip=SKIP_SANITIZER,
        end=SANITIZER_END,
    ),
    Format(
        header=r"BUG: KMSAN: (?P<kind>[\w-]+) in {FUNC}",
        title="KMSAN: {kind} in {FRAME}",
        type=ReportType.KMSAN,
        skip=SKIP_SANITIZER,
        end=SANITIZER_END,
    ),
    Format(
        header=r"UBSAN: (?P<kind>[\w-]+) in {FILE}",
        title="UBSAN: {kind} in {FRAME}",
        type=ReportType.UBSAN,
        skip=SKIP_SANITIZER,
        end=SANITIZER_END,
    ),
    # -- lockdep (debug kernels) --------------------------------------------
    Format(
        header=r"WARNING: possible (?:circular locking|recursive locking|irq lock inversion)",
        title="possible deadlock in {FRAME}",
        type=ReportType.LOCKDEP,
        skip=SKIP_LOCKDEP + SKIP_SCHED,
        stack_start=r"stack backtrace:",
    ),
    Format(
        header=r"WARNING: inconsistent lock state",
        title="inconsistent lock state in {FRAME}",
        type=ReportType.LOCKDEP,
        skip=SKIP_LOCKDEP + SKIP_SCHED,
        stack_start=r"stack backtrace:",
    ),
    Format(
        header=r"WARNING: suspicious RCU usage",
        title="WARNING: suspicious RCU usage in {FRAME}",
        type=ReportType.LOCKDEP,
        skip=SKIP_LOCKDEP + SKIP_SCHED,
        stack_start=r"stack backtrace:",
    ),
    # -- data-structure checks that precede a WARNING or a BUG ---------------
    Format(
        header=r"refcount_t: (?P<what>[^;.]+)",
        title="WARNING: refcount bug in {FRAME}",
        type=ReportType.WARNING,
        skip=SKIP_REFCOUNT,
    ),
    Format(
        header=r"list_(?:add|del) corruption",
        title="BUG: corrupted list in {FRAME}",
        type=ReportType.BUG,
        skip=SKIP_LIST,
    ),
    # -- WARN(), BUG(), faults ------------------------------------------------
    Format(
        header=r"WARNING: (?:CPU: {NUM} PID: {NUM} at {FILE} |{FILE} at |at {FILE} ){FUNC}",
        title="WARNING in {FRAME}",
        type=ReportType.WARNING,
        chained=True,
    ),
    Format(
        header=r"(?:Oops: )?general protection fault",
        title="general protection fault in {FRAME}",
        type=ReportType.GPF,
    ),
    Format(
        header=r"BUG: (?:unable to handle )?kernel NULL pointer dereference",
        title="BUG: kernel NULL pointer dereference in {FRAME}",
        type=ReportType.PAGE_FAULT,
    ),
    Format(
        header=r"BUG: unable to handle (?:page fault for address|kernel paging request)",
        title="BUG: unable to handle page fault in {FRAME}",
        type=ReportType.PAGE_FAULT,
    ),
    Format(
        header=r"kernel BUG at {FILE}!",
        title="kernel BUG in {FRAME}",
        type=ReportType.BUG,
        chained=True,
    ),
    # -- lockups, stalls, hangs ----------------------------------------------
    Format(
        header=r"(?:NMI )?(?:watchdog: )?BUG: soft lockup - "
        r"CPU#{NUM} stuck for {NUM}s! \[{COMM}:{NUM}\]",
        title="BUG: soft lockup in {FRAME}",
        type=ReportType.SOFT_LOCKUP,
        skip=SKIP_TIMER_IRQ,
    ),
    Format(
        header=r"(?:NMI )?watchdog: (?:CPU{NUM}: )?Watchdog detected hard LOCKUP on cpu {NUM}",
        title="BUG: hard lockup in {FRAME}",
        type=ReportType.HARD_LOCKUP,
        skip=SKIP_TIMER_IRQ,
    ),
    Format(
        header=r"(?:rcu: )?INFO: rcu_\w+ "
        r"(?:self-detected stall|detected (?:expedited )?stalls?) on CPU",
        title="INFO: rcu detected stall in {FRAME}",
        type=ReportType.RCU_STALL,
        skip=SKIP_TIMER_IRQ,
        stack_start=r"(?:CPU: {NUM} |NMI backtrace for cpu {NUM})",
    ),
    Format(
        header=r"INFO: task {COMM}:{NUM} blocked for more than {NUM} seconds\.",
        title="INFO: task hung in {FRAME}",
        type=ReportType.HUNG_TASK,
        skip=SKIP_SCHED,
    ),
    Format(
        header=r"BUG: scheduling while atomic: {COMM}/{NUM}/0x[0-9a-f]+",
        title="BUG: scheduling while atomic in {FRAME}",
        type=ReportType.BUG,
        skip=(*SKIP_SCHED, r"do_task_dead"),
    ),
    Format(
        header=r"BUG: sleeping function called from invalid context",
        title="BUG: sleeping function called from invalid context in {FRAME}",
        type=ReportType.BUG,
        skip=SKIP_LOCKDEP + SKIP_SCHED,
    ),
    # Any other "BUG: <what>" line; many of them come without a stack.
    Format(
        header=r"BUG: (?P<what>[A-Za-z][^:!,(\[]*?)"
        r"(?= in process| at | on CPU| - |[:!,(\[]| [0-9a-f]{8,}|\s*$)",
        title="BUG: {what} in {FRAME}",
        type=ReportType.BUG,
        expects_trace=False,
    ),
    # The die() line. After "BUG: ..." or "kernel BUG at" it is chained; on
    # its own ("Oops: 0000 [#1]", "divide error: 0000 [#1]") it is the report.
    Format(
        header=r"(?:Oops: )?(?P<kind>[A-Za-z][A-Za-z0-9 ]*?)(?:, [^:]*)?: [0-9a-f]{4} \[#{NUM}\]",
        title="{kind} in {FRAME}",
        type=ReportType.OOPS,
        chained=True,
    ),
    # -- the end ----------------------------------------------------------------
    Format(
        header=r"Kernel panic - not syncing: (?P<msg>.*)",
        title="Kernel panic: {msg}",
        type=ReportType.PANIC,
        expects_trace=False,
        end=r"(?:---\[ end Kernel panic|Kernel Offset:|Rebooting in {NUM} seconds)",
    ),
    Format(
        header=r"(?P<victim>.+?) invoked oom-killer: ",
        title="OOM kill of {victim}",
        type=ReportType.OOM,
        skip=SKIP_ALLOC,
        end=r"(?:Memory cgroup out of memory|Out of memory)[^:]*: Killed process",
        detail=r"(?:Memory cgroup out of memory|Out of memory)[^:]*: "
        r"Killed process {NUM} \((?P<victim>[^)]*)\)",
    ),
    # A kill line seen without the "invoked oom-killer" header before it.
    Format(
        header=r"(?:Memory cgroup out of memory|Out of memory)[^:]*: "
        r"Killed process {NUM} \((?P<victim>[^)]*)\)",
        title="OOM kill of {victim}",
        type=ReportType.OOM,
        expects_trace=False,
        end=r"(?:Memory cgroup out of memory|Out of memory)[^:]*: Killed process",
    ),
)

# --- report structure ---------------------------------------------------------

# Lines that end every report that printed them (inclusive).
GENERIC_END = r"---\[ end trace"

# Lines that close a report's preamble: a chained header after one of these
# is a new report, not the second line of the current one.
ANCHOR = r"(?:CPU: {NUM} |Call Trace:|Modules linked in:|Hardware name:)"

# How many lines after its header a chained header may still be absorbed.
CHAIN_WINDOW = 6

# A report without an end line ends after this many lines that do not look
# like report body, or after MAX_LINES lines in all.
MAX_GAP = 20
MAX_LINES = 1000

# Lines that belong to a report's body (stack frames, registers, the
# standard dump lines). Used to trim a report that has no end line.
BODY: tuple[str, ...] = (
    r"\s",
    r"(?:R[A-Z0-9]{1,2}|[CDEFGS]S|CR\d|DR\d|PKRU|Code|EFLAGS|ORIG_RAX): ",
    r"(?:CPU: {NUM}|Hardware name:|Tainted:|Call Trace:|Call trace:|Modules linked in:)",
    r"(?:Workqueue:|Stopper:|task:|irq event stamp:|hardirqs |softirqs |Kernel Offset:)",
    r"(?:NMI backtrace for cpu|Sending NMI from|rcu: |#PF: |PGD |Oops|note: |---\[ end)",
    r"(?:Mem-Info:|Tasks state|oom-kill:|stack backtrace:|Showing |<\w+>|</\w+>)",
)

# One stack frame: " func+0x12/0x34 [module]", optionally "? " (unreliable)
# and an old-style "[<ffffffff81234567>]" address in front.
FRAME = (
    r"\s*(?:\[<[0-9a-f]+>\]\s*)?(?P<unreliable>\? )?"
    r"(?P<func>[A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+/0x[0-9a-f]+(?:\s+\[[\w-]+\])?"
)

# The line that introduces the stack dump.
CALL_TRACE = r"\s*Call [Tt]race:"

# Lines inside a call trace that are not frames but do not end it.
TRACE_FILLER = (
    r"\s*</?#?\w+>\s*$",
    r"\s*(?:R[A-Z0-9]{1,2}|[CDEFGS]S|CR\d|DR\d|PKRU|Code|EFLAGS|ORIG_RAX): ",
    r"\s*\[<[0-9a-f]+>\] 0x[0-9a-f]+",
    r"\s*0x[0-9a-f]+\s*$",
)

# Symbolized instruction pointer of the faulting context (user-mode RIPs
# have no symbol and never match).
RIP = r"(?:RIP: [0-9a-f]{4}:|EIP: |pc : )(?:\[<[0-9a-f]+>\]\s*)*{FUNC}"

# "CPU: 0 UID: 0 PID: 1 Comm: sh Tainted: G        W  O  6.12.117+deb12-amd64 #1"
# and the lockdep form "6.12.0 #1 Not tainted".
VERSION: tuple[str, ...] = (
    r"(?:Not tainted|Tainted: (?P<taint>[A-Z][A-Z ]*?))\s+(?P<version>\d+\.\d+[\w.+~-]*) #",
    r"^(?P<version>\d+\.\d+[\w.+~-]*) #\d+\S* (?:Not tainted|Tainted: (?P<taint>[A-Z][A-Z ]*))",
)
LINUX_VERSION = r"Linux version (?P<version>\d+\.\d+\S*)"

# printk prefixes: "<4>", "[   12.345678]", "[  T123]" / "[C1]" caller ids.
PREFIX = r"^\r*(?:<\d{1,3}>)?(?:(?:\[\s*\d+\.\d+\]|\[\s*[TC]\d+\])+ ?)?"
TIMESTAMP = r"^\r*(?:<\d{1,3}>)?\[\s*\d+\.\d+\]"
# A printk timestamp inside a line that user space wrote into.
TORN = r"(?:<\d{1,3}>)?\[\s*\d+\.\d{6}\]"

# Compiler-generated suffixes dropped from function names.
FUNC_SUFFIX = r"\.(?:constprop|isra|part|cold|llvm|lto_priv|localalias)\b.*$"


def panic_header() -> str:
    """The regex that starts a PANIC report: what "the kernel died" means, in one place.

    The console watcher uses it to stop waiting the moment a panic is printed;
    the parser uses the same row to classify it.
    """
    return expand(next(f.header for f in FORMATS if f.type is ReportType.PANIC))


def any_header() -> str:
    """One regex matching the start of any report in the table (groups unnamed).

    The console watcher uses it as a cheap hint that a report is being printed;
    whether it really is one is still decided by the parser.
    """
    import re

    parts = [re.sub(r"\(\?P<\w+>", "(?:", expand(f.header)) for f in FORMATS]
    return "|".join(f"(?:{p})" for p in parts)


# --- arm64 ------------------------------------------------------------------------
# arm64 prints its own fault headers ("Unable to handle kernel ..."), then the
# fault decoding (Mem abort info, ESR, the page-table walk), then die()'s
# "Internal error: <kind>: <esr> [#N]" line, then "pc : func+off/len" and
# "lr : ...", registers x29..x0 and "Call trace:" with frames without "? ".
# WARN() and BUG() print the same "WARNING: CPU: ..." and "kernel BUG at"
# lines as on x86 (rows above), BUG() followed by "Internal error: Oops - BUG".

#: exception entry and fault handling frames of arm64: machinery, never the bug
SKIP_ARM64: tuple[str, ...] = (
    r"_*do_kernel_fault",
    r"die_kernel_fault",
    r"do_(?:page|translation|mem|sp_pc|el1|bad)_\w*(?:fault|abort)\w*",
    r"do_mem_abort",
    r"do_bad_area",
    r"el[01]_\w+",
    r"el[01]h?t?_(?:64|32)_\w+",
    r"show_pte",
    r"arm64_notify_die",
    r"bug_brk_handler|bug_handler|brk_handler|call_el1_break_hook|do_el1_brk\w*",
    r"gic_handle_irq|call_on_irq_stack|do_interrupt_handler|handle_domain_irq",
)

ARM64_FORMATS: tuple[Format, ...] = (
    Format(
        header=r"Unable to handle kernel NULL pointer dereference at virtual address",
        title="BUG: kernel NULL pointer dereference in {FRAME}",
        type=ReportType.PAGE_FAULT,
        skip=SKIP_ARM64,
        preamble=20,
    ),
    Format(
        header=r"Unable to handle kernel paging request at virtual address",
        title="BUG: unable to handle page fault in {FRAME}",
        type=ReportType.PAGE_FAULT,
        skip=SKIP_ARM64,
        preamble=20,
    ),
    # write to read-only memory, execute from non-executable memory, access to
    # user memory outside uaccess routines, ...
    Format(
        header=r"Unable to handle kernel (?P<what>[a-z][\w -]*?)(?: at virtual address|$)",
        title="BUG: unable to handle kernel {what} in {FRAME}",
        type=ReportType.PAGE_FAULT,
        skip=SKIP_ARM64,
        preamble=20,
    ),
    # die(): "Internal error: Oops: 0000000096000006 [#1] SMP", "Internal error:
    # Oops - BUG: 00000000f2000800 [#1] SMP", "Internal error: undefined
    # instruction: ...". Chained after the rows above and "kernel BUG at".
    Format(
        header=r"Internal error: (?P<kind>[A-Za-z][A-Za-z -]*?): [0-9a-f]+ \[#{NUM}\]",
        title="{kind} in {FRAME}",
        type=ReportType.OOPS,
        skip=SKIP_ARM64,
        chained=True,
    ),
)

FORMATS = FORMATS + ARM64_FORMATS

# arm64's stack dumper prints itself ("dump_backtrace", "show_stack", then
# "dump_stack_lvl"): report machinery for every row, as dump_stack is.
SKIP_COMMON = (*SKIP_COMMON, r"dump_backtrace", r"arch_stack_walk", r"kunwind_\w+")

# arm64's register dump, between "pc :" and "Call trace:"
ARM64_BODY: tuple[str, ...] = (
    r"(?:pstate|pc|lr|sp|x\d+|pmr_save|Mem abort info|Data abort info|"
    r"(?:user|swapper) pgtable)\s*:",
)
BODY = BODY + ARM64_BODY
