"""A scenario file: a replayed guest's whole life, written as YAML beside real console logs.

The plumbing tests (tests/plumbing) run pytest, xdist, progress and reports
through the real plugin on these instead of booting kernels.  Every console
text comes from a log captured on a real kernel (tests/data/replay,
tests/data/oops); the scenario only says which part plays when::

    release: 6.12.118+deb12-amd64
    boot: {console: 6.12-boot.log, ends: ready}   # ready | panic (the process exits) | silent
    tests:                                         # by guest test name
      fails: {exit: 1, stdout: "not ok 1 - answer\\n"}   # or stdout_file: a captured stdout
      hang: {hang: true}                           # never returns by itself
      null: {console: {file: ../oops/6.12-null.log, from: "BUG: kernel", to: "end trace"}}
      dies: {console: ..., kernel_dies: true}      # the guest's process exits
      flaky: [{}, {exit: 1}, {}]                   # run after run within one boot
    commands: {"node/online": {stdout: "0\\n"}}    # any other command, by regex
    magic: {w: {file: ..., from: ..., to: ...}}    # what a magic sysrq key prints

A console is inline text or ``{file, from, to}`` (or a list of both): the lines of ``file``
(relative to the scenario; a tests/data/oops header is left out) from the
first matching ``from`` to the next matching ``to``.  Problems are reported
through :class:`~harness.yamlcheck.Fields`, so a typo is a kernels.yaml problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError
from harness.yamlcheck import Fields
from tests.support.replay.script import Script, Step, lines

#: ``boot: ends:`` values: what follows the boot console
BOOT_ENDS = ("ready", "panic", "silent")
#: an oops log's header line (tests/data/oops/*.log): "TYPE: ...", "SOURCE: ..."
_HEADER = re.compile(r"^[A-Z]+: ")


@dataclass(frozen=True)
class Scenario:
    """A scenario file read: the release the guest reports and the script it plays."""

    path: Path
    release: str
    script: Script


def load(path: Path) -> Scenario:
    """Read ``path``; a ConfigError naming every problem."""
    problems: list[str] = []
    scenario = parse(path, problems)
    if problems or scenario is None:
        raise ConfigError(f"{path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return scenario


def parse(path: Path, problems: list[str]) -> Scenario | None:
    """Read ``path``, appending problems instead of raising."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"{path}: cannot read the scenario: {exc}")
        return None
    f = Fields(data, str(path), problems)
    release = f.get("release", str, required=True)
    boot = f.sub("boot")
    console = _console(boot, "console", path.parent)
    ends = boot.get("ends", str, default="ready")
    if ends not in BOOT_ENDS:
        boot.problem(f"ends '{ends}' is not one of {', '.join(BOOT_ENDS)}")
    delay = boot.get("line_delay", (int, float), default=0.0)
    taint = boot.get("taint", int, default=0)
    boot.finish()
    steps = _test_steps(f.sub("tests"), path.parent) if "tests" in f.data else []
    steps += [_step(f.sub("commands").sub(rx), rx, path.parent) for rx in _keys(f, "commands")]
    magic = {k: lines(_console(f.sub("magic"), k, path.parent)) for k in _keys(f, "magic")}
    f.finish()
    script = Script(
        boot=lines(console, float(delay)),
        ready=ends == "ready",
        exit_after_boot=ends == "panic",
        steps=tuple(steps),
        magic=magic,
        boot_taint=taint,
        release=release or "?",
    )
    return Scenario(path, release or "?", script)


def _test_steps(tests: Fields, base: Path) -> list[Step]:
    """Each guest test's answers: one, or a list played run after run within a boot."""
    steps: list[Step] = []
    for name in [str(n) for n in tests.data]:
        value = tests.get(name, (dict, list), default={})
        answers = value if isinstance(value, list) else [value]
        for n, answer in enumerate(answers):
            where = f"{tests.where}: {name}" + (f"[{n}]" if isinstance(value, list) else "")
            steps.append(_step(Fields(answer, where, tests.problems), _runs(name), base))
    tests.finish()
    return steps


def _keys(f: Fields, key: str) -> list[str]:
    """The names under mapping ``key`` (none when absent)."""
    return [str(k) for k in f.get(key, dict, default={})]


def _runs(test: str) -> str:
    """The regex of the runner's command for guest test ``test`` (binary or ``sh`` script)."""
    return rf"/{re.escape(test)}(?:\s|;|$)"


def _step(f: Fields, match: str, base: Path) -> Step:
    """One answer: what the command prints, returns, and does to the kernel."""
    step = Step(
        match,
        console=lines(_console(f, "console", base)),
        exit_code=None if f.get("hang", bool, default=False) else f.get("exit", int, default=0),
        stdout=f.get("stdout", str, default="") + _file(f, "stdout_file", base),
        stderr=f.get("stderr", str, default=""),
        after=float(f.get("after", (int, float), default=0.0)),
        new_taint=f.get("taint", int, default=0),
        kernel_exits=f.get("kernel_dies", bool, default=False),
        channel_breaks=f.get("channel_breaks", bool, default=False),
        afterwards=lines(_console(f, "afterwards", base)),
    )
    f.finish()
    return step


def _file(f: Fields, key: str, base: Path) -> str:
    """The text of the file named under ``key`` (relative to the scenario), if any."""
    name = f.get(key, str)
    if name is None:
        return ""
    try:
        return (base / name).read_text(errors="replace")
    except OSError as exc:
        f.problem(f"{key} '{name}': {exc.strerror}")
        return ""


def _console(f: Fields, key: str, base: Path) -> str:
    """Console text under ``key``: inline, cut from a captured log file, or a list of those."""
    value: Any = f.get(key, (str, dict, list), default="")
    parts = value if isinstance(value, list) else [value]
    return "\n".join(_part(part, f"{f.where}: {key}", f.problems, base) for part in parts)


def _part(value: Any, where: str, problems: list[str], base: Path) -> str:
    """One piece of console text: a string, or ``{file, from, to}``."""
    if isinstance(value, str):
        return value
    cut = Fields(value, where, problems)
    name = cut.get("file", str, required=True)
    first = cut.get("from", str)
    last = cut.get("to", str)
    cut.finish()
    if name is None:
        return ""
    try:
        text = (base / name).read_text(errors="replace")
    except OSError as exc:
        cut.problem(f"file '{name}': {exc.strerror}")
        return ""
    try:
        return excerpt(_without_header(text), first, last)
    except ValueError as exc:
        cut.problem(f"file '{name}': {exc}")
        return ""


def _without_header(text: str) -> str:
    """A tests/data/oops log without its header (up to the first blank line)."""
    if not _HEADER.match(text):
        return text
    return text.split("\n\n", 1)[1] if "\n\n" in text else ""


def excerpt(text: str, first: str | None, last: str | None) -> str:
    """The lines of ``text`` from the first matching ``first`` to the next matching ``last``."""
    rows = text.splitlines()
    start = _find(rows, first, 0) if first else 0
    end = _find(rows, last, start) if last else len(rows) - 1
    return "\n".join(rows[start : end + 1])


def _find(rows: list[str], pattern: str, start: int) -> int:
    found = next((i for i in range(start, len(rows)) if re.search(pattern, rows[i])), None)
    if found is None:
        raise ValueError(f"no line matches '{pattern}'")
    return found
