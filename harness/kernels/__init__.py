"""Kernel providers: where a candidate kernel comes from.

Each provider is one module with a frozen spec dataclass (what kernels.yaml
says) whose ``resolve()`` turns it into a :class:`KernelImage` on disk.  A new
source of kernels is a new module plus one line in :data:`PROVIDERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from harness.yamlcheck import Fields


@dataclass(frozen=True)
class KernelImage:
    """A kernel ready to boot: the image and, if it has any, its modules."""

    vmlinuz: Path
    modules_dir: Path | None  # .../lib/modules/<release>
    release: str | None  # uname -r, when known before booting
    origin: str  # one line for reports: where it came from, exact version


class KernelSource(Protocol):
    """What every provider's spec offers the rest of the harness."""

    kind: str

    def describe(self) -> str:
        """One line naming the source as the user wrote it."""
        ...

    def resolve(self, log: Callable[[str], None]) -> KernelImage:
        """Fetch or locate the kernel; raise UserError/InfraError with the fix."""
        ...


def _providers() -> dict[str, Callable[[Fields, Path], KernelSource]]:
    from harness.kernels import build, debian, image

    return {"image": image.from_yaml, "debian": debian.from_yaml, "build": build.from_yaml}


PROVIDERS = _providers()

#: ``image: PATH``, ``debian: PATTERN``, ``build: SOURCE``: short for the mapping with this key.
SHORTHAND = {"image": "path", "debian": "package", "build": "source"}
