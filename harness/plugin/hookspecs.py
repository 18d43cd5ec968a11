"""Hooks another pytest plugin implements to add kernel sources and backends.

The project's own test suite adds a replayed guest this way (a ``replay:``
source and a ``replay`` backend, tests/support/replay/plugin.py), so its
plumbing tests run through the real plugin without booting a kernel; a user
who loads no such plugin never sees them.  Registered with
``pluginmanager.add_hookspecs`` from ``pytest_addoption``, as pytest-xdist
does with its newhooks.py.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from harness.kernels.registry import ProviderParser
from harness.machine.backends import BackendFactory


def pytest_kharness_backends(config: pytest.Config) -> Mapping[str, BackendFactory]:
    """Backends by name, beside harness/machine/backends.py's, for ``backend:`` and --backend."""


def pytest_kharness_providers(config: pytest.Config) -> Mapping[str, ProviderParser]:
    """kernels.yaml source keys, beside harness/kernels/registry.py's PROVIDERS rows."""


def extra_backends(config: pytest.Config) -> dict[str, BackendFactory]:
    """Every plugin's answer to :func:`pytest_kharness_backends`, merged."""
    merged: dict[str, BackendFactory] = {}
    for rows in config.hook.pytest_kharness_backends(config=config):
        merged.update(rows)
    return merged


def extra_providers(config: pytest.Config) -> dict[str, ProviderParser]:
    """Every plugin's answer to :func:`pytest_kharness_providers`, merged."""
    merged: dict[str, ProviderParser] = {}
    for rows in config.hook.pytest_kharness_providers(config=config):
        merged.update(rows)
    return merged
