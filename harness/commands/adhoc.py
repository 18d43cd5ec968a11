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
ad-hoc kernels run alone and kernels.yaml need not exist.  The options are
declared once (:func:`add_options`) for both parsers that take them (``kharness
run``/``boot`` and the pytest plugin) and read back once (:meth:`AdHocKernels.read`).
A validation problem names the option by the key path it sits at
(:class:`harness.yamlcheck.Problem`), never by rewriting the file's wording.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.arch import ARCHES
from harness.config import KernelSpec, parse_kernels
from harness.errors import ConfigError, UserError
from harness.kernels.image import image_kind
from harness.yamlcheck import Problem

#: the names the ad-hoc kernels have in test ids and results directories
IMAGE_NAME = "image"
TREE_NAME = "tree"


def add_options(add: Callable[..., object]) -> None:
    """Declare the ad-hoc options with ``add``: argparse's ``add_argument`` or pytest's
    ``addoption`` (both take argparse's keywords), so both parsers take the same options."""
    add("--image", metavar="PATH", help="test this kernel image (bzImage or Image)")
    add("--modules", metavar="DIR", help="the --image's lib/modules/<release>")
    add(
        "--arch",
        choices=sorted(ARCHES),
        metavar="ARCH",
        help=f"{' or '.join(sorted(ARCHES))} (default: --image's own, else the host's)",
    )
    add(
        "--tree",
        metavar="PATH",
        help="build and test this kernel checkout as it is, uncommitted edits included "
        "(out of tree, in the cache; the checkout is never written)",
    )
    add(
        "--config",
        action="append",
        default=[],
        metavar="FRAGMENT",
        help="a config fragment for --tree (repeatable)",
    )
    add(
        "--patch",
        action="append",
        default=[],
        metavar="PATH",
        help="a patch, directory of patches or mbox applied to --tree (repeatable)",
    )
    add(
        "--sandbox",
        action="store_true",
        help="--tree is untrusted: build it in bubblewrap (no network, host read-only), "
        "boot it on QEMU only",
    )


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

    @classmethod
    def read(cls, option: Callable[[str], Any]) -> AdHocKernels:
        """The options :func:`add_options` declared, as ``option(dest)`` gives them."""
        return cls(
            option("image"),
            option("modules"),
            option("arch"),
            option("tree"),
            tuple(option("config") or ()),
            tuple(option("patch") or ()),
            bool(option("sandbox")),
        )

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


#: the option an entry's key stands for (the longest key path that starts a problem's wins)
_OPTION_OF = {
    (IMAGE_NAME,): "--image",
    (IMAGE_NAME, "image", "modules"): "--modules",
    (IMAGE_NAME, "arch"): "--arch",
    (TREE_NAME,): "--tree",
    (TREE_NAME, "build", "fragments"): "--config",
    (TREE_NAME, "build", "series"): "--patch",
    (TREE_NAME, "arch"): "--arch",
}


def _in_option_words(problem: str) -> str:
    """A kernels.yaml problem as the options' user reads it: the option, then the problem."""
    if not isinstance(problem, Problem) or problem.keys[:1] != ("kernels",):
        return problem
    keys = problem.keys[1:]
    found = max((k for k in _OPTION_OF if keys[: len(k)] == k), key=len, default=None)
    return f"{_OPTION_OF[found]}: {problem.text}" if found else problem


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
