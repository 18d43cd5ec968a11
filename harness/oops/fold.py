"""One report per bug: a report printed again and again becomes one, with a count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from harness.oops.formats import ReportType
from harness.oops.parse import KernelReport


def fold(reports: Sequence[KernelReport]) -> list[KernelReport]:
    """One report per bug: repeats of a title become a count on its first report.

    A hung task re-reported every interval, a WARN in a loop, RCU stalls and
    soft lockups that keep firing print the same report again and again; a
    reader wants the bug once, how often, and from when to when (printk
    timestamps).  The first report's text stays (the earliest is the one
    closest to the cause); order is by first appearance.
    """
    folded: dict[tuple[ReportType, str], KernelReport] = {}
    for report in reports:
        key = (report.type, report.title)
        first = folded.get(key)
        if first is None:
            folded[key] = report
            continue
        last = report.last_time if report.last_time is not None else report.time
        folded[key] = replace(
            first,
            count=first.count + report.count,
            last_time=last if last is not None else first.last_time,
            last_line=report.last_line,
        )
    return list(folded.values())


def times_seen(report: KernelReport) -> str:
    """'' for a report seen once, else ' (x12, 41.2s to 521.9s)' for titles and summaries."""
    if report.count <= 1:
        return ""
    if report.time is None or report.last_time is None:
        return f" (x{report.count})"
    return f" (x{report.count}, {report.time:.1f}s to {report.last_time:.1f}s)"
