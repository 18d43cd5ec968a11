"""Per-guest state that belongs to a kind of test, not to the session.

A kind of test that must remember something per guest (the kselftest
targets built and pushed so far) keeps it here under a key its own module
defines, as pytest's ``Stash`` does for plugins: the session never names
the kinds, and no module outside the session writes a session's fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class ExtrasKey(Generic[T]):
    """A typed key into :class:`Extras`; ``make`` gives a fresh value on first use."""

    def __init__(self, name: str, make: Callable[[], T]) -> None:
        self.name = name
        self.make = make

    def __repr__(self) -> str:
        return f"ExtrasKey({self.name!r})"


class Extras:
    """Values by :class:`ExtrasKey`, each made on first use."""

    def __init__(self) -> None:
        self._values: dict[ExtrasKey[object], object] = {}

    def get(self, key: ExtrasKey[T]) -> T:
        """The value under ``key``, made now if there is none yet."""
        if key not in self._values:
            self._values[cast("ExtrasKey[object]", key)] = key.make()
        return cast("T", self._values[cast("ExtrasKey[object]", key)])
