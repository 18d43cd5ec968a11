"""Reporters: summary.json in, one more format out (text for a mail reply, KCIDB).

Each reporter is a module with ``render(summary: dict) -> str`` and a file
name; they read the plain summary (see :func:`harness.report.summary_json`)
and nothing else, so ``python -m harness report DIR`` can rebuild them from a
results directory long after the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.reporters import kcidb, text

#: file name in the results directory -> renderer
REPORTERS = {"summary.txt": text.render, "kcidb.json": kcidb.render}


def write_all(summary: dict[str, Any], run_dir: Path) -> list[Path]:
    """Render every format next to summary.json; returns the files written."""
    written = []
    for name, render in REPORTERS.items():
        path = run_dir / name
        path.write_text(render(summary))
        written.append(path)
    return written


def load_summary(run_dir: Path) -> dict[str, Any]:
    """Read a results directory's summary.json."""
    return json.loads((run_dir / "summary.json").read_text())
