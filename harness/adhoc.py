"""Kernels named on the command line: ``--image PATH`` and ``--tree PATH``, no kernels.yaml.

A developer in the middle of a change has a bzImage they just built, or the
tree in front of them; writing a kernels.yaml entry first is a detour.  The
options stand for the entries a person would have written, and those go
through the same validation as the file (:func:`harness.config.parse_kernels`),
so a wrong path or an arm64 Image on an x86 host gets the same message:

* ``--image PATH [--modules DIR] [--arch ARCH]`` is the kernel ``image``
  (``image: {path, modules}``; the arch is read off the image when not given);
* ``--tree PATH [--config FRAGMENT]... [--patch FILE|DIR|MBOX]...`` is the
  kernel ``tree`` (``build: {source, fragments, series, dirty: build}``): the
  checkout as it is, uncommitted edits included since testing them is the
  point, built out of tree in the cache's build slot.  A git tree's edits
  become a snapshot commit made from a temporary index (see
  :mod:`harness.kernels.dirty`): the user's files, index and branch are never
  written, and the next edit rebuilds incrementally in the same slot.
  ``--sandbox`` (``build: {sandbox: true}``) builds it in bubblewrap, for a
  tree or patches from someone you do not trust (:mod:`harness.kernels.sandbox`).

With ``--kernel NAME`` the kernels.yaml entries run beside them; without, the
ad-hoc kernels run alone and kernels.yaml need not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.arch import ARCHES
from harness.config import KernelSpec, parse_kernels
from harness.errors import ConfigError, UserError
from harness.kernels.image import image_kind

#: the names the ad-hoc kernels have in test ids and results directories
IMAGE_NAME = "image"
TREE_NAME = "tree"


@dataclass(frozen=True)
class AdHocKernels:
    """What the ad-hoc options said (paths as given; resolved against ``cwd``)."""

    image: str | None = None
    modules: str | None = None
    arch: str | None = None
    tree: str | None = None
    configs: tuple[str, ...] = ()
    patches: tuple[str, ...] = ()
    sandbox: bool = False  # --tree (or its --patch) is untrusted: build it in bubblewrap

    @property
    def given(self) -> bool:
        """Whether any ad-hoc kernel was asked for."""
        return bool(self.image or self.tree)

    def check(self) -> None:
        """UserError for options that qualify a kernel nobody named."""
        if self.modules and not self.image:
            raise UserError("--modules goes with --image PATH (the image's lib/modules/<release>)")
        if (self.configs or self.patches) and not self.tree:
            raise UserError("--config and --patch go with --tree PATH (the tree they build)")
        if self.sandbox and not self.tree:
            raise UserError("--sandbox goes with --tree PATH (the tree built in the sandbox)")
        if self.arch and self.arch not in ARCHES:
            raise UserError(f"--arch {self.arch}: one of {', '.join(ARCHES)}")

    def entries(self, cwd: Path) -> list[dict[str, Any]]:
        """The kernels.yaml entries these options stand for, paths made absolute."""
        entries: list[dict[str, Any]] = []
        if self.image:
            path = _absolute(self.image, cwd)
            image: dict[str, Any] = {"path": str(path)}
            if self.modules:
                image["modules"] = str(_absolute(self.modules, cwd))
            entries.append({"name": IMAGE_NAME, "image": image, "arch": self._image_arch(path)})
        if self.tree:
            build: dict[str, Any] = {"source": str(_absolute(self.tree, cwd)), "dirty": "build"}
            if self.configs:
                build["fragments"] = [str(_absolute(c, cwd)) for c in self.configs]
            if self.patches:
                build["series"] = [str(_absolute(p, cwd)) for p in self.patches]
            if self.sandbox:
                build["sandbox"] = True
            entry = {"name": TREE_NAME, "build": build}
            if self.arch:
                entry["arch"] = self.arch
            entries.append(entry)
        return entries

    def _image_arch(self, path: Path) -> str | None:
        """--arch, else what the image's header says (None: let validation explain)."""
        if self.arch:
            return self.arch
        try:
            with path.open("rb") as f:
                kind = image_kind(f.read(0x240))
        except OSError:
            return None
        return kind.arch.name if kind.arch else None

    def specs(self, cwd: Path) -> list[KernelSpec]:
        """The ad-hoc kernels, validated as kernels.yaml entries; ConfigError names the option."""
        self.check()
        if not self.given:
            return []
        entries = [{k: v for k, v in e.items() if v is not None} for e in self.entries(cwd)]
        problems: list[str] = []
        specs = parse_kernels({"kernels": entries}, cwd / "(command line)", problems)
        if problems:
            raise ConfigError("\n".join(_in_option_words(p) for p in problems))
        return specs

    def argv(self) -> list[str]:
        """The same options for the pytest plugin (``kharness run`` hands them on)."""
        argv = []
        for option, value in (
            ("--image", self.image),
            ("--modules", self.modules),
            ("--arch", self.arch),
            ("--tree", self.tree),
        ):
            if value:
                argv.append(f"{option}={Path(value).resolve() if option != '--arch' else value}")
        argv += [f"--config={Path(c).resolve()}" for c in self.configs]
        argv += [f"--patch={Path(p).resolve()}" for p in self.patches]
        return [*argv, "--sandbox"] if self.sandbox else argv


#: how a kernels.yaml problem reads when the entry came from options
_OPTION_WORDS = (
    (re.compile(r"^.*?kernel #\d+ \(image\): image: (modules: )?"), r"--image: \1"),
    (re.compile(r"^.*?kernel #\d+ \(tree\): build: (source: )?"), "--tree: "),
    (re.compile(r"^.*?kernel #\d+ \((image|tree)\): "), r"--\1: "),
    (re.compile(r" ?\(relative paths are relative to kernels\.yaml\)"), ""),
    (re.compile(r"fix 'path'"), "fix the path"),
)


def _in_option_words(problem: str) -> str:
    for pattern, words in _OPTION_WORDS:
        problem = pattern.sub(words, problem)
    return problem


def _absolute(path: str, cwd: Path) -> Path:
    return (cwd / Path(path).expanduser()).resolve()


def combine(file_specs: list[KernelSpec], adhoc: list[KernelSpec]) -> list[KernelSpec]:
    """kernels.yaml's selected entries then the ad-hoc ones; a name used twice is an error."""
    taken = {s.name for s in file_specs}
    clash = [s.name for s in adhoc if s.name in taken]
    if clash:
        raise UserError(
            f"kernels.yaml has an entry named {', '.join(clash)}, the name of an ad-hoc "
            "kernel; rename the entry or leave it out of --kernel"
        )
    return [*file_specs, *adhoc]
