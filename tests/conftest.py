"""Shared fixtures for the project's own tests, and the order they start in."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def _weight(item: pytest.Item) -> int:
    """0: builds a kernel (minutes), 1: boots one (tens of seconds), 2: the rest."""
    if item.get_closest_marker("build"):
        return 0
    return 1 if item.get_closest_marker("boot") else 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the longest modules first, keeping each module's tests together and in order.

    ``make test`` spreads modules over two workers (``-n 2 --dist loadfile``);
    a long module handed out last would run alone at the end while the other
    worker idles.  Modules that build a kernel go first, then those that boot
    one, then the rest fill the gaps.  A module's tests stay contiguous, so its
    module-scoped fixtures (a booted guest, a built tree) are set up once.
    """
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    ordered = sorted(modules.values(), key=lambda group: min(map(_weight, group)))
    items[:] = [item for group in ordered for item in group]
