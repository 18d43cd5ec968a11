"""Whether a series is worth a build, and with which tests: the paths it touches against
the paths each test covers.

A busy list carries hundreds of series a week, most touching nothing the
harness's tests exercise; building and booting each costs minutes of a
shared machine, and a reply about a series no test concerns is noise.  A
series is tested when it touches a path some test covers (:mod:`harness.testkinds.covers`):
it then runs those tests, plus the ones marked always-run; every other test
is recorded as not relevant, with the reason.  ``test_all`` (the bot's flag
for a list where every series should be tested) runs everything.

Pure functions over :class:`Mail` records and declared coverage: the bot,
``kharness watch --explain`` and the tests share them.  Patches are
untrusted: the paths read from them are bounded in number and length, and
reading them never raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from harness.config import KernelSpec
from harness.mail.message import Mail
from harness.testkinds.covers import Coverage, matching
from harness.testkinds.testdef import GuestTest

MAX_PATHS = 2000  # a series touching more is still read; the rest are not listed
_MAX_PATH_LENGTH = 512
_DIFF_GIT = re.compile(r'^diff --git ("?)a/(.+?)\1 ("?)b/(.+?)\3\s*$', re.MULTILINE)
_MINUS_PLUS = re.compile(r"^(?:---|\+\+\+) (?:[ab]/)?([^\t\n]+)", re.MULTILINE)
_RENAME = re.compile(r"^(?:rename|copy) (?:from|to) (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class CoveredTest:
    """One test the bot could run, under the name ``--test`` or a report gives it."""

    name: str  # a guest test's name, kselftest.TARGET or kunit/GLOB
    coverage: Coverage


@dataclass(frozen=True)
class Decision:
    """One test and a series: run or not, and why, in words a reply or a log can show."""

    test: str
    run: bool
    why: str
    matched: tuple[str, ...] = ()  # the touched paths its patterns cover


@dataclass(frozen=True)
class Relevance:
    """Which tests a series runs, which not and why, and the paths it touches."""

    touched: tuple[str, ...]
    decisions: tuple[Decision, ...]
    truncated: bool = False  # the series touched more than MAX_PATHS paths

    @property
    def relevant(self) -> bool:
        """Whether the series is tested at all."""
        return any(d.run for d in self.decisions)

    @property
    def tests(self) -> tuple[str, ...]:
        """The tests it runs, in catalog order."""
        return tuple(d.test for d in self.decisions if d.run)

    @property
    def skipped(self) -> tuple[Decision, ...]:
        """The tests it does not run, each with its reason."""
        return tuple(d for d in self.decisions if not d.run)


def relevant_tests(
    touched: Iterable[str],
    tests: Iterable[CoveredTest],
    test_all: bool = False,
    truncated: bool = False,
) -> Relevance:
    """What a series touching ``touched`` runs of ``tests``.

    Tests whose paths it touches run; always-run tests join them, but do not
    on their own make a series worth testing; tests that declare nothing
    never run (they would run on every series); ``test_all`` runs all.
    """
    paths = tuple(dict.fromkeys(touched))
    tests = tuple(tests)
    if test_all:
        every = tuple(Decision(t.name, True, "every series is tested") for t in tests)
        return Relevance(paths, every, truncated)
    hits = {t.name: matching(t.coverage.paths, paths) for t in tests}
    any_hit = any(hits.values())
    decisions = tuple(_decide(t, hits[t.name], any_hit) for t in tests)
    return Relevance(paths, decisions, truncated)


def _decide(test: CoveredTest, hit: tuple[str, ...], any_hit: bool) -> Decision:
    if hit:
        return Decision(test.name, True, f"touches {_few(hit)}", hit)
    if test.coverage.always and any_hit:
        return Decision(test.name, True, "always run")
    if test.coverage.always:
        return Decision(test.name, False, "always run, but the series touches no covered path")
    if not test.coverage.declared:
        return Decision(test.name, False, "declares no @covers paths")
    return Decision(test.name, False, f"touches none of {_few(test.coverage.paths)}")


def _few(items: tuple[str, ...], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def touched_paths(mails: Iterable[Mail]) -> tuple[tuple[str, ...], bool]:
    """The source paths the patches among ``mails`` change (both sides of a rename), in order,
    and whether there were more than :data:`MAX_PATHS`."""
    found: dict[str, None] = {}
    for mail in mails:
        if not mail.is_patch:
            continue
        for path in diff_paths(mail.body):
            found.setdefault(path, None)
            if len(found) > MAX_PATHS:
                return tuple(found)[:MAX_PATHS], True
    return tuple(found), False


def diff_paths(body: str) -> list[str]:
    """Paths named by the diff headers of one patch's body (``/dev/null`` left out)."""
    found: list[str] = []
    for m in _DIFF_GIT.finditer(body):
        found += [m.group(2), m.group(4)]
    found += [m.group(1) for m in _MINUS_PLUS.finditer(body)]
    found += [m.group(1) for m in _RENAME.finditer(body)]
    return [p for raw in found if (p := _clean(raw))]


def _clean(raw: str) -> str | None:
    path = raw.strip().strip('"').removeprefix("./")
    if not path or path == "/dev/null" or len(path) > _MAX_PATH_LENGTH or "\0" in path:
        return None
    if path.startswith("/") or ".." in path.split("/"):
        return None
    return path


def catalog(tests: Iterable[GuestTest], specs: Iterable[KernelSpec]) -> tuple[CoveredTest, ...]:
    """Every test the bot's kernels run, with what each covers.

    A guest test's coverage is its header's, unless a kernel entry's
    ``covers:`` names it; kselftest targets and KUnit globs come from the
    entries (``kselftest.TARGET``, ``kunit/GLOB``).  A test several entries
    describe covers the union of what they say.
    """
    specs = tuple(specs)
    found: dict[str, Coverage] = {}
    for test in tests:
        named = [s.covers[test.name] for s in specs if test.name in s.covers]
        found[test.name] = _union(named) if named else test.covers
    for spec in specs:
        names = [f"kselftest.{t}" for t in spec.selftests] + [f"kunit/{g}" for g in spec.kunit]
        for name in names:
            own = spec.covers.get(name, Coverage())
            found[name] = _union([found[name], own]) if name in found else own
    return tuple(CoveredTest(name, coverage) for name, coverage in found.items())


def _union(coverages: list[Coverage]) -> Coverage:
    paths = tuple(dict.fromkeys(p for c in coverages for p in c.paths))
    return Coverage(paths, any(c.always for c in coverages))
