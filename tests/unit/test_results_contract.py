"""The results directory's contract: its names, the newest finished run, its typed records."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.machine.process import terminate
from harness.mcp.jobs import JobState, JobStatus
from harness.outcome import Outcome
from harness.results import layout
from harness.results.kernel import load_kernel_file
from harness.results.records import KernelFile, KernelRecord, ReportRecord, TestResult
from harness.results.result import load_result


def _run(base: Path, name: str, done: str | None = layout.SUMMARY_JSON) -> Path:
    run = base / name
    run.mkdir(parents=True)
    if done:
        (run / done).write_text("{}")
    return run


def test_the_newest_finished_run_is_by_start_not_by_mtime_nor_latest(tmp_path: Path) -> None:
    older = _run(tmp_path, "20261201-090000-77")
    newer = _run(tmp_path, "20261201-100000-12")
    _run(tmp_path, "20261201-110000-5", done=None)  # still running: not finished
    (tmp_path / layout.LATEST).symlink_to("20261201-110000-5")
    os.utime(older, (time.time() + 3600, time.time() + 3600))  # a reply written into it later
    assert layout.newest_run(tmp_path) == newer
    assert layout.newest_run(tmp_path, done=None).name == "20261201-110000-5"
    assert layout.newest_run(tmp_path, done=layout.SERIES_JSON) is None
    assert layout.newest_run(tmp_path / "missing") is None


def test_two_runs_of_one_second_are_ordered_by_when_they_finished(tmp_path: Path) -> None:
    first = _run(tmp_path, "20261201-090000-900")
    second = _run(tmp_path, "20261201-090000-100")  # a smaller pid, finished later
    now = time.time()
    os.utime(first / layout.SUMMARY_JSON, (now - 5, now - 5))
    os.utime(second / layout.SUMMARY_JSON, (now, now))
    assert layout.newest_run(tmp_path) == second


def test_a_process_finds_its_own_run_among_others(tmp_path: Path) -> None:
    mine = _run(tmp_path, "20261201-090000-4242", done=None)
    _run(tmp_path, "20261201-100000-4243", done=None)
    _run(tmp_path, "20261201-100000-14242", done=None)  # the pid is matched whole
    assert layout.newest_run(tmp_path, done=None, pid=4242) == mine
    assert layout.newest_run(tmp_path, pid=4242) is None, "not finished"


def test_a_run_name_says_its_start_and_its_process() -> None:
    name = layout.run_name(pid=31, when=0)
    match = layout.RUN_NAME.fullmatch(name)
    assert match is not None and match["pid"] == "31"
    assert layout.boot_dir(Path("k"), 3) == Path("k/boot-3")


def test_a_test_result_round_trips_and_a_foreign_one_is_a_clear_error(tmp_path: Path) -> None:
    report = ReportRecord("BUG", "BUG: oops in f", call_trace=("f+0x1/0x2",), count=2)
    result = TestResult("t", "k", Outcome.OOPS, "oops", ("a", "b"), 1.25, 2, None, 512, (report,))
    (tmp_path / layout.RESULT_JSON).write_text(json.dumps(result.to_json()))
    assert load_result(tmp_path) == result
    assert result.to_json()["schema_version"] == 1
    future = {**result.to_json(), "schema_version": 9}
    (tmp_path / layout.RESULT_JSON).write_text(json.dumps(future))
    with pytest.raises(UserError, match=r"schema version 9, this harness reads 1"):
        load_result(tmp_path)
    (tmp_path / layout.RESULT_JSON).write_text('{"test": "t"')
    with pytest.raises(UserError, match="not valid JSON"):
        load_result(tmp_path)
    with pytest.raises(UserError, match=r"no result\.json; did the test finish"):
        load_result(tmp_path / "nowhere")


def test_kernel_json_round_trips_and_reads_files_from_before_the_version(tmp_path: Path) -> None:
    record = KernelRecord("k", "debian", origin="pkg", boots=2, timings={"boot": 1.5})
    written = KernelFile(record, error="no image").to_json()
    assert written["name"] == "k" and written["error"] == "no image"
    old = {k: v for k, v in written.items() if k != "schema_version"}
    (tmp_path / layout.KERNEL_JSON).write_text(json.dumps(old))
    assert load_kernel_file(tmp_path) == KernelFile(record, "no image")
    (tmp_path / layout.KERNEL_JSON).write_text("[1, 2]")
    with pytest.raises(UserError, match="not a JSON object"):
        load_kernel_file(tmp_path)


def test_a_job_status_round_trips_with_its_state_an_enum() -> None:
    status = JobStatus("ab12", "run", JobState.FAILED, 3, 1.5, ("py", "-m"), "x.log", None, ("e",))
    data = json.loads(json.dumps(status.to_json()))
    assert data["state"] == "failed" and data["schema_version"] == 1
    assert JobStatus.from_json(data) == status
    with pytest.raises(UserError, match="schema version None"):
        JobStatus.from_json({k: v for k, v in data.items() if k != "schema_version"})


def test_terminate_without_grace_kills_the_whole_group_at_once(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"trap '' TERM; sleep 300 & echo $! > {pids}; wait"
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    deadline = time.monotonic() + 10
    while not (pids.is_file() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int(pids.read_text())
    started = time.monotonic()
    terminate(proc, grace=0)
    assert time.monotonic() - started < 3, "SIGKILL at once, not after a grace"
    assert proc.returncode is not None
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:  # reparented: reaped by init
        time.sleep(0.02)
    assert not _alive(child), "the group's other process outlived it"


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper (pid 1 of a container may never reap)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"
