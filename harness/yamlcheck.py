"""Typed, explaining reads of a YAML mapping.

kernels.yaml is written by people; a mistake there must come back as one
message naming the file, the entry, the key and the fix, never a KeyError.
:class:`Fields` wraps one mapping, hands out typed values and collects every
problem (unknown keys with a "did you mean", wrong types, missing keys) so the
user sees them all at once.  Each problem is a :class:`Problem`: text to
every reader (``where: text``), and the key path it sits at for a caller that
names the place its own way (:mod:`harness.commands.adhoc` names the option).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

E = TypeVar("E", bound=Enum)

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "a mapping",
    list: "a list",
}


_ABSENT = object()


class Problem(str):
    """One problem as the user reads it (``where: text (hint)``), with where it sits.

    A ``str`` so every collector of problems (``list[str]``, joined into one
    ConfigError) reads it as before; ``keys`` is the path of keys from the
    document's top (``("kernels", "tree", "build", "source")``: an entry is
    named by its ``name``, else ``#N``), ``text`` the problem without the place
    or the file-specific hint.
    """

    keys: tuple[str, ...]
    text: str

    def __new__(cls, where: str, keys: tuple[str, ...], text: str, hint: str = "") -> Problem:
        self = super().__new__(cls, f"{where}: {text}" + (f" ({hint})" if hint else ""))
        self.keys = keys
        self.text = text
        return self


class Fields:
    """A mapping being validated; ``where`` says where it sits in the file (as text),
    ``keys`` as the path of keys from the document's top."""

    def __init__(
        self, data: Any, where: str, problems: list[str], keys: tuple[str, ...] = ()
    ) -> None:
        self.where = where
        self.keys = keys
        self.problems = problems
        self._seen: set[str] = set()
        if not isinstance(data, Mapping):
            self.problem(f"must be a mapping of keys to values, got {_describe(data)}")
            data = {}
        self.data: Mapping[str, Any] = data

    def problem(self, text: str, key: str | None = None, hint: str = "") -> None:
        """Record one problem at this place, or at its ``key``; ``hint`` is advice only a
        reader of the file needs (where its relative paths start, ...)."""
        where = f"{self.where}: {key}" if key else self.where
        keys = (*self.keys, key) if key else self.keys
        self.problems.append(Problem(where, keys, text, hint))

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False
    ) -> Any:
        """The value of ``key`` if it has the right type, else ``default``."""
        self._seen.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                self.problems.append(
                    Problem(self.where, (*self.keys, key), f"missing required key '{key}'")
                )
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int to Python, but "cpus: true" is a mistake, not 1 CPU
        is_bool_mistake = isinstance(value, bool) and bool not in kinds
        if is_bool_mistake or not isinstance(value, kinds):
            wanted = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            text = f"'{key}' must be {wanted}, got {_describe(value)}"
            self.problems.append(Problem(self.where, (*self.keys, key), text))
            return default
        return value

    def choice(self, key: str, kind: type[E], default: E) -> E:
        """The value of ``key`` as one of the Enum ``kind`` (absent: ``default``); a word
        that is none of them is a problem naming them all, and reads as ``default``."""
        value = self.get(key, str, default=default.value)
        try:
            return kind(value)
        except ValueError:
            self.problem(f"{key} '{value}' is not one of {', '.join(k.value for k in kind)}")
            return default

    def declare(self, *keys: str) -> None:
        """Keys this mapping may hold though nobody read them (yet): known, not typos."""
        self._seen.update(keys)

    def sub(self, key: str, data: Any = _ABSENT) -> Fields:
        """The mapping under ``key`` (or ``data``, what it stands for) as its own Fields."""
        self._seen.add(key)
        value = self.data.get(key) if data is _ABSENT else data
        return Fields(value, f"{self.where}: {key}", self.problems, (*self.keys, key))

    def finish(self) -> None:
        """Report keys nobody asked for: typos must not be silently ignored."""
        known = sorted(self._seen)
        for key in self.data:
            if key in self._seen:
                continue
            guess = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean '{guess[0]}'? " if guess else ""
            text = f"unknown key '{key}'; {hint}known keys: {', '.join(known)}"
            self.problems.append(Problem(self.where, (*self.keys, str(key)), text))


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"[:80]


def parse_size_mib(text: str | int, where: str, problems: list[str]) -> int | None:
    """'2G', '2048M', '512MiB' or a bare number of MiB -> MiB."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    s = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    factor = {"G": 1024, "M": 1, "T": 1024 * 1024}.get(s[-1:])
    digits = s[:-1] if factor else s
    if not digits.isdigit():
        problems.append(f"{where}: size {text!r} is not understood; write e.g. 2G or 1536M")
        return None
    return int(digits) * (factor or 1)
