"""Built kernels by what went into them: one key per (recipe, tree state, patches).

A kernels.yaml ``build:`` entry, a series run and a bisect step all ask the
same question before they build: was this exact kernel built before?  The key
covers the recipe (config, fragments, make options, architecture), the tree's
identity (a git commit, or a source package's version) and every patch's
text; a plain directory has no identity (its files may change under it), so it
has no key and is always built.  The images themselves live in
``images/<digest>/`` (see :meth:`TreeBuild._store`); this index maps keys to
them and drops an entry whose image is gone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cache import atomic_write
from harness.kernels.base import DebugInfo, KernelImage
from harness.kernels.patches import Patch

if TYPE_CHECKING:
    from harness.kernels.build import BuildRecipe


def image_key(recipe: BuildRecipe, identity: str, patches: Sequence[Patch] = ()) -> str:
    """The key of the kernel ``recipe`` builds from tree state ``identity`` plus ``patches``."""
    digest = hashlib.sha256(f"{recipe.key()}\0{identity}\0".encode())
    for patch in patches:
        digest.update(patch.text.encode() + b"\0")
    return digest.hexdigest()[:24]


def recall(cache: Path, key: str | None) -> KernelImage | None:
    """The stored kernel of ``key``, or None (never built, or its image was removed)."""
    if key is None:
        return None
    try:
        data = json.loads(_entry(cache, key).read_text())
        vmlinuz = Path(data["vmlinuz"])
        release, origin = data["release"], data["origin"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not vmlinuz.is_file():
        return None
    source = Path(data["source"]) if data.get("source") else None
    return replace(
        KernelImage(vmlinuz, None, release, origin), debug=debug_info(vmlinuz.parent, source)
    )


def remember(cache: Path, key: str | None, image: KernelImage) -> None:
    """Index ``image`` under ``key`` (nothing for a keyless plain tree)."""
    if key is None:
        return
    source = image.debug.source if image.debug and image.debug.source else None
    record = {
        "vmlinuz": str(image.vmlinuz),
        "release": image.release,
        "origin": image.origin,
        "source": str(source) if source else None,
    }
    atomic_write(_entry(cache, key), json.dumps(record).encode())


def debug_info(stored: Path, source: Path | None) -> DebugInfo | None:
    """The stored vmlinux and the slot's tree (for get_maintainer.pl), if it was kept.

    The slot's tree holds the last build's patches, not necessarily this
    kernel's; MAINTAINERS and get_maintainer.pl are what is read from it.
    """
    vmlinux = stored / "vmlinux"
    if not vmlinux.is_file():
        return None
    tree = source if source is not None and (source / "MAINTAINERS").is_file() else None
    return DebugInfo(vmlinux, None, tree)


def _entry(cache: Path, key: str) -> Path:
    return cache / "images" / "by-key" / f"{key}.json"
