"""The kinds of harness items, one row each: adding a kind is one ``kind_*.py`` and one row.

Each row (:class:`~harness.plugin.items.ItemKind`) says which files the
kind collects and which items it adds to a run of the guest-tests directory;
the hooks go through this table and never name a kind.  Row order is the
order of the added items on a kernel: KUnit runs at boot, so its items come
first and the kselftests reuse that boot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.config import KernelSpec
from harness.plugin import kind_guest, kind_kselftest, kind_kunit
from harness.plugin.items import ItemKind

KINDS: tuple[ItemKind, ...] = (kind_guest.KIND, kind_kunit.KIND, kind_kselftest.KIND)


def collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    """The collector of the first kind that owns ``file_path``, or None."""
    for kind in KINDS:
        collector = kind.collect_file(file_path, parent) if kind.collect_file else None
        if collector is not None:
            return collector
    return None


def extra_items(
    session: pytest.Session, specs: list[KernelSpec], log: Callable[[str], None]
) -> list[pytest.Item]:
    """Items no file stands for (KUnit globs, kselftests), in row order."""
    return [
        item for kind in KINDS if kind.extra_items for item in kind.extra_items(session, specs, log)
    ]


def is_test_file(path: Path) -> bool:
    """Whether some kind collects ``path``."""
    return any(kind.is_test_file(path) for kind in KINDS if kind.is_test_file)


def is_test_dir(path: Path) -> bool:
    """Whether ``path`` is a folder of one kind's test files."""
    return any(kind.is_test_dir(path) for kind in KINDS if kind.is_test_dir)
