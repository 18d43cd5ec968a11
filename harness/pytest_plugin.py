"""pytest integration: guest-tests/c/*.c and sh/*.sh become one test item per kernel.

All plugin state lives in one :class:`HarnessRun` object, stored under a
StashKey and registered as a plugin; no module globals.  Node ids read
``guest-tests/c/<test>.c::<kernel>`` or ``guest-tests/sh/<test>.sh::<kernel>``
(KUnit: :mod:`harness.pytest_kunit`, kselftests: :mod:`harness.pytest_kselftest`).
Items are ordered kernel by kernel so each kernel boots once; the guest stops
after its kernel's last item.

Outcome translation (the only place it happens; :mod:`harness.outcome`
decides the outcome itself):

* pass -> passed; skip -> skipped with the reproducer's reason;
* fail / oops / panic / hang -> failed, raised as the outcome's exception
  (:data:`harness.outcome.EXCEPTIONS`) so a kernels.yaml expectation can
  turn exactly that outcome into xfail;
* boot-fail / build-fail / error -> error (raised during setup).

An interrupted session (Ctrl-C, SIGTERM) still writes every report, marked
interrupted, with the tests it never reached listed as not run.

The summary and the reports are written from test reports alone: each one
carries its records (:mod:`harness.shipping`), so a serial run and a run
spread over pytest-xdist workers (:mod:`harness.pytest_xdist`) give the same
results directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import TerminalRepr
from _pytest._io import TerminalWriter
from _pytest.junitxml import xml_key

from harness import config as config_mod
from harness import progress as progress_mod
from harness import pytest_hookspecs, pytest_xdist, repeats
from harness.errors import HarnessError
from harness.interrupts import restore_sigterm, sigterm_as_interrupt
from harness.machine.accel import Accel
from harness.machine.backends import BACKENDS
from harness.outcome import EXCEPTIONS, Outcome
from harness.progress_relay import RelayProgress, RelayServer
from harness.pytest_kunit import KunitItem, kunit_items
from harness.pytest_marks import mark_for_kernel
from harness.records import (
    KernelRecord,
    OutsideRecord,
    ReportRecord,
    RunSummary,
    TestRecord,
    TestRun,
    not_run_records,
)
from harness.report import failure_text, test_records
from harness.reporters import write_all
from harness.results import new_run_dir
from harness.runner import KernelGuest, RunContext, new_context
from harness.shipping import EvidenceSync, KernelShipment, Shipment
from harness.testdef import KINDS, GuestTest, read_test

STATE = pytest.StashKey["HarnessRun"]()


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """The harness's command-line options (also usable from plain pytest), and its hooks."""
    pluginmanager.add_hookspecs(pytest_hookspecs)
    group = parser.getgroup("kharness", "kernel test harness")
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
    group.addoption(
        "--accel",
        choices=[a.value for a in Accel],
        default=None,
        help="override every kernel's accelerator (auto picks KVM only where it works)",
    )
    group.addoption(
        "--backend",
        default=None,
        metavar="{" + ",".join(sorted(BACKENDS)) + "}",  # a plugin's are checked in specs()
        help="boot every kernel with this backend (default: each kernel's backend:, qemu)",
    )
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
        type=int,
        default=1,
        metavar="N",
        help="run each guest test N times and report its pass rate; a test that both "
        "passed and failed is flaky (default: 1)",
    )
    group.addoption(
        "--port-range",
        default=None,
        metavar="LOW-HIGH",
        help="loopback ports to choose the SSH forward from (default: any free)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Create the run state and register it; nothing boots or downloads yet.

    When guest tests are in scope, kernels.yaml is validated now, so a mistake
    in it is one usage error before anything is collected or booted.
    """
    if config.getoption("runs") < 1:
        raise pytest.UsageError(f"--runs must be at least 1, got {config.getoption('runs')}")
    run = HarnessRun(config)
    config.stash[STATE] = run
    config.pluginmanager.register(run, "kharness-run")
    if _guest_run(config):
        run.specs()
        pytest_xdist.configure_controller(config, run)  # -n / --tx on guest tests


pytest_configure = pytest.hookimpl(tryfirst=True)(pytest_configure)  # before xdist's


def _guest_run(config: pytest.Config) -> bool:
    """Whether guest tests are in scope (an argument, or testpaths when none is given)."""
    args = config.args or config.getini("testpaths")
    return any(
        _targets_guest_tests(config.invocation_params.dir / str(arg).split("::")[0]) for arg in args
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` for guest tests: guests side by side as cores and memory allow."""
    args = config.args or config.getini("testpaths")
    here = config.invocation_params.dir
    if not any(_targets_guest_tests(here / str(a).split("::")[0]) for a in args):
        return None  # the project's own tests: xdist's default (one per core)
    return pytest_xdist.auto_workers(load_specs(config))


def load_specs(config: pytest.Config) -> list[config_mod.KernelSpec]:
    """The kernels --kernels-file and --kernel select; any mistake is one usage error.

    Plugins may add kernel sources and backends (:mod:`harness.pytest_hookspecs`).
    """
    opt = config.getoption("kernels_file")
    path = Path(opt).resolve() if opt else config.rootpath / "kernels.yaml"
    extra = pytest_hookspecs.extra_backends(config)
    chosen = config.getoption("backend")
    if chosen is not None and chosen not in {**BACKENDS, **extra}:
        known = ", ".join(sorted({**BACKENDS, **extra}))
        raise pytest.UsageError(f"--backend {chosen}: not a backend; known backends: {known}")
    try:
        specs = config_mod.load_kernels(
            path, pytest_hookspecs.extra_providers(config), tuple(extra)
        )
        return config_mod.select(specs, config.getoption("kernel"), path)
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None


def _targets_guest_tests(path: Path) -> bool:
    if path.is_file():
        return _is_guest_test(path)
    return path.is_dir() and (
        path.name == "guest-tests"
        or (path / "guest-tests").is_dir()
        or any(_is_guest_test(path / f"x{suffix}") for suffix in KINDS.values())
    )


def _is_guest_test(path: Path) -> bool:
    """guest-tests/c/*.c or guest-tests/sh/*.sh (testdef.KINDS)."""
    kind = path.parent.name
    return KINDS.get(kind) == path.suffix and path.parent.parent.name == "guest-tests"


class HarnessRun:
    """Everything one pytest session knows about kernels, guests and results."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._specs: list[config_mod.KernelSpec] | None = None
        self._ctx: RunContext | None = None
        self._run_dir: Path | None = None
        self.guests: dict[str, KernelGuest] = {}
        self.tests: dict[str, GuestTest] = {}
        self.runs: list[TestRun] = []  # made by this process, shipped with its reports
        self.items: list[GuestItem] = []  # every guest test collected, in run order
        # what the controller writes the results from (a serial run is its own controller)
        self.records: list[TestRecord] = []
        self.kernel_records: dict[str, KernelShipment] = {}
        self._selection: list[tuple[str, str]] | None = None  # (test, kernel) from xdist workers
        self.lost_worker = False  # an xdist worker died: what it never reached is not run
        self._shipped = 0  # self.runs[:_shipped] went out with earlier reports
        self._finished: KernelGuest | None = None  # stopped at this teardown, record to ship
        self._sync: EvidenceSync | None = None  # a worker on another host: files to ship
        self.interrupted = False
        self._old_sigterm: Any = None
        self.progress: progress_mod.Progress = progress_mod.NO_PROGRESS
        self._stream: progress_mod.ReporterStream | None = None  # set when progress is shown
        self._relay: RelayServer | None = None  # an xdist controller showing workers' progress

    # -- configuration -------------------------------------------------
    def specs(self) -> list[config_mod.KernelSpec]:
        """The selected kernels, validated once; a usage error names every problem."""
        if self._specs is None:
            self._specs = load_specs(self.config)
        return self._specs

    def context(self) -> RunContext:
        """The results directory, keys and compiled tests, made on first use."""
        if self._ctx is None:
            run_dir = self.run_dir()
            accel = self.config.getoption("accel")
            tests = [self.tests[n] for n in sorted(self.tests)]
            self._ctx = new_context(
                Path(run_dir),
                tests,
                Accel(accel) if accel else None,
                _port_range(self.config),
                log=self._log,
                backend=self.config.getoption("backend"),
                progress=self._start_progress(),
            )
            extra = pytest_hookspecs.extra_backends(self.config)
            self._ctx = replace(self._ctx, backends={**self._ctx.backends, **extra})
        return self._ctx

    def _start_progress(self) -> progress_mod.Progress:
        """The feedback --progress and --console ask for, written through pytest's reporter.

        An xdist worker has no terminal: it relays its progress to the
        controller when the controller offered a relay (local workers).
        """
        if pytest_xdist.is_worker(self.config):
            given = pytest_xdist.worker_input(self.config)
            if given.get(pytest_xdist.RELAY_KEY) and self.progress is progress_mod.NO_PROGRESS:
                self.progress = RelayProgress(
                    given[pytest_xdist.RELAY_KEY],
                    str(given.get("workerid", "?")),
                    bool(given.get(pytest_xdist.CONSOLE_KEY)),
                )
            return self.progress
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return self.progress
        return self._through_reporter(reporter, *self._progress_mode(reporter))

    def _through_reporter(
        self, reporter: Any, mode: progress_mod.Mode, console: bool
    ) -> progress_mod.Progress:
        """This run's progress in ``mode``, written through pytest's terminal reporter."""
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        width = self.config.get_terminal_writer().fullwidth
        self.progress, self._stream = progress_mod.for_reporter(
            mode, reporter, capman, console, width
        )
        return self.progress

    def _progress_mode(self, reporter: Any) -> tuple[progress_mod.Mode, bool]:
        """The progress mode in effect, and whether the guest console is streamed."""
        verbose = self.config.option.verbose
        console = self.config.getoption("console") or verbose >= 2
        mode = progress_mod.choose(
            progress_mod.Mode(self.config.getoption("progress")),
            bool(reporter.isatty),
            verbose < 0,
            console,
        )
        return mode, console

    def progress_relay(self) -> tuple[str, bool] | None:
        """An xdist controller: the relay workers send progress to (address, console).

        None when progress is off.  The workers' lines are plain, timestamped
        and marked with the worker, even on a terminal: xdist writes its
        reports from the controller's main thread while workers run, and a
        live line redrawn beside those writes would garble both.
        """
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return None
        mode, console = self._progress_mode(reporter)
        if mode is progress_mod.Mode.OFF:
            return None
        if self._relay is None:
            plain = self._through_reporter(reporter, progress_mod.Mode.PLAIN, console)
            self._relay = RelayServer(plain, self._log).start()
        return self._relay.address, console

    def run_dir(self) -> Path:
        """This run's results directory, made on first use (nothing compiled yet)."""
        if self._run_dir is None:
            given = pytest_xdist.worker_input(self.config).get(pytest_xdist.RUN_DIR_KEY)
            given = given or self.config.getoption("run_dir")
            if pytest_xdist.worker_input(self.config).get(pytest_xdist.REMOTE_KEY):
                # another host: a scratch directory, shipped back report by report
                self._run_dir = Path(tempfile.mkdtemp(prefix="kharness-remote-"))
                self._sync = EvidenceSync(self._run_dir)
            elif given is None:
                base = self.config.getoption("results_dir") or self.config.rootpath / "results"
                self._run_dir = new_run_dir(Path(base).resolve())
            else:
                self._run_dir = Path(given)
                self._run_dir.mkdir(parents=True, exist_ok=True)
        return self._run_dir

    def log(self, text: str) -> None:
        """A line for the user (nothing on xdist workers, which have no terminal)."""
        self._log(text)

    def _log(self, text: str) -> None:
        if pytest_xdist.is_worker(self.config):
            if isinstance(self.progress, RelayProgress):
                self.progress.log(text)
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if isinstance(self.progress, progress_mod.LiveProgress):
            self.progress.print(f"[kharness] {text}")  # above the live line, which stays
        elif self._stream is not None:  # plain progress: shown as it happens, not captured
            self._stream.write_line(f"[kharness] {text}")
        elif reporter is not None and self.config.option.verbose >= 0:
            reporter.write_line(f"[kharness] {text}")

    def guest(self, spec: config_mod.KernelSpec) -> KernelGuest:
        """The guest of ``spec``, created on first use with the tests collected for it."""
        if spec.name not in self.guests:
            tests = [self.tests[n] for n in sorted(self.tests)]
            self.guests[spec.name] = KernelGuest(spec, self.context(), tests)
        return self.guests[spec.name]

    # -- hooks -----------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Turn SIGTERM into KeyboardInterrupt so cleanup runs as on Ctrl-C."""
        self._old_sigterm = sigterm_as_interrupt()

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.File | None:
        """Collect guest-tests/c/*.c and guest-tests/sh/*.sh."""
        if _is_guest_test(file_path):
            return CFile.from_parent(parent, path=file_path)
        return None

    @pytest.hookimpl(tryfirst=True)  # before xdist's loadgroup reads the group marks
    def pytest_collection_modifyitems(
        self, session: pytest.Session, items: list[pytest.Item]
    ) -> None:
        """Group items by kernel (in kernels.yaml order) so each kernel boots once.

        A run of the guest-tests directory also gets the KUnit items of kernels
        with ``kunit:`` suites, first on their kernel (KUnit runs at boot), then
        the kselftest items of kernels with ``selftests:`` targets (built before
        the first boot when no KUnit item boots the kernel first).
        """
        if self._whole_directory():
            from harness.pytest_kselftest import kselftest_items  # it imports GuestItem

            kunit = kunit_items(session, [s for s in self.specs() if s.kunit])
            kself = kselftest_items(session, [s for s in self.specs() if s.selftests], self._log)
            items[:0] = kunit + kself
        if not any(isinstance(i, (GuestItem, KunitItem)) for i in items):
            return
        order = {s.name: n for n, s in enumerate(self.specs())}
        items.sort(key=lambda i: order.get(i.spec.name, -1) if hasattr(i, "spec") else -1)
        self.items = [i for i in items if isinstance(i, GuestItem)]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The guest tests that will run, once every plugin has selected (-k, -m, ...)."""
        self.items = [i for i in session.items if isinstance(i, GuestItem)]

    def _whole_directory(self) -> bool:
        """Whether a command-line argument is guest-tests (or a directory holding it)."""
        here = self.config.invocation_params.dir
        paths = [here / a.split("::")[0] for a in self.config.args]
        return any(p.is_dir() and _targets_guest_tests(p) for p in paths)

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        """Ctrl-C or SIGTERM: the summary must say the run was cut short."""
        self.interrupted = True

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """Stop a kernel's guest after its last test."""
        if not isinstance(item, (GuestItem, KunitItem)):
            return
        if not isinstance(nextitem, (GuestItem, KunitItem)) or nextitem.spec.name != item.spec.name:
            guest = self.guests.get(item.spec.name)
            if guest is not None:
                guest.shutdown()
                self._finished = guest

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """A failed guest test reports its verdict, not a traceback of the plugin.

        The crash message (JUnit's failure message, pytest's short summary) is
        the verdict's one line: for an oops, the kernel report's title.
        """
        report = yield
        run = getattr(item, "result", None)
        # call.excinfo is None for a strict XPASS: pytest's own text says it best
        if isinstance(item, GuestItem) and run is not None and report.failed and call.excinfo:
            report.longrepr = GuestFailureRepr(run, item.path)
        if isinstance(item, (GuestItem, KunitItem)):
            self._ship(report)
        return report

    def _ship(self, report: pytest.TestReport) -> None:
        """Put on ``report`` what the results need: new records, a finished kernel, files."""
        runs, self._shipped = self.runs[self._shipped :], len(self.runs)
        kernel = None
        if self._finished is not None and report.when == "teardown":
            guest, self._finished = self._finished, None
            kernel = KernelShipment(guest.record(), _outside(guest))
        files = self._sync.changed() if self._sync is not None else {}
        root = str(self._run_dir) if self._sync is not None else None
        Shipment(test_records(runs), kernel, files, root).attach(report)

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_report_from_serializable(
        self, config: pytest.Config, data: dict[str, Any]
    ) -> pytest.TestReport | None:
        """A worker's report as a serial run would have made it.

        The node id loses xdist's ``@<kernel>`` group suffix, shipped files
        land in our results directory with paths pointing there, and a guest
        test's failure gets its verdict back as the crash message.
        """
        if data.get("$report_type") != "TestReport":
            return None
        report = pytest.TestReport._from_json(data)
        report.nodeid = pytest_xdist.strip_group(report.nodeid)
        shipment = Shipment.of(report)
        if shipment is None:
            return report
        run_dir = self.run_dir()
        if shipment.root is not None:
            try:
                shipment = shipment.unpack(run_dir)
            except ValueError as exc:  # keep the verdicts, refuse the files
                self._log(f"a worker sent evidence outside the results, ignored: {exc}")
                shipment = Shipment(shipment.records, shipment.kernel)
            report.sections = [(k, shipment.rebase(v, run_dir)) for k, v in report.sections]
            if isinstance(report.longrepr, str):
                report.longrepr = shipment.rebase(report.longrepr, run_dir)
            Shipment(shipment.records, shipment.kernel).attach(report)
        mine = [
            r for r in shipment.records if (r.test, r.kernel) == pytest_xdist.pair_of(report.nodeid)
        ]
        if report.failed and report.when == "call" and isinstance(report.longrepr, str) and mine:
            report.longrepr = ShippedFailureRepr(
                report.longrepr, report.location[0], mine[0].summary
            )
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """The controller (or a serial run) takes the records a report carries."""
        if pytest_xdist.is_worker(self.config):
            return
        shipment = Shipment.of(report)
        if shipment is None:
            return
        self.records.extend(shipment.records)
        if shipment.kernel is not None:
            self.kernel_records[shipment.kernel.record.name] = shipment.kernel
        xml = self.config.stash.get(xml_key, None)  # None without --junitxml
        if xml is not None:
            for record in shipment.records:
                facts = {
                    "kernel": record.kernel,
                    "outcome": record.outcome.value,
                    "evidence": record.evidence,
                }
                for key, value in facts.items():
                    xml.add_global_property(f"{report.nodeid} {key}", value)

    def selected(self, pairs: list[tuple[str, str]]) -> None:
        """The (test, kernel) pairs xdist's workers collected: what this run should give."""
        self._selection = pairs

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Stop every guest, whatever happened, and write the summary."""
        for guest in self.guests.values():
            guest.shutdown()
        if self._relay is not None:
            self._relay.close()
        closing = progress_mod.LiveProgress | progress_mod.PlainProgress | RelayProgress
        if isinstance(self.progress, closing):
            self.progress.close()
        restore_sigterm(self._old_sigterm)
        # a run an interrupt kept from its report still counts (serial runs)
        self.records.extend(test_records(self.runs[self._shipped :]))
        self._shipped = len(self.runs)
        if pytest_xdist.is_worker(self.config):
            if self._sync is not None and self._run_dir is not None:
                shutil.rmtree(self._run_dir, ignore_errors=True)  # everything went back
            return  # the controller writes the results
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.interrupted = True
        if self._run_dir is not None or (self.interrupted and self.items):
            self.write_reports()

    def write_reports(self) -> None:
        """summary.json and every reporter's file, from what really ran."""
        run_dir = self.run_dir()
        done = {(r.test, r.kernel) for r in self.records}
        pairs = self.pairs()
        short = self.interrupted or self.lost_worker
        not_run = [p for p in pairs if p not in done] if short else []
        specs = {s.name: s for s in self.specs()}
        expects = {
            (test, kernel): (e.outcome, e.reason)
            for test, kernel in pairs
            if kernel in specs and (e := specs[kernel].expect.get(test)) is not None
        }
        shipped = dict(self.kernel_records)
        for name, guest in self.guests.items():  # ours are the freshest (a stop in sessionfinish)
            shipped[name] = KernelShipment(guest.record(), _outside(guest))
        used = {k for _, k in pairs} | set(shipped)
        kernels = [
            shipped[s.name].record
            if s.name in shipped
            else KernelRecord(
                s.name, s.source.describe(), backend=self.backend_of(s), arch=s.arch.name
            )
            for s in self.specs()
            if s.name in used
        ]
        tests = tuple(
            replace(r, expected=e[0], expected_reason=e[1])
            if (e := expects.get((r.test, r.kernel)))
            else r
            for r in self.records
        )
        summary = RunSummary(
            run_dir.name,
            tuple(kernels),
            tests + tuple(not_run_records(not_run, expects)),
            tuple(o for s in self.specs() if s.name in shipped for o in shipped[s.name].outside),
            self.interrupted,
        )
        write_all(summary, run_dir)

    def pairs(self) -> list[tuple[str, str]]:
        """(test, kernel) of every guest test of this run, in run order."""
        if self._selection is not None:
            return list(self._selection)
        return [(i.test.name, i.spec.name) for i in self.items]

    def backend_of(self, spec: config_mod.KernelSpec) -> str:
        """The backend that boots ``spec``: --backend, else its kernels.yaml entry."""
        return self.config.getoption("backend") or spec.backend

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say where the evidence is."""
        if self._run_dir is not None:
            terminalreporter.write_sep("-", "kernel harness")
            terminalreporter.write_line(f"results: {self._run_dir}")
            if self.interrupted or self.lost_worker:
                missing = len(set(self.pairs()) - {(r.test, r.kernel) for r in self.records})
                why = "interrupted" if self.interrupted else "a worker was lost"
                if missing or self.interrupted:
                    terminalreporter.write_line(
                        f"{why}: {missing} test(s) did not run (summary.txt lists them)"
                    )
            shipped = dict(self.kernel_records)
            for name, guest in self.guests.items():
                shipped[name] = KernelShipment(guest.record(), _outside(guest))
            for name, kernel in shipped.items():
                terminalreporter.write_line(f"  {name}: {dict(kernel.record.timings)}")
                for o in kernel.outside:
                    terminalreporter.write_line(
                        f"  {name} boot-{o.boot}: kernel report "
                        f"during {o.when} (no test): {o.report.title}"
                    )


def _outside(guest: KernelGuest) -> tuple[OutsideRecord, ...]:
    """A guest's kernel reports outside any test, as the summary records them."""
    return tuple(
        OutsideRecord(o.kernel, o.boot, o.when, ReportRecord.of(o.report)) for o in guest.outside
    )


def _port_range(config: pytest.Config) -> tuple[int, int] | None:
    text = config.getoption("port_range")
    if not text:
        return None
    low, _, high = text.partition("-")
    if not (low.isdigit() and high.isdigit() and 0 < int(low) <= int(high) < 65536):
        raise pytest.UsageError(f"--port-range '{text}' must look like 40000-40100")
    return int(low), int(high)


@dataclass(frozen=True)
class _Crash:
    """What pytest and junitxml read off ``longrepr.reprcrash``."""

    path: str
    lineno: int
    message: str


class GuestFailureRepr(TerminalRepr):
    """The failure text of a guest test, with the verdict as its crash message."""

    def __init__(self, run: TestRun, path: Path) -> None:
        self.run = run
        self.reprcrash = _Crash(str(path), 0, run.verdict.summary)

    def toterminal(self, tw: TerminalWriter) -> None:
        """Write the failure text (verdict, KTAP lines, kernel report, evidence)."""
        for line in failure_text(self.run).splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return failure_text(self.run)


class ShippedFailureRepr(TerminalRepr):
    """A worker's guest failure text, with the verdict as its crash message again."""

    def __init__(self, text: str, path: str, message: str) -> None:
        self.text = text
        self.reprcrash = _Crash(path, 0, message)

    def toterminal(self, tw: TerminalWriter) -> None:
        """Write the failure text as the worker rendered it."""
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


class CFile(pytest.File):
    """A guest test file (guest-tests/c/*.c, guest-tests/sh/*.sh): one item per kernel."""

    def collect(self) -> Iterator[pytest.Item]:
        """Read the header (errors name file and line), then yield the items."""
        state = self.config.stash[STATE]
        try:
            test = read_test(self.path)
        except HarnessError as exc:
            raise self.CollectError(str(exc)) from None
        other = state.tests.get(test.name)
        if other is not None and other.source != test.source:
            raise self.CollectError(
                f"{self.path}: guest test name '{test.name}' is taken by {other.source}; "
                "rename one (tests share one directory in the guest)"
            )
        state.tests[test.name] = test
        for spec in state.specs():
            item = GuestItem.from_parent(self, name=spec.name, spec=spec, test=test)
            yield mark_for_kernel(item, spec, test.name)


class GuestItem(pytest.Item):
    """One reproducer on one kernel."""

    def __init__(self, *, spec: config_mod.KernelSpec, test: GuestTest, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.test = test
        self.result: TestRun | None = None

    def setup(self) -> None:
        """Kernel, image and boot happen here, so that their failure is an *error*."""
        state = self.config.stash[STATE]
        failed = self.preflight(state.guest(self.spec))
        if failed is not None:
            state.runs.append(failed)
            self.result = failed
            self._attach(failed)
            # pytest renders setup errors itself (not via repr_failure): pytrace=False
            # keeps the report to our text instead of a traceback of the plugin.
            pytest.fail(failure_text(failed), pytrace=False)

    def preflight(self, guest: KernelGuest) -> TestRun | None:
        """What must be done before the test can run; a TestRun when it could not be."""
        return guest.preflight(self.test)

    def runtest(self) -> None:
        """Run in the guest; translate the verdict into pytest's vocabulary."""
        state = self.config.stash[STATE]
        count = self.config.getoption("runs")
        guest = state.guest(self.spec)
        runs = [guest.run(self.test, n + 1 if count > 1 else 0) for n in range(count)]
        state.runs.extend(runs)
        self.conclude(repeats.combine(runs))  # several runs: the first failure, with the pass rate

    def conclude(self, run: TestRun) -> None:
        """Attach the run's evidence and say its verdict in pytest's vocabulary."""
        self.result = run
        self._attach(run)
        outcome = run.verdict.outcome
        if outcome is Outcome.PASS:
            return
        if outcome is Outcome.SKIP:
            # Report the skip at the test's own location, as a skip marker would.
            raise pytest.skip.Exception(run.verdict.summary, _use_item_location=True)
        if outcome in EXCEPTIONS:
            raise EXCEPTIONS[outcome](run.verdict.summary, run)
        # setup outcomes (boot-fail, build-fail, error) come from preflight, in setup()
        pytest.fail(failure_text(run), pytrace=False)

    def _attach(self, run: TestRun) -> None:
        """Kernel, outcome, evidence, guest output and console window, for every report.

        Not as user_properties: pytest writes those as ``<properties>`` inside
        ``<testcase>``, which the xunit2 schema (pytest's default junit_family)
        forbids.  The facts head the log section instead, which lands in the
        testcase's ``<system-out>`` (junit_logging = log or all) and in pytest's
        own report, and are suite-level properties named ``<nodeid> <fact>``
        whatever junit_logging says.
        """
        facts = {
            "kernel": self.spec.name,
            "outcome": run.verdict.outcome.value,
            "evidence": str(run.directory),
        }
        # the suite-level properties are added where the report arrives
        # (HarnessRun.pytest_runtest_logreport), on the controller under xdist
        log = "".join(f"{key}: {value}\n" for key, value in facts.items())
        if run.result is not None:
            self.add_report_section("call", "stdout", run.result.stdout)
            self.add_report_section("call", "stderr", run.result.stderr)
        console = run.directory / "console.txt"
        if console.is_file() and console.stat().st_size:
            log += "\n" + console.read_text(errors="replace")
        self.add_report_section("call", "log", log)

    def reportinfo(self) -> tuple[Path, int, str]:
        """Where pytest says the test is."""
        return self.path, 0, f"{self.test.name} on {self.spec.name}"
