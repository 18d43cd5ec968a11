"""One pytest session's state, stored in ``config.stash[STATE]``: no module globals.

The kernels selected from kernels.yaml, the run context and its guests, the
guest tests collected, and the objects that own the results directory, the
progress display and the records travelling with test reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import config as config_mod
from harness.commands.adhoc import combine
from harness.errors import HarnessError
from harness.machine.accel import Accel
from harness.machine.backends import BACKENDS
from harness.plugin import hookspecs
from harness.plugin.options import adhoc_kernels, kernels_file, port_range
from harness.plugin.progress import RunProgress
from harness.plugin.rundir import ResultsDir
from harness.plugin.shipping import KernelShipment
from harness.plugin.shipping_in import Inbox
from harness.plugin.shipping_out import Outbox, kernel_shipment
from harness.results.records import TestRun
from harness.session import KernelGuest, Policy, RunContext, new_context
from harness.testkinds.testdef import GuestTest

STATE = pytest.StashKey["RunState"]()


def load_specs(config: pytest.Config) -> list[config_mod.KernelSpec]:
    """The kernels the command line selects, validated; a usage error names every problem.

    Plugins may add kernel sources and backends (:mod:`harness.plugin.hookspecs`).
    """
    path = kernels_file(config)
    extra = hookspecs.extra_backends(config)
    known = {**BACKENDS, **extra}
    chosen = config.getoption("backend")
    if chosen is not None and chosen not in known:
        names = ", ".join(sorted(known))
        raise pytest.UsageError(f"--backend {chosen}: not a backend; known backends: {names}")
    adhoc = adhoc_kernels(config)
    names = config.getoption("kernel")
    try:
        chosen_specs: list[config_mod.KernelSpec] = []
        if names or not adhoc.given:  # ad-hoc kernels alone need no kernels.yaml
            specs = config_mod.load_kernels(path, hookspecs.extra_providers(config), tuple(extra))
            chosen_specs = config_mod.select(specs, names, path)
        here = config.invocation_params.dir
        chosen_specs = combine(chosen_specs, adhoc.specs(here))
        return config_mod.check_host_tools(chosen_specs)
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None


class RunState:
    """Everything one pytest session knows about kernels, guests and results."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results = ResultsDir(config)
        self.feedback = RunProgress(config)
        self.outbox = Outbox()  # what this process ran, shipped with its reports
        self.inbox = Inbox()  # what the controller writes the results from
        self.guests: dict[str, KernelGuest] = {}
        self.tests: dict[str, GuestTest] = {}
        self.runs: list[TestRun] = []  # made by this process, in the order they ran
        self.collected: list[tuple[str, str]] = []  # (test, kernel) of each guest test item
        self.interrupted = False
        self.old_sigterm: Any = None
        self._specs: list[config_mod.KernelSpec] | None = None
        self._ctx: RunContext | None = None

    def specs(self) -> list[config_mod.KernelSpec]:
        """The selected kernels, validated once."""
        if self._specs is None:
            self._specs = load_specs(self.config)
        return self._specs

    def context(self) -> RunContext:
        """The results directory, keys and compiled tests, made on first use."""
        if self._ctx is None:
            accel = self.config.getoption("accel")
            self._ctx = new_context(
                Path(self.results.path()),
                [self.tests[n] for n in sorted(self.tests)],
                Accel(accel) if accel else None,
                port_range(self.config),
                log=self.log,
                backend=self.config.getoption("backend"),
                progress=self.feedback.start(),
                backends={**BACKENDS, **hookspecs.extra_backends(self.config)},
                policy=Policy(output=self.config.getoption("max_output")),
                isolation=isolation(self.config),
                snapshots=not self.config.getoption("no_snapshots"),
                keep_snapshots=self.config.getoption("keep_snapshots"),
            )
        return self._ctx

    def guest(self, spec: config_mod.KernelSpec) -> KernelGuest:
        """The guest of ``spec``, created on first use with the tests collected for it."""
        if spec.name not in self.guests:
            tests = [self.tests[n] for n in sorted(self.tests)]
            self.guests[spec.name] = KernelGuest(spec, self.context(), tests)
        return self.guests[spec.name]

    def stop_guest(self, kernel: str) -> None:
        """A kernel's last item is done: stop its guest, its record goes out with the report."""
        guest = self.guests.get(kernel)
        if guest is not None:
            guest.shutdown()
            self.outbox.finished = guest

    def log(self, text: str) -> None:
        """A line for the user (nothing on xdist workers, which have no terminal)."""
        self.feedback.log(text)

    def pairs(self) -> list[tuple[str, str]]:
        """(test, kernel) of every guest test of this run, in run order."""
        if self.inbox.selection is not None:
            return list(self.inbox.selection)
        return list(self.collected)

    def backend_of(self, spec: config_mod.KernelSpec) -> str:
        """The backend that boots ``spec``: --backend, else its kernels.yaml entry."""
        return self.config.getoption("backend") or spec.backend

    def kernel_shipments(self) -> dict[str, KernelShipment]:
        """Each kernel's record: shipped by workers, ours the freshest (stopped last)."""
        shipped = dict(self.inbox.kernels)
        for name, guest in self.guests.items():
            shipped[name] = kernel_shipment(guest)
        return shipped

    def close(self) -> None:
        """Stop every guest and the progress display; keep what ran but was not shipped."""
        for guest in self.guests.values():
            guest.shutdown()
        self.feedback.close()
        # a run an interrupt kept from its report still counts (serial runs)
        self.inbox.records.extend(self.outbox.rest(self.runs))


def isolation(config: pytest.Config) -> config_mod.Isolation | None:
    """``--isolation``, overriding every kernel's ``isolation:``; None when not given."""
    value = config.getoption("isolation")
    return config_mod.Isolation(value) if value else None
