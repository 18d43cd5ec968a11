"""``python -m harness.oops LOG...``: the reports the parser finds in each console log."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from harness.oops.fold import fold, times_seen
from harness.oops.parse import KernelReport, parse


def _describe(report: KernelReport) -> str:
    return (
        f"{report.type.name:12} {report.title}{times_seen(report)}\n"
        f"{'':12} lines {report.first_line}-{report.last_line} guilty={report.guilty_frame}"
        f" rip={report.rip} corrupted={report.corrupted}"
    )


def main(argv: Sequence[str]) -> int:
    """Print the reports found in each console log named on the command line."""
    for path in argv:
        with open(path, encoding="utf-8", errors="replace") as f:
            reports = fold(parse(f.read()))
        print(f"{path}: {len(reports)} report(s)")
        for report in reports:
            print(_describe(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
