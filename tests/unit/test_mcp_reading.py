"""The MCP server's reading of results: pages, names, and nothing outside the results.

The tools are called in process (``call_tool`` on the real server), no client or boot.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from harness.errors import UserError
from harness.mcp import reading
from harness.mcp.jobs import Jobs, tail
from harness.mcp.server import Settings, build_server
from harness.outcome import Outcome
from harness.results.records import RunSummary, TestRecord


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


# -- reads stay inside the results directory ----------------------------------------------------
def _server(tmp_path: Path) -> tuple[MCPServer, Path]:
    base = tmp_path / "results"
    _run(base)
    kernels = tmp_path / "kernels.yaml"
    kernels.write_text("kernels: []\n")
    return build_server(Settings(kernels, base), Jobs(base)), base


def _call(server: MCPServer, tool: str, **arguments: object) -> object:
    return anyio.run(lambda: server.call_tool(tool, arguments))


def _outside(tmp_path: Path) -> Path:
    """A run-shaped directory outside the results base, holding a 'secret'."""
    other, _ = _run(tmp_path / "elsewhere")
    (other / "k" / "t" / "stdout.txt").write_text("the operator's secret")
    return other


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "latest"])
def test_read_results_and_compare_runs_refuse_a_run_outside_the_results(
    tmp_path: Path, how: str
) -> None:
    server, base = _server(tmp_path)
    other = _outside(tmp_path)
    if how == "absolute":
        name: str | None = str(other)
    elif how == "dotdot":
        name = f"../elsewhere/{other.name}"
    elif how == "symlink":
        (base / "sneaky").symlink_to(other)
        name = "sneaky"
    else:  # the default run itself points out
        (base / "latest").unlink()
        (base / "latest").symlink_to(other)
        name = None
    args = {"results": name} if name else {}
    with pytest.raises(ToolError, match="outside the results directory") as refused:
        _call(server, "read_results", test="t", what="stdout", **args)
    assert "secret" not in str(refused.value)
    inside = next(base.glob("2026*")).name
    with pytest.raises(ToolError, match="outside the results directory"):
        _call(server, "compare_runs", old=inside, new=name or "latest")


def test_a_summary_linked_out_of_a_run_inside_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "results"
    run, _ = _run(base)
    other = _outside(tmp_path)
    (run / "summary.json").unlink()
    (run / "summary.json").symlink_to(other / "summary.json")
    with pytest.raises(UserError, match="outside the results directory"):
        reading.run_dir(base, run.name)


def test_a_run_inside_by_name_or_by_its_absolute_path_is_read(tmp_path: Path) -> None:
    server, base = _server(tmp_path)
    run = next(base.glob("2026*"))
    for name in (run.name, str(run), f"{run.name}/../{run.name}"):
        page = _call(server, "read_results", results=name, test="t", what="stdout")
        assert "0123456789" in str(page)


# -- test_series: one file per call -------------------------------------------------------------
def test_patches_saved_in_the_same_second_get_files_of_their_own(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    texts = [f"From: a{i}\nSubject: [PATCH] {i}\n\n" for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        saved = list(pool.map(jobs.save_patch, texts))
    assert len(set(saved)) == len(texts)
    assert [p.read_text() for p in saved] == texts
    assert all(p.parent == tmp_path / "mcp-jobs" and p.suffix == ".mbox" for p in saved)


# -- the hints tell the truth -------------------------------------------------------------------
def test_tool_hints_match_what_each_tool_does(tmp_path: Path) -> None:
    server, _ = _server(tmp_path)
    hints = {
        t.name: (
            t.annotations.read_only_hint,
            t.annotations.destructive_hint,
            t.annotations.open_world_hint,
        )
        for t in anyio.run(server.list_tools)
        if t.annotations is not None
    }
    readers = {"list_kernels", "job_status", "read_results", "compare_runs"}
    workers = {"run_tests", "run_command", "test_series", "bisect"}
    assert set(hints) == readers | workers | {"stop_job"}, "every tool carries its hints"
    for name in readers:
        assert hints[name][0] is True and hints[name][2] is False, name
    for name in workers:  # add results, delete nothing, may download kernels or a series
        assert hints[name] == (False, False, True), name
    assert hints["stop_job"] == (False, True, False)


def test_the_tool_table_serves_each_method_with_its_own_schema(tmp_path: Path) -> None:
    """Tools are methods: neither ``self`` nor the MCP context may leak into a schema."""
    server, _ = _server(tmp_path)
    schemas = {t.name: t.input_schema for t in anyio.run(server.list_tools)}
    for name, schema in schemas.items():
        assert not {"self", "ctx"} & set(schema.get("properties", {})), name
    assert schemas["run_command"]["required"] == ["kernel", "command"]
    assert schemas["bisect"]["required"] == ["tree", "good", "bad", "test"]
    assert "required" not in schemas["list_kernels"]
