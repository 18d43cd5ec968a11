"""The ``image`` provider, and what a bootable kernel image looks like per architecture.

The path is checked when kernels.yaml is read, not at boot: a typo in a path,
an ELF vmlinux where a bzImage belongs, or an arm64 Image given to an x86_64
entry (and the reverse) is a configuration error with the fix in the message.

Formats told apart by their headers: the x86 boot protocol's ``HdrS`` at
0x202 (bzImage), arm64's ``ARM\\x64`` at 0x38 (Image), a gzip stream (a
compressed arm64 Image, which QEMU unpacks itself) and the EFI zboot PE
(``MZ`` then ``zimg``: a compressed Image inside an EFI stub, Debian's arm64
vmlinuz), which QEMU 7.2 cannot load: :func:`bootable` unpacks its payload
once into the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

from harness.arch import ARM64, X86_64, Arch, host
from harness.cache import atomic_write, cache_root
from harness.display.progress import NO_PROGRESS, Progress
from harness.errors import InfraError, KernelNotFound, ToolMissing
from harness.kernels.base import Exact, KernelImage
from harness.yamlcheck import Fields

_HEAD = 0x240


@dataclass(frozen=True)
class ImageKind:
    """What a kernel image file is: its architecture and its packaging."""

    arch: Arch | None  # None: not a kernel image we know
    form: str  # "bzImage", "Image", "gzip", "zboot", "elf", "unknown"


def image_kind(head: bytes) -> ImageKind:
    """The kind of the image whose first bytes are ``head`` (at least 0x240 of them)."""
    if head[:4] == b"\x7fELF":
        machine = struct.unpack_from("<H", head, 18)[0] if len(head) >= 20 else 0
        return ImageKind({62: X86_64, 183: ARM64}.get(machine), "elf")
    if head[0x202:0x206] == b"HdrS":
        return ImageKind(X86_64, "bzImage")
    if head[0x38:0x3C] == b"ARM\x64":
        return ImageKind(ARM64, "Image")
    if head[:2] == b"MZ" and head[4:8] == b"zimg":
        return ImageKind(ARM64, "zboot")
    if head[:2] == b"\x1f\x8b":
        return ImageKind(ARM64, "gzip")  # only arm64 boots a bare gzip stream
    return ImageKind(None, "unknown")


def kernel_image_problem(path: Path, arch: Arch | None = None) -> str | None:
    """Why ``path`` is not a bootable kernel image for ``arch``, or None if it is."""
    arch = arch or host()
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_file():
        return f"{path} is not a file"
    with path.open("rb") as f:
        kind = image_kind(f.read(_HEAD))
    if kind.form == "elf":
        return (
            f"{path} is an ELF vmlinux, not a bootable image; "
            f"use {arch.build_image} from the build directory"
        )
    if kind.arch is None:
        return f"{path} is not a kernel image for {arch.name} ({arch.build_image}, or a vmlinuz)"
    if kind.arch is not arch:
        return (
            f"{path} is an {kind.arch.name} kernel ({kind.form}) but the entry's arch is "
            f"{arch.name}; set 'arch: {kind.arch.name}' or give an {arch.name} image"
        )
    return None


def bootable(path: Path, arch: Arch) -> Path:
    """``path``, or its payload unpacked into the cache when QEMU cannot load it as is."""
    with path.open("rb") as f:
        head = f.read(_HEAD)
    if image_kind(head).form != "zboot" or arch is not ARM64:
        return path
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:24]
    out = cache_root() / "unpacked" / digest / "Image"
    if out.is_file():
        return out
    atomic_write(out, unpack_zboot(data, path))
    return out


def unpack_zboot(data: bytes, where: Path) -> bytes:
    """The Image inside an EFI zboot file (header: offset, size, compression name)."""
    offset, size = struct.unpack_from("<II", data, 8)
    method = data[0x18:0x38].split(b"\0", 1)[0].decode(errors="replace")
    payload = data[offset : offset + size]
    if method == "gzip":
        image = gzip.decompress(payload)
    elif method == "zstd" or method == "zstd22":
        if not shutil.which("zstd"):
            raise ToolMissing("zstd", "zstd")
        proc = subprocess.run(["zstd", "-dc"], input=payload, capture_output=True, check=False)
        if proc.returncode != 0:
            raise InfraError(f"{where}: zstd could not unpack its zboot payload")
        image = proc.stdout
    else:
        raise InfraError(f"{where}: EFI zboot image compressed with '{method}', not gzip or zstd")
    if image_kind(image[:_HEAD]).form != "Image":
        raise InfraError(f"{where}: the zboot payload is not an arm64 Image")
    return image


@dataclass(frozen=True)
class ImageSource:
    """A kernel image path and optionally its lib/modules/<release> directory."""

    path: Path
    _: KW_ONLY
    modules: Path | None = None
    arch: Arch = field(default_factory=host)
    kind: str = "image"

    def describe(self) -> str:
        """The path, as resolved against kernels.yaml."""
        return f"image {self.path}" + (f" (modules {self.modules})" if self.modules else "")

    def resolve(self, log: Callable[[str], None], progress: Progress = NO_PROGRESS) -> KernelImage:
        """Check again (the file may have changed since validation) and hand it over."""
        problem = kernel_image_problem(self.path, self.arch)
        if problem:
            raise KernelNotFound(problem)
        release = self.modules.name if self.modules else None
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        return KernelImage(
            bootable(self.path, self.arch),
            self.modules,
            release,
            self.describe(),
            exact=Exact(sha256=digest),
        )


def from_yaml(f: Fields, base: Path, arch: Arch | None = None) -> ImageSource | None:
    """``image: PATH`` or ``image: {path: PATH, modules: DIR}``."""
    arch = arch or host()
    raw_path = f.get("path", str, required=True)
    raw_mods = f.get("modules", str)
    f.finish()
    if raw_path is None:
        return None
    path = (base / raw_path).expanduser().resolve()
    problem = kernel_image_problem(path, arch)
    if problem:
        f.problem(f"{problem}; fix the path", "path", "relative paths are relative to kernels.yaml")
    modules = (base / raw_mods).expanduser().resolve() if raw_mods else None
    if modules is not None and not (modules / "kernel").is_dir():
        f.problem(
            f"modules directory {modules} has no kernel/ subdirectory; "
            "point it at .../lib/modules/<release> (make modules_install INSTALL_MOD_PATH=...)",
            "modules",
        )
    return ImageSource(path, modules=modules, arch=arch)
