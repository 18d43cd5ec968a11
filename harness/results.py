"""The results directory: one per run, every piece of evidence in one place.

Layout::

    results/<run-id>/
        summary.json              every test's outcome, reports and timings
        junit.xml                 when --junitxml points here (make run does)
        keys/                     this run's SSH keys (guest host key pinned)
        <kernel>/kernel.json      where the kernel came from, resolve/image timings
        <kernel>/boot-<n>/        console.log, qemu-cmdline.txt, boot.json
        <kernel>/<test>/          stdout.txt, stderr.txt, console.txt, result.json

``results/latest`` points at the newest run.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any


def new_run_dir(base: Path) -> Path:
    """Create ``base/<timestamp>-<pid>`` and point ``base/latest`` at it."""
    run = base / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run.mkdir(parents=True, exist_ok=False)
    latest = base / "latest"
    try:
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run.name)
    except OSError:
        pass  # a read-only or odd filesystem: the run itself is what matters
    return run


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` (dataclasses and enums allowed) as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(data), indent=2, sort_keys=False) + "\n")


@dataclass
class Timings:
    """Seconds spent per phase, kept per kernel and per test."""

    phases: dict[str, float] = field(default_factory=dict)

    def add(self, phase: str, seconds: float) -> None:
        """Accumulate ``seconds`` under ``phase``."""
        self.phases[phase] = round(self.phases.get(phase, 0.0) + seconds, 3)
