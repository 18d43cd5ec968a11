"""One kernel of a run: its record in summary.json, and ``<kernel>/kernel.json``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.arch import X86_64
from harness.kernels.base import Exact
from harness.results.layout import KERNEL_JSON
from harness.results.schema import check_version, read_record
from harness.results.starts import GuestStarts


@dataclass(frozen=True)
class KernelRecord:
    """One kernel of a run: where it came from and what booting it cost."""

    name: str
    source: str
    origin: str | None = None
    release: str | None = None
    backend: str = "qemu"
    boots: int = 0
    boot_taint: int | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    arch: str = X86_64.name  # harness/arch.py name (summaries before arm64: x86_64)
    exact: Exact | None = None  # what the kernel was made from, exactly (kharness rerun)
    starts: GuestStarts | None = None  # cold boots and restores (``boots`` counts both)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (the name is the key it is stored under)."""
        return {
            **({"exact": self.exact.to_json()} if self.exact else {}),
            **({"starts": self.starts.to_json()} if self.starts else {}),
            "arch": self.arch,
            "source": self.source,
            "origin": self.origin,
            "release": self.release,
            "backend": self.backend,
            "boots": self.boots,
            "boot_taint": self.boot_taint,
            "timings": dict(self.timings),
        }

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> KernelRecord:
        """Back from :meth:`to_json`."""
        return cls(
            name,
            data.get("source", ""),
            data.get("origin"),
            data.get("release"),
            data.get("backend", "qemu"),
            data.get("boots", 0),
            data.get("boot_taint"),
            dict(data.get("timings", {})),
            data.get("arch", X86_64.name),
            Exact.from_json(data["exact"]) if data.get("exact") else None,
            GuestStarts.from_json(data["starts"]) if data.get("starts") else None,
        )


#: kernel.json's shape; bump when a field changes meaning or disappears
KERNEL_SCHEMA = 1


@dataclass(frozen=True)
class KernelFile:
    """``<kernel>/kernel.json``: the kernel's record, and why it could not be used (if so).

    Written when the kernel is resolved and again at the end of its session
    (boots, release), so a run killed halfway still says where its kernel came from.
    """

    kernel: KernelRecord
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """kernel.json: the record's fields inline, beside its name and the error."""
        return {
            "schema_version": KERNEL_SCHEMA,
            "name": self.kernel.name,
            **self.kernel.to_json(),
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = KERNEL_JSON) -> KernelFile:
        """Back from :meth:`to_json` (files written before the version are version 1)."""
        check_version(data, (KERNEL_SCHEMA,), where, missing=1)
        return cls(KernelRecord.from_json(data["name"], data), data.get("error"))


def load_kernel_file(kernel_dir: Path) -> KernelFile:
    """A kernel directory's kernel.json; a UserError for one missing, cut or foreign."""
    return read_record(
        kernel_dir / KERNEL_JSON, KernelFile.from_json, "kernel record", "was the kernel resolved?"
    )
