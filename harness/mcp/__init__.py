"""``kharness mcp``: the harness as a Model Context Protocol server (stdio).

Coding agents drive kernel work too; this serves them the harness's verbs
with the official ``mcp`` SDK: list kernels, run tests, boot a kernel and run
one command, test a series, bisect, read results, compare runs.  Long work
(runs, series, bisects) is a job: a subprocess of the same CLI a person
types, with its own results directory and log, progress notifications while
a caller waits, and a status call.  Nothing here writes to stdout (it is the
protocol's); every failure comes back as a tool error with the CLI's text.

:mod:`.jobs` runs and tracks jobs, :mod:`.reading` pages through results,
:mod:`.command` boots a kernel for one command, :mod:`.server` is the tool
table.
"""

from __future__ import annotations

import argparse


def _cmd_mcp(args: argparse.Namespace) -> int:
    from harness.mcp.server import cmd_mcp  # the SDK loads only for this subcommand

    return cmd_mcp(args)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``mcp`` on the harness CLI."""
    p = subparsers.add_parser(
        "mcp", help="serve the harness to MCP clients (coding agents) over stdio"
    )
    p.add_argument("--results-dir", help="base directory for jobs' results (default: results/)")
    p.set_defaults(func=_cmd_mcp)
