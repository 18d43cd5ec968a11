"""``kharness mcp`` driven by the MCP SDK's own client over stdio, on a real Debian 6.12.

The server runs as a subprocess exactly as a client configures it; the
client lists the tools, calls one with bad arguments (a tool error with the
CLI's text, and the server still answers), runs a job to its verdicts while
following its progress, reads a test's evidence and report, and runs one
command in a fresh guest, including one that crashes the kernel.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.integration.helpers import REPO

pytestmark = pytest.mark.boot

READ_ONLY = {"list_kernels", "job_status", "read_results", "compare_runs"}
ALL_TOOLS = READ_ONLY | {"run_tests", "stop_job", "run_command", "test_series", "bisect"}


def _answer(result: Any) -> Any:
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def _error(result: Any) -> str:
    assert result.is_error, result
    return str(result.content[0].text)


async def _session(results: Path, work: Any) -> Any:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "harness", "mcp", "--results-dir", str(results)],
        cwd=str(REPO),
    )
    with anyio.fail_after(900):  # a hung server fails the test instead of hanging it
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)


def test_tools_errors_a_job_evidence_and_a_command(tmp_path: Path) -> None:
    results = tmp_path / "results"
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def work(session: ClientSession) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        tools = {t.name: t for t in (await session.list_tools()).tools}
        seen["tools"] = tools
        seen["kernels"] = _answer(await session.call_tool("list_kernels", {}))
        seen["bad_kernel"] = _error(
            await session.call_tool("run_tests", {"kernels": ["no-such-kernel"]})
        )
        seen["bad_arg"] = _error(await session.call_tool("run_command", {"kernel": "debian-6.12"}))
        seen["no_results"] = _error(await session.call_tool("read_results", {}))
        seen["job"] = _answer(
            await session.call_tool(
                "run_tests",
                {"kernels": ["debian-6.12"], "tests": ["uffd_api_unknown_feature"], "wait": True},
                progress_callback=on_progress,
            )
        )
        seen["stdout"] = _answer(
            await session.call_tool(
                "read_results",
                {"test": "uffd_api_unknown_feature", "what": "stdout", "limit": 100},
            )
        )
        seen["report"] = _answer(
            await session.call_tool("read_results", {"test": "uffd_api_unknown_feature"})
        )
        seen["uname"] = _answer(
            await session.call_tool(
                "run_command", {"kernel": "debian-6.12", "command": "uname -r; echo e >&2; exit 3"}
            )
        )
        seen["crash"] = _answer(
            await session.call_tool(
                "run_command", {"kernel": "debian-6.12", "command": "echo c > /proc/sysrq-trigger"}
            )
        )
        return seen

    seen = anyio.run(_session, results, work)

    tools = seen["tools"]
    assert set(tools) == ALL_TOOLS
    for name, tool in tools.items():
        assert tool.description and tool.input_schema["type"] == "object", name
        assert bool(tool.annotations and tool.annotations.read_only_hint) == (name in READ_ONLY)
    assert {"debian-6.12", "debian-6.12-arm64"} <= {k["name"] for k in seen["kernels"]["kernels"]}

    assert "no-such-kernel" in seen["bad_kernel"] and "known kernels: " in seen["bad_kernel"]
    assert "command" in seen["bad_arg"] and "required" in seen["bad_arg"].lower()
    assert "no summary.json" in seen["no_results"]

    job = seen["job"]
    assert job["state"] == "passed", job
    assert job["summary"]["counts"] == {"pass": 1}, job["summary"]
    assert progress and all(m for _, _, m in progress), progress
    assert [d for d, _, _ in progress] == sorted(d for d, _, _ in progress)
    assert Path(job["results"]).parent == results

    page = seen["stdout"]
    assert page["text"].startswith("TAP version 13") and len(page["text"]) == 100
    assert page["next_offset"] == 100 and page["total_chars"] > 100
    assert "no kernel report (pass" in seen["report"]["text"]

    uname = seen["uname"]
    assert uname["exit_code"] == 3 and uname["stderr"] == "e\n", uname
    assert uname["stdout"].strip() == uname["release"] and uname["kernel_reports"] == []

    crash = seen["crash"]
    assert crash["exit_code"] is None, crash
    assert any("sysrq" in title.lower() for title in crash["kernel_reports"]), crash
    assert "Kernel panic - not syncing" in crash["report_text"]
