"""Backends by name: kernels.yaml ``backend:`` and ``--backend`` pick a row here.

Adding a way of booting kernels is one module implementing
:class:`~harness.machine.base.Backend` and one row below.  Rows import their
module lazily, so validating kernels.yaml does not load every backend.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.machine.base import Backend

BackendFactory = Callable[[], Backend]


def _qemu() -> Backend:
    from harness.machine.qemu import QemuBackend

    return QemuBackend()


def _virtme() -> Backend:
    from harness.machine.virtme import VirtmeBackend

    return VirtmeBackend()


#: backend name -> factory; the first row is the default
BACKENDS: dict[str, BackendFactory] = {
    "qemu": _qemu,
    "virtme": _virtme,
}

DEFAULT_BACKEND = next(iter(BACKENDS))
