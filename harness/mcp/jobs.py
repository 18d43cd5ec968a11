"""Long work as jobs: one subprocess each, its own results directory and log.

A job is the same command a person would type (``python -m pytest ...``,
``python -m harness series ...``), started in its own process group so that
stopping it stops its guests too (the harness's SIGTERM handling shuts them
down); its output goes to a log beside the results, read back for progress.
The server stops every job still running when it exits, so a client that
goes away leaves no QEMU behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.machine.process import terminate
from harness.paths import REPO_ROOT
from harness.results import layout
from harness.results.schema import check_version

#: a job status's JSON shape; bump when a field changes meaning or disappears
JOB_SCHEMA = 1


class JobState(StrEnum):
    """Where a job is (a str too, so a client's JSON and a comparison with text agree)."""

    RUNNING = "running"
    PASSED = "passed"  # exited 0
    FAILED = "failed"  # exited with another code
    STOPPED = "stopped"  # stopped by a client or by the server going away


@dataclass(frozen=True)
class JobStatus:
    """What a status call answers: where a job is and where its evidence goes."""

    job: str
    kind: str
    state: JobState
    exit_code: int | None
    seconds: float
    command: tuple[str, ...]
    log: str
    results: str | None  # the run's results directory, once it exists
    last_lines: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The answer as the tool returns it."""
        return {
            "schema_version": JOB_SCHEMA,
            "job": self.job,
            "kind": self.kind,
            "state": self.state.value,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 1),
            "command": list(self.command),
            "log": self.log,
            "results": self.results,
            "last_lines": list(self.last_lines),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "job status") -> JobStatus:
        """Back from :meth:`to_json` (a client's copy, a test's)."""
        check_version(data, (JOB_SCHEMA,), where, missing=None)
        return cls(
            data["job"],
            data["kind"],
            JobState(data["state"]),
            data.get("exit_code"),
            float(data.get("seconds", 0.0)),
            tuple(data.get("command", ())),
            data.get("log", ""),
            data.get("results"),
            tuple(data.get("last_lines", ())),
        )


@dataclass
class Job:
    """One started command."""

    id: str
    kind: str
    command: tuple[str, ...]
    base: Path  # the results base it was given (--results-dir)
    log: Path
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    stopped: bool = False

    def results(self) -> Path | None:
        """The job's own run (finished or not): the harness names a run by the process."""
        return layout.newest_run(self.base, done=None, pid=self.process.pid)

    def status(self, lines: int = 8) -> JobStatus:
        """Where the job is now (reaps it if it ended)."""
        code = self.process.poll()
        if code is not None and self.ended is None:
            self.ended = time.monotonic()
        if code is None:
            state = JobState.RUNNING
        elif self.stopped:
            state = JobState.STOPPED
        else:
            state = JobState.PASSED if code == 0 else JobState.FAILED
        seconds = (self.ended or time.monotonic()) - self.started
        results = self.results()
        return JobStatus(
            self.id,
            self.kind,
            state,
            code,
            seconds,
            self.command,
            str(self.log),
            str(results) if results else None,
            tail(self.log, lines),
        )


class Jobs:
    """The server's jobs, by id."""

    def __init__(self, results_base: Path) -> None:
        self.base = results_base
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, kind: str, argv: list[str]) -> Job:
        """Start ``python argv...`` in the repository, output to the job's log."""
        job_id = uuid.uuid4().hex[:8]
        logs = self.base / layout.MCP_JOBS
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{job_id}-{kind}.log"
        command = (sys.executable, *argv)
        env = {**os.environ, "KHARNESS_PROGRESS": "plain", "PYTHONUNBUFFERED": "1"}
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: stopped as one
            )
        job = Job(job_id, kind, command, self.base, log, process)
        with self._lock:
            self._jobs[job_id] = job
        return job

    def save_patch(self, text: str) -> Path:
        """``text`` in a file of its own under ``<base>/mcp-jobs``, for ``--series``.

        Named by the second and made unique by the file system (O_EXCL):
        two calls in the same second get two files, never one overwritten.
        """
        logs = self.base / layout.MCP_JOBS
        logs.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        fd, name = tempfile.mkstemp(prefix=f"series-{stamp}-", suffix=".mbox", dir=logs)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return Path(name)

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; a UserError lists the known ones."""
        with self._lock:
            job = self._jobs.get(job_id)
            known = ", ".join(self._jobs) or "none yet"
        if job is None:
            raise UserError(f"no job {job_id!r}; this server's jobs: {known}")
        return job

    def all(self) -> list[Job]:
        """Every job, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def stop(self, job: Job, grace: float = 20.0) -> None:
        """SIGTERM the job's group (the harness stops its guests), SIGKILL after ``grace``."""
        if job.process.poll() is not None:
            return
        job.stopped = True
        terminate(job.process, grace)

    def stop_all(self) -> None:
        """Stop every job still running (the server is going away)."""
        for job in self.all():
            self.stop(job)


def tail(path: Path, lines: int) -> tuple[str, ...]:
    """The last ``lines`` non-empty lines of a log (reads only its end)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return ()
    return tuple(line for line in text.splitlines() if line.strip())[-lines:]
