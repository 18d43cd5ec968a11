"""pytest integration: guest-tests/c/*.c and sh/*.sh become one test item per kernel.

All plugin state lives in one :class:`HarnessRun` object, stored under a
StashKey and registered as a plugin; no module globals.  Node ids read
``guest-tests/c/<test>.c::<kernel>`` or ``guest-tests/sh/<test>.sh::<kernel>``.
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
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import TerminalRepr
from _pytest._io import TerminalWriter
from _pytest.junitxml import xml_key

from harness import config as config_mod
from harness import progress as progress_mod
from harness.errors import HarnessError
from harness.interrupts import restore_sigterm, sigterm_as_interrupt
from harness.machine.accel import Accel
from harness.machine.backends import BACKENDS
from harness.outcome import EXCEPTIONS, Outcome
from harness.pytest_kunit import KunitItem, kunit_items
from harness.records import KernelRecord, TestRun
from harness.report import failure_text, summarize
from harness.reporters import write_all
from harness.results import new_run_dir
from harness.runner import KernelGuest, RunContext, new_context
from harness.testdef import KINDS, GuestTest, read_test

STATE = pytest.StashKey["HarnessRun"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The harness's command-line options (also usable from plain pytest)."""
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
        choices=sorted(BACKENDS),
        default=None,
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
    run = HarnessRun(config)
    config.stash[STATE] = run
    config.pluginmanager.register(run, "kharness-run")
    if any(
        _targets_guest_tests(config.invocation_params.dir / arg.split("::")[0])
        for arg in config.args
    ):
        run.specs()


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
        self.runs: list[TestRun] = []
        self.items: list[GuestItem] = []  # every guest test collected, in run order
        self.interrupted = False
        self._old_sigterm: Any = None
        self.progress: progress_mod.Progress = progress_mod.NO_PROGRESS
        self._stream: progress_mod.ReporterStream | None = None  # set when progress is shown

    # -- configuration -------------------------------------------------
    def kernels_file(self) -> Path:
        """The kernels.yaml in effect."""
        opt = self.config.getoption("kernels_file")
        return Path(opt).resolve() if opt else self.config.rootpath / "kernels.yaml"

    def specs(self) -> list[config_mod.KernelSpec]:
        """The selected kernels, validated once; a usage error names every problem."""
        if self._specs is None:
            path = self.kernels_file()
            try:
                specs = config_mod.load_kernels(path)
                self._specs = config_mod.select(specs, self.config.getoption("kernel"), path)
            except HarnessError as exc:
                raise pytest.UsageError(str(exc)) from None
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
        return self._ctx

    def _start_progress(self) -> progress_mod.Progress:
        """The feedback --progress and --console ask for, written through pytest's reporter."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return self.progress
        verbose = self.config.option.verbose
        console = self.config.getoption("console") or verbose >= 2
        mode = progress_mod.choose(
            progress_mod.Mode(self.config.getoption("progress")),
            bool(reporter.isatty),
            verbose < 0,
            console,
        )
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        width = self.config.get_terminal_writer().fullwidth
        self.progress, self._stream = progress_mod.for_reporter(
            mode, reporter, capman, console, width
        )
        return self.progress

    def run_dir(self) -> Path:
        """This run's results directory, made on first use (nothing compiled yet)."""
        if self._run_dir is None:
            given = self.config.getoption("run_dir")
            if given is None:
                base = self.config.getoption("results_dir") or self.config.rootpath / "results"
                self._run_dir = new_run_dir(Path(base).resolve())
            else:
                self._run_dir = Path(given)
                self._run_dir.mkdir(parents=True, exist_ok=True)
        return self._run_dir

    def _log(self, text: str) -> None:
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

    def pytest_collection_modifyitems(
        self, session: pytest.Session, items: list[pytest.Item]
    ) -> None:
        """Group items by kernel (in kernels.yaml order) so each kernel boots once.

        A run of the guest-tests directory also gets the KUnit items of kernels
        with ``kunit:`` suites, first on their kernel (KUnit runs at boot).
        """
        if self._whole_directory():
            items[:0] = kunit_items(session, [s for s in self.specs() if s.kunit])
        if not any(isinstance(i, (GuestItem, KunitItem)) for i in items):
            return
        order = {s.name: n for n, s in enumerate(self.specs())}
        items.sort(key=lambda i: order.get(i.spec.name, -1) if hasattr(i, "spec") else -1)
        self.items = [i for i in items if isinstance(i, GuestItem)]

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
        return report

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Stop every guest, whatever happened, and write the summary."""
        for guest in self.guests.values():
            guest.shutdown()
        if isinstance(self.progress, progress_mod.LiveProgress | progress_mod.PlainProgress):
            self.progress.close()
        restore_sigterm(self._old_sigterm)
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.interrupted = True
        if self._run_dir is not None or (self.interrupted and self.items):
            self.write_reports()

    def write_reports(self) -> None:
        """summary.json and every reporter's file, from what really ran."""
        run_dir = self.run_dir()
        done = {(r.test, r.kernel) for r in self.runs}
        pairs = [(i.test.name, i.spec.name) for i in self.items]
        not_run = [p for p in pairs if p not in done] if self.interrupted else []
        expects = {
            (i.test.name, i.spec.name): (e.outcome, e.reason)
            for i in self.items
            if (e := i.spec.expect.get(i.test.name)) is not None
        }
        kernels = [
            self.guests[s.name].record()
            if s.name in self.guests
            else KernelRecord(
                s.name, s.source.describe(), backend=self.backend_of(s), arch=s.arch.name
            )
            for s in self.specs()
            if s.name in self.guests or any(i.spec.name == s.name for i in self.items)
        ]
        outside = [o for g in self.guests.values() for o in g.outside]
        summary = summarize(
            run_dir.name, self.runs, kernels, outside, expects, not_run, self.interrupted
        )
        write_all(summary, run_dir)

    def backend_of(self, spec: config_mod.KernelSpec) -> str:
        """The backend that boots ``spec``: --backend, else its kernels.yaml entry."""
        return self.config.getoption("backend") or spec.backend

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say where the evidence is."""
        if self._run_dir is not None:
            terminalreporter.write_sep("-", "kernel harness")
            terminalreporter.write_line(f"results: {self._run_dir}")
            if self.interrupted:
                missing = len(self.items) - len({(r.test, r.kernel) for r in self.runs})
                terminalreporter.write_line(
                    f"interrupted: {missing} test(s) did not run (summary.txt lists them)"
                )
            for guest in self.guests.values():
                terminalreporter.write_line(f"  {guest.spec.name}: {guest.timings.phases}")
                for o in guest.outside:
                    terminalreporter.write_line(
                        f"  {guest.spec.name} boot-{o.boot}: kernel report "
                        f"during {o.when} (no test): {o.report.title}"
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
            expect = spec.expect.get(test.name)
            if expect is not None:
                item.add_marker(
                    pytest.mark.xfail(
                        reason=f"{expect.outcome.value}: {expect.reason}",
                        raises=EXCEPTIONS[expect.outcome],
                        strict=True,
                    )
                )
            yield item


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
        failed = state.guest(self.spec).preflight(self.test)
        if failed is not None:
            state.runs.append(failed)
            self.result = failed
            self._attach(failed)
            # pytest renders setup errors itself (not via repr_failure): pytrace=False
            # keeps the report to our text instead of a traceback of the plugin.
            pytest.fail(failure_text(failed), pytrace=False)

    def runtest(self) -> None:
        """Run in the guest; translate the verdict into pytest's vocabulary."""
        state = self.config.stash[STATE]
        run = state.guest(self.spec).run(self.test)
        state.runs.append(run)
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
        xml = self.config.stash.get(xml_key, None)  # None without --junitxml
        if xml is not None:
            for key, value in facts.items():
                xml.add_global_property(f"{self.nodeid} {key}", value)
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
