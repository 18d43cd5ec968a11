"""The receiving side of :mod:`harness.plugin.shipping`: the controller's view of the run.

A serial run is its own controller.  Under xdist a worker's report is
rebuilt as a serial run would have made it (:func:`rebuild_report`), and
every report's shipment lands in the :class:`Inbox` the results are written from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.plugin.reprs import ShippedFailureRepr
from harness.plugin.shipping import KernelShipment, Shipment
from harness.plugin.xdist import pair_of, strip_group
from harness.results.records import TestRecord


class Inbox:
    """The records and kernels the reports brought, and what xdist said about the run."""

    def __init__(self) -> None:
        self.records: list[TestRecord] = []
        self.kernels: dict[str, KernelShipment] = {}
        self.selection: list[tuple[str, str]] | None = None  # (test, kernel) from xdist workers
        self.lost_worker = False  # an xdist worker died: what it never reached is not run

    def take(self, report: pytest.TestReport, xml: Any) -> None:
        """Keep the records ``report`` carries; with --junitxml, name them as properties.

        Suite-level properties named ``<nodeid> <fact>``: pytest writes
        per-test properties inside ``<testcase>``, which the xunit2 schema
        (pytest's default junit_family) forbids.
        """
        shipment = Shipment.of(report)
        if shipment is None:
            return
        self.records.extend(shipment.records)
        if shipment.kernel is not None:
            self.kernels[shipment.kernel.record.name] = shipment.kernel
        if xml is None:  # no --junitxml
            return
        for record in shipment.records:
            facts = {
                "kernel": record.kernel,
                "outcome": record.outcome.value,
                "evidence": record.evidence,
            }
            if record.reports:  # the first kernel report: its title and syzbot's type
                facts["report"] = record.reports[0].title
                facts["report type"] = record.reports[0].crash_type.value
            for key, value in facts.items():
                xml.add_global_property(f"{report.nodeid} {key}", value)


def rebuild_report(
    data: dict[str, Any], run_dir: Callable[[], Path], log: Callable[[str], None]
) -> pytest.TestReport | None:
    """A worker's report as a serial run would have made it (None: not a test report).

    The node id loses xdist's ``@<kernel>`` group suffix, shipped files
    land in our results directory with paths pointing there, and a guest
    test's failure gets its verdict back as the crash message.
    """
    if data.get("$report_type") != "TestReport":
        return None
    report = pytest.TestReport._from_json(data)
    report.nodeid = strip_group(report.nodeid)
    shipment = Shipment.of(report)
    if shipment is None:
        return report
    here = run_dir()  # made now if nothing made it yet
    if shipment.root is not None:
        shipment = _unpack(report, shipment, here, log)
    mine = [r for r in shipment.records if (r.test, r.kernel) == pair_of(report.nodeid)]
    if report.failed and report.when == "call" and isinstance(report.longrepr, str) and mine:
        report.longrepr = ShippedFailureRepr(report.longrepr, report.location[0], mine[0].summary)
    return report


def _unpack(
    report: pytest.TestReport, shipment: Shipment, run_dir: Path, log: Callable[[str], None]
) -> Shipment:
    """Write a remote worker's files here and point the report's paths at them."""
    try:
        shipment = shipment.unpack(run_dir)
    except ValueError as exc:  # keep the verdicts, refuse the files
        log(f"a worker sent evidence outside the results, ignored: {exc}")
        shipment = Shipment(shipment.records, shipment.kernel)
    report.sections = [(k, shipment.rebase(v, run_dir)) for k, v in report.sections]
    if isinstance(report.longrepr, str):
        report.longrepr = shipment.rebase(report.longrepr, run_dir)
    Shipment(shipment.records, shipment.kernel).attach(report)
    return shipment
