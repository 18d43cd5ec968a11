"""``kharness bisect``: the command line of :mod:`harness.commands.bisect`.

Every argument is checked (the tree's range, the kernel entry, the test, the
regex, the config) before a results directory is made or anything builds.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path

from harness.commands.bisect import (
    BisectPlan,
    bisect,
    check_range,
    confidence,
    kernel_spec,
    read_steps,
)
from harness.config import untrusted
from harness.errors import UserError
from harness.kernels.build import BuildRecipe, make_recipe
from harness.kernels.config_fragments import BASE_CONFIGS, read_fragment
from harness.paths import kernels_file as kernels_path
from harness.paths import results_base
from harness.results import provenance
from harness.results.evidence import new_run_dir
from harness.results.pass_rate import runs_count
from harness.testkinds.trial import DEFAULT_TESTS_DIR, select_tests


def recipe_from_args(values: list[str]) -> BuildRecipe:
    """``--kernel-config`` values: a base (tinyconfig, defconfig...) and/or fragment files."""
    bases = [v for v in values if v in BASE_CONFIGS]
    if len(bases) > 1:
        raise UserError(
            f"--kernel-config names several base configs ({', '.join(bases)}); "
            "give one, plus fragment files"
        )
    fragments = tuple(Path(v).resolve() for v in values if v not in BASE_CONFIGS)
    for path in fragments:
        read_fragment(path)  # FragmentError names a missing file or a bad line
    return make_recipe(bases[0] if bases else "tinyconfig", fragments)


def cmd_bisect(args: argparse.Namespace) -> int:
    """The ``bisect`` subcommand."""
    if args.kernel:
        raise UserError(
            f"bisect --kernel {args.kernel[0]}: bisect builds each commit of --tree; to boot "
            f"the steps with that entry's cmdline, memory, timeouts, use --settings-from "
            f"{args.kernel[0]}"
        )
    if args.signature is not None:
        try:
            re.compile(args.signature)
        except re.error as exc:
            raise UserError(f"--signature '{args.signature}' is not a valid regex: {exc}") from None
    tree = Path(args.tree).expanduser().resolve()
    recipe = replace(recipe_from_args(args.kernel_config), sandbox=args.sandbox)
    select_tests([args.test], Path(args.tests_dir))
    kernels_file = Path(args.kernels_file).resolve() if args.kernels_file else None
    spec = kernel_spec(args.settings_from, kernels_file)  # a wrong name: one error, up front
    if spec is not None and args.sandbox:
        untrusted(spec)  # its backend must not show the host to the guest
    check_range(tree, args.good, args.bad)  # before a results directory is made
    results = new_run_dir(results_base(args.results_dir))
    provenance.record(results, kernels_file or kernels_path(None), [], [args.test])
    plan = BisectPlan(
        tree,
        args.test,
        recipe,
        results,
        args.signature,
        args.runs,
        Path(args.tests_dir),
        args.settings_from,
        kernels_file,
    )
    result = bisect(plan, args.good, args.bad)
    sure = confidence(read_steps(results), plan.runs)
    if result.first_bad is None:
        print(f"bisect: no single first bad commit found (skipped commits?); log: {result.log}")
        print(result.output[-2000:])
        print(sure)
        return 1
    print(f"first bad commit: {result.first_bad} {result.subject}\n{sure}\nlog: {result.log}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``bisect`` on the harness CLI."""
    p = subparsers.add_parser("bisect", help="find the commit that broke a guest test")
    p.add_argument("--good", required=True, help="a commit where the test passes")
    p.add_argument("--bad", required=True, help="a later commit where it fails")
    p.add_argument("--test", required=True, help="guest test (guest-tests/c/NAME.c, sh/NAME.sh)")
    p.add_argument("--tree", required=True, help="the kernel git checkout (not modified)")
    p.add_argument(
        "--kernel-config",
        action="append",
        default=[],
        metavar="BASE|FRAGMENT",
        help="tinyconfig (default) or defconfig, and/or config fragment files",
    )
    p.add_argument(
        "--settings-from",
        metavar="NAME",
        help="boot each step with this kernels.yaml entry's cmdline, memory, timeouts, ... "
        "(default: the harness defaults)",
    )
    # the kernel under test is --tree at each step; --kernel would name another one
    p.add_argument("--kernel", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="the tree is untrusted: build each step in bubblewrap, boot it on QEMU only",
    )
    p.add_argument(
        "--signature", metavar="REGEX", help="regex on kernel report titles: only that bug is bad"
    )
    p.add_argument(
        "--runs", type=runs_count, default=1, metavar="N", help="runs per commit for a flaky test"
    )
    p.add_argument(
        "--results-dir", metavar="DIR", help="base directory for results (default: results/)"
    )
    p.add_argument("--tests-dir", default=str(DEFAULT_TESTS_DIR), help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_bisect)
