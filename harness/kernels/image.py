"""The ``image`` provider: a kernel the user already has on disk.

The path is checked when kernels.yaml is read, not at boot: a typo in a path
or an ELF vmlinux where a bzImage belongs is a configuration error with the
fix in the message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import KernelNotFound
from harness.kernels.base import KernelImage
from harness.progress import NO_PROGRESS, Progress
from harness.yamlcheck import Fields

_BZIMAGE_MAGIC_OFFSET = 0x202
_BZIMAGE_MAGIC = b"HdrS"


def kernel_image_problem(path: Path) -> str | None:
    """Why ``path`` is not a bootable x86 kernel image, or None if it is."""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_file():
        return f"{path} is not a file"
    with path.open("rb") as f:
        head = f.read(0x210)
    if head[:4] == b"\x7fELF":
        return (
            f"{path} is an ELF vmlinux, not a bootable image; "
            "use arch/x86/boot/bzImage from the build directory"
        )
    if head[_BZIMAGE_MAGIC_OFFSET : _BZIMAGE_MAGIC_OFFSET + 4] != _BZIMAGE_MAGIC:
        return f"{path} is not an x86 bzImage (no 'HdrS' boot header at 0x202)"
    return None


@dataclass(frozen=True)
class ImageSource:
    """A bzImage path and optionally its lib/modules/<release> directory."""

    path: Path
    modules: Path | None = None
    kind: str = "image"

    def describe(self) -> str:
        """The path, as resolved against kernels.yaml."""
        return f"image {self.path}" + (f" (modules {self.modules})" if self.modules else "")

    def resolve(self, log: Callable[[str], None], progress: Progress = NO_PROGRESS) -> KernelImage:
        """Check again (the file may have changed since validation) and hand it over."""
        problem = kernel_image_problem(self.path)
        if problem:
            raise KernelNotFound(problem)
        release = self.modules.name if self.modules else None
        return KernelImage(self.path, self.modules, release, self.describe())


def from_yaml(f: Fields, base: Path) -> ImageSource | None:
    """``image: PATH`` or ``image: {path: PATH, modules: DIR}``."""
    raw_path = f.get("path", str, required=True)
    raw_mods = f.get("modules", str)
    f.finish()
    if raw_path is None:
        return None
    path = (base / raw_path).expanduser().resolve()
    problem = kernel_image_problem(path)
    if problem:
        f.problem(f"{problem}; fix 'path' (relative paths are relative to kernels.yaml)")
    modules = (base / raw_mods).expanduser().resolve() if raw_mods else None
    if modules is not None and not (modules / "kernel").is_dir():
        f.problem(
            f"modules directory {modules} has no kernel/ subdirectory; "
            "point it at .../lib/modules/<release> (make modules_install INSTALL_MOD_PATH=...)"
        )
    return ImageSource(path, modules)
