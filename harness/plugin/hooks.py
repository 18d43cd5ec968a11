"""The pytest plugin: guest tests become one item per kernel (``pytest_plugins`` names this).

This module only hooks; each hook hands its work to the object that owns it:
options (:mod:`~harness.plugin.options`), the session state under its
StashKey (:mod:`~harness.plugin.state`), the kinds of items
(:mod:`~harness.plugin.kinds`), what reports carry
(:mod:`~harness.plugin.shipping_out`, :mod:`~harness.plugin.shipping_in`), the summary
(:mod:`~harness.plugin.summary`) and xdist (:mod:`~harness.plugin.xdist_controller`).

Items are ordered kernel by kernel so each kernel boots once; the guest stops
after its kernel's last item.  An interrupted session (Ctrl-C, SIGTERM) still
writes every report, marked interrupted, with the tests it never reached
listed as not run.  The summary and the reports are written from test reports
alone, so a serial run and a run spread over pytest-xdist workers give the
same results directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _pytest.junitxml import xml_key

from harness.config import unknown_expectations
from harness.interrupts import restore_sigterm, sigterm_as_interrupt
from harness.plugin import hookspecs, kinds, options, scope, summary
from harness.plugin.items import HarnessItem, last_of_kernel, order_by_kernel, record_keys
from harness.plugin.shipping_in import rebuild_report
from harness.plugin.state import STATE, RunState, load_specs
from harness.plugin.xdist import auto_workers, is_worker
from harness.plugin.xdist_controller import configure_controller
from harness.testkinds.testdef import known_names


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """The harness's command-line options (also usable from plain pytest), and its hooks."""
    pluginmanager.add_hookspecs(hookspecs)
    options.add_options(parser)


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the distribution mode
def pytest_configure(config: pytest.Config) -> None:
    """Create the run state and register its hooks; nothing boots or downloads yet.

    When guest tests are in scope, kernels.yaml is validated now, so a mistake
    in it is one usage error before anything is collected or booted.
    """
    state = RunState(config)
    config.stash[STATE] = state
    config.pluginmanager.register(SessionHooks(state), "kharness-run")
    if scope.guest_run(config):
        state.specs()
        configure_controller(config, state)  # -n / --tx on guest tests


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` for guest tests: guests side by side as cores and memory allow."""
    if not scope.guest_run(config):
        return None  # the project's own tests: xdist's default (one per core)
    return auto_workers(load_specs(config))


class SessionHooks:
    """The session's hooks, registered in ``pytest_configure`` with the state they serve."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Turn SIGTERM into KeyboardInterrupt so cleanup runs as on Ctrl-C."""
        self.state.old_sigterm = sigterm_as_interrupt()

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.File | None:
        """Guest test files, by the kind that owns them."""
        return kinds.collect_file(file_path, parent)

    @pytest.hookimpl(tryfirst=True)  # before xdist's loadgroup reads the group marks
    def pytest_collection_modifyitems(
        self, session: pytest.Session, items: list[pytest.Item]
    ) -> None:
        """Group items by kernel (in kernels.yaml order) so each kernel boots once.

        A run of the guest-tests directory also gets the items no file stands
        for (KUnit globs, kselftests), first on their kernel.
        """
        if scope.whole_directory(self.state.config):
            items[:0] = kinds.extra_items(session, self.state.specs(), self.state.log)
        if self.state.tests:
            self._check_expectations()
        if any(isinstance(i, HarnessItem) for i in items):
            order_by_kernel(items, self.state.specs())
            self.state.collected = record_keys(items)

    def _check_expectations(self) -> None:
        """``expect:`` naming a guest test that does not exist is a mistake, said before boots."""
        known = known_names(self.state.tests.values())
        problems = unknown_expectations(self.state.specs(), known)
        if problems:
            raise pytest.UsageError(
                f"{options.kernels_file(self.state.config)}: " + "\n  ".join(problems)
            )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The guest tests that will run, once every plugin has selected (-k, -m, ...)."""
        self.state.collected = record_keys(session.items)

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        """Ctrl-C or SIGTERM: the summary must say the run was cut short."""
        self.state.interrupted = True

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """Stop a kernel's guest after its last item."""
        if isinstance(item, HarnessItem) and last_of_kernel(item, nextitem):
            self.state.stop_guest(item.spec.name)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """A harness item's report: its verdict as the failure, its records on board."""
        report = yield
        if isinstance(item, HarnessItem):
            item.explain(report, call)
            self.state.outbox.ship(report, self.state.runs, self.state.results)
        return report

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_report_from_serializable(
        self, config: pytest.Config, data: dict[str, Any]
    ) -> pytest.TestReport | None:
        """A worker's report as a serial run would have made it."""
        return rebuild_report(data, self.state.results.path, self.state.log)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """The controller (or a serial run) takes the records a report carries."""
        if not is_worker(self.state.config):
            self.state.inbox.take(report, self.state.config.stash.get(xml_key, None))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Stop every guest, whatever happened, and write the summary."""
        self.state.close()
        restore_sigterm(self.state.old_sigterm)
        if is_worker(self.state.config):
            self.state.results.discard_scratch()
            return  # the controller writes the results
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.state.interrupted = True
        if self.state.results.made or (self.state.interrupted and self.state.pairs()):
            summary.write_summary(self.state)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say where the evidence is."""
        summary.terminal_summary(terminalreporter, self.state)
