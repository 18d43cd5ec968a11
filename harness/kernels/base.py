"""What every kernel provider produces and offers: the records that cross modules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.display.progress import NO_PROGRESS, Progress


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
class PackagePin:
    """One Debian package exactly: what a later run must download to get the same bytes."""

    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class Exact:
    """What exactly a kernel was made from, so another run (or machine) can ask for the same.

    A ``debian:`` kernel: its version and every package unpacked with its
    hash; a ``build:`` kernel: the tree's commit (or its label, for a plain
    tree or a Debian source package) and the hash of each series patch; an
    ``image:``: the hash of the file.
    """

    version: str | None = None  # debian: kernels.yaml version: pins it
    packages: tuple[PackagePin, ...] = ()
    commit: str | None = None  # build: a git tree's commit (kernels.yaml rev: pins it)
    tree: str | None = None  # build: the source as located (path at commit, package version)
    patches: tuple[str, ...] = ()  # build: sha256 of each series patch, in order
    sha256: str | None = None  # image: the kernel file's hash

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, only the fields this kind of kernel has."""
        data = {
            "version": self.version,
            "packages": [vars(p) for p in self.packages],
            "commit": self.commit,
            "tree": self.tree,
            "patches": list(self.patches),
            "sha256": self.sha256,
        }
        return {k: v for k, v in data.items() if v}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Exact:
        """Back from :meth:`to_json`."""
        return cls(
            data.get("version"),
            tuple(PackagePin(**p) for p in data.get("packages", ())),
            data.get("commit"),
            data.get("tree"),
            tuple(data.get("patches", ())),
            data.get("sha256"),
        )


@dataclass(frozen=True)
class KernelImage:
    """A kernel ready to boot: the image and, if it has any, its modules."""

    vmlinuz: Path
    modules_dir: Path | None  # .../lib/modules/<release>
    release: str | None  # uname -r, when known before booting
    origin: str  # one line for reports: where it came from, exact version
    phases: dict[str, float] = field(default_factory=dict, compare=False)  # seconds per step
    debug: DebugInfo | None = None  # line info for symbolized reports, when at hand
    exact: Exact | None = field(default=None, compare=False)  # what it was made from, exactly


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
