"""The tool table of ``kharness mcp`` (see the package docstring).

Every tool takes plain arguments with a JSON schema (from the signature) and
answers JSON; each tool's annotations tell the truth about it: the readers
are read-only and closed-world (their paths stay inside the results base),
the workers add results and may download, stop_job is destructive.  A harness error
(an unknown kernel, a missing results directory, bad arguments) is raised as
a tool error carrying the CLI's own message, never a crashed server.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from harness import paths
from harness.compare import compare, load_run
from harness.config import load_kernels, select
from harness.errors import HarnessError, UserError
from harness.mail.commandline import SeriesCommand, harness_args
from harness.mcp import reading
from harness.mcp.command import run_in_guest
from harness.mcp.jobs import Job, Jobs
from harness.results import layout
from harness.run import guest_test_paths

# The hints a client shows its user before it calls a tool; each says what the tool does.
#: reads the results directory or kernels.yaml only (reads stay inside the results base)
READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)
#: boots guests or builds kernels: adds results, cached kernels and job logs, deletes
#: nothing; open world: a kernel may be downloaded (Debian's archive), a series fetched
#: from a list, and a second call is a second run (not idempotent)
WORKS = ToolAnnotations(
    readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True
)
#: ends a running job: its unfinished work is lost (stopping it twice changes nothing more)
STOPS = ToolAnnotations(
    readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
)


@dataclass(frozen=True)
class Settings:
    """What the server was started with."""

    kernels_file: Path
    results_base: Path


@contextlib.contextmanager
def tool_errors() -> Iterator[None]:
    """Harness errors become tool errors with the same text the CLI prints."""
    try:
        yield
    except HarnessError as exc:
        raise ToolError(str(exc)) from None
    except (ValueError, OSError) as exc:
        raise ToolError(f"{type(exc).__name__}: {exc}") from None


def check_tests(tests: list[str]) -> None:
    """UserError naming an unknown test, as ``kharness run --test`` does."""
    guest_test_paths(tests)


async def follow(job: Job, ctx: Context | None, wait_seconds: float) -> dict[str, Any]:
    """Wait up to ``wait_seconds`` for ``job``, sending its log lines as progress."""
    deadline = time.monotonic() + wait_seconds
    last = ""
    while True:
        status = job.status()
        if status.state != "running" or time.monotonic() >= deadline:
            break
        line = status.last_lines[-1] if status.last_lines else "starting"
        if ctx is not None and line != last:
            await ctx.report_progress(round(status.seconds, 1), None, line)
            last = line
        await anyio.sleep(1.0)
    answer = status.to_json()
    results = status.results
    if status.state != "running" and results and layout.finished(Path(results)):
        with contextlib.suppress(HarnessError):
            answer["summary"] = reading.brief(*reading.load(Path(results), results))
    return answer


def build_server(settings: Settings, jobs: Jobs) -> MCPServer:
    """The server and its tools."""
    server = MCPServer(
        "kharness",
        instructions=(
            "Boot Linux kernels under QEMU, run guest tests (C reproducers, shell, KUnit, "
            "kselftests) and get verdicts with the evidence. Long work (run_tests, "
            "test_series, bisect) is a job: pass wait=true to follow it with progress, "
            "or poll job_status."
        ),
    )
    base = settings.results_base

    @server.tool(annotations=READ_ONLY)
    def list_kernels() -> dict[str, Any]:
        """The kernels of kernels.yaml: name, where the kernel comes from, arch, backend."""
        with tool_errors():
            specs = load_kernels(settings.kernels_file)
        kernels = [
            {
                "name": s.name,
                "source": s.source.describe(),
                "arch": s.arch.name,
                "backend": s.backend,
                "expect": sorted(s.expect),
            }
            for s in specs
        ]
        return {"kernels_file": str(settings.kernels_file), "kernels": kernels}

    @server.tool(annotations=WORKS)
    async def run_tests(
        ctx: Context,
        kernels: list[str] | None = None,
        tests: list[str] | None = None,
        keyword: str | None = None,
        runs: int = 1,
        wait: bool = False,
    ) -> dict[str, Any]:
        """Run guest tests on kernels (all when none named) as a job; wait=true follows it."""
        with tool_errors():
            select(load_kernels(settings.kernels_file), kernels or [], settings.kernels_file)
            check_tests(tests or [])
            if runs < 1:
                raise UserError(f"runs must be 1 or more, got {runs}")
            argv = ["-m", "pytest", "guest-tests", "-p", "no:cacheprovider", "-rA"]
            argv += ["--kernels-file", str(settings.kernels_file), "--results-dir", str(base)]
            argv += [f"--kernel={k}" for k in kernels or []]
            expr = " or ".join(tests or [])
            if keyword:
                expr = f"({expr}) and ({keyword})" if expr else keyword
            argv += ["-k", expr] if expr else []
            argv += ["--runs", str(runs)] if runs > 1 else []
            job = jobs.start("run", argv)
        return await follow(job, ctx, 24 * 3600 if wait else 0)

    @server.tool(annotations=READ_ONLY)
    async def job_status(ctx: Context, job: str, wait_seconds: float = 0) -> dict[str, Any]:
        """A job's state, last log lines and results; waits up to wait_seconds for it to end."""
        with tool_errors():
            found = jobs.get(job)
        return await follow(found, ctx, max(0.0, wait_seconds))

    @server.tool(annotations=STOPS)
    async def stop_job(job: str) -> dict[str, Any]:
        """Stop a running job and its guests."""
        with tool_errors():
            found = jobs.get(job)
        await anyio.to_thread.run_sync(jobs.stop, found)
        return found.status().to_json()

    @server.tool(annotations=WORKS)
    async def run_command(kernel: str, command: str, timeout: float = 60) -> dict[str, Any]:
        """Boot a kernel, run one shell command in it: output, exit status, kernel reports."""
        with tool_errors():
            if timeout <= 0:
                raise UserError(f"timeout must be more than 0 seconds, got {timeout}")
            outcome = await anyio.to_thread.run_sync(
                lambda: run_in_guest(settings.kernels_file, kernel, command, timeout, str(base))
            )
        return outcome.to_json()

    @server.tool(annotations=WORKS)
    async def test_series(
        ctx: Context,
        kernel: str,
        patch: str | None = None,
        patch_file: str | None = None,
        tests: list[str] | None = None,
        wait: bool = False,
    ) -> dict[str, Any]:
        """Build a build: kernel and test it after each patch (patch text or a file/mbox/dir)."""
        with tool_errors():
            select(load_kernels(settings.kernels_file), [kernel], settings.kernels_file)
            check_tests(tests or [])
            if (patch is None) == (patch_file is None):
                raise UserError("give exactly one of 'patch' (the text) or 'patch_file' (a path)")
            if patch is not None:
                patch_file = str(jobs.save_patch(patch))  # a file per call, never shared
            series = SeriesCommand(
                kernel, str(patch_file), tests=tuple(tests or ()), results_dir=str(base)
            )
            job = jobs.start("series", harness_args(settings.kernels_file, series.argv()))
        return await follow(job, ctx, 24 * 3600 if wait else 0)

    @server.tool(annotations=WORKS)
    async def bisect(
        ctx: Context,
        tree: str,
        good: str,
        bad: str,
        test: str,
        runs: int = 1,
        wait: bool = False,
    ) -> dict[str, Any]:
        """git bisect run over a kernel tree with a guest test as predicate, as a job."""
        with tool_errors():
            check_tests([test])
            if not Path(tree).is_dir():
                raise UserError(f"{tree}: no such directory; give a kernel git checkout")
            argv = ["-m", "harness", "--kernels-file", str(settings.kernels_file), "bisect"]
            argv += ["--tree", tree, "--good", good, "--bad", bad, "--test", test]
            argv += ["--runs", str(runs), "--results-dir", str(base), "--sandbox"]
            job = jobs.start("bisect", argv)
        return await follow(job, ctx, 24 * 3600 if wait else 0)

    @server.tool(annotations=READ_ONLY)
    def read_results(
        results: str | None = None,
        test: str | None = None,
        kernel: str | None = None,
        what: str = "report",
        offset: int = 0,
        limit: int = 20000,
    ) -> dict[str, Any]:
        """A run's summary (no test), or one test's report/stdout/stderr/console/result, paged."""
        with tool_errors():
            run, summary = reading.load(base, results)
            if test is None:
                return reading.brief(run, summary)
            record = reading.find_test(summary, test, kernel)
            return reading.evidence_page(run, record, what, offset, limit).to_json()

    @server.tool(annotations=READ_ONLY)
    def compare_runs(old: str, new: str) -> dict[str, Any]:
        """Regressions, fixes and changed crashes from run OLD to run NEW."""
        with tool_errors():
            result = compare(
                load_run(str(reading.run_dir(base, old))), load_run(str(reading.run_dir(base, new)))
            )
        return {"text": result.render(), **result.to_json()}

    return server


def cmd_mcp(args: argparse.Namespace) -> int:
    """``kharness mcp``: serve over stdio until the client closes it; stop every job then."""
    settings = Settings(
        paths.kernels_file(getattr(args, "kernels_file", None)),
        paths.results_base(args.results_dir),
    )
    jobs = Jobs(settings.results_base)
    try:
        build_server(settings, jobs).run()
    finally:
        jobs.stop_all()
    return 0
