"""Kernel reports no test owns: printed at boot or between two tests' windows.

The console is one stream for a guest's whole life; every test owns the part
between its markers.  What lies between windows (a boot's warnings, a
report printed after a test's window closed) is attributed here, once, and
kept as :class:`~harness.results.records.OutsideReport` for the summary.  The
symbolizer is made here on the first report, when the kernel has debug info.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.kernels.base import KernelImage
from harness.oops import KernelReport, ReportType, fold, parse
from harness.oops.symbolize import Symbolizer, decode_reports
from harness.results.records import OutsideReport


@dataclass
class ReportReader:
    """A console text's reports: one per bug, symbolized when the kernel's debug info is at hand."""

    image: KernelImage | None = None
    _symbolizer: Symbolizer | None = None

    def reports_in(self, text: str) -> tuple[KernelReport, ...]:
        """The kernel reports of ``text``."""
        reports = fold(parse(text))
        if not reports or self.image is None or self.image.debug is None:
            return tuple(reports)
        if self._symbolizer is None:
            self._symbolizer = Symbolizer(self.image.debug)
        return decode_reports(reports, self._symbolizer)

    def symbolize_with(self, image: KernelImage | None) -> None:
        """From now on reports are symbolized from ``image``'s debug info (if it has any)."""
        self.image, self._symbolizer = image, None


@dataclass
class OutsideReports:
    """Attribution of console reports to no test, boot by boot."""

    kernel: str
    reader: ReportReader
    log: Callable[[str], None]
    found: list[OutsideReport] = field(default_factory=list)
    seen: int = 0  # console offset up to which reports have been attributed

    def new_console(self) -> None:
        """A new boot's console: nothing of it attributed yet."""
        self.seen = 0

    def attribute(self, text_of: Callable[[int, int], str], end: int, boot: int, when: str) -> None:
        """Record the reports printed between the last attribution and ``end``."""
        if end <= self.seen:
            return
        for report in self.reader.reports_in(text_of(self.seen, end)):
            self.found.append(OutsideReport(self.kernel, boot, when, report))
            self.log(f"{self.kernel} boot-{boot}: kernel report during {when}: {report.title}")
        self.seen = end

    def seen_until(self, end: int) -> None:
        """A test's window owned the console up to ``end``: nothing before it is outside."""
        self.seen = end

    def of_boot(self, boot: int) -> tuple[KernelReport, ...]:
        """The reports attributed to ``boot``, in console order."""
        return tuple(o.report for o in self.found if o.boot == boot)


def boot_crash(reports: tuple[KernelReport, ...]) -> KernelReport | None:
    """The report that killed a boot: the last one before the first panic, else the panic.

    A fatal oops prints its report, then "Kernel panic - not syncing: Fatal
    exception" (or "Attempted to kill init!"): the oops is the crash, the
    panic its consequence.  Without a panic, the last report printed.
    """
    panic = next((i for i, r in enumerate(reports) if r.type is ReportType.PANIC), None)
    before = reports[:panic] if panic is not None else reports
    if before:
        return before[-1]
    return reports[panic] if panic is not None else None
