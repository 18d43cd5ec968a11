"""kernels.yaml's ``build:`` key: a source tree (or git rev) plus config and patches, read.

Kept apart from the build itself (:mod:`harness.kernels.build`): reading and
checking what a person wrote is one job, running make is another.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.arch import Arch, host
from harness.errors import HarnessError
from harness.kernels.build import BuildSource, make_recipe
from harness.kernels.config_fragments import BASE_CONFIGS, DEBUGINFO_FRAGMENT, read_fragment
from harness.kernels.dirty import DirtyPolicy
from harness.kernels.patches import read_series
from harness.kernels.srctree import is_package_name, kernel_tree_problem
from harness.yamlcheck import Fields


def from_yaml(f: Fields, base: Path, arch: Arch | None = None) -> BuildSource | None:
    """``build: SOURCE`` or the mapping of the module docstring; every problem recorded."""
    arch = arch or host()
    source = f.get("source", str, required=True)
    rev = f.get("rev", str)
    config = f.get("config", str, default="tinyconfig")
    fragments = _paths(f, "fragments", base)
    guest_config = f.get("guest_config", bool, default=True)
    debug_info = f.get("debug_info", bool, default=False)
    series = _paths(f, "series", base)
    make = _strings(f, "make")
    dirty = _dirty(f)
    inbox = _inbox(f, base)
    sandbox = f.get("sandbox", bool, default=False)  # untrusted tree: make in bubblewrap
    f.finish()
    if config not in BASE_CONFIGS:
        f.problem(
            f"config '{config}' is not one of {', '.join(BASE_CONFIGS)}; "
            "put your own options in 'fragments'"
        )
    for path in fragments:
        _check(f, "fragments", lambda p=path: read_fragment(p))
    for path in series:
        _check(f, "series", lambda p=path: read_series(p))
    if source is not None and not is_package_name(source):
        path = (base / source).expanduser()
        problem = None if (path / ".git").exists() else kernel_tree_problem(path)
        if problem:
            f.problem(problem, "source")
    if source is None:
        return None
    if debug_info:
        fragments.append(DEBUGINFO_FRAGMENT)
    recipe = make_recipe(config, tuple(fragments), guest_config, tuple(make), arch, bool(sandbox))
    return BuildSource(source, base, rev, recipe, tuple(series), dirty=dirty, inbox=inbox)


def _inbox(f: Fields, base: Path) -> str | None:
    """``inbox: URL`` (or a local public-inbox directory): where this tree's series are posted."""
    inbox = f.get("inbox", str)
    if inbox is None or re.match(r"https?://\S+$", inbox):
        return inbox
    path = (base / inbox).expanduser()
    if not path.is_dir():
        f.problem(
            f"inbox: {inbox!r} is neither an http(s) URL (https://lore.kernel.org/linux-mm) "
            "nor a public-inbox directory"
        )
        return None
    return str(path)


def _dirty(f: Fields) -> DirtyPolicy:
    """``dirty: refuse`` (default) or ``build``: a git tree with uncommitted changes."""
    text = f.get("dirty", str, default=DirtyPolicy.REFUSE.value)
    try:
        return DirtyPolicy(text)
    except ValueError:
        choices = " or ".join(d.value for d in DirtyPolicy)
        f.problem(
            f"dirty '{text}' is not {choices} (refuse a git tree with uncommitted changes, "
            "or build its work tree as it is)"
        )
        return DirtyPolicy.REFUSE


def _check(f: Fields, key: str, read: Callable[[], Any]) -> None:
    try:
        read()
    except HarnessError as exc:
        f.problem(str(exc), key)


def _strings(f: Fields, key: str) -> list[str]:
    value = f.get(key, (list, str), default=[])
    items = [value] if isinstance(value, str) else value
    if not all(isinstance(v, str) for v in items):
        f.problem(f"'{key}' must be a string or a list of strings")
        return []
    return items


def _paths(f: Fields, key: str, base: Path) -> list[Path]:
    return [(base / v).expanduser().resolve() for v in _strings(f, key)]
