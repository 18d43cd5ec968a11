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
    LEAK = "LEAK"
    REBOOT = "REBOOT"


class Pick(enum.Enum):
    """How the guilty frame is chosen among the frames no skip list removed."""

    FIRST = "first"  # the first one
    # stalls and lockups: the frame before the first STALL_ANCHORS frame
    # (a syscall's entry, a work item's dispatcher): the loop, not where the
    # timer interrupt happened to land in it
    STALL = "stall"
    # hung tasks: HANG_BUCKETS first (everything waiting for rtnl_lock or an
    # RCU grace period is one bug), else the first frame without HANG_SKIP
    HANG = "hang"


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


def contains(*patterns: str) -> tuple[str, ...]:
    """Skip regexes that hit anywhere in a name, as syzbot's do ("^"/"$" still anchor)."""
    return tuple(f".*(?:{p}).*" for p in patterns)


# Helpers syzbot never names as the guilty function, whatever the report: a
# lock, an allocator, a string or copy routine, printk, a debug-object or
# refcount wrapper, a device/kobject teardown, a retpoline.  The bug is in
# their caller.  Matched anywhere in the name (see `contains`).
SKIP_HELPERS: tuple[str, ...] = contains(
    # sanitizer and report machinery
    "__sanitizer",
    "__asan",
    "kasan",
    "hwasan",
    "__msan",
    "kmsan",
    "kcsan_setup_watchpoint",
    "check_memory_region",
    "check_heap_object",
    "check_object",
    "read_word_at_a_time",
    r"(?:read|write)_once_.*nocheck",
    "print_address_description",
    "panic",
    "invalid_op",
    "report_bug",
    "fixup_bug",
    "print_report",
    "print_usage_bug",
    "do_error",
    "_trap$",
    "do_trap",
    "show_stack",
    "dump_stack",
    "walk_stack",
    "dump_backtrace",
    "warn_slowpath",
    "warn_alloc",
    "warn_bogus",
    "__warn",
    "print_tainted",
    "^get_taint$",
    "__fortify_report",
    "stack_trace_consume_entry",
    "arch_stack_walk",
    "stack_trace_save",
    "__phys_addr",
    "program_check_exception",
    "program_check_common",
    "assertfail",
    # allocators
    "alloc_page",
    "k?v?(?:m|z|c)alloc",
    "krealloc",
    "kmem_cache",
    "allocate_slab",
    "__alloc_frozen_pages",
    "folio_(?:alloc|unlock)",
    "filemap_alloc_folio",
    "__filemap_get_folio",
    "find_or_create_page",
    "do_read_cache_folio",
    "read_cache_page",
    "pagecache_get_page",
    "grab_cache_page_write_begin",
    "slab_",
    "^kv?free$",
    "kfree_skb",
    "memdup",
    "ida_free",
    # debug objects, refcounts, timers and work items
    "debug_object",
    "timer_is_static_object",
    "work_is_static_object",
    "^refcount_",
    "^kref_",
    "ref_tracker",
    "del_timer",
    "lock_timer_base",
    "__timer_delete_sync",
    "sk_stop_timer_sync",
    "__mod_timer",
    "flush_work",
    "__cancel_work_timer",
    "cancel_work_sync",
    "try_to_grab_pending",
    "flush_workqueue",
    "drain_workqueue",
    "destroy_workqueue",
    "queue_work",
    "insert_work",
    "__queue_delayed_work",
    "queue_delayed_work_on",
    "kthread_stop",
    "cleanup_srcu_struct",
    # locking, lockdep and atomics
    "__might_fault",
    "might_fault",
    "might_sleep",
    "__might_resched",
    "print_unlock",
    "imbalance_bug",
    "lockdep",
    "bh_enable",
    "bh_disable",
    "perf_trace",
    "lock_acquire",
    "lock_release",
    "lock_class",
    "mark_lock",
    "(?:reacquire|mark)_held_locks",
    "raw_spin_rq",
    "spin_lock",
    "spin_trylock",
    "spin_unlock",
    "read_lock",
    "read_trylock",
    "write_lock",
    "write_trylock",
    "read_unlock",
    "write_unlock",
    "^down$",
    "down_read",
    "down_write",
    "down_trylock",
    "up_read",
    "up_write",
    "^mutex_",
    "^__mutex_",
    "^rt_mutex_",
    "owner_on_cpu",
    "osq_lock",
    "osq_unlock",
    "seqprop_assert",
    "^(?:un)?lock_page",
    r"atomic(?:64)?_(?:dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)",
    "(?:set|clear|change|test)_bit",
    "__wake_up",
    "^complete$",
    "wait_for_completion",
    "finish_wait",
    "(?:trace|lockdep)_(?:hard|soft)irq",
    # string, memory, user copy and printk helpers
    "memcpy",
    "memcmp",
    "memset",
    "memchr",
    "memmove",
    "strcmp",
    "strncmp",
    "strcpy",
    "strlcpy",
    "strncpy",
    "strscpy",
    "strlen",
    "strstr",
    "strnstr",
    "strnlen",
    "strchr",
    "strdup",
    "strndup",
    "copy_to_user",
    "copy_from_user",
    "copy_to_iter",
    "copy_from_iter",
    "copy_page_to_iter",
    "copy_page_from_iter",
    "copy_folio_to_iter",
    "^copyin$",
    "^copyout$",
    "put_user",
    "get_user",
    "string",
    "pointer",
    "snprintf",
    "scnprintf",
    "kasprintf",
    "kvasprintf",
    "printk",
    "va_format",
    "dev_info",
    "dev_notice",
    "dev_warn",
    "dev_err",
    "dev_alert",
    "dev_crit",
    "dev_emerg",
    "hex_dump_to_buffer",
    "print_hex_dump",
    r"^crc\d+",
    "crc_itu_t",
    "_indirect_thunk_",
    # containers
    "list_add",
    "list_del",
    "list_replace",
    "list_move",
    "list_splice",
    "^rb_",
    "^__rb_",
    "^klist_",
    "xas_(?:start|load|find)",
    "rhashtable_lookup",
    "extract_(?:user|iter)_to_sg",
    # device, kobject and netdev teardown
    "kobject_",
    "add_uevent_var",
    "get_device_parent",
    "device_add",
    "device_del",
    "device_unregister",
    "device_destroy",
    "device_release",
    "devres_release_all",
    "hwrng_unregister",
    "i2c_del_adapter",
    "__unregister_client",
    "device_for_each_child",
    "rollback_registered",
    "unregister_netdev",
    "sysfs_remove",
    "device_remove_file",
    "tty_unregister_device",
    "^put_device$",
    "dummy_urb_enqueue",
    "usb_kill_urb",
    "usb_kill_anchored_urbs",
    "usb_control_msg",
    "usb_hcd_submit_urb",
    "usb_submit_urb",
    # port I/O, inodes, dentries, the page cache
    "readb$",
    "readw$",
    "readl$",
    "readq$",
    "writeb$",
    "writew$",
    "writel$",
    "writeq$",
    "logic_in",
    "logic_out",
    "^iput$",
    "^iput_final$",
    "^ihold$",
    "drop_nlink",
    "fast_dput",
    "dput",
    "mark_buffer_dirty",
    "find_lock_entries",
    "truncate_inode_pages_range",
    # arm64's translation-fault path
    "do_(?:kernel|translation)_fault",
    "do_mem_abort",
    "el1_abort",
    "el1h_64_sync",
)

# Syscall wrappers: a frame is named without them ("__x64_sys_ioctl" ->
# "sys_ioctl"), the shortest of the single strips, so that x86, arm64 and
# compat entries give one title; the unstripped name is an alternative title.
STRIP_PREFIXES: tuple[str, ...] = (
    "SYSC_",
    "SyS_",
    "sys_",
    "__x64_",
    "__ia32_",
    "__arm64_",
    "____sys_",
    "___sys_",
    "__sys_",
    "__se_",
    "__se_sys_",
    "__do_sys_",
    "compat_SYSC_",
    "compat_SyS_",
    "ksys_",
)

# Pick.STALL: frames that dispatch work (syscall entry, workqueues, softirqs,
# timers, kthreads, the file and socket operations that fan out to drivers).
# The guilty frame of a stall is the one just above the first of them.
STALL_ANCHORS: tuple[str, ...] = (
    "process_one_work",
    "do_syscall_",
    "do_fast_syscall_",
    "sysenter_dispatch",
    "tracesys_phase2",
    "el0_svc_handler",
    "invoke_syscall",
    "ret_fast_syscall",
    "netif_receive_skb",
    "do_softirq",
    "call_timer_fn",
    "_run_timers",
    "run_timer_softirq",
    "hrtimer_run",
    "run_ksoftirqd",
    "smpboot_thread_fn",
    "^kthread$",
    "start_secondary",
    "cpu_startup_entry",
    "ret_from_fork",
    "vfs_write",
    "vfs_read",
    "vfs_iter_read",
    "vfs_iter_write",
    "do_iter_read",
    "do_iter_write",
    "call_read_iter",
    "call_write_iter",
    "new_sync_read",
    "new_sync_write",
    "vfs_ioctl",
    "ksys_ioctl",
    "compat_ioctl",
    "compat_sys_ioctl",
    "blkdev_driver_ioctl",
    "blkdev_ioctl",
    "do_iter_readv_writev",
    "^call_mmap",
    "mmap_region",
    "do_mmap",
    "do_dentry_open",
    "vfs_open",
    "^sock_sendmsg",
    "^sock_recvmsg",
    "^sock_release",
    "^__sock_release",
    "^setsockopt$",
    "kernel_setsockopt",
    "sock_common_setsockopt",
    "^listen$",
    "kernel_listen",
    "sk_common_release",
    "^sock_mmap",
    "^accept$",
    "kernel_accept",
    "^sock_do_ioctl",
    "^sock_ioctl",
    "^compat_sock_ioctl",
    "^nfnetlink_rcv_msg",
    "^rtnetlink_rcv_msg",
    "^netlink_dump",
    "^(?:sys_)?(?:socketpair|connect|ioctl)",
    "__do_fault",
    "do_page_fault",
    "^page_fault$",
    "__fput",
    "task_work_run",
    "exit_to_usermode",
    "smp_call_function",
    "tasklet_action",
    "tasklet_hi_action",
)
# The interrupt entry a stall report's stack is read after (what ran before
# it is the timer interrupt that noticed the stall).
STALL_INTERRUPT = r".*(?:apic_timer_interrupt|el1h_64_irq).*"

# Pick.HANG: hangs behind these are one bug each, wherever they wait.
HANG_BUCKETS: tuple[tuple[str, str], ...] = (
    ("rtnl_lock", "rtnl_lock"),
    ("synchronize_rcu", "synchronize_rcu"),
    ("synchronize_srcu", "synchronize_rcu"),
    ("synchronize_net", "synchronize_rcu"),
    ("synchronize_sched", "synchronize_rcu"),
)
HANG_SKIP: tuple[str, ...] = contains(
    "sched",
    "_lock",
    "_slowlock",
    "down",
    "rwsem",
    "completion",
    "kthread",
    "wait",
    "synchronize",
    "context_switch",
    "__switch_to",
    "cancel_delayed_work",
    "rcu_barrier",
)


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
    alt:           alternative title templates syzbot keeps for the same bug
                   ("bad-access in {FRAME}", "stall in {FRAME}").
    pick:          how the guilty frame is chosen among the unskipped ones.
    corrupted:     the header only ever survives in a damaged report (a torn
                   two-part printk): always flagged corrupted.
    reboot:        the header is a boot banner: a report only when an earlier
                   boot banner is in the same log (the machine rebooted).
    ip:            the RIP/pc line is a candidate for the guilty frame; not in
                   lockdep's reports, where it is the context an interrupt
                   cut into, not the code that took the lock.
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
    alt: tuple[str, ...] = ()
    pick: Pick = Pick.FIRST
    corrupted: bool = False
    reboot: bool = False
    ip: bool = True


SANITIZER_END = r"={20,}\s*$"

# syzbot's alternative titles: one bug seen as different reports on different
# kernels or arches (a NULL dereference is a KASAN report, a GPF or a page fault)
BAD_ACCESS = ("bad-access in {FRAME}",)
STALL = ("stall in {FRAME}",)
HANG = ("hang in {FRAME}",)

# "WARNING: CPU: 0 PID: 1 at lib/x.c:12 func+0x1/0x2", its older and newer forms
WARN_AT = r"WARNING: (?:CPU: {NUM} PID: {NUM} at |\[.*?\] )?"
# lockdep's "BUG:" (before 4.x) or "WARNING:" (since) prefix, kept in the title
LEVEL = r"(?:\[ )?(?P<lvl>BUG|WARNING|INFO)"
# the lock line that names the culprit: "... (&m){+.+.}-{3:3}, at: func+0x1/0x2",
# 4.x with the address in front: "at: [<ffffffff81844c6b>] func+0x5b/0x70"
AT = r".*, at: (?:\[<[0-9a-f]+>\]\s*)?{FUNC}"
LOCKDEP_SKIP = SKIP_LOCKDEP + SKIP_SCHED

FORMATS: tuple[Format, ...] = (
    # -- sanitizers (debug kernels) -------------------------------------------
    Format(
        header=r"BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in {FUNC}",
        title="KASAN: invalid-free in {FRAME}",
        type=ReportType.KASAN,
        skip=SKIP_SANITIZER + contains("slab_", "kfree", "vunmap", "vfree"),
        end=SANITIZER_END,
        alt=("invalid-free in {FRAME}",),
    ),
    Format(
        header=r"BUG: KASAN: (?P<kind>[\w-]+)(?: in {FUNC})?",
        title="KASAN: {kind} {access} in {FRAME}",
        type=ReportType.KASAN,
        skip=SKIP_SANITIZER + contains("kernel_fault", "tag_check", "mem_abort", "^el1_", "^el1h_"),
        end=SANITIZER_END,
        detail=r"(?P<access>Read|Write) (?:of size|at addr) ",
        alt=BAD_ACCESS,
    ),
    Format(
        header=r"BUG: KFENCE: (?P<kind>[\w -]+?) in {FUNC}",
        title="KFENCE: {kind} in {FRAME}",
        type=ReportType.KFENCE,
        skip=SKIP_SANITIZER,
        end=SANITIZER_END,
        alt=BAD_ACCESS,
    ),
    Format(
        header=r"BUG: KMSAN: (?P<kind>[\w-]+) in {FUNC}",
        title="KMSAN: {kind} in {FRAME}",
        type=ReportType.KMSAN,
        skip=SKIP_SANITIZER,
        end=SANITIZER_END,
        alt=BAD_ACCESS,
    ),
    Format(
        header=r"UBSAN: array-index-out-of-bounds in {FILE}",
        title="UBSAN: array-index-out-of-bounds in {FRAME}",
        type=ReportType.UBSAN,
        skip=SKIP_SANITIZER + contains("ubsan", "overflow"),
        end=SANITIZER_END,
        alt=BAD_ACCESS,
    ),
    Format(
        header=r"UBSAN: Undefined behaviour in {FILE}",
        title="UBSAN: undefined-behaviour in {FRAME}",
        type=ReportType.UBSAN,
        skip=SKIP_SANITIZER + contains("ubsan", "overflow"),
        end=SANITIZER_END,
    ),
    Format(
        header=r"UBSAN: (?P<kind>[\w-]+) in {FILE}",
        title="UBSAN: {kind} in {FRAME}",
        type=ReportType.UBSAN,
        skip=SKIP_SANITIZER + contains("ubsan", "overflow"),
        end=SANITIZER_END,
    ),
    # kmemleak: "unreferenced object 0x... (size 64):", its allocation
    # backtrace; syzkaller prints "BUG: memory leak" in front of it
    Format(
        header=r"(?:BUG: memory leak|unreferenced object {ADDR} \(size {NUM}\):)",
        title="memory leak in {FRAME}",
        type=ReportType.LEAK,
        skip=contains(
            "kmemleak",
            "mmap",
            "kmem",
            "slab",
            "alloc",
            "create_object",
            "idr_get",
            "list_lru_init",
            "kasprintf",
            "kvasprintf",
            "pcpu_create",
            "strdup",
            "strndup",
            "memdup",
        ),
        chained=True,
        stack_start=r"\s*backtrace(?: \(crc [0-9a-f]+\))?:",
    ),
    # -- lockdep (debug kernels) --------------------------------------------
    # the culprit: the "at:" of the lock being taken, of the lock held, then the stack
    Format(
        header=r"(?:\[ )?(?:WARNING|INFO): possible "
        r"(?:circular locking|recursive locking|irq lock inversion)",
        title="possible deadlock in {FRAME}",
        type=ReportType.LOCKDEP,
        ip=False,
        skip=LOCKDEP_SKIP + contains("process_one_work", "flush_workqueue", "drain_workqueue"),
        stack_start=r"stack backtrace:",
        detail=AT,
    ),
    Format(
        header=r"(?:\[ )?(?:WARNING|INFO): (?:\w+-safe -> \w+-unsafe lock order detected)",
        title="possible deadlock in {FRAME}",
        type=ReportType.LOCKDEP,
        ip=False,
        skip=LOCKDEP_SKIP,
        stack_start=r"stack backtrace:",
    ),
    Format(
        header=r"(?:\[ )?(?:WARNING|INFO): inconsistent lock state",
        title="inconsistent lock state in {FRAME}",
        type=ReportType.LOCKDEP,
        ip=False,
        skip=LOCKDEP_SKIP,
        stack_start=r"stack backtrace:",
    ),
    Format(
        header=LEVEL + r": suspicious RCU usage",
        title="{lvl}: suspicious RCU usage in {FRAME}",
        type=ReportType.LOCKDEP,
        ip=False,
        skip=LOCKDEP_SKIP + contains("rcu", "kmem", "slab"),
        stack_start=r"stack backtrace:",
    ),
    Format(
        header=LEVEL + r": bad unlock balance detected!",
        title="{lvl}: bad unlock balance in {FRAME}",
        type=ReportType.LOCKDEP,
        ip=False,
        skip=LOCKDEP_SKIP,
        stack_start=r"stack backtrace:",
    ),
    Format(
        header=LEVEL + r": held lock freed!",
        title="{lvl}: held lock freed in {FRAME}",
        type=ReportType.LOCKDEP,
        ip=False,
        skip=LOCKDEP_SKIP,
        stack_start=r"stack backtrace:",
        detail=AT,
    ),
    Format(
        header=LEVEL + r": .*still has locks held!",
        title="{lvl}: still has locks held in {FRAME}",
        type=ReportType.LOCKDEP,
        ip=False,
        skip=LOCKDEP_SKIP,
        stack_start=r"stack backtrace:",
        detail=AT,
    ),
    Format(
        header=LEVEL + r": lock held when returning to user space!",
        title="{lvl}: lock held when returning to user space in {FRAME}",
        type=ReportType.LOCKDEP,
        ip=False,
        skip=LOCKDEP_SKIP,
        expects_trace=False,
        detail=AT,
    ),
    Format(
        header=r"WARNING: Nested lock was not taken",
        title="WARNING: nested lock was not taken in {FRAME}",
        type=ReportType.LOCKDEP,
        ip=False,
        skip=LOCKDEP_SKIP,
        stack_start=r"stack backtrace:",
    ),
    Format(
        header=r"(?:\[ )?INFO: trying to register non-static key",
        title="INFO: trying to register non-static key in {FRAME}",
        type=ReportType.LOCKDEP,
        ip=False,
        skip=LOCKDEP_SKIP + contains("stack", "lock", "IRQ"),
    ),
    # x86 and arm64 print it differently; syzbot titles both as the x86 WARNING
    Format(
        header=r"(?:\[ )?BUG: Invalid wait context",
        title="WARNING: locking bug in {FRAME}",
        type=ReportType.LOCKDEP,
        ip=False,
        skip=LOCKDEP_SKIP + contains("lock_sock", "release_sock"),
        stack_start=r"stack backtrace:",
    ),
    # -- data-structure checks that precede a WARNING or a BUG ---------------
    Format(
        header=r"refcount_t: (?P<what>[^;.]+)",
        title="WARNING: refcount bug in {FRAME}",
        type=ReportType.WARNING,
        skip=SKIP_REFCOUNT + contains("refcount", "kobject_"),
    ),
    Format(
        header=r"list_(?:add|del) corruption",
        title="BUG: corrupted list in {FRAME}",
        type=ReportType.BUG,
        skip=SKIP_LIST,
        alt=BAD_ACCESS,
    ),
    # -- WARN() of a well-known checker: syzbot's specialised titles ----------
    Format(
        header=WARN_AT + r"lib/debugobjects\.c:\d+ ",
        title="WARNING: ODEBUG bug in {FRAME}",
        type=ReportType.WARNING,
        chained=True,
        skip=contains(
            "debug_",
            "rcu",
            "hrtimer_",
            "timer_",
            "work_",
            "percpu_",
            "vunmap",
            "vfree",
            "__free_",
            "debug_check",
            "kobject_",
        ),
    ),
    Format(
        header=WARN_AT + r"mm/usercopy\.c:\d+ ",
        title="WARNING: bad usercopy in {FRAME}",
        type=ReportType.WARNING,
        chained=True,
        skip=contains("usercopy", "__check"),
    ),
    Format(
        header=WARN_AT + r"lib/kobject\.c:\d+ ",
        title="WARNING: kobject bug in {FRAME}",
        type=ReportType.WARNING,
        chained=True,
        skip=contains("kobject_"),
    ),
    Format(
        header=WARN_AT + r"fs/proc/generic\.c:\d+ ",
        title="WARNING: proc registration bug in {FRAME}",
        type=ReportType.WARNING,
        chained=True,
        skip=contains("proc_"),
    ),
    Format(
        header=WARN_AT + r"lib/refcount\.c:\d+ ",
        title="WARNING: refcount bug in {FRAME}",
        type=ReportType.WARNING,
        chained=True,
        skip=contains("refcount", "kobject_"),
    ),
    Format(
        header=WARN_AT + r"kernel/locking/lockdep\.c:\d+ .*lock_",
        title="WARNING: locking bug in {FRAME}",
        type=ReportType.WARNING,
        chained=True,
        skip=contains("lock_sock", "release_sock"),
    ),
    Format(
        header=WARN_AT + r"mm/\S*\.c:\d+ \S*?k?.?malloc",
        title="WARNING: kmalloc bug in {FRAME}",
        type=ReportType.WARNING,
        chained=True,
        skip=contains("kmalloc", "krealloc", "slab", "kmem"),
    ),
    Format(
        header=WARN_AT + r"mm/vmalloc\.c:\d+ __vmalloc_node",
        title="WARNING: zero-size vmalloc in {FRAME}",
        type=ReportType.WARNING,
        chained=True,
    ),
    Format(
        header=r"WARNING: kernel stack regs at {ADDR} in \S* has bad '(?P<reg>[^']+)' value",
        title="WARNING: kernel stack regs has bad '{reg}' value",
        type=ReportType.WARNING,
        expects_trace=False,
    ),
    Format(
        header=r"WARNING: kernel stack frame pointer at {ADDR} in \S* has bad value",
        title="WARNING: kernel stack frame pointer has bad value",
        type=ReportType.WARNING,
        expects_trace=False,
    ),
    # -- WARN(), BUG(), faults ------------------------------------------------
    Format(
        header=r"WARNING: (?:CPU: {NUM} PID: {NUM} at {FILE} |{FILE} at |at {FILE} |"
        r"\[.*?\] {FILE} at ){FUNC}",
        title="WARNING in {FRAME}",
        type=ReportType.WARNING,
        chained=True,
    ),
    Format(
        header=r"(?:Oops: )?general protection fault",
        title="general protection fault in {FRAME}",
        type=ReportType.GPF,
        alt=BAD_ACCESS,
    ),
    # 4.x: "BUG: unable to handle kernel NULL pointer dereference at 0000...";
    # 5.x and later: "BUG: kernel NULL pointer dereference, address: 0000..."
    Format(
        header=r"BUG: (?:unable to handle )?kernel NULL pointer dereference",
        title="BUG: unable to handle kernel NULL pointer dereference in {FRAME}",
        type=ReportType.PAGE_FAULT,
        alt=BAD_ACCESS,
    ),
    Format(
        header=r"BUG: unable to handle (?:page fault for address|kernel paging request)",
        title="BUG: unable to handle kernel paging request in {FRAME}",
        type=ReportType.PAGE_FAULT,
        alt=BAD_ACCESS,
    ),
    # the first half of a two-part header whose second half was lost
    Format(
        header=r"BUG: unable to handle kernel\s*$",
        title="BUG: unable to handle kernel",
        type=ReportType.PAGE_FAULT,
        corrupted=True,
    ),
    Format(
        header=r"kernel BUG at mm/usercopy\.c:\d+!",
        title="BUG: bad usercopy in {FRAME}",
        type=ReportType.BUG,
        chained=True,
        skip=contains("usercopy", "__check"),
    ),
    Format(
        header=r"kernel BUG at lib/list_debug\.c:\d+!",
        title="BUG: corrupted list in {FRAME}",
        type=ReportType.BUG,
        chained=True,
        skip=SKIP_LIST,
        alt=BAD_ACCESS,
    ),
    Format(
        header=r"kernel BUG at {FILE}!",
        title="kernel BUG in {FRAME}",
        type=ReportType.BUG,
        chained=True,
        skip=contains("^skb_"),
    ),
    # 5.8-5.9 misspelt the die() line of a division by zero
    Format(
        header=r"divide_error: [0-9a-f]{4} \[#{NUM}\]",
        title="divide error in {FRAME}",
        type=ReportType.OOPS,
    ),
    Format(
        header=r"stack segment: [0-9a-f]{4} \[#{NUM}\]",
        title="stack segment fault in {FRAME}",
        type=ReportType.OOPS,
    ),
    Format(
        header=r"PANIC: double fault",
        title="PANIC: double fault in {FRAME}",
        type=ReportType.OOPS,
    ),
    # -- lockups, stalls, hangs ----------------------------------------------
    Format(
        header=r"(?:NMI )?(?:watchdog: )?BUG: soft lockup - "
        r"CPU#{NUM} stuck for {NUM}s! \[{COMM}:{NUM}\]",
        title="BUG: soft lockup in {FRAME}",
        type=ReportType.SOFT_LOCKUP,
        skip=SKIP_TIMER_IRQ,
        alt=STALL,
        pick=Pick.STALL,
    ),
    Format(
        header=r"(?:NMI )?watchdog: (?:CPU{NUM}: )?Watchdog detected hard LOCKUP on cpu {NUM}",
        title="BUG: hard lockup in {FRAME}",
        type=ReportType.HARD_LOCKUP,
        skip=SKIP_TIMER_IRQ,
        alt=STALL,
        pick=Pick.STALL,
    ),
    Format(
        header=r"(?:rcu: )?INFO: rcu_\w+ "
        r"(?:self-detected stall|detected (?:expedited )?stalls?)",
        title="INFO: rcu detected stall in {FRAME}",
        type=ReportType.RCU_STALL,
        skip=SKIP_TIMER_IRQ,
        stack_start=r"(?:CPU: {NUM} |NMI backtrace for cpu {NUM})",
        alt=STALL,
        pick=Pick.STALL,
    ),
    Format(
        header=r"INFO: task {COMM}:{NUM} blocked (?:in I/O wait )?for more than {NUM} seconds\.",
        title="INFO: task hung in {FRAME}",
        type=ReportType.HUNG_TASK,
        alt=HANG,
        pick=Pick.HANG,
    ),
    Format(
        header=r"INFO: task {COMM}:{NUM} can't die for more than {NUM} seconds\.",
        title="INFO: task can't die in {FRAME}",
        type=ReportType.HUNG_TASK,
        skip=contains("schedule"),
        alt=HANG,
    ),
    Format(
        header=r"unregister_netdevice: waiting for (?P<dev>\S+) to become free",
        title="unregister_netdevice: waiting for DEV to become free",
        type=ReportType.HUNG_TASK,
        expects_trace=False,
        end=r"unregister_netdevice: waiting for",
    ),
    Format(
        header=r"BUG: workqueue lockup",
        title="BUG: workqueue lockup",
        type=ReportType.HUNG_TASK,
        expects_trace=False,
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
    Format(
        header=r"BUG: (?P<lock>spinlock|rwlock) (?P<what>lockup suspected|already unlocked|"
        r"recursion|cpu recursion|bad magic|wrong owner|wrong CPU|trylock failure on UP)",
        title="BUG: {lock} {what} in {FRAME}",
        type=ReportType.BUG,
        skip=contains("spin_", "_lock", "_unlock"),
    ),
    Format(
        header=r"BUG: using (?P<fn>\w+)\(\) in preemptible",
        title="BUG: using {fn}() in preemptible code in {FRAME}",
        type=ReportType.BUG,
        skip=contains("preempt", "debug_", "processor_id", "this_cpu"),
    ),
    Format(
        header=r"BUG: Bad page (?P<what>state|cache)",
        title="BUG: Bad page {what} in {FRAME}",
        type=ReportType.BUG,
        stack_start=r".*page last allocated",
        skip=contains(
            "(?:free|put|get|update|release)_page",
            "free_unref",
            "^_*folio",
            "truncate_inode_pages",
            "page_frag_free",
            "alloc",
            "vmap",
            "page_owner",
        ),
    ),
    Format(
        header=r"BUG: .*stack guard page was hit at",
        title="BUG: stack guard page was hit in {FRAME}",
        type=ReportType.BUG,
        alt=("stack-overflow in {FRAME}",),
        pick=Pick.STALL,
    ),
    Format(
        header=r"BUG: workqueue leaked lock or atomic",
        title="BUG: workqueue leaked lock or atomic in {FRAME}",
        type=ReportType.BUG,
        expects_trace=False,
        detail=r"\s*last function: (?P<func>\w+)",
    ),
    Format(
        header=r"BUG: (?P<what>Bad rss-counter state|non-zero nr_p[tm][ed]s on freeing mm)",
        title="BUG: {what}",
        type=ReportType.BUG,
        expects_trace=False,
        end=r"BUG: ",
    ),
    # the block device and filesystem in the message would split one bug in many
    Format(
        header=r"BUG: Dentry .* still in use \({NUM}\) \[(?P<op>unmount) of",
        title="BUG: Dentry still in use in {op}",
        type=ReportType.BUG,
        expects_trace=False,
        alt=("BUG: Dentry still in use [{op} of {fs}]",),
        detail=r"still in use \({NUM}\) \[unmount of (?P<fs>[^\]]+)\]",
    ),
    Format(
        header=r"BUG \S+ \(.*\): Object already free",
        title="BUG: Object already free",
        type=ReportType.BUG,
        expects_trace=False,
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
    # -- arm (32-bit) faults ---------------------------------------------------
    Format(
        header=r"Unhandled fault:",
        title="Unhandled fault in {FRAME}",
        type=ReportType.PAGE_FAULT,
        alt=BAD_ACCESS,
    ),
    Format(
        header=r"Alignment trap:",
        title="Alignment trap in {FRAME}",
        type=ReportType.PAGE_FAULT,
    ),
    # -- the end ----------------------------------------------------------------
    Format(
        header=r"Kernel panic - not syncing: (?P<msg>.*)",
        title="Kernel panic: {msg}",
        type=ReportType.PANIC,
        expects_trace=False,
        alt=("kernel panic: {msg}",),  # syzbot's spelling
        end=r"(?:---\[ end Kernel panic|Kernel Offset:|Rebooting in {NUM} seconds)",
    ),
    # a second boot banner in one console log: the machine rebooted without
    # a report before it (a triple fault, a watchdog reset, a reboot call)
    Format(
        header=r"Linux version {NUM}\.",
        title="unexpected kernel reboot",
        type=ReportType.REBOOT,
        expects_trace=False,
        end=r"Linux version",
        reboot=True,
    ),
    Format(
        header=r"VFS: Close: file count is 0",
        title="VFS: Close: file count is zero (use-after-free)",
        type=ReportType.BUG,
        expects_trace=False,
        end=r"VFS: ",
    ),
    Format(
        header=r"VFS: Busy inodes after unmount",
        title="VFS: Busy inodes after unmount (use-after-free)",
        type=ReportType.BUG,
        expects_trace=False,
        end=r"VFS: ",
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
    # a symbolized trace's inlined callers: "fixup_bug arch/x86/kernel/traps.c:178 [inline]"
    r"\s*[\w.]+ \S+:\d+ \[inline\]",
    r"\s*(?:R[A-Z0-9]{1,2}|[CDEFGS]S|CR\d|DR\d|PKRU|Code|EFLAGS|ORIG_RAX): ",
    r"\s*\[<[0-9a-f]+>\] 0x[0-9a-f]+",
    r"\s*0x[0-9a-f]+\s*$",
)

# Symbolized instruction pointer of the faulting context (user-mode RIPs
# have no symbol and never match).
RIP = r"(?:RIP: [0-9a-f]{4}:|RIP: |E?IP: |pc : |PC is at )(?:\[<[0-9a-f]+>\]\s*)*{FUNC}"

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

    # a reboot row's header is every boot's banner: only the parser, reading a whole log,
    # can tell a second boot from the first, so it is no hint
    parts = [re.sub(r"\(\?P<\w+>", "(?:", expand(f.header)) for f in FORMATS if not f.reboot]
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
        title="BUG: unable to handle kernel NULL pointer dereference in {FRAME}",
        type=ReportType.PAGE_FAULT,
        skip=SKIP_ARM64,
        preamble=20,
        alt=BAD_ACCESS,
    ),
    Format(
        header=r"Unable to handle kernel paging request at virtual address",
        title="BUG: unable to handle kernel paging request in {FRAME}",
        type=ReportType.PAGE_FAULT,
        skip=SKIP_ARM64,
        preamble=20,
        alt=BAD_ACCESS,
    ),
    # write to read-only memory, execute from non-executable memory, access to
    # user memory outside uaccess routines, ...
    Format(
        header=r"Unable to handle kernel (?P<what>[a-z][\w -]*?)(?: at virtual address|$)",
        title="BUG: unable to handle kernel {what} in {FRAME}",
        type=ReportType.PAGE_FAULT,
        skip=SKIP_ARM64,
        preamble=20,
        alt=BAD_ACCESS,
    ),
    # die(): "Internal error: Oops: 0000000096000006 [#1] SMP", "Internal error:
    # Oops - BUG: 00000000f2000800 [#1] SMP", "Internal error: undefined
    # instruction: ...". Chained after the rows above and "kernel BUG at".
    Format(
        header=r"Internal error: (?P<kind>[A-Za-z][A-Za-z -]*?): [0-9a-f]+ \[#{NUM}\]",
        title="Internal error in {FRAME}",
        type=ReportType.OOPS,
        skip=SKIP_ARM64,
        chained=True,
        alt=BAD_ACCESS,
    ),
)

FORMATS = FORMATS + ARM64_FORMATS

# arm64's stack dumper prints itself ("dump_backtrace", "show_stack", then
# "dump_stack_lvl"): report machinery for every row, as dump_stack is.
SKIP_COMMON = (*SKIP_COMMON, r"dump_backtrace", r"arch_stack_walk", r"kunwind_\w+")
SKIP_COMMON = SKIP_COMMON + SKIP_HELPERS

# arm64's register dump, between "pc :" and "Call trace:"
ARM64_BODY: tuple[str, ...] = (
    r"(?:pstate|pc|lr|sp|x\d+|pmr_save|Mem abort info|Data abort info|"
    r"(?:user|swapper) pgtable)\s*:",
)
BODY = BODY + ARM64_BODY
