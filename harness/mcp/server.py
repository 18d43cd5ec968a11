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
from harness.commands.run import guest_test_paths
from harness.config import load_kernels, select
from harness.errors import HarnessError, UserError
from harness.mail.commandline import SeriesCommand, harness_args
from harness.mcp import reading
from harness.mcp.command import run_in_guest
from harness.mcp.jobs import Job, Jobs
from harness.results import layout
from harness.results.compare import compare, load_run

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


INSTRUCTIONS = (
    "Boot Linux kernels under QEMU, run guest tests (C reproducers, shell, KUnit, "
    "kselftests) and get verdicts with the evidence. Long work (run_tests, "
    "test_series, bisect) is a job: pass wait=true to follow it with progress, "
    "or poll job_status."
)
#: a job followed with wait=true: as long as it takes
_WHOLE_JOB = 24 * 3600


@dataclass(frozen=True)
class Tools:
    """The tools, one method each (its signature is the tool's schema, its docstring the
    description); :data:`TOOLS` says which are served and what each may do."""

    settings: Settings
    jobs: Jobs

    @property
    def base(self) -> Path:
        """Where results go and are read from."""
        return self.settings.results_base

    def list_kernels(self) -> dict[str, Any]:
        """The kernels of kernels.yaml: name, where the kernel comes from, arch, backend."""
        with tool_errors():
            specs = load_kernels(self.settings.kernels_file)
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
        return {"kernels_file": str(self.settings.kernels_file), "kernels": kernels}

    async def run_tests(
        self,
        ctx: Context,
        kernels: list[str] | None = None,
        tests: list[str] | None = None,
        keyword: str | None = None,
        runs: int = 1,
        wait: bool = False,
    ) -> dict[str, Any]:
        """Run guest tests on kernels (all when none named) as a job; wait=true follows it."""
        with tool_errors():
            self._check_kernels(kernels or [])
            check_tests(tests or [])
            if runs < 1:
                raise UserError(f"runs must be 1 or more, got {runs}")
            argv = ["-m", "pytest", "guest-tests", "-p", "no:cacheprovider", "-rA"]
            argv += ["--kernels-file", str(self.settings.kernels_file)]
            argv += ["--results-dir", str(self.base)]
            argv += [f"--kernel={k}" for k in kernels or []]
            expr = " or ".join(tests or [])
            if keyword:
                expr = f"({expr}) and ({keyword})" if expr else keyword
            argv += ["-k", expr] if expr else []
            argv += ["--runs", str(runs)] if runs > 1 else []
            job = self.jobs.start("run", argv)
        return await follow(job, ctx, _WHOLE_JOB if wait else 0)

    async def job_status(self, ctx: Context, job: str, wait_seconds: float = 0) -> dict[str, Any]:
        """A job's state, last log lines and results; waits up to wait_seconds for it to end."""
        with tool_errors():
            found = self.jobs.get(job)
        return await follow(found, ctx, max(0.0, wait_seconds))

    async def stop_job(self, job: str) -> dict[str, Any]:
        """Stop a running job and its guests."""
        with tool_errors():
            found = self.jobs.get(job)
        await anyio.to_thread.run_sync(self.jobs.stop, found)
        return found.status().to_json()

    async def run_command(self, kernel: str, command: str, timeout: float = 60) -> dict[str, Any]:
        """Boot a kernel, run one shell command in it: output, exit status, kernel reports."""
        kernels_file, base = self.settings.kernels_file, str(self.base)
        with tool_errors():
            if timeout <= 0:
                raise UserError(f"timeout must be more than 0 seconds, got {timeout}")
            outcome = await anyio.to_thread.run_sync(
                lambda: run_in_guest(kernels_file, kernel, command, timeout, base)
            )
        return outcome.to_json()

    async def test_series(
        self,
        ctx: Context,
        kernel: str,
        patch: str | None = None,
        patch_file: str | None = None,
        tests: list[str] | None = None,
        wait: bool = False,
    ) -> dict[str, Any]:
        """Build a build: kernel and test it after each patch (patch text or a file/mbox/dir)."""
        with tool_errors():
            self._check_kernels([kernel])
            check_tests(tests or [])
            if (patch is None) == (patch_file is None):
                raise UserError("give exactly one of 'patch' (the text) or 'patch_file' (a path)")
            if patch is not None:
                patch_file = str(self.jobs.save_patch(patch))  # a file per call, never shared
            series = SeriesCommand(
                kernel, str(patch_file), tests=tuple(tests or ()), results_dir=str(self.base)
            )
            argv = harness_args(self.settings.kernels_file, series.argv())
            job = self.jobs.start("series", argv)
        return await follow(job, ctx, _WHOLE_JOB if wait else 0)

    async def bisect(
        self,
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
            argv = ["-m", "harness", "--kernels-file", str(self.settings.kernels_file), "bisect"]
            argv += ["--tree", tree, "--good", good, "--bad", bad, "--test", test]
            argv += ["--runs", str(runs), "--results-dir", str(self.base), "--sandbox"]
            job = self.jobs.start("bisect", argv)
        return await follow(job, ctx, _WHOLE_JOB if wait else 0)

    def read_results(
        self,
        results: str | None = None,
        test: str | None = None,
        kernel: str | None = None,
        what: str = "report",
        offset: int = 0,
        limit: int = 20000,
    ) -> dict[str, Any]:
        """A run's summary (no test), or one test's report/stdout/stderr/console/result, paged."""
        with tool_errors():
            run, summary = reading.load(self.base, results)
            if test is None:
                return reading.brief(run, summary)
            record = reading.find_test(summary, test, kernel)
            return reading.evidence_page(run, record, what, offset, limit).to_json()

    def compare_runs(self, old: str, new: str) -> dict[str, Any]:
        """Regressions, fixes and changed crashes from run OLD to run NEW."""
        with tool_errors():
            before = load_run(str(reading.run_dir(self.base, old)))
            after = load_run(str(reading.run_dir(self.base, new)))
            result = compare(before, after)
        return {"text": result.render(), **result.to_json()}

    def _check_kernels(self, names: list[str]) -> None:
        """UserError naming an unknown kernel, with the known ones."""
        select(load_kernels(self.settings.kernels_file), names, self.settings.kernels_file)


#: every tool served, with the hints a client shows before calling it
TOOLS: tuple[tuple[str, ToolAnnotations], ...] = (
    ("list_kernels", READ_ONLY),
    ("run_tests", WORKS),
    ("job_status", READ_ONLY),
    ("stop_job", STOPS),
    ("run_command", WORKS),
    ("test_series", WORKS),
    ("bisect", WORKS),
    ("read_results", READ_ONLY),
    ("compare_runs", READ_ONLY),
)


def build_server(settings: Settings, jobs: Jobs) -> MCPServer:
    """The server and its tools (:data:`TOOLS`, served by :class:`Tools`)."""
    server = MCPServer("kharness", instructions=INSTRUCTIONS)
    tools = Tools(settings, jobs)
    for name, hints in TOOLS:
        server.tool(annotations=hints)(getattr(tools, name))
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
