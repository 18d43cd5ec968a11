"""Failure texts for pytest and JUnit whose crash message is the verdict's one line.

pytest's short summary and JUnit's ``<failure message=...>`` read
``longrepr.reprcrash.message``: for a guest test that is the verdict (for an
oops, the kernel report's title), not the last line of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from _pytest._code.code import TerminalRepr
from _pytest._io import TerminalWriter

from harness.results.records import TestRun
from harness.results.summarize import failure_text


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
