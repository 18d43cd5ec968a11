"""pytest-xdist glue: kernels side by side (``-n N``) and on other hosts (``--tx ssh=``).

xdist does the scheduling (its ``loadgroup`` mode); this module only tells it
what belongs together and what a lost worker means:

* every item of a kernel is in the ``xdist_group`` named after the kernel
  (set where items are made, :mod:`harness.pytest_plugin`), and any
  distributed run uses ``--dist loadgroup``: one worker runs all tests of one
  kernel on one boot, in collection order, which is kernels.yaml order;
* the controller makes the results directory and gives its path to local
  workers (``workerinput``); a worker on another host writes into a scratch
  directory of its own and ships the files back with its reports
  (:mod:`harness.shipping`); only the controller writes the summary and the
  reports, from those reports;
* a worker that dies (killed, out of memory, its host lost) leaves the
  unfinished tests of the kernel it was running as errors that say so; xdist
  hands its other kernels to the remaining workers; a lost ssh host is not
  dialled again (a local worker is replaced, as xdist does);
* a local worker's progress (downloads, builds, boots, tests) reaches the
  controller through :mod:`harness.progress_relay`, which shows it marked
  with the worker's id; a worker on another host shows none;
* ``-n auto`` asks :func:`auto_workers`: as many guests as the cores hold
  their vCPUs and the available memory holds their RAM, at most one per kernel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.outcome import Outcome
from harness.records import TestRecord
from harness.shipping import Shipment

if TYPE_CHECKING:
    from harness.config import KernelSpec
    from harness.pytest_plugin import HarnessRun

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


def configure_controller(config: pytest.Config, run: HarnessRun) -> None:
    """Group by kernel, refuse what xdist would turn into a traceback, register the hooks.

    Runs before xdist's own ``pytest_configure`` makes its session, so the
    distribution mode set here is the one the workers get.
    """
    if is_worker(config):
        # a worker parses the command line again, without what the controller
        # decided: the grouping comes with workerinput
        if worker_input(config).get(GROUP_KEY):
            config.option.loadgroup = True
        return
    if not config.getoption("tx", None):
        return
    if config.getoption("dist", "no") in ("no", "load"):
        config.option.dist = DIST
    elif config.getoption("dist") != DIST:
        raise pytest.UsageError(
            f"--dist {config.getoption('dist')}: the harness runs all tests of one kernel on one "
            f"worker; use --dist {DIST} (the default with -n or --tx)"
        )
    if any("ssh=" in str(tx) for tx in config.getoption("tx")):
        _check_remote_args(config)
    config.pluginmanager.register(XdistController(config, run), "kharness-xdist")


def _check_remote_args(config: pytest.Config) -> None:
    """xdist rewrites existing paths among the arguments for rsync, which is not used here.

    A path argument would stop the run with xdist's ValueError; say instead
    how to give the same thing without one.
    """
    here = config.invocation_params.dir
    for arg in config.invocation_params.args:
        arg = str(arg)
        if not arg.startswith("-") and (here / arg.split("::")[0]).exists():
            raise pytest.UsageError(
                f"'{arg}': with ssh hosts (--tx ssh=...) name no paths on the command line; "
                "run from the project directory with -o testpaths=guest-tests (python -m "
                "harness run --hosts does this) and give options as --option=value"
            )


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


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's loadgroup scheduler, grouping by the kernel a node id ends with.

    xdist marks a group by appending ``@<group>`` to the node id on the
    worker, which pytest 9.2's structured node ids no longer let it do (the
    marks are there, the ids stay plain, every test became its own group).
    The kernel is the last part of every harness node id anyway, so the scope
    is read from there; xdist still does all the scheduling.
    """
    from xdist.scheduler import LoadGroupScheduling

    class KernelGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return kernel_scope(nodeid)

    return KernelGroups(config, log)


class XdistController:
    """Controller-side hooks: results directory for workers, collected pairs, lost workers."""

    def __init__(self, config: pytest.Config, run: HarnessRun) -> None:
        self.config = config
        self.run = run

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Tell each worker where evidence goes: our directory, or its own on another host."""
        node.workerinput[RUN_DIR_KEY] = str(self.run.run_dir())
        node.workerinput[REMOTE_KEY] = not node.gateway.spec.popen
        node.workerinput[GROUP_KEY] = True
        relay = self.run.progress_relay() if node.gateway.spec.popen else None
        if relay is not None:  # a host elsewhere cannot reach it: its reports still come
            node.workerinput[RELAY_KEY], node.workerinput[CONSOLE_KEY] = relay

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: Sequence[Any]) -> None:
        """Copy no pytest onto the hosts: each runs the pytest of its own venv.

        For every ssh (or ``chdir``) spec xdist rsyncs its own ``pytest`` and
        ``_pytest`` packages into the worker's directory, which for a test host
        is the project checkout: the copies stayed there and shadowed the host's
        installed pytest.  Hosts are set up with ``make setup`` at the same
        commit, so they have pytest; directories a user names with
        ``--rsyncdir`` are still sent.
        """
        dsession = config.pluginmanager.getplugin("dsession")
        manager = getattr(dsession, "nodemanager", None)
        if manager is None:
            return
        import _pytest

        own = {Path(pytest.__file__).resolve().parent, Path(_pytest.__file__).resolve().parent}
        manager.roots = [root for root in manager.roots if Path(root).resolve() not in own]

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Work units are kernels (see :func:`make_scheduler`)."""
        return make_scheduler(config, log) if config.getoption("dist") == DIST else None

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        """The controller collects nothing itself: the workers' ids are the selection."""
        self.run.selected([pair_of(i) for i in ids if "::" in i])

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """A lost ssh host is not dialled again; its kernels go to the other hosts."""
        dsession = self.config.pluginmanager.getplugin("dsession")
        if dsession is None or not hasattr(dsession, "_clone_node"):
            return
        clone = dsession._clone_node

        def clone_local_only(node: Any) -> Any:
            if node.gateway.spec.popen:
                return clone(node)
            self.run.log(f"test host {node.gateway.spec.ssh} lost: not reconnecting")
            return None

        dsession._clone_node = clone_local_only

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        """A worker that went down with an error: tests it never reached are reported not run."""
        if error:
            self.run.lost_worker = True

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        """The dead worker's kernel: its unfinished tests become errors, nothing re-runs them.

        xdist has already put the dead worker's work back in the queue; the
        unit of the kernel it was running is taken out again (a new boot
        elsewhere would hide that the worker died), its other kernels stay
        queued for the remaining workers.
        """
        node = report.node
        spec = node.gateway.spec
        who = f"test host {spec.ssh}" if spec.ssh else f"worker {node.gateway.id}"
        crashed = strip_group(crashitem)
        self.run.lost_worker = True
        unit = sched.workqueue.pop(kernel_scope(crashitem), {})
        _, kernel = pair_of(crashitem)
        why = (
            f"infrastructure error: {who} was lost while running {crashed} on kernel "
            f"{kernel}; not a kernel verdict (kernels it had not started go to other workers)"
        )
        self._error(report, crashed, why)
        for nodeid, done in unit.items():
            if not done and nodeid != crashitem:
                rest = pytest.TestReport(
                    nodeid=strip_group(nodeid),
                    location=_location(nodeid),
                    keywords={},
                    outcome="failed",
                    longrepr="",
                    when="setup",
                )
                rest.node = node  # type: ignore[attr-defined]
                self._error(
                    rest,
                    rest.nodeid,
                    f"infrastructure error: not run, {who} was lost while running {crashed} "
                    f"on the same kernel ({kernel})",
                )
                self.config.hook.pytest_runtest_logreport(report=rest)

    @staticmethod
    def _error(report: Any, nodeid: str, why: str) -> None:
        """Make ``report`` a setup error of ``nodeid`` carrying an ERROR record."""
        report.nodeid = nodeid
        report.location = _location(nodeid)
        report.when = "setup"
        report.outcome = "failed"
        report.longrepr = why
        test, kernel = pair_of(nodeid)
        Shipment((TestRecord(test, kernel, Outcome.ERROR, why),)).attach(report)


def _location(nodeid: str) -> tuple[str, int, str]:
    """Where a serial run's report says the test is (GuestItem.reportinfo)."""
    test, kernel = pair_of(nodeid)
    return nodeid.split("::")[0], 0, f"{test} on {kernel}"


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
