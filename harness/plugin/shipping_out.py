"""The sending side of :mod:`harness.plugin.shipping`: what each guest test report carries.

Every report of a harness item takes the records made since the last report,
the kernel whose guest just stopped, and (from a worker on another host) the
evidence files written since; a serial run goes the same way.
"""

from __future__ import annotations

import pytest

from harness.plugin.rundir import ResultsDir
from harness.plugin.shipping import KernelShipment, Shipment
from harness.results.records import TestRecord, TestRun
from harness.results.summarize import outside_records, test_records
from harness.session import KernelGuest


def kernel_shipment(guest: KernelGuest) -> KernelShipment:
    """A guest's kernel record and its kernel reports outside any test."""
    return KernelShipment(guest.record(), outside_records(guest.outside))


class Outbox:
    """Which runs already went out, and the guest stopped at this teardown."""

    def __init__(self) -> None:
        self._shipped = 0  # runs[:_shipped] went out with earlier reports
        self.finished: KernelGuest | None = None  # stopped at this teardown, record to ship

    def rest(self, runs: list[TestRun]) -> tuple[TestRecord, ...]:
        """Records of the runs not shipped yet; they count as shipped from now on."""
        rest, self._shipped = runs[self._shipped :], len(runs)
        return test_records(rest)

    def ship(self, report: pytest.TestReport, runs: list[TestRun], results: ResultsDir) -> None:
        """Put on ``report`` what the results need: new records, a finished kernel, files."""
        records = self.rest(runs)
        kernel = None
        if self.finished is not None and report.when == "teardown":
            kernel, self.finished = kernel_shipment(self.finished), None
        files = results.sync.changed() if results.sync is not None else {}
        Shipment(records, kernel, files, results.remote_root()).attach(report)
