"""KUnit results read from the kernel console: one result per suite and per case.

A kernel built with ``CONFIG_KUNIT=y`` and built-in suites runs them during
boot, before init, and prints KTAP on the console::

    [    0.61] KTAP version 1
    [    0.61] 1..2
    [    0.61]     KTAP version 1
    [    0.61]     # Subtest: list-kunit-test
    [    0.61]     1..39
    [    0.62]     ok 1 list_test_list_init
    [    0.62]     # example_skip_test: SKIP this test should be skipped
    [    0.62]     ok 2 example_skip_test # SKIP this test should be skipped
    [    0.63] ok 1 list-kunit-test

Suites sit at the top level, cases one level in (4 spaces), parameterised
sub-cases deeper (part of their case).  A case's console segment runs from
the end of the previous case (or its suite's header) to its own result line:
a kernel report in that segment is the case's (``oops``, whatever KUnit said
of it).  A case that never printed its result because the kernel died is
``panic``; KUnit names a case only in its result line, so it is called by its
number.  The parser is pure: console text in, suites out.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from harness.oops import KernelReport, fold, parse
from harness.outcome import Outcome, Verdict
from harness.results import evidence, layout
from harness.results.records import TestRun
from harness.session import KernelGuest

_STAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_SUBTEST = re.compile(r"^( {4})# Subtest: (\S+)\s*$")
_CASE = re.compile(r"^ {4}(not ok|ok) (\d+) (\S+)\s*(#.*)?$")
_SUITE = re.compile(r"^(not ok|ok) (\d+) (\S+)\s*(#.*)?$")
_DIAG = re.compile(r"^ {4}# (.*)$")


@dataclass(frozen=True)
class KunitCase:
    """One KUnit case as the console showed it."""

    suite: str
    name: str
    outcome: Outcome  # PASS, FAIL, SKIP, OOPS or PANIC
    summary: str
    details: tuple[str, ...] = ()  # KUnit's diagnostics for it, then report titles
    reports: tuple[KernelReport, ...] = ()
    console: str = ""  # its segment of the console

    @property
    def id(self) -> str:
        """'suite.case': how reports name it (``-k`` matches either part)."""
        return f"{self.suite}.{self.name}"


@dataclass(frozen=True)
class KunitSuite:
    """One KUnit suite and its cases; ``outcome`` is KUnit's, or worse if a case crashed."""

    name: str
    outcome: Outcome
    cases: tuple[KunitCase, ...]


@dataclass
class _Open:
    """The suite being read."""

    name: str
    start: int  # console offset where the current case's segment begins
    cases: list[KunitCase]
    diags: list[str]


def parse_kunit(console: str) -> list[KunitSuite]:
    """Every KUnit suite the console shows, in order; a suite cut short ends in a panic."""
    suites: list[KunitSuite] = []
    current: _Open | None = None
    offset = 0
    for raw in console.splitlines(keepends=True):
        end = offset + len(raw)
        line = _STAMP.sub("", raw.rstrip("\r\n"))
        if m := _SUBTEST.match(line):
            if current is not None:  # a suite without its result line: close it as is
                suites.append(_close(current, console, offset, None))
            current = _Open(m.group(2), end, [], [])
        elif current is not None and (m := _CASE.match(line)):
            segment = console[current.start : offset]
            current.cases.append(_case(current, m, segment))
            current.start, current.diags = end, []
        elif current is not None and (m := _DIAG.match(line)):
            current.diags.append(m.group(1))
        elif current is not None and (m := _SUITE.match(line)) and m.group(3) == current.name:
            suites.append(_close(current, console, offset, m.group(1) == "ok"))
            current = None
        offset = end
    if current is not None:
        suites.append(_close(current, console, offset, None))
    return suites


def _case(current: _Open, m: re.Match[str], segment: str) -> KunitCase:
    ok, name, directive = m.group(1) == "ok", m.group(3), (m.group(4) or "").lstrip("# ")
    reports = tuple(fold(parse(segment)))
    diags = tuple(d for d in current.diags if not d.startswith(("Subtest:", "module:")))
    titles = tuple(r.title for r in reports)
    if reports:
        outcome, summary = Outcome.OOPS, f"oops: {reports[0].title}"
    elif directive.upper().startswith("SKIP"):
        reason = directive[4:].strip()
        outcome, summary = Outcome.SKIP, reason or "skipped by KUnit"
    elif ok:
        outcome, summary = Outcome.PASS, "pass"
    else:
        first = next((d for d in diags if "EXPECTATION" in d or "ASSERTION" in d), None)
        outcome, summary = (
            Outcome.FAIL,
            f"fail: not ok {m.group(2)} {name}" + (f" ({first})" if first else ""),
        )
    return KunitCase(current.name, name, outcome, summary, diags + titles, reports, segment)


def _close(current: _Open, console: str, offset: int, ok: bool | None) -> KunitSuite:
    """The suite's result; without one (``ok`` None) the case after the last is a panic."""
    cases = list(current.cases)
    if ok is None:
        segment = console[current.start : offset]
        reports = tuple(fold(parse(segment)))
        title = reports[0].title if reports else "the console ends inside the suite"
        number = len(cases) + 1
        cases.append(
            KunitCase(
                current.name,
                f"case-{number}",
                Outcome.PANIC,
                f"panic: {title} (in case {number} of {current.name}, before its result line)",
                tuple(current.diags) + tuple(r.title for r in reports),
                reports,
                segment,
            )
        )
    worst = _worst([c.outcome for c in cases] + ([] if ok in (None, True) else [Outcome.FAIL]))
    return KunitSuite(current.name, worst, tuple(cases))


_RANK = (Outcome.PANIC, Outcome.OOPS, Outcome.FAIL, Outcome.PASS, Outcome.SKIP)


def _worst(outcomes: list[Outcome]) -> Outcome:
    """PANIC > OOPS > FAIL > PASS > SKIP: a suite of passes and skips passed."""
    for outcome in _RANK:
        if outcome in outcomes:
            return outcome
    return Outcome.SKIP


def select(suites: list[KunitSuite], glob: str) -> list[KunitSuite]:
    """The suites whose name matches ``glob`` (fnmatch, as kunit.filter_glob)."""
    return [s for s in suites if fnmatch.fnmatchcase(s.name, glob)]


def boot_console(guest: KernelGuest) -> tuple[Verdict | None, str]:
    """The console of the kernel's first boot, booting it if need be: KUnit runs at boot.

    A boot that failed still has its console.log: a KUnit case that panicked
    the kernel is found there.
    """
    problem = guest.prepare()
    if problem is None and guest.boots == 0:
        problem = guest.ensure_booted()
    if guest.boots == 0:
        return problem, ""
    if guest.boots == 1 and guest.machine is not None:
        return problem, guest.machine.console.text()
    log = layout.boot_dir(guest.directory, 1) / layout.CONSOLE_LOG
    return problem, log.read_text(errors="replace") if log.is_file() else ""


def case_run(guest: KernelGuest, case: KunitCase) -> TestRun:
    """A case as the run's records show it (``kunit.<suite>.<case>``), evidence saved."""
    run = TestRun(
        f"kunit.{case.id}",
        guest.spec.name,
        Verdict(case.outcome, case.summary, case.details),
        0.0,
        guest.directory / "kunit" / case.id,
        reports=case.reports,
        boot=1,
    )
    evidence.save_test(run, case.console)
    return run
