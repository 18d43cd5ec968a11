"""Kernel providers by kernels.yaml key: adding a source of kernels is one module and one row.

Each provider module has a frozen spec dataclass (what kernels.yaml says)
whose ``resolve()`` turns it into a :class:`~harness.kernels.base.KernelImage`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.arch import Arch
from harness.kernels import build_yaml, debian, image
from harness.kernels.base import KernelSource
from harness.yamlcheck import Fields

#: reads one kernels.yaml source key's mapping (and the entry's arch) into a KernelSource
ProviderParser = Callable[[Fields, Path, Arch], KernelSource | None]

#: kernels.yaml key -> parser of that key's mapping
PROVIDERS: dict[str, ProviderParser] = {
    "image": image.from_yaml,
    "debian": debian.from_yaml,
    "build": build_yaml.from_yaml,
}

#: ``image: PATH``, ``debian: PATTERN``, ``build: SOURCE``: short for the mapping with this key.
SHORTHAND = {"image": "path", "debian": "package", "build": "source"}
