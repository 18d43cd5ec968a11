"""The xdist controller's hooks: the results directory for workers, the selection, lost workers.

Registered only on a controller that hands guest tests to workers
(:func:`configure_controller`); what workers and controller both read is in
:mod:`harness.plugin.xdist`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _pytest
import pytest

from harness.outcome import Outcome
from harness.plugin.shipping import Shipment
from harness.plugin.state import RunState
from harness.plugin.xdist import (
    CONSOLE_KEY,
    DIST,
    GROUP_KEY,
    RELAY_KEY,
    REMOTE_KEY,
    RUN_DIR_KEY,
    is_worker,
    kernel_scope,
    make_scheduler,
    pair_of,
    strip_group,
    worker_input,
)
from harness.results.records import TestRecord


def configure_controller(config: pytest.Config, state: RunState) -> None:
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
    config.pluginmanager.register(XdistController(config, state), "kharness-xdist")


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


class XdistController:
    """Controller-side hooks: results directory for workers, collected pairs, lost workers."""

    def __init__(self, config: pytest.Config, state: RunState) -> None:
        self.config = config
        self.state = state

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Tell each worker where evidence goes: our directory, or its own on another host."""
        node.workerinput[RUN_DIR_KEY] = str(self.state.results.path())
        node.workerinput[REMOTE_KEY] = not node.gateway.spec.popen
        node.workerinput[GROUP_KEY] = True
        relay = self.state.feedback.relay() if node.gateway.spec.popen else None
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
        own = {Path(pytest.__file__).resolve().parent, Path(_pytest.__file__).resolve().parent}
        manager.roots = [root for root in manager.roots if Path(root).resolve() not in own]

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Work units are kernels (see :func:`make_scheduler`)."""
        return make_scheduler(config, log) if config.getoption("dist") == DIST else None

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        """The controller collects nothing itself: the workers' ids are the selection."""
        self.state.inbox.selection = [pair_of(i) for i in ids if "::" in i]

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """A lost ssh host is not dialled again; its kernels go to the other hosts."""
        dsession = self.config.pluginmanager.getplugin("dsession")
        if dsession is None or not hasattr(dsession, "_clone_node"):
            return
        clone = dsession._clone_node

        def clone_local_only(node: Any) -> Any:
            if node.gateway.spec.popen:
                return clone(node)
            self.state.log(f"test host {node.gateway.spec.ssh} lost: not reconnecting")
            return None

        dsession._clone_node = clone_local_only

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        """A worker that went down with an error: tests it never reached are reported not run."""
        if error:
            self.state.inbox.lost_worker = True

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
        self.state.inbox.lost_worker = True
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
    """Where a serial run's report says the test is (GuestItem.reportinfo in kind_guest)."""
    test, kernel = pair_of(nodeid)
    return nodeid.split("::")[0], 0, f"{test} on {kernel}"
