"""Measure the report parser against labelled console logs kept OUTSIDE the project.

    python tests/data/oops/capture/measure.py DIR [DIR...]

Each file of DIR is syzkaller's test format (pkg/report/testdata/linux/report
of a syzkaller checkout): "TITLE: ...", "ALT: ...", "TYPE: ...", "CORRUPTED: Y"
lines, a blank line, the console log; no TITLE means no report.  Prints, per
class of the expected title, how many logs the parser finds a report in and
how many it titles exactly as syzbot (first non-panic report), and how many
carry syzbot's type.  The logs measure the parser; they are never copied into
the repository (docs/kernel-reports.md has the figures).
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

from harness.oops import ReportType, parse

# class of an expected title: first pattern that matches
CLASSES: tuple[tuple[str, str], ...] = (
    ("KASAN", r"^KASAN:"),
    ("KFENCE/KMSAN/KCSAN", r"^(?:KFENCE|KMSAN|KCSAN):"),
    ("UBSAN", r"^UBSAN:"),
    (
        "lockdep",
        r"deadlock|lock state|unlock balance|held lock|locks held|lock held|RCU usage|"
        r"non-static key|locking bug|nested lock",
    ),
    ("atomic sleep", r"scheduling while atomic|sleeping function"),
    ("memory leak", r"^memory leak"),
    (
        "hang/stall",
        r"task hung|rcu detected stall|soft lockup|can't die|workqueue lockup|"
        r"hard lockup|unregister_netdevice",
    ),
    ("WARNING (checker)", r"^WARNING: (?:ODEBUG|kmalloc|refcount|bad usercopy|kobject|proc reg)"),
    ("WARNING", r"^WARNING"),
    ("page fault/GPF", r"unable to handle|general protection|Unhandled fault|Internal error"),
    ("kernel BUG", r"^kernel BUG|^BUG: (?:corrupted list|bad usercopy)"),
    ("reboot", r"unexpected kernel reboot"),
    ("panic", r"^kernel panic"),
    ("other", r""),
)


def read(path: Path) -> tuple[dict[str, list[str]], str]:
    raw = path.read_bytes().decode("utf-8", errors="replace")
    head, _, log = raw.partition("\n\n")
    keys: dict[str, list[str]] = defaultdict(list)
    for line in head.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            keys[key].append(value.strip())
    return keys, log


def classify(title: str) -> str:
    return next(name for name, pattern in CLASSES if re.search(pattern, title))


def main(dirs: list[str]) -> None:
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for path in sorted(p for d in dirs for p in Path(d).iterdir() if p.is_file()):
        keys, log = read(path)
        reports = [r for r in parse(log) if r.type is not ReportType.PANIC] or parse(log)
        want = keys.get("TITLE", [""])[0]
        row = rows[classify(want) if want else "no report"]
        row[0] += 1
        if not want:  # right when nothing is found
            for i in range(1, 5):
                row[i] += not reports
            continue
        if reports:
            row[1] += 1
            first = reports[0]
            row[2] += first.title == want
            row[3] += want in (first.title, *getattr(first, "alt_titles", ()))
            kind = getattr(first, "crash_type", None)
            row[4] += kind is not None and kind.value == keys.get("TYPE", ["UNKNOWN"])[0]
    total = [sum(r[i] for r in rows.values()) for i in range(5)]
    print(f"{'class':22} {'logs':>5} {'found':>6} {'title':>6} {'t|alt':>6} {'type':>5}")
    for name, r in sorted(rows.items(), key=lambda kv: -kv[1][0]):
        print(f"{name:22} {r[0]:5} {r[1]:6} {r[2]:6} {r[3]:6} {r[4]:5}")
    print(f"{'total':22} {total[0]:5} {total[1]:6} {total[2]:6} {total[3]:6} {total[4]:5}")


if __name__ == "__main__":
    main(sys.argv[1:])
