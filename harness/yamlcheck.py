"""Typed, explaining reads of a YAML mapping.

kernels.yaml is written by people; a mistake there must come back as one
message naming the file, the entry, the key and the fix, never a KeyError.
:class:`Fields` wraps one mapping, hands out typed values and collects every
problem (unknown keys with a "did you mean", wrong types, missing keys) so the
user sees them all at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "a mapping",
    list: "a list",
}


class Fields:
    """A mapping being validated; ``where`` says where it sits in the file."""

    def __init__(self, data: Any, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        self._seen: set[str] = set()
        if not isinstance(data, Mapping):
            self.problem(f"must be a mapping of keys to values, got {_describe(data)}")
            data = {}
        self.data: Mapping[str, Any] = data

    def problem(self, text: str) -> None:
        """Record one problem at this place."""
        self.problems.append(f"{self.where}: {text}")

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False
    ) -> Any:
        """The value of ``key`` if it has the right type, else ``default``."""
        self._seen.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                self.problem(f"missing required key '{key}'")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int to Python, but "cpus: true" is a mistake, not 1 CPU
        is_bool_mistake = isinstance(value, bool) and bool not in kinds
        if is_bool_mistake or not isinstance(value, kinds):
            wanted = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            self.problem(f"'{key}' must be {wanted}, got {_describe(value)}")
            return default
        return value

    def declare(self, *keys: str) -> None:
        """Keys this mapping may hold though nobody read them (yet): known, not typos."""
        self._seen.update(keys)

    def sub(self, key: str) -> Fields:
        """The mapping under ``key`` as its own :class:`Fields`."""
        self._seen.add(key)
        return Fields(self.data.get(key), f"{self.where}: {key}", self.problems)

    def finish(self) -> None:
        """Report keys nobody asked for: typos must not be silently ignored."""
        known = sorted(self._seen)
        for key in self.data:
            if key in self._seen:
                continue
            guess = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean '{guess[0]}'? " if guess else ""
            self.problem(f"unknown key '{key}'; {hint}known keys: {', '.join(known)}")


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
