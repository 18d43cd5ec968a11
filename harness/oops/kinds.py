"""syzbot's crash type of a report, read off its title as syzbot reads it.

The type says what kind of bug a title is (a use-after-free write, a
lockdep report, a hang...), and the category groups types the way
maintainers triage them (memory safety, locking, hang, warning, ...).  Both
follow syzkaller's pkg/report/crash: the first title prefix that matches
gives the type, so a new format row needs no entry here when its title
starts like syzbot's.
"""

from __future__ import annotations

import enum


class Category(enum.Enum):
    """How a maintainer triages a crash type."""

    MEMORY_SAFETY = "memory-safety"
    LOCKING = "locking"
    HANG = "hang"
    WARNING = "warning"
    LEAK = "leak"
    DATA_RACE = "data-race"
    UNINIT = "uninit"
    DOS = "denial-of-service"
    REBOOT = "reboot"
    UNKNOWN = "unknown"


class CrashType(enum.Enum):
    """syzbot's crash types (the value is syzbot's own spelling)."""

    UNKNOWN = "UNKNOWN"
    ATOMIC_SLEEP = "ATOMIC_SLEEP"
    BUG = "BUG"
    DOS = "DoS"
    HANG = "HANG"
    KASAN_INVALID_FREE = "KASAN-INVALID-FREE"
    KASAN_NULL_DEREF_READ = "KASAN-NULL-POINTER-DEREFERENCE-READ"
    KASAN_NULL_DEREF_WRITE = "KASAN-NULL-POINTER-DEREFERENCE-WRITE"
    KASAN_READ = "KASAN-READ"
    KASAN_UNKNOWN = "KASAN-UNKNOWN"
    KASAN_UAF_READ = "KASAN-USE-AFTER-FREE-READ"
    KASAN_UAF_WRITE = "KASAN-USE-AFTER-FREE-WRITE"
    KASAN_WRITE = "KASAN-WRITE"
    KCSAN_ASSERT = "KCSAN-ASSERT"
    KCSAN_DATARACE = "KCSAN-DATARACE"
    KCSAN_UNKNOWN = "KCSAN-UNKNOWN"
    KFENCE_INVALID_FREE = "KFENCE-INVALID-FREE"
    KFENCE_CORRUPTION = "KFENCE-MEMORY-CORRUPTION"
    KFENCE_READ = "KFENCE-READ"
    KFENCE_UNKNOWN = "KFENCE-UNKNOWN"
    KFENCE_UAF_READ = "KFENCE-USE-AFTER-FREE-READ"
    KFENCE_UAF_WRITE = "KFENCE-USE-AFTER-FREE-WRITE"
    KFENCE_WRITE = "KFENCE-WRITE"
    KMSAN_INFO_LEAK = "KMSAN-INFO-LEAK"
    KMSAN_UNINIT = "KMSAN-UNINIT-VALUE"
    KMSAN_UNKNOWN = "KMSAN-UNKNOWN"
    KMSAN_UAF_READ = "KMSAN-USE-AFTER-FREE-READ"
    LOCKDEP = "LOCKDEP"
    LEAK = "LEAK"
    MEMORY_SAFETY_BUG = "MEMORY_SAFETY_BUG"
    MEMORY_SAFETY_UBSAN = "MEMORY_SAFETY_UBSAN"
    NULL_DEREF_BUG = "NULL-POINTER-DEREFERENCE"
    REFCOUNT_WARNING = "REFCOUNT_WARNING"
    UBSAN = "UBSAN"
    WARNING = "WARNING"
    REBOOT = "REBOOT"

    @property
    def category(self) -> Category:
        """The triage group of this type."""
        name = self.name
        if name.startswith(("KASAN", "KFENCE", "MEMORY_SAFETY", "NULL_DEREF")) or (
            self in (CrashType.REFCOUNT_WARNING, CrashType.KMSAN_UAF_READ)
        ):
            return Category.MEMORY_SAFETY
        if name.startswith("KCSAN"):
            return Category.DATA_RACE
        if name.startswith("KMSAN"):
            return Category.UNINIT
        return _CATEGORIES.get(self, Category.UNKNOWN)


_CATEGORIES = {
    CrashType.LOCKDEP: Category.LOCKING,
    CrashType.ATOMIC_SLEEP: Category.LOCKING,
    CrashType.HANG: Category.HANG,
    CrashType.WARNING: Category.WARNING,
    CrashType.LEAK: Category.LEAK,
    CrashType.BUG: Category.DOS,
    CrashType.DOS: Category.DOS,
    CrashType.UBSAN: Category.UNKNOWN,
    CrashType.REBOOT: Category.REBOOT,
}

T = CrashType
# (title prefixes, type): the first row with a prefix of the title wins.
TITLE_TYPES: tuple[tuple[tuple[str, ...], CrashType], ...] = (
    (("KFENCE: use-after-free write",), T.KFENCE_UAF_WRITE),
    (("KFENCE: use-after-free",), T.KFENCE_UAF_READ),
    (("KFENCE: invalid write", "KFENCE: out-of-bounds write"), T.KFENCE_WRITE),
    (("KFENCE: invalid read", "KFENCE: out-of-bounds"), T.KFENCE_READ),
    (("KFENCE: memory corruption",), T.KFENCE_CORRUPTION),
    (("KFENCE: invalid free",), T.KFENCE_INVALID_FREE),
    (("KMSAN: uninit-value",), T.KMSAN_UNINIT),
    (
        (
            "KMSAN: kernel-infoleak-after-free",
            "KMSAN: kernel-usb-infoleak-after-free",
            "KMSAN: use-after-free",
        ),
        T.KMSAN_UAF_READ,
    ),
    (("KMSAN: kernel-infoleak", "KMSAN: kernel-usb-infoleak"), T.KMSAN_INFO_LEAK),
    (("KASAN: null-ptr-deref Write",), T.KASAN_NULL_DEREF_WRITE),
    (("KASAN: null-ptr-deref Read",), T.KASAN_NULL_DEREF_READ),
    (("BUG: unable to handle kernel NULL pointer dereference in",), T.NULL_DEREF_BUG),
    (
        tuple(
            f"KASAN: {k} Write"
            for k in (
                "global-out-of-bounds",
                "out-of-bounds",
                "slab-out-of-bounds",
                "stack-out-of-bounds",
                "user-memory-access",
                "vmalloc-out-of-bounds",
                "wild-memory-access",
            )
        ),
        T.KASAN_WRITE,
    ),
    (
        (
            "KASAN: global-out-of-bounds Read",
            "KASAN: invalid-access Read",
            "KASAN: out-of-bounds Read",
            "KASAN: slab-out-of-bounds",
            "KASAN: stack-out-of-bounds",
            "KASAN: unknown-crash Read",
            "KASAN: user-memory-access Read",
            "KASAN: vmalloc-out-of-bounds Read",
            "KASAN: wild-memory-access",
        ),
        T.KASAN_READ,
    ),
    (("KASAN: double-free or invalid-free", "KASAN: invalid-free"), T.KASAN_INVALID_FREE),
    (("KASAN: slab-use-after-free Write", "KASAN: use-after-free Write"), T.KASAN_UAF_WRITE),
    (("KASAN: slab-use-after-free", "KASAN: use-after-free"), T.KASAN_UAF_READ),
    (
        ("BUG: corrupted list", "BUG: unable to handle kernel paging request"),
        T.MEMORY_SAFETY_BUG,
    ),
    (("WARNING: refcount bug",), T.REFCOUNT_WARNING),
    (("UBSAN: array-index-out-of-bounds",), T.MEMORY_SAFETY_UBSAN),
    (("KCSAN: data-race",), T.KCSAN_DATARACE),
    (("KCSAN: assert: race in",), T.KCSAN_ASSERT),
    (
        (
            "BUG: bad unlock balance in",
            "BUG: held lock freed in",
            "BUG: rwlock",
            "BUG: spinlock",
            "BUG: still has locks held in",
            "BUG: using",
            "WARNING: bad unlock balance in",
            "WARNING: held lock freed in",
            "WARNING: lock held",
            "WARNING: locking bug in",
            "WARNING: nested lock was not taken in",
            "WARNING: still has locks held in",
            "WARNING: suspicious RCU usage in",
            "inconsistent lock state in",
            "possible deadlock in",
            "BUG: lock held",
            "INFO: suspicious RCU usage in",
            "INFO: trying to register non-static key in",
        ),
        T.LOCKDEP,
    ),
    (
        (
            "BUG: scheduling while atomic in",
            "BUG: sleeping function called from invalid context in",
        ),
        T.ATOMIC_SLEEP,
    ),
    (("memory leak in",), T.LEAK),
    (("BUG: bad usercopy in", "kernel BUG"), T.BUG),
    (("WARNING in",), T.WARNING),
    (
        (
            "BUG: stack guard page was hit in",
            "WARNING: corrupted",
            "WARNING: kernel stack frame pointer has bad value",
            "WARNING: kernel stack regs has bad",
        ),
        T.UNKNOWN,
    ),
    (
        (
            "BUG: soft lockup in",
            "INFO: rcu detected stall in",
            "INFO: task can't die in",
            "INFO: task hung in",
            "BUG: hard lockup in",
            "BUG: workqueue lockup",
        ),
        T.HANG,
    ),
    (
        (
            "Alignment trap in",
            "BUG: Object already free",
            "Internal error in",
            "PANIC: double fault",
            "Unhandled fault in",
            "VFS: Busy inodes after unmount",
            "VFS: Close: file count is zero",
            "divide error in",
            "general protection fault in",
            "int3 in",
            "invalid opcode in",
            "kernel panic:",
            "Kernel panic:",
            "kernel stack overflow",
            "panic:",
            "stack segment fault in",
            "unregister_netdevice: waiting for DEV to become free",
        ),
        T.DOS,
    ),
    (("unexpected kernel reboot",), T.REBOOT),
    (("WARNING:",), T.WARNING),
    (("BUG:", "INFO:"), T.UNKNOWN),
    (("KASAN:",), T.KASAN_UNKNOWN),
    (("KFENCE:",), T.KFENCE_UNKNOWN),
    (("KMSAN:",), T.KMSAN_UNKNOWN),
    (("UBSAN:",), T.UBSAN),
    (("KCSAN:",), T.KCSAN_UNKNOWN),
)


def crash_type(title: str) -> CrashType:
    """syzbot's type of a report titled ``title`` (UNKNOWN if no prefix matches)."""
    for prefixes, kind in TITLE_TYPES:
        if title.startswith(prefixes):
            return kind
    return CrashType.UNKNOWN
