"""``kharness watch --explain --since 7d``: what the bot would test of what a list already holds.

Before pointing the bot at a busy list an operator wants the load: how many
series a week, how many touch what the tests cover, how many test runs that
makes.  This reads the inbox as the bot does (:class:`InboxReader`, the
whole history), groups it as the bot does (:mod:`harness.mail.grouping`),
keeps the series whose newest message is inside the window, and decides each
with :func:`harness.mail.relevance.relevant_tests`.  It writes nothing: no
database, no results; an http(s) inbox is mirrored into a temporary
directory removed afterwards.

Dates are the messages' own ``Date:`` headers (a series without any is
shown: nothing says it is old).  Everything shown of a message is escaped
(:func:`harness.display.textsafe.printable`).
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.display.textsafe import printable
from harness.errors import UserError
from harness.mail import grouping
from harness.mail.grouping import SeriesKey
from harness.mail.inbox import InboxReader
from harness.mail.message import Mail, parse
from harness.mail.relevance import CoveredTest, Relevance, relevant_tests, touched_paths

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str) -> float:
    """``7d``, ``36h``, ``2w``, ``90m`` -> seconds; UserError naming the form otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise UserError(f"--since {text!r}: give a positive span such as 7d, 36h, 2w or 90m")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass(frozen=True)
class SeriesView:
    """One series version of the window and what the bot would do with it."""

    key: SeriesKey
    title: str
    sender: str
    present: int
    total: int
    newest: float | None  # the newest Date: of its messages
    relevance: Relevance
    superseded_by: SeriesKey | None = None

    @property
    def would_test(self) -> bool:
        """Tested by the bot: relevant and not replaced by a newer version."""
        return self.superseded_by is None and self.relevance.relevant


@dataclass(frozen=True)
class Explanation:
    """Every series of the window, and the totals an operator plans with."""

    source: str
    since: float  # seconds before ``now``
    now: float
    series: tuple[SeriesView, ...]
    kernels: tuple[str, ...] = ()

    @property
    def would_test(self) -> tuple[SeriesView, ...]:
        """The series the bot would test."""
        return tuple(s for s in self.series if s.would_test)

    @property
    def test_runs(self) -> int:
        """Tests to run: each tested series' tests, on each kernel."""
        per_kernel = sum(len(s.relevance.tests) for s in self.would_test)
        return per_kernel * max(1, len(self.kernels))


def explain(
    mails: Iterable[Mail],
    tests: Sequence[CoveredTest],
    since: float,
    now: float | None = None,
    source: str = "",
    kernels: tuple[str, ...] = (),
    test_all: bool = False,
) -> Explanation:
    """What the bot would do with the series among ``mails`` whose newest message is
    at most ``since`` seconds older than ``now``.  Pure: no I/O."""
    now = time.time() if now is None else now
    mails = list(mails)
    members: dict[SeriesKey, list[Mail]] = {}
    for mail in mails:
        if grouping.why_ignored(mail) is None:
            members.setdefault(grouping.series_key(mail), []).append(mail)
    candidates = grouping.group(mails)
    replaced = grouping.superseded(candidates)
    views = []
    for c in candidates:
        dates = [m.date for m in members.get(c.key, []) if m.date is not None]
        newest = max(dates) if dates else None
        if newest is not None and newest < now - since:
            continue
        paths, truncated = touched_paths(members.get(c.key, []))
        relevance = relevant_tests(paths, tests, test_all=test_all, truncated=truncated)
        views.append(
            SeriesView(
                c.key,
                c.title,
                c.sender,
                len(c.present),
                c.total,
                newest,
                relevance,
                replaced.get(c.key),
            )
        )
    views.sort(key=lambda v: v.newest or now)
    return Explanation(source, since, now, tuple(views), kernels)


def read_mails(source: str) -> list[Mail]:
    """Every message the inbox holds, parsed; an http(s) inbox mirrored in a temporary
    directory (the bot's own mirror and state are not touched)."""
    with tempfile.TemporaryDirectory(prefix="kharness-explain-") as scratch:
        poll = InboxReader(source, Path(scratch) / "mirror").poll(None, from_start=True)
    return [parse(raw) for raw in poll.messages]


def render(e: Explanation, verbose_paths: int = 8) -> str:
    """The explanation as an operator reads it: one block per series, then the totals."""
    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(e.now - e.since))
    lines = [f"series posted to {printable(e.source, False)} since {start}:", ""]
    for s in e.series:
        lines += _block(s, verbose_paths)
    runs = len(e.kernels) or 1
    lines.append(
        f"{len(e.series)} series seen, {len(e.would_test)} would be tested, "
        f"{e.test_runs} test runs ({runs} kernel{'s' if runs != 1 else ''}"
        f"{': ' + ', '.join(e.kernels) if e.kernels else ''})"
    )
    return "\n".join(lines) + "\n"


def _block(s: SeriesView, limit: int) -> list[str]:
    if s.superseded_by is not None:
        verdict = f"superseded by v{s.superseded_by.version}"
    else:
        verdict = "would test" if s.relevance.relevant else "not relevant"
    count = f"{s.present}/{s.total}" if s.present != s.total else f"{s.total}"
    count += " patch" if s.total == 1 else " patches"
    head = f"[{verdict}] v{s.key.version} {printable(s.title, False)}"
    lines = [head, f"    from {printable(s.sender, False)}, {count}"]
    touched = [printable(p, False) for p in s.relevance.touched]
    more = len(touched) - limit + (1 if s.relevance.truncated else 0)
    shown = ", ".join(touched[:limit]) + (f" and {more} more" if more > 0 else "")
    lines.append(f"    touches: {shown or 'no file (no diff read)'}")
    if s.superseded_by is not None:
        lines.append(f"    tests: none; v{s.superseded_by.version} replaces it")
    elif s.relevance.relevant:
        tests = "; ".join(f"{d.test} ({d.why})" for d in s.relevance.decisions if d.run)
        lines.append(f"    tests: {tests}")
    else:
        lines.append("    tests: none; no test covers these paths")
    return [*lines, ""]


def add_options(parser: argparse.ArgumentParser) -> None:
    """``--explain`` and ``--since`` on ``kharness watch``."""
    parser.add_argument(
        "--explain",
        action="store_true",
        help="say which series of the inbox would be tested and with which tests; test nothing",
    )
    parser.add_argument(
        "--since",
        default="7d",
        metavar="SPAN",
        help="with --explain: the series of the last SPAN (7d, 36h, 2w; default 7d)",
    )


def cmd_explain(args: argparse.Namespace) -> int:
    """``kharness watch --explain``: read the inbox, print the explanation."""
    from harness.config import load_kernels, select  # loaded only for the command
    from harness.mail.relevance import catalog
    from harness.paths import kernels_file
    from harness.testkinds.trial import select_tests

    since = parse_since(args.since)
    specs = []
    if args.kernels:
        path = kernels_file(args.kernels_file)
        specs = select(load_kernels(path), args.kernels, path)
    tests = catalog(select_tests(list(args.test)), specs)
    mails = read_mails(args.inbox.rstrip("/"))
    found = explain(
        mails,
        tests,
        since,
        source=args.inbox,
        kernels=tuple(s.name for s in specs),
        test_all=getattr(args, "test_all", False),
    )
    print(render(found), end="")
    return 0
