"""The end of a run: summary.json and every report, and the lines pytest's summary shows.

Written from the records the reports carried (:class:`~harness.plugin.shipping_in.Inbox`),
so a serial run and an xdist run give the same results directory.
"""

from __future__ import annotations

from typing import Any

from harness.plugin.options import kernels_file
from harness.plugin.state import RunState
from harness.reporters import write_all
from harness.results import provenance
from harness.results.records import KernelRecord, RunSummary
from harness.results.summarize import build_summary


def run_summary(state: RunState) -> RunSummary:
    """The run as summary.json records it: every kernel used, every test, what did not run."""
    done = {(r.test, r.kernel) for r in state.inbox.records}
    pairs = state.pairs()
    short = state.interrupted or state.inbox.lost_worker
    specs = {s.name: s for s in state.specs()}
    expects = {
        (test, kernel): (e.outcome, e.reason)
        for test, kernel in pairs
        if kernel in specs and (e := specs[kernel].expect.get(test)) is not None
    }
    shipped = state.kernel_shipments()
    used = {k for _, k in pairs} | set(shipped)
    kernels = [
        shipped[s.name].record
        if s.name in shipped
        else KernelRecord(
            s.name, s.source.describe(), backend=state.backend_of(s), arch=s.arch.name
        )
        for s in state.specs()
        if s.name in used
    ]
    return build_summary(
        state.results.path().name,
        kernels,
        state.inbox.records,
        expects,
        [p for p in pairs if p not in done] if short else [],
        [o for s in state.specs() if s.name in shipped for o in shipped[s.name].outside],
        state.interrupted,
    )


def write_summary(state: RunState) -> None:
    """summary.json and every reporter's file, and how the run was made (provenance.json)."""
    write_all(run_summary(state), state.results.path())
    provenance.record(
        state.results.path(),
        kernels_file(state.config),
        [s.name for s in state.specs()],
        [test for test, _kernel in state.pairs()],
    )


def terminal_summary(reporter: Any, state: RunState) -> None:
    """Say where the evidence is, what did not run, and each kernel's timings."""
    if not state.results.made:
        return
    reporter.write_sep("-", "kernel harness")
    reporter.write_line(f"results: {state.results.path()}")
    if state.interrupted or state.inbox.lost_worker:
        missing = len(set(state.pairs()) - {(r.test, r.kernel) for r in state.inbox.records})
        why = "interrupted" if state.interrupted else "a worker was lost"
        if missing or state.interrupted:
            reporter.write_line(f"{why}: {missing} test(s) did not run (summary.txt lists them)")
    for name, kernel in state.kernel_shipments().items():
        reporter.write_line(f"  {name}: {dict(kernel.record.timings)}")
        for o in kernel.outside:
            reporter.write_line(
                f"  {name} boot-{o.boot}: kernel report during {o.when} (no test): {o.report.title}"
            )
