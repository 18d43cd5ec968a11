"""The grammar every subcommand shares: how a kernel is named, and what goes after ``--``.

A kernel of kernels.yaml is ``--kernel NAME`` everywhere (repeatable where
several make sense); ``boot`` and ``series`` once took it as a positional
word, which still works with a note, so old scripts keep running.  Kept
apart from :mod:`harness.commands.cli` so the subcommands defined in their own
modules (series, bisect, rerun) use the same words without importing it.
"""

from __future__ import annotations

import argparse
import sys

from harness.errors import UserError


def add_kernel_option(parser: argparse.ArgumentParser, what: str, dest: str = "kernel") -> None:
    """``--kernel NAME``, repeatable: how every subcommand names a kernel of kernels.yaml."""
    parser.add_argument(
        "--kernel",
        action="append",
        default=[],
        dest=dest,
        metavar="NAME",
        help=what if "one" in what else f"{what} (repeatable)",
    )


def add_old_positional(parser: argparse.ArgumentParser) -> None:
    """The positional kernel name ``boot`` and ``series`` took before ``--kernel``."""
    parser.add_argument("name", nargs="?", help="deprecated: use --kernel NAME")


def one_kernel(command: str, given: list[str], positional: str | None) -> str:
    """The one kernel ``command`` works on: ``--kernel NAME`` or the old positional NAME.

    A UserError shows the grammar when none or several are given.
    """
    names = list(dict.fromkeys([*given, *([positional] if positional else [])]))
    if positional:
        print(
            f"kharness: note: '{command} {positional}' is now '{command} --kernel {positional}'",
            file=sys.stderr,
        )
    if len(names) != 1:
        also = f" (given: {', '.join(names)})" if names else ""
        raise UserError(
            f"{command} needs exactly one kernel: kharness {command} --kernel NAME{also}"
        )
    return names[0]
