"""The kernel modules a guest needs, with their dependencies, ready for insmod.

Debian ships modules compressed (.ko.xz since 6.x) and without modules.dep
(depmod runs at install time), and busybox's insmod cannot read .xz.  So the
host reads each module's ``depends=`` from its .modinfo section, orders the
set so dependencies load first, and decompresses them into the image.  Modules
built into the kernel (modules.builtin) are skipped.
"""

from __future__ import annotations

import gzip
import lzma
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InfraError, ToolMissing

#: What every guest needs: the virtio network device the SSH session rides on.
GUEST_MODULES = ("virtio_pci", "virtio_net")
_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")


@dataclass(frozen=True)
class Module:
    """One module to load: its name and decompressed bytes."""

    name: str
    data: bytes


def _canon(name: str) -> str:
    return name.replace("-", "_")


def index_modules(modules_dir: Path) -> dict[str, Path]:
    """Map module name -> file for every module under ``modules_dir/kernel``."""
    found: dict[str, Path] = {}
    for path in (modules_dir / "kernel").rglob("*.ko*"):
        for suffix in _SUFFIXES:
            if path.name.endswith(suffix):
                found[_canon(path.name[: -len(suffix)])] = path
    return found


def builtin_modules(modules_dir: Path) -> set[str]:
    """Names listed in modules.builtin (compiled into the kernel image)."""
    path = modules_dir / "modules.builtin"
    if not path.is_file():
        return set()
    return {
        _canon(Path(line.strip()).name.removesuffix(".ko")) for line in path.read_text().split()
    }


def read_module(path: Path) -> bytes:
    """A module's ELF bytes, decompressed."""
    raw = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(raw)
    if path.name.endswith(".gz"):
        return gzip.decompress(raw)
    if path.name.endswith(".zst"):
        if not shutil.which("zstd"):
            raise ToolMissing("zstd", "zstd")
        proc = subprocess.run(["zstd", "-dc"], input=raw, capture_output=True, check=False)
        if proc.returncode != 0:
            raise InfraError(f"zstd could not decompress {path}")
        return proc.stdout
    return raw


def module_depends(elf: bytes) -> list[str]:
    """The ``depends=`` list of a module's .modinfo strings."""
    for field in elf.split(b"\0"):
        if field.startswith(b"depends="):
            value = field[len(b"depends=") :].decode()
            return [_canon(d) for d in value.split(",") if d]
    return []


def resolve_modules(
    modules_dir: Path | None, wanted: tuple[str, ...] = GUEST_MODULES
) -> list[Module]:
    """Modules to insmod, dependencies first; built-in ones left out."""
    if modules_dir is None:
        return []
    files = index_modules(modules_dir)
    builtin = builtin_modules(modules_dir)
    ordered: list[Module] = []
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in done or name in builtin or name in chain:
            return
        path = files.get(name)
        if path is None:
            return  # not a module of this kernel: built in without modules.builtin, or absent
        elf = read_module(path)
        for dep in module_depends(elf):
            visit(dep, (*chain, name))
        done.add(name)
        ordered.append(Module(name, elf))

    for name in wanted:
        visit(_canon(name), ())
    return ordered
