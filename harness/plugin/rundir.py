"""This run's results directory: the controller's, or a scratch one on another host.

Made on first use, so a run that collects nothing (``--collect-only``, the
project's own tests) leaves no empty directory behind.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from harness.plugin.shipping import EvidenceSync
from harness.plugin.xdist import REMOTE_KEY, RUN_DIR_KEY, worker_input
from harness.results.evidence import new_run_dir


class ResultsDir:
    """Where evidence and reports go; on a worker elsewhere, what to ship back."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._path: Path | None = None
        self.sync: EvidenceSync | None = None  # a worker on another host: files to ship

    @property
    def made(self) -> bool:
        """Whether anything asked for the directory yet (then the run has results)."""
        return self._path is not None

    def path(self) -> Path:
        """The directory, made on first use (nothing compiled yet)."""
        if self._path is None:
            self._path = self._make()
        return self._path

    def _make(self) -> Path:
        given = worker_input(self.config).get(RUN_DIR_KEY) or self.config.getoption("run_dir")
        if worker_input(self.config).get(REMOTE_KEY):
            # another host: a scratch directory, shipped back report by report
            path = Path(tempfile.mkdtemp(prefix="kharness-remote-"))
            self.sync = EvidenceSync(path)
            return path
        if given is None:
            base = self.config.getoption("results_dir") or self.config.rootpath / "results"
            return new_run_dir(Path(base).resolve())
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remote_root(self) -> str | None:
        """The scratch directory's path when shipping from another host, else None."""
        return str(self._path) if self.sync is not None else None

    def discard_scratch(self) -> None:
        """A worker on another host: everything went back with its reports."""
        if self.sync is not None and self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
