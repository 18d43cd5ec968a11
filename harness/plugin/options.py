"""The harness's command-line options, and the checks a value needs before anything runs.

Usable from plain pytest as from ``python -m harness run``, which passes them on.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from harness import paths
from harness.commands.adhoc import AdHocKernels
from harness.commands.adhoc import add_options as add_adhoc_options
from harness.display import progress as progress_mod
from harness.machine.accel import Accel
from harness.machine.backends import BACKENDS
from harness.machine.capture import OutputLimit
from harness.results import pass_rate


def add_options(parser: pytest.Parser) -> None:
    """Register the options in pytest's ``kharness`` group (the ad-hoc kernels in their own)."""
    group = parser.getgroup("kharness", "kernel test harness")
    _where_options(group)
    _guest_options(group)
    _run_options(group)
    adhoc = parser.getgroup("kharness-adhoc", "kernels without a kernels.yaml entry")
    add_adhoc_options(adhoc.addoption)


def _where_options(group: pytest.OptionGroup) -> None:
    """Which kernels, from which kernels.yaml, and where the results go."""
    group.addoption(
        "--kernel",
        action="append",
        default=[],
        metavar="NAME",
        help="run only on this kernel from kernels.yaml (repeatable)",
    )
    group.addoption(
        "--kernels-file",
        default=None,
        metavar="PATH",
        help="kernels.yaml to use (default: kernels.yaml in the rootdir)",
    )
    group.addoption(
        "--results-dir",
        default=None,
        metavar="DIR",
        help="base directory for results (default: results/ in the rootdir)",
    )
    group.addoption(
        "--run-dir",
        default=None,
        metavar="DIR",
        help="exact results directory for this run (python -m harness run sets it)",
    )


def _guest_options(group: pytest.OptionGroup) -> None:
    """How every guest starts: accelerator, backend, isolation, snapshots."""
    group.addoption(
        "--accel",
        choices=[a.value for a in Accel],
        default=None,
        help="override every kernel's accelerator (auto picks KVM only where it works)",
    )
    group.addoption(
        "--backend",
        default=None,
        metavar="{" + ",".join(sorted(BACKENDS)) + "}",  # a plugin's are checked in load_specs()
        help="boot every kernel with this backend (default: each kernel's backend:, qemu)",
    )
    group.addoption(
        "--isolation",
        choices=["kernel", "test"],
        default=None,
        help="test: every test starts from the guest's restored snapshot; kernel: tests share "
        "a guest, restored after a crash (default: each kernel's isolation:, kernel)",
    )
    group.addoption(
        "--no-snapshots",
        action="store_true",
        default=False,
        help="never save or restore a guest's state: every fresh guest is a cold boot",
    )
    group.addoption(
        "--keep-snapshots",
        action="store_true",
        default=False,
        help="keep each kernel's ready guest in the cache across runs (kernels.yaml: snapshot: "
        "keep): the next run's first test starts from a restore, not a boot",
    )


def _run_options(group: pytest.OptionGroup) -> None:
    """What is shown while it runs, how often each test runs, how much output is kept."""
    group.addoption(
        "--progress",
        choices=[m.value for m in progress_mod.Mode],
        default=os.environ.get("KHARNESS_PROGRESS", "auto"),
        help="feedback during downloads, builds, boots and tests: a live line on a terminal "
        "(auto: off with -q or when not a terminal), plain timestamped lines (CI), or off "
        "(default: $KHARNESS_PROGRESS, else auto)",
    )
    group.addoption(
        "--console",
        action="store_true",
        default=False,
        help="stream each guest's console live, prefixed by kernel name (also -vv)",
    )
    group.addoption(
        "--runs",
        type=pass_rate.runs_count,
        default=1,
        metavar="N",
        help="run each guest test N times and report its pass rate; a test that both "
        "passed and failed is flaky (default: 1)",
    )
    group.addoption(
        "--max-output",
        type=_output_limit,
        default=OutputLimit(),
        metavar="SIZE",
        help="how much of each test's stdout and of its stderr the evidence keeps: the first "
        "and last SIZE/2, with a line saying how much was dropped between (default: 1M)",
    )
    group.addoption(
        "--port-range",
        default=None,
        metavar="LOW-HIGH",
        help="loopback ports to choose the SSH forward from (default: any free)",
    )


def _output_limit(text: str) -> OutputLimit:
    try:
        return OutputLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def adhoc_kernels(config: pytest.Config) -> AdHocKernels:
    """The ad-hoc kernel options (:mod:`harness.commands.adhoc`)."""
    return AdHocKernels.read(config.getoption)


def kernels_file(config: pytest.Config) -> Path:
    """The kernels.yaml in effect: --kernels-file, else the one in the rootdir."""
    return paths.kernels_file(config.getoption("kernels_file"), config.rootpath)


def port_range(config: pytest.Config) -> tuple[int, int] | None:
    """--port-range as (low, high), None for any free port; a usage error when malformed."""
    text = config.getoption("port_range")
    if not text:
        return None
    low, _, high = text.partition("-")
    if not (low.isdigit() and high.isdigit() and 0 < int(low) <= int(high) < 65536):
        raise pytest.UsageError(f"--port-range '{text}' must look like 40000-40100")
    return int(low), int(high)
