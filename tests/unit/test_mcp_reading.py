"""The MCP server's reading of results: pages, names, and nothing outside the results."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.mcp import reading
from harness.mcp.jobs import Jobs, tail
from harness.outcome import Outcome
from harness.records import RunSummary, TestRecord


def _run(tmp_path: Path, evidence: str = "k/t") -> tuple[Path, TestRecord]:
    run = tmp_path / "20261202-120000-1"
    (run / "k" / "t").mkdir(parents=True)
    (run / "k" / "t" / "stdout.txt").write_text("0123456789" * 5)
    record = TestRecord("t", "k", Outcome.PASS, "pass", evidence=evidence)
    summary = RunSummary("r", tests=(record,))
    (run / "summary.json").write_text(json.dumps(summary.to_json()))
    (tmp_path / "latest").symlink_to(run.name)
    return run, record


def test_pages_say_where_the_next_one_starts(tmp_path: Path) -> None:
    run, record = _run(tmp_path)
    first = reading.evidence_page(run, record, "stdout", 0, 20).to_json()
    assert (first["text"], first["next_offset"], first["total_chars"]) == (
        "01234567890123456789",
        20,
        50,
    )
    last = reading.evidence_page(run, record, "stdout", 40, 20).to_json()
    assert last["text"] == "0123456789" and last["next_offset"] is None


def test_the_latest_run_by_default_and_a_clear_error_without_one(tmp_path: Path) -> None:
    run, _ = _run(tmp_path / "results")
    assert reading.run_dir(tmp_path / "results", None) == run.resolve()
    assert reading.run_dir(tmp_path / "results", run.name) == run.resolve()
    with pytest.raises(UserError, match=r"no summary\.json; name a results directory under"):
        reading.run_dir(tmp_path / "elsewhere", None)


def test_evidence_outside_the_results_directory_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "stdout.txt").write_text("not yours")
    run, record = _run(tmp_path / "results", evidence=str(secret))
    with pytest.raises(UserError, match="outside the results directory"):
        reading.evidence_page(run, record, "stdout", 0, 100)


def test_unknown_test_and_evidence_kind_name_what_exists(tmp_path: Path) -> None:
    run, record = _run(tmp_path)
    summary = RunSummary("r", tests=(record,))
    with pytest.raises(UserError, match=r"no test 'x' in this run; it has: t on k"):
        reading.find_test(summary, "x", None)
    with pytest.raises(UserError, match=r"unknown evidence 'dmesg'; one of: report, stdout"):
        reading.evidence_page(run, record, "dmesg", 0, 10)


def test_a_job_log_tail_and_state(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    job = jobs.start("demo", ["-c", "import sys; print('one'); print('two'); sys.exit(3)"])
    deadline = time.monotonic() + 30
    while job.status().state == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    status = job.status()
    assert (status.state, status.exit_code, status.last_lines) == ("failed", 3, ("one", "two"))
    assert tail(tmp_path / "nothing.log", 3) == ()
    assert status.command[0] == sys.executable


def test_stopping_a_job_stops_its_whole_process_group(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    code = (
        "import subprocess, time; p = subprocess.Popen(['sleep', '300']);"
        " print(p.pid, flush=True); time.sleep(300)"
    )
    job = jobs.start("sleeper", ["-c", code])
    deadline = time.monotonic() + 30
    while not job.status().last_lines and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(job.status().last_lines[0])
    jobs.stop_all()
    assert job.status().state == "stopped"
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the job's own child outlived the job"


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper (pid 1 of a container may never reap)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"
