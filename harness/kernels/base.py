"""What every kernel provider produces and offers: the records that cross modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from harness.progress import NO_PROGRESS, Progress


@dataclass(frozen=True)
class DebugInfo:
    """What a symbolizer needs for one kernel: its DWARF, and the tree it came from.

    ``vmlinux`` is the unstripped kernel (KASLR does not matter: frames are
    looked up by function+offset); ``modules`` a directory holding its ``.ko``
    files with their DWARF (searched by module name); ``source`` the tree it
    was built from, for ``scripts/get_maintainer.pl`` (None for packaged kernels).
    """

    vmlinux: Path
    modules: Path | None = None
    source: Path | None = None
    archive: Path | None = None  # a -dbg .deb whose .ko files are extracted into modules on demand


@dataclass(frozen=True)
class KernelImage:
    """A kernel ready to boot: the image and, if it has any, its modules."""

    vmlinuz: Path
    modules_dir: Path | None  # .../lib/modules/<release>
    release: str | None  # uname -r, when known before booting
    origin: str  # one line for reports: where it came from, exact version
    phases: dict[str, float] = field(default_factory=dict, compare=False)  # seconds per step
    debug: DebugInfo | None = None  # line info for symbolized reports, when at hand


class KernelSource(Protocol):
    """What every provider's spec offers the rest of the harness."""

    kind: str

    def describe(self) -> str:
        """One line naming the source as the user wrote it."""
        ...

    def resolve(self, log: Callable[[str], None], progress: Progress = NO_PROGRESS) -> KernelImage:
        """Fetch or locate the kernel; raise UserError/InfraError with the fix.

        Downloads and build steps report themselves to ``progress``; the
        seconds of each step the provider measured are in ``phases``.
        """
        ...
