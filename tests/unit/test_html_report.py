"""index.html in a real headless Chromium: what a person sees, from the file system.

The results directory is laid out as a run leaves it, with console windows
cut from real kernel console logs (tests/data/oops) and reports parsed from
them by the real parser.  The page must show every cell, every link must
resolve to a file of the directory, nothing may be fetched from elsewhere,
and no script error may appear.  Chromium missing is a failure, not a skip.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from harness.oops import parse
from harness.oops.frames import Decoded, Maintainer, SourceLine, SymbolizedFrame
from harness.outcome import Outcome
from harness.reporters import html, write_all
from harness.results.records import (
    SCHEMA_VERSION,
    Attempt,
    KernelRecord,
    OutsideRecord,
    ReportRecord,
    RunSummary,
    TestRecord,
)
from harness.results.starts import GuestStarts
from tests.browser import Chromium

OOPS = Path(__file__).resolve().parents[1] / "data" / "oops"


def _window(log: str) -> tuple[str, ReportRecord]:
    """The console text of a real log (header stripped) and its first report."""
    text = (OOPS / log).read_text(errors="replace").split("\n\n", 1)[1]
    return text, ReportRecord.of(parse(text)[0])


def _evidence(run: Path, kernel: str, test: str, console: str = "", sub: str = "") -> str:
    d = run / kernel / test / sub if sub else run / kernel / test
    d.mkdir(parents=True, exist_ok=True)
    for name in ("stdout.txt", "stderr.txt"):
        (d / name).write_text("TAP version 13\n1..1\nnot ok 1 - race\n")
    (d / "console.txt").write_text(console)
    (d / "result.json").write_text("{}")
    return str(d)


def _boot(run: Path, kernel: str, n: int, seconds: float, restored: bool = False) -> None:
    d = run / kernel / f"boot-{n}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "console.log").write_text("boot\n")
    (d / "boot.json").write_text(json.dumps({"seconds": seconds}))
    if restored:
        (d / "restore.json").write_text(json.dumps({"seconds": seconds, "problem": None}))


def _symbolized(report: ReportRecord) -> ReportRecord:
    """The report as a kernel with debug info gives it: printed thrice, file:line, To/Cc.

    The lines are made up (no debug info for Debian's 6.12 here); the
    symbolizer itself is tested in test_symbolize.py, this is about the page.
    """
    assert report.rip and report.guilty_frame

    def frame(text: str, n: int, ip: bool = False) -> SymbolizedFrame:
        name = text.removeprefix("? ").split("+")[0]
        line = SourceLine(name, "drivers/misc/harness_oops.c", 40 + n)
        return SymbolizedFrame(text.removeprefix("? "), (line,), ip, not text.startswith("? "))

    decoded = Decoded(
        (frame(report.rip, 0, ip=True), *(frame(f, n) for n, f in enumerate(report.call_trace))),
        SourceLine(report.guilty_frame, "drivers/misc/harness_oops.c", 40),
        (Maintainer("Jane Doe <jane@example.org>", "maintainer"), Maintainer("x@y.org", "list")),
    )
    return replace(report, count=3, first_time=41.2, last_time=44.0, symbolized=decoded)


@pytest.fixture
def results(tmp_path: Path) -> tuple[Path, RunSummary]:
    run = tmp_path / "20261127-120000-1"
    bug_text, bug = _window("6.12-bug.log")
    bug = _symbolized(bug)
    warn = _window("6.12-warn.log")[1]
    for kernel in ("d612", "fix"):
        _boot(run, kernel, 1, 5.5)
        (run / kernel / "kernel.json").write_text("{}")
    _boot(run, "d612", 2, 0.6, restored=True)
    flaky_runs = tuple(
        Attempt(o, o.value, 1.0, _evidence(run, "fix", "race", "", f"run-{n}"))
        for n, o in enumerate((Outcome.PASS, Outcome.FAIL, Outcome.PASS), 1)
    )
    tests = (
        TestRecord("uffd_api", "d612", Outcome.PASS, "pass", 0.4, 1, _evidence(run, "d612", "a")),
        TestRecord(
            "move", "d612", Outcome.OOPS, f"oops: {bug.title}", 3.2, 1,
            _evidence(run, "d612", "move", bug_text), details=("not ok 1 - move # crashed",),
            reports=(bug,),
        ),
        TestRecord(
            "race", "d612", Outcome.FAIL, "fail: not ok 1 - race", 1.0, 2,
            _evidence(run, "d612", "race"), Outcome.FAIL, "known race",
        ),
        TestRecord("uffd_api", "fix", Outcome.PASS, "pass", 0.5, 1, _evidence(run, "fix", "a")),
        TestRecord("move", "fix", Outcome.NOT_RUN, "not run: interrupted"),
        TestRecord(
            "race", "fix", Outcome.FAIL, "flaky: passed 2 of 3 runs; run 2: fail", 3.0, 1,
            flaky_runs[1].evidence, runs=flaky_runs,
        ),
    )  # fmt: skip
    kernels = (
        KernelRecord(
            "d612",
            "debian x",
            "Debian 6.12",
            boots=2,
            timings={"fetch": 1.5},
            starts=GuestStarts((4.2,), (0.61,), 0.72, 132_000_000, (), "stored"),
        ),
        KernelRecord("fix", "build y", timings={"fetch": 300.0, "image": 0.4}),
    )
    outside = (OutsideRecord("fix", 1, "boot", warn),)
    summary = RunSummary(run.name, kernels, tests, outside, interrupted=True)
    write_all(summary, run)
    assert json.loads((run / "summary.json").read_text())["schema_version"] == SCHEMA_VERSION
    return run, summary


CELLS = """JSON.stringify([...document.querySelectorAll('td.cell')].map(td => ({
  kernel: td.dataset.kernel, test: td.dataset.test, text: td.innerText.trim(),
  href: td.querySelector('a') && td.querySelector('a').getAttribute('href'),
  bg: getComputedStyle(td).backgroundColor,
  shown: td.getBoundingClientRect().width > 0})))"""
LINKS = "JSON.stringify([...document.querySelectorAll('a[href]')].map(a => a.href))"


def test_page_shows_every_cell_with_links_that_resolve_and_no_errors(
    results: tuple[Path, RunSummary],
) -> None:
    run, summary = results
    page = run / "index.html"
    with Chromium() as browser:
        load = browser.open(page.as_uri())
        assert load.errors == []
        assert all(u.startswith(("file://", "data:")) for u in load.requests), load.requests
        assert browser.evaluate("document.body.dataset.ready") == "1", "the script ran"
        cells = {(c["kernel"], c["test"]): c for c in json.loads(browser.evaluate(CELLS))}
        assert set(cells) == {(t.kernel, t.test) for t in summary.tests}
        assert all(c["shown"] for c in cells.values())
        assert cells[("d612", "move")]["text"] == "OOPS"
        assert cells[("fix", "race")]["text"] == "FLAKY 2/3"
        assert cells[("d612", "race")]["text"] == "fail (expected)"
        colours = {
            cells[k]["bg"] for k in [("d612", "uffd_api"), ("d612", "move"), ("fix", "race")]
        }
        assert len(colours) == 3, f"pass, oops and flaky look different: {colours}"
        for cell in cells.values():
            target = cell["href"].removeprefix("#")
            assert browser.evaluate(f"!!document.getElementById({json.dumps(target)})"), cell
        files = [urlparse(u) for u in json.loads(browser.evaluate(LINKS)) if u.startswith("file:")]
        linked = {Path(unquote(u.path)) for u in files}
        missing = [p for p in linked if not p.is_file()]
        assert not missing, missing
        for rel in ("d612/move/console.txt", "fix/race/run-2/stdout.txt", "fix/boot-1/console.log"):
            assert run / rel in linked, rel
        # a click on a cell opens its card
        browser.evaluate("document.querySelector('td[data-test=race][data-kernel=d612] a').click()")
        assert browser.evaluate("document.getElementById('t-d612-race').open") is True
        # the filter hides what needs no look
        browser.evaluate(
            "var b=document.getElementById('only-unexpected');"
            "b.checked=true;b.dispatchEvent(new Event('change'))"
        )
        assert browser.evaluate("document.getElementById('t-d612-uffd_api').hidden") is True
        assert browser.evaluate("document.getElementById('t-d612-move').hidden") is False
        assert browser.open(page.as_uri()).errors == []


def test_a_failure_card_shows_verdict_ktap_report_and_console(
    results: tuple[Path, RunSummary],
) -> None:
    run, summary = results
    bug = next(t for t in summary.tests if t.test == "move" and t.kernel == "d612").reports[0]
    with Chromium() as browser:
        assert browser.open((run / "index.html").as_uri()).errors == []
        card = "document.getElementById('t-d612-move')"
        text = browser.evaluate(f"{card}.innerText")
        assert f"verdict: oops: {bug.title}" in text
        assert "not ok 1 - move # crashed" in text
        assert f"kernel report: {bug.title}" in text
        assert "printed 3 times, first at 41.2s, last at 44.0s" in text
        assert f"guilty: {bug.guilty_frame} (drivers/misc/harness_oops.c:40)" in text
        assert "To: Jane Doe <jane@example.org>" in text and "Cc: x@y.org" in text
        guilty = browser.evaluate(f"{card}.querySelector('.trace .guilty').innerText")
        assert bug.guilty_frame and bug.guilty_frame in guilty and guilty.startswith("\u25b6")
        marked = browser.evaluate(f"{card}.querySelector('.console .report-line').innerText")
        assert "kernel BUG at" in marked
        outside = browser.evaluate("document.querySelector('details.outside').innerText")
        assert "fix boot-1 (boot): WARNING in" in outside
        timeline = browser.evaluate(
            "JSON.stringify([...document.querySelectorAll('.timeline')].map(t => "
            "[t.dataset.kernel, [...t.children].map(c => c.innerText.split(/ [0-9.]+s$/)[0])]))"
        )
        starts = browser.evaluate("document.querySelector('.starts').innerText")
        assert "1 cold boot(s) (4.2s); 1 restore(s) (0.61s)" in starts
        assert "state saved in 0.72s (132 MB); kept snapshot: stored" in starts
        assert json.loads(timeline) == [
            ["d612", ["fetch", "boot-1", "uffd_api", "move", "boot-2 restore", "race"]],
            ["fix", ["fetch", "image", "boot-1", "uffd_api", "race"]],
        ]


def test_links_stay_relative_when_the_directory_moves(
    results: tuple[Path, RunSummary], tmp_path: Path
) -> None:
    run, summary = results
    moved = tmp_path / "elsewhere" / run.name
    run.rename(moved.parent.mkdir() or moved)
    page = html.render(summary, moved)  # evidence paths in the summary still name the old place
    assert 'href="d612/move/console.txt"' in page
    assert str(run) not in page
