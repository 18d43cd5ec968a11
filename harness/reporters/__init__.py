"""Reporters: a run's :class:`~harness.results.records.RunSummary` in, one file out.

Each reporter is a module with ``FILENAME`` and ``render(summary) -> str``;
adding a format is one module and one entry in :data:`REPORTERS` (or in
:data:`DIR_REPORTERS` for one that also reads the evidence files, such as
the HTML page: ``render(summary, run_dir)``).  They read
the typed summary and nothing else, so ``python -m harness report DIR`` can
rebuild them from a results directory's summary.json long after the run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.reporters import html, kcidb, patchwork, text
from harness.results import layout
from harness.results.evidence import write_json
from harness.results.records import RunSummary

#: file name in the results directory -> renderer
REPORTERS: dict[str, Callable[[RunSummary], str]] = {
    module.FILENAME: module.render for module in (text, kcidb, patchwork)
}
#: reporters that also read the evidence files of the results directory
DIR_REPORTERS: dict[str, Callable[[RunSummary, Path], str]] = {html.FILENAME: html.render}


def write_all(summary: RunSummary, run_dir: Path) -> list[Path]:
    """Write summary.json and every format beside it; returns the files written."""
    write_json(run_dir / layout.SUMMARY_JSON, summary.to_json())
    written = [run_dir / layout.SUMMARY_JSON]
    outputs = {name: lambda render=render: render(summary) for name, render in REPORTERS.items()}
    outputs |= {
        name: lambda render=render: render(summary, run_dir)
        for name, render in DIR_REPORTERS.items()
    }
    for name, make in outputs.items():
        path = run_dir / name
        path.write_text(make())
        written.append(path)
    return written
