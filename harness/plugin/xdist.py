"""pytest-xdist glue: kernels side by side (``-n N``) and on other hosts (``--tx ssh=``).

xdist does the scheduling (its ``loadgroup`` mode); the harness only tells it
what belongs together and what a lost worker means:

* every item of a kernel is in the ``xdist_group`` named after the kernel
  (set where items are made, :mod:`harness.plugin.marks`), and any
  distributed run uses ``--dist loadgroup``: one worker runs all tests of one
  kernel on one boot, in collection order, which is kernels.yaml order;
* the controller makes the results directory and gives its path to local
  workers (``workerinput``); a worker on another host writes into a scratch
  directory of its own and ships the files back with its reports
  (:mod:`harness.plugin.shipping`); only the controller writes the summary and
  the reports, from those reports;
* a worker that dies (killed, out of memory, its host lost) leaves the
  unfinished tests of the kernel it was running as errors that say so; xdist
  hands its other kernels to the remaining workers; a lost ssh host is not
  dialled again (a local worker is replaced, as xdist does);
* a local worker's progress (downloads, builds, boots, tests) reaches the
  controller through :mod:`harness.plugin.relay`, which shows it marked
  with the worker's id; a worker on another host shows none;
* ``-n auto`` asks :func:`auto_workers`: as many guests as the cores hold
  their vCPUs and the available memory holds their RAM, at most one per kernel.

This module holds what both sides read (the workerinput keys, node ids, the
scheduler); the controller's hooks are in :mod:`harness.plugin.xdist_controller`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadGroupScheduling

from harness.config import KernelSpec

#: the xdist distribution mode every distributed harness run uses
DIST = "loadgroup"
#: workerinput keys the controller sets for each worker
RUN_DIR_KEY = "kharness_run_dir"
REMOTE_KEY = "kharness_remote"
GROUP_KEY = "kharness_loadgroup"
RELAY_KEY = "kharness_progress_relay"  # where a local worker sends its progress
CONSOLE_KEY = "kharness_console"  # whether it streams guest consoles (--console)
#: what QEMU and the guest need on top of the guest's RAM (MiB)
GUEST_OVERHEAD_MIB = 256


def is_worker(config: pytest.Config) -> bool:
    """Whether this process is an xdist worker (it runs items, the controller reports)."""
    return hasattr(config, "workerinput")


def worker_input(config: pytest.Config) -> dict[str, Any]:
    """What the controller sent this worker (empty outside xdist workers)."""
    return dict(getattr(config, "workerinput", {}))


def is_distributed(config: pytest.Config) -> bool:
    """Whether this is an xdist controller handing items to workers."""
    return bool(config.getoption("tx", None)) and config.getoption("dist", "no") != "no"


def strip_group(nodeid: str) -> str:
    """The node id without the ``@<group>`` xdist's loadgroup appends on workers.

    Only a suffix naming the id's own kernel is taken off, so reports read
    exactly as in a serial run.
    """
    base, at, group = nodeid.rpartition("@")
    if at and base.endswith("::" + group):
        return base
    return nodeid


def pair_of(nodeid: str) -> tuple[str, str]:
    """(test, kernel) of a guest test's node id (``guest-tests/c/<test>.c::<kernel>``)."""
    path, _, kernel = strip_group(nodeid).rpartition("::")
    name = Path(path).name
    return (Path(name).stem if "." in name else name), kernel


def kernel_scope(nodeid: str) -> str:
    """The work unit of a node id: its kernel (the part after the last ``::``)."""
    return strip_group(nodeid).rpartition("::")[2]


class KernelGroups(LoadGroupScheduling):
    """xdist's loadgroup scheduler, grouping by the kernel a node id ends with.

    xdist marks a group by appending ``@<group>`` to the node id on the
    worker, which pytest 9.2's structured node ids no longer let it do (the
    marks are there, the ids stay plain, every test became its own group).
    The kernel is the last part of every harness node id anyway, so the scope
    is read from there; xdist still does all the scheduling.
    """

    def _split_scope(self, nodeid: str) -> str:
        return kernel_scope(nodeid)


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """The scheduler of a distributed harness run (see :class:`KernelGroups`)."""
    return KernelGroups(config, log)


def auto_workers(
    specs: Sequence[KernelSpec], cores: int | None = None, available_mib: int | None = None
) -> int:
    """How many guests run side by side: cores over vCPUs, memory over RAM, kernels.

    Each guest takes its kernel's vCPUs (under TCG each one keeps a core
    busy) and its RAM plus QEMU's own; more workers than kernels would idle.
    """
    if not specs:
        return 1
    cores = cores if cores is not None else len(os.sched_getaffinity(0))
    available_mib = available_mib if available_mib is not None else _available_mib()
    cpus = max(s.cpus for s in specs)
    memory = max(s.memory_mib for s in specs) + GUEST_OVERHEAD_MIB
    return max(1, min(cores // cpus, available_mib // memory, len(specs)))


def _available_mib() -> int:
    """MemAvailable from /proc/meminfo (MiB)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0
