"""What a guest test declares about itself, read from its header comment.

The first ``/* ... */`` comment of a guest-tests/c/*.c file, or the leading
``#`` comment block of a guest-tests/sh/*.sh file, may hold lines of the form
``@key: value``::

    * @timeout: 120
    * @needs: numa-nodes=2 memory=2G thp=always config=USERFAULTFD,MIGRATION
    * @expect-report: ^kernel BUG in move_pages_huge_pmd$
    * @covers: mm/userfaultfd.c mm/huge_memory.c include/linux/userfaultfd_k.h
    * @always: false

``@covers`` names the kernel source paths the test exercises (files,
directories, globs: :mod:`harness.testkinds.covers`); ``@always: true`` runs it on
every series.  The mailing-list bot tests a series only with the tests
whose paths it touches.

An unknown ``@key`` or a bad value is an error naming the file and the line:
a typo must never silently drop a requirement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.testkinds.covers import Coverage, parse_patterns
from harness.yamlcheck import parse_size_mib

DEFAULT_TIMEOUT = 60.0
_THP_MODES = ("always", "madvise", "never")
_TAG = re.compile(r"^\s*[*#]?\s*@([A-Za-z][\w-]*)\s*:\s*(.*?)\s*$")
_OPTION = re.compile(r"^(?:CONFIG_)?([A-Z0-9_]+)$")
#: the kinds of guest test: the directory under guest-tests/ and the file suffix
KINDS = {"c": ".c", "sh": ".sh"}


@dataclass(frozen=True)
class Needs:
    """What the guest must offer for the test to mean anything."""

    numa_nodes: int = 1
    memory_mib: int = 0
    thp: str | None = None
    config: tuple[str, ...] = ()  # CONFIG_ options the kernel must have (y or m)


@dataclass(frozen=True)
class GuestTest:
    """One guest test (a C reproducer or a shell script) and its declared metadata."""

    name: str
    source: Path
    timeout: float = DEFAULT_TIMEOUT
    needs: Needs = field(default_factory=Needs)
    expect_report: str | None = None  # a title regex: the test crashes the kernel on purpose
    covers: Coverage = field(default_factory=Coverage)  # @covers, @always: what it exercises

    @property
    def kind(self) -> str:
        """'c' for a reproducer compiled on the host, 'sh' for a script the guest's shell runs."""
        return "sh" if self.source.suffix == ".sh" else "c"


def header_comment(text: str, shell: bool = False) -> tuple[str, int]:
    """The first /* */ comment (or leading # block) and the line it starts on (1-based)."""
    if shell:
        return _shell_header(text)
    m = re.search(r"/\*.*?\*/", text, re.DOTALL)
    if not m:
        return "", 0
    return m.group(0), text.count("\n", 0, m.start()) + 1


def _shell_header(text: str) -> tuple[str, int]:
    """The ``#`` lines a script starts with (shebang included), blank lines allowed."""
    block = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            break
        block.append(line)
    return "\n".join(block), 1


def read_test(path: Path) -> GuestTest:
    """Parse ``path``'s header; ConfigError names the file and line on a bad tag."""
    text = path.read_text(errors="replace")
    comment, first = header_comment(text, shell=path.suffix == ".sh")
    values: dict[str, object] = {}
    needs: list[str] = []
    covers: list[str] = []
    always = False
    for offset, line in enumerate(comment.splitlines()):
        m = _TAG.match(line)
        if not m:
            continue
        where = f"{path}:{first + offset}"
        key, value = m.group(1).lower(), m.group(2)
        if key == "timeout":
            values["timeout"] = _positive(value, where)
        elif key == "needs":  # several @needs lines add up
            parse_needs(value, where)
            needs.append(value)
        elif key == "expect-report":
            values["expect_report"] = _regex(value, where)
        elif key == "covers":  # several @covers lines add up
            covers += _patterns(value, where)
        elif key == "always":
            always = _flag(value, where)
        else:
            raise ConfigError(
                f"{where}: unknown header tag '@{key}'; known: @timeout, @needs, "
                "@expect-report, @covers, @always"
            )
    if needs:
        values["needs"] = parse_needs(" ".join(needs), str(path))
    if covers or always:
        values["covers"] = Coverage(tuple(dict.fromkeys(covers)), always)
    return GuestTest(name=path.stem, source=path, **values)  # type: ignore[arg-type]


def _positive(value: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1
    if number <= 0:
        raise ConfigError(f"{where}: @timeout must be a positive number of seconds, got '{value}'")
    return number


def _patterns(value: str, where: str) -> list[str]:
    problems: list[str] = []
    found = parse_patterns(value, where, problems)
    if problems or not found:
        raise ConfigError(
            problems[0] if problems else f"{where}: @covers names no path; e.g. @covers: mm/"
        )
    return list(found)


def _flag(value: str, where: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ConfigError(f"{where}: @always must be true or false, got '{value}'")
    return value.lower() == "true"


def _regex(value: str, where: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ConfigError(f"{where}: @expect-report is not a valid regex: {exc}") from None
    return value


def parse_needs(text: str, where: str) -> Needs:
    """``numa-nodes=2 memory=2G thp=always config=A,B`` -> :class:`Needs`."""
    numa, memory, thp = 1, 0, None
    config: list[str] = []
    for token in text.split():
        key, _, value = token.partition("=")
        if key == "numa-nodes" and value.isdigit() and int(value) >= 1:
            numa = int(value)
        elif key == "memory":
            problems: list[str] = []
            memory = parse_size_mib(value, where, problems) or 0
            if problems:
                raise ConfigError(problems[0])
        elif key == "thp" and value in _THP_MODES:
            thp = value
        elif key == "config":
            config += _options(value, where)
        else:
            raise ConfigError(
                f"{where}: @needs token '{token}' is not understood; use numa-nodes=N, "
                "memory=SIZE, thp=always|madvise|never, config=OPTION[,OPTION...]"
            )
    return Needs(numa, memory, thp, tuple(dict.fromkeys(config)))


def _options(value: str, where: str) -> list[str]:
    """``USERFAULTFD,CONFIG_MIGRATION`` -> ['CONFIG_USERFAULTFD', 'CONFIG_MIGRATION']."""
    names = []
    for part in value.split(","):
        m = _OPTION.match(part.strip())
        if not m:
            raise ConfigError(
                f"{where}: @needs config= option '{part}' is not a kernel config name; "
                "write config=USERFAULTFD,TRANSPARENT_HUGEPAGE (CONFIG_ prefix optional)"
            )
        names.append("CONFIG_" + m.group(1))
    return names


def discover(directory: Path) -> list[Path]:
    """The guest test sources of one kind's directory, sorted (*.c or *.sh)."""
    return sorted(p for suffix in KINDS.values() for p in directory.glob(f"*{suffix}"))


def known_names(tests: Iterable[GuestTest]) -> set[str]:
    """Every guest test name beside ``tests``: their directories and the other kind's.

    What ``expect:`` keys are checked against: a run of one file still knows
    its neighbours, so naming one of them is no mistake.
    """
    roots = {t.source.parent.parent for t in tests}
    return {p.stem for root in roots for kind in KINDS for p in discover(root / kind)} | {
        p.stem for t in tests for p in discover(t.source.parent)
    }
