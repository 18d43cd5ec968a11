"""The one place that writes a ``kharness series`` command: the argv a child runs, the line a
reply shows.

The bot, b4-check and the MCP server start ``kharness series`` children, and
every reply tells a maintainer the command that reproduces its verdict.  The
series named there comes from a stranger's mail, so the words are built here
and only here: a message is always written ``<id@host>`` (never a word a
child could read as a path or an option), its id must be a valid msg-id
(:func:`harness.mail.message.valid_message_id`), and the line a human pastes
is quoted with :func:`shlex.join`, so the shell hands every word over as it
is written.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.mail.message import NOT_A_MSGID, valid_message_id

PROGRAM = "kharness"


def message_target(message_id: str) -> str:
    """``<id@host>``: how ``--series`` names a message; ValueError for an invalid msg-id."""
    inner = message_id.removeprefix("<").removesuffix(">")
    if not valid_message_id(inner):
        raise ValueError(f"Message-ID {message_id[:80]!a} {NOT_A_MSGID}")
    return f"<{inner}>"


@dataclass(frozen=True)
class SeriesCommand:
    """One ``kharness series`` invocation.

    ``series`` is what ``--series`` takes: ``<id@host>`` (make it with
    :meth:`for_message`), an inbox URL or a local path."""

    kernel: str
    series: str
    inbox: str | None = None
    allow_missing: bool = False
    tests: tuple[str, ...] = ()
    reply_from: str | None = None
    results_dir: str | None = None
    #: a series from mail or an MCP client is a stranger's code: built in bubblewrap
    sandbox: bool = True
    #: patch files applied after the series (a ``#kharness test`` fix), each one more step
    extra: tuple[str, ...] = ()
    #: why these tests run (the bot's relevance decision), quoted in the reply; not part of
    #: a reproduce line
    why_tests: str = ""

    @classmethod
    def for_message(
        cls,
        message_id: str,
        kernel: str,
        inbox: str | None = None,
        allow_missing: bool = False,
        tests: Sequence[str] = (),
        reply_from: str | None = None,
        results_dir: str | None = None,
    ) -> SeriesCommand:
        """The command for a message on an inbox (ValueError if its id is not a msg-id)."""
        target = message_target(message_id)
        return cls(kernel, target, inbox, allow_missing, tuple(tests), reply_from, results_dir)

    def argv(self) -> list[str]:
        """The words after the program: ``series --kernel K --series S ...``."""
        words = ["series", "--kernel", self.kernel, *_option("--series", self.series)]
        for path in self.extra:
            words += _option("--series", path)
        if self.inbox:
            words += ["--inbox", self.inbox]
        if self.reply_from:
            words += ["--reply-from", self.reply_from]
        if self.allow_missing:
            words.append("--allow-missing")
        if self.sandbox:
            words.append("--sandbox")
        for test in self.tests:
            words += _option("--test", test)
        if self.results_dir:
            words += ["--results-dir", self.results_dir]
        if self.why_tests:
            words.append(f"--why-tests={self.why_tests}")  # one word, whatever it starts with
        return words

    def line(self) -> str:
        """The command as a reply or a report shows it, safe to paste into a shell."""
        return shell_line([PROGRAM, *self.argv()])


def harness_argv(python: str, kernels_file: str | Path, argv: Sequence[str]) -> list[str]:
    """``PYTHON -m harness --kernels-file K ARGV``: how the bot's children are started."""
    return [python, *harness_args(kernels_file, argv)]


def harness_args(kernels_file: str | Path, argv: Sequence[str]) -> list[str]:
    """``-m harness --kernels-file K ARGV``: the interpreter's arguments (MCP jobs add it)."""
    return ["-m", "harness", "--kernels-file", str(kernels_file), *argv]


def shell_line(words: Sequence[str]) -> str:
    """Words as one shell line: each one quoted, so none is split, expanded or run."""
    return shlex.join(words)


def _option(name: str, value: str) -> list[str]:
    """``NAME VALUE``, or ``NAME=VALUE`` when the value would read as an option."""
    return [f"{name}={value}"] if value.startswith("-") else [name, value]
