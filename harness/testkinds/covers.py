"""Which kernel source paths a test exercises: its ``@covers`` patterns, and how they match.

A guest test says it in its header (``@covers: mm/userfaultfd.c fs/userfaultfd.c``,
``@always: true`` for a test run on every series), a kselftest target or a
KUnit suite in its kernels.yaml entry (``covers:``).  The mailing-list bot
reads them to test a series only with the tests whose code it touches
(:mod:`harness.mail.relevance`).

A pattern is a path relative to the top of the kernel tree:

* ``mm/userfaultfd.c``: that file;
* ``mm/`` or ``mm``: everything under the directory (a path also covers
  what is below it);
* ``mm/*.c``: a glob; ``*`` and ``?`` stay within one directory, ``**``
  crosses them (``drivers/**/uffd*.c``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from harness.yamlcheck import Fields

_ALLOWED = re.compile(r"^[A-Za-z0-9_.,+\-/*?]+$")


@dataclass(frozen=True)
class Coverage:
    """The paths one test exercises, and whether it runs on every series regardless."""

    paths: tuple[str, ...] = ()
    always: bool = False

    @property
    def declared(self) -> bool:
        """Whether the test said anything at all (undeclared tests never run for relevance)."""
        return bool(self.paths) or self.always


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is no path pattern (None: it is one)."""
    if not _ALLOWED.match(pattern):
        return (
            f"'{pattern}' is not a source path pattern; write paths relative to the kernel "
            "tree's top, e.g. mm/userfaultfd.c, mm/ or mm/*.c"
        )
    if pattern.startswith("/") or ".." in pattern.split("/"):
        return f"'{pattern}' must be relative to the kernel tree's top and stay inside it"
    return None


def parse_patterns(text: str, where: str, problems: list[str]) -> tuple[str, ...]:
    """The patterns of a whitespace-separated list; problems named by ``where``."""
    found = []
    for word in text.split():
        problem = pattern_problem(word)
        if problem:
            problems.append(f"{where}: {problem}")
        else:
            found.append(word)
    return tuple(dict.fromkeys(found))


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    body = pattern.rstrip("/")
    out = ""
    i = 0
    while i < len(body):
        if body.startswith("**", i):
            out += ".*"
            i += 2
        elif body[i] == "*":
            out += "[^/]*"
            i += 1
        elif body[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(body[i])
            i += 1
    return re.compile(f"{out}(?:/.*)?")


def matches(pattern: str, path: str) -> bool:
    """Whether ``path`` (relative to the tree's top) is ``pattern`` or lies under it."""
    return _regex(pattern).fullmatch(path.lstrip("/")) is not None


def matching(patterns: Iterable[str], paths: Iterable[str]) -> tuple[str, ...]:
    """The ``paths`` some pattern covers, in their order."""
    patterns = tuple(patterns)
    return tuple(p for p in paths if any(matches(pat, p) for pat in patterns))


def parse_covers(
    f: Fields, kunit: tuple[str, ...], selftests: tuple[str, ...]
) -> dict[str, Coverage]:
    """A kernels.yaml entry's ``covers:`` map, each key a test of that entry::

    covers:
      kselftest.mm: [mm/, include/linux/mm.h]      # a selftests: target
      kunit/list-kunit-test: [lib/list-test.c]     # a kunit: glob
      thp_sysfs: {always: true}                    # a guest test: its header's, replaced
      uffd_move_swap_pmd: {paths: [mm/huge_memory.c], always: false}
    """
    raw = f.get("covers", dict, default={})
    result: dict[str, Coverage] = {}
    for key, value in raw.items():
        where = f"{f.where}: covers: {key}"
        problem = _key_problem(str(key), kunit, selftests)
        if problem:
            f.problems.append(f"{where}: {problem}")
            continue
        coverage = _coverage(value, where, f.problems)
        if coverage is not None:
            result[str(key)] = coverage
    return result


def _key_problem(key: str, kunit: tuple[str, ...], selftests: tuple[str, ...]) -> str | None:
    if key.startswith("kselftest."):
        target = key.removeprefix("kselftest.").split(".")[0]
        if target not in selftests:
            return f"'{target}' is not in this entry's selftests: {list(selftests)}"
    elif key.startswith("kunit/"):
        if key.removeprefix("kunit/") not in kunit:
            return f"'{key.removeprefix('kunit/')}' is not in this entry's kunit: {list(kunit)}"
    elif not re.fullmatch(r"[A-Za-z0-9][\w.+-]*", key):
        return "name a guest test, kselftest.TARGET or kunit/GLOB of this entry"
    return None


def _coverage(value: Any, where: str, problems: list[str]) -> Coverage | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return Coverage(parse_patterns(" ".join(value), where, problems))
    if isinstance(value, Mapping):
        f = Fields(value, where, problems)
        paths = f.get("paths", list, default=[])
        always = f.get("always", bool, default=False)
        f.finish()
        if not all(isinstance(p, str) for p in paths):
            f.problem("paths must be a list of path patterns, e.g. [mm/userfaultfd.c, mm/]")
            return None
        return Coverage(parse_patterns(" ".join(paths), where, problems), bool(always))
    problems.append(
        f"{where}: give a list of path patterns ([mm/userfaultfd.c, mm/]) or "
        "{paths: [...], always: true|false}"
    )
    return None
