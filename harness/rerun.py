"""``kharness rerun RESULTS_DIR``: the same kernels and tests again, compared with the first run."""

from __future__ import annotations

import argparse

from harness.errors import UserError


def cmd_rerun(args: argparse.Namespace) -> int:
    """The ``rerun`` subcommand."""
    raise UserError("kharness rerun: not yet")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``rerun`` on the harness CLI."""
    p = subparsers.add_parser(
        "rerun", help="run a results directory's kernels and tests again and compare"
    )
    p.add_argument("run_dir", metavar="RESULTS_DIR", help="a results directory (results/<run>)")
    p.set_defaults(func=cmd_rerun)
