"""Kernel configuration: a base config plus fragments, and a check of what survived.

``olddefconfig`` silently drops an option whose dependencies are not met, so a
fragment line such as ``CONFIG_PTE_MARKER_UFFD_WP=y`` can vanish and a test
then skips or fails for a reason nobody sees.  After the config is made, every
fragment line is compared with the final ``.config``; each one that did not
survive is reported with the symbols its ``depends on`` lines name that are
not enabled (the likely culprit), and a name no Kconfig file defines is
reported as unknown (a typo, or renamed in this kernel version).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.arch import Arch
from harness.errors import FragmentError

GUEST_FRAGMENT = Path(__file__).with_name("guest.config")
KUNIT_FRAGMENT = Path(__file__).with_name("kunit.config")  # kernels.yaml kunit: adds it
DEBUGINFO_FRAGMENT = Path(__file__).with_name("debuginfo.config")  # build: {debug_info: true}


def guest_fragment(arch: Arch) -> Path:
    """What every guest of ``arch`` needs (guest.config is the host's, x86_64)."""
    return Path(__file__).with_name(arch.guest_config)


BASE_CONFIGS = ("tinyconfig", "defconfig", "allnoconfig")

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_ENTRY = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$")
_BLOCK_END = re.compile(
    r"^\s*(config|menuconfig|choice|endchoice|menu|endmenu|if|endif|"
    r"source|comment|mainmenu)\b"
)
_SYMBOL = re.compile(r"\b[A-Z][A-Z0-9_]+\b")


@dataclass(frozen=True)
class Fragment:
    """A config fragment: its file and its assignments in order ('n' for 'is not set')."""

    path: Path
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ConfigProblem:
    """One fragment line that the final .config does not honour."""

    option: str
    wanted: str
    got: str  # 'n' when absent
    fragment: Path
    unknown: bool = False
    hint: str = ""

    def message(self) -> str:
        """One line for logs: which option, what happened, what to look at."""
        if self.unknown:
            return f"{self.option} (from {self.fragment.name}) is unknown to this kernel{self.hint}"
        return (
            f"{self.option}={self.wanted} (from {self.fragment.name}) was lost: "
            f"the final .config has {self.got}{self.hint}"
        )


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_X values of a .config or fragment text; 'is not set' reads as 'n'."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        m = _SET.match(line) or _UNSET.match(line)
        if m:
            values[m.group(1)] = m.group(2) if m.re is _SET else "n"
    return values


def read_fragment(path: Path) -> Fragment:
    """Read a fragment; FragmentError names the file and line of anything else."""
    if not path.is_file():
        raise FragmentError(
            f"config fragment {path} does not exist; fix the path "
            "(relative paths are relative to kernels.yaml)"
        )
    values: list[tuple[str, str]] = []
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = raw.strip()
        m = _SET.match(line) or _UNSET.match(line)
        if m:
            values.append((m.group(1), m.group(2) if m.re is _SET else "n"))
        elif line and not line.startswith("#"):
            raise FragmentError(
                f"{path}:{number}: '{line}' is not a config line; write "
                "CONFIG_NAME=value or '# CONFIG_NAME is not set'"
            )
    return Fragment(path, tuple(values))


def merge(base_text: str, fragments: Iterable[Fragment]) -> str:
    """The base .config with every fragment's values applied in order (last one wins)."""
    lines = base_text.splitlines()
    index = {}
    for i, line in enumerate(lines):
        m = _SET.match(line) or _UNSET.match(line)
        if m:
            index[m.group(1)] = i
    for fragment in fragments:
        for name, value in fragment.values:
            text = f"# {name} is not set" if value == "n" else f"{name}={value}"
            if name in index:
                lines[index[name]] = text
            else:
                index[name] = len(lines)
                lines.append(text)
    return "\n".join(lines) + "\n"


# -- checking ------------------------------------------------------------------------


@dataclass(frozen=True)
class KconfigIndex:
    """What the tree's Kconfig files say: every symbol and its 'depends on' lines."""

    depends: dict[str, tuple[str, ...]]

    def knows(self, option: str) -> bool:
        """Whether some Kconfig file defines ``CONFIG_<name>``."""
        return option.removeprefix("CONFIG_") in self.depends


def index_kconfig(tree: Path) -> KconfigIndex:
    """Scan every Kconfig file of ``tree`` for entries and their conditions."""
    depends: dict[str, list[str]] = {}
    for path in _kconfig_files(tree):
        for symbol, condition in _entries(path.read_text(errors="replace")):
            depends.setdefault(symbol, [])
            if condition:
                depends[symbol].append(condition)
    return KconfigIndex({k: tuple(dict.fromkeys(v)) for k, v in depends.items()})


def _kconfig_files(tree: Path) -> Iterator[Path]:
    for path in tree.rglob("Kconfig*"):
        if path.is_file() and not any(p in ("Documentation", "tools") for p in path.parts):
            yield path


def _entries(text: str) -> Iterator[tuple[str, str]]:
    """(symbol, condition) for each entry: its 'depends on' lines and enclosing 'if's."""
    ifs: list[str] = []
    current: str | None = None
    for line in _without_help(text):
        m = _ENTRY.match(line)
        if m:
            current = m.group(1)
            yield current, " && ".join(ifs)
            continue
        stripped = line.strip()
        if stripped.startswith("if ") or stripped == "if":
            ifs.append(stripped[3:].strip())
        elif stripped.startswith("endif") and ifs:
            ifs.pop()
        if _BLOCK_END.match(line):
            current = None
        elif current and stripped.startswith("depends on "):
            yield current, stripped[len("depends on ") :].strip()


def _without_help(text: str) -> Iterator[str]:
    """The lines of a Kconfig file minus help texts (prose may start with 'if ...')."""
    help_indent: int | None = None
    in_help = False
    for raw in text.splitlines():
        line = raw.expandtabs(8)
        indent = len(line) - len(line.lstrip())
        if in_help:
            if not line.strip():
                continue
            if help_indent is None:
                help_indent = indent
            if indent >= help_indent:
                continue
            in_help = False
        if line.strip() in ("help", "---help---"):
            in_help, help_indent = True, None
            continue
        yield line


def check_config(
    final: dict[str, str], fragments: Iterable[Fragment], kconfig: KconfigIndex
) -> list[ConfigProblem]:
    """Every fragment line the final .config lost, with a hint; later fragments win."""
    wanted: dict[str, tuple[str, Path]] = {}
    for fragment in fragments:
        for name, value in fragment.values:
            wanted[name] = (value, fragment.path)
    problems = []
    for name, (value, path) in wanted.items():
        got = final.get(name, "n")
        if _same(value, got):
            continue
        if not kconfig.knows(name):
            problems.append(ConfigProblem(name, value, got, path, True, _near(name, kconfig)))
        else:
            problems.append(
                ConfigProblem(
                    name, value, got, path, False, _missing_dependencies(name, final, kconfig)
                )
            )
    return problems


def _same(wanted: str, got: str) -> bool:
    return wanted.strip('"') == got.strip('"')


def _near(name: str, kconfig: KconfigIndex) -> str:
    close = difflib.get_close_matches(name.removeprefix("CONFIG_"), kconfig.depends, n=2)
    if close:
        return f" (no Kconfig defines it; did you mean {', '.join('CONFIG_' + c for c in close)}?)"
    return " (no Kconfig defines it: a typo, or renamed in this version?)"


def _missing_dependencies(name: str, final: dict[str, str], kconfig: KconfigIndex) -> str:
    conditions = kconfig.depends.get(name.removeprefix("CONFIG_"), ())
    off = [
        s
        for c in conditions
        for s in _SYMBOL.findall(c)
        if kconfig.knows("CONFIG_" + s)
        and final.get("CONFIG_" + s, "n") == "n"
        and not re.search(rf"!\s*{s}\b", c)
    ]
    if off:
        missing = ", ".join(dict.fromkeys("CONFIG_" + s for s in off))
        return f"; likely missing dependency: {missing} (depends on {' && '.join(conditions)})"
    if conditions:
        return f"; check its dependencies: {' && '.join(conditions)}"
    return "; it has no prompt or is selected by other options (nothing selects it here)"
