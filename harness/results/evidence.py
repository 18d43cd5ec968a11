"""The results directory: one per run, every piece of evidence in one place.

Layout::

    results/<run-id>/
        summary.json              every test's outcome, reports and timings
        junit.xml                 when --junitxml points here (make run does)
        keys/                     this run's SSH keys (guest host key pinned)
        <kernel>/kernel.json      where the kernel came from, resolve/image timings
        <kernel>/boot-<n>/        console.log, qemu-cmdline.txt, qemu-stderr.txt, boot.json
        <kernel>/<test>/          stdout.txt, stderr.txt, console.txt, result.json

``results/latest`` points at the newest run started.  Every file of it is
written here and nowhere else, as soon as it is known (an interrupted run
keeps what it saw).  The names are :mod:`harness.results.layout`'s; the
records of the files that are read back are in :mod:`harness.results`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, is_dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.results.records import KernelRecord, ReportRecord, TestRun
from harness.results import layout
from harness.results.kernel import KernelFile
from harness.results.result import TestResult

if TYPE_CHECKING:
    from harness.machine.base import MachineConfig, Ready


def new_run_dir(base: Path) -> Path:
    """Create ``base/<timestamp>-<pid>`` and point ``base/latest`` at it.

    A process that starts a second run within the same second (restores made
    runs that short) gets ``<timestamp>-<pid>.2``, and so on.
    """
    base.mkdir(parents=True, exist_ok=True)
    name = layout.run_name()
    run, again = base / name, 1
    while True:
        try:
            run.mkdir()
            break
        except FileExistsError:
            again += 1
            run = base / f"{name}.{again}"
    latest = base / layout.LATEST
    try:
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run.name)
    except OSError:
        pass  # a read-only or odd filesystem: the run itself is what matters
    return run


def drop_if_empty(run: Path, previous: str | None) -> bool:
    """Remove ``run`` when nothing was written to it, and point ``latest`` back.

    A run refused before anything ran (a usage error) must not leave an
    empty directory that ``results/latest`` then names.  ``previous`` is
    where ``latest`` pointed before :func:`new_run_dir` (None: nowhere).
    """
    if not run.is_dir() or any(run.iterdir()):
        return False
    run.rmdir()
    latest = run.parent / layout.LATEST
    try:
        if latest.is_symlink() and os.readlink(latest) == run.name:
            latest.unlink()
            if previous is not None and (run.parent / previous).is_dir():
                latest.symlink_to(previous)
    except OSError:
        pass
    return True


def latest_target(base: Path) -> str | None:
    """Where ``base/latest`` points now (None when it does not)."""
    try:
        return os.readlink(base / layout.LATEST)
    except OSError:
        return None


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


def write_kernel(directory: Path, kernel: KernelRecord, error: str | None) -> None:
    """``<kernel>/kernel.json``: where the kernel came from, fetch/image timings."""
    write_json(directory / layout.KERNEL_JSON, KernelFile(kernel, error).to_json())


def write_boot(
    boot_dir: Path, backend: str, cfg: MachineConfig, ready: Ready | None, seconds: float
) -> None:
    """``boot-N/boot.json``: backend, accelerator and why, guest shape, readiness."""
    write_json(
        boot_dir / layout.BOOT_JSON,
        {
            "backend": backend,
            "accel": cfg.accel,
            "shape": cfg.shape,
            "ready": ready,
            "seconds": round(seconds, 3),
        },
    )


def save_test(run: TestRun, window: str, streams_saved: bool = False) -> None:
    """``<kernel>/<test>/``: stdout, stderr, the console window and result.json.

    ``streams_saved``: stdout.txt and stderr.txt were written as the output
    arrived (bounded, :mod:`harness.machine.capture`); they are not rewritten.
    """
    run.directory.mkdir(parents=True, exist_ok=True)
    if run.result is not None and not streams_saved:
        (run.directory / layout.STDOUT_TXT).write_text(run.result.stdout)
        (run.directory / layout.STDERR_TXT).write_text(run.result.stderr)
    (run.directory / layout.CONSOLE_TXT).write_text(window)
    result = TestResult(
        run.test,
        run.kernel,
        run.verdict.outcome,
        run.verdict.summary,
        tuple(run.verdict.details),
        run.seconds,
        run.boot,
        run.result.exit_code if run.result else None,
        run.new_taint,
        tuple(ReportRecord.of(r) for r in run.reports),
    )
    write_json(run.directory / layout.RESULT_JSON, result.to_json())


def stderr_tail(boot_dir: Path, lines: int = 20) -> str:
    """The last lines the guest's process wrote to stderr (evidence of how it died).

    Each backend names its file for the program it runs (qemu-stderr.txt,
    virtme-stderr.txt).
    """
    text = ""
    for path in sorted(boot_dir.glob("*-stderr.txt")):
        text += path.read_text(errors="replace")
    return "\n".join(text.splitlines()[-lines:])
