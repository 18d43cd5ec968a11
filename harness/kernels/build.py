"""The ``build`` provider: a kernel built from source, optionally with a patch series.

kernels.yaml::

    - name: my-fix
      build:
        source: linux-source-6.12       # a Debian package name, or a path to a tree
        rev: HEAD                       # git trees only (default HEAD)
        config: tinyconfig              # base: tinyconfig | defconfig | allnoconfig
        fragments: [extra.config]       # applied after the harness's guest.config
        guest_config: true              # false: no guest.config (you provide it all)
        debug_info: true                # line info for symbolized reports (debuginfo.config)
        series: [fix.mbox]              # mbox, .patch or directory; applied in order
        dirty: refuse                   # git tree with uncommitted changes: refuse | build
        inbox: https://lore.kernel.org/linux-mm  # where its series are posted (--series <msgid>)
        make: ["KCFLAGS=-Wno-error"]    # extra make variables
        sandbox: true                   # untrusted tree: make in bubblewrap (kernels/sandbox.py)

``build: linux-source-6.12`` is short for ``build: {source: linux-source-6.12}``.

Builds with the same recipe (base config, fragments, make options) share one
*slot* in the cache: a private copy of the source (``src/``) and an O=
directory (``out/``), used by one build at a time under a file lock.  Each
build resets the copy to the pristine source, which rewrites only what the
previous kernel's patches changed, so kernels that differ by a patch rebuild
a few objects and ccache catches the rest.  The finished image is copied out
of the slot, so a later build cannot change a kernel that is already booting.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from harness.arch import X86_64, Arch, host
from harness.cache import atomic_dir, cache_root
from harness.display.progress import NO_PROGRESS, Activity, Kind, Progress
from harness.kernels import image_store, kbuild, sandbox
from harness.kernels.base import Exact, KernelImage
from harness.kernels.config_fragments import (
    GUEST_FRAGMENT,
    ConfigProblem,
    check_config,
    guest_fragment,
    index_kconfig,
    merge,
    parse_config,
    read_fragment,
)
from harness.kernels.diff_files import changed_files
from harness.kernels.dirty import DirtyPolicy
from harness.kernels.patches import Patch, apply_patch, read_series
from harness.kernels.srctree import (
    SourceTree,
    Workspace,
    is_package_name,
    locate,
)

#: Bump when the way a kernel is built changes, so cached images are not reused.
RECIPE_VERSION = "1"


def build_cache() -> Path:
    """Where sources, slots, logs, ccache and built images live."""
    return cache_root() / "build"


@dataclass(frozen=True)
class BuildRecipe:
    """How a tree is configured and built; equal recipes share a build slot."""

    base_config: str = "tinyconfig"
    fragments: tuple[Path, ...] = (GUEST_FRAGMENT,)
    make_options: tuple[str, ...] = ()
    arch: Arch = field(default_factory=host)
    sandbox: bool = False  # untrusted tree: make runs in bubblewrap, in a slot of its own

    def key(self) -> str:
        """A short hash of everything that shapes the objects in ``out/``."""
        # x86_64 keeps the key it had before architectures existed (warm caches stay warm)
        arch = "" if self.arch is X86_64 else f"{self.arch.name}\0"
        # an untrusted build never shares a slot (or a stored image) with a trusted one
        arch += "sandbox\0" if self.sandbox else ""
        digest = hashlib.sha256(f"{RECIPE_VERSION}\0{arch}{self.base_config}\0".encode())
        for path in self.fragments:
            digest.update(path.read_bytes() + b"\0")
        for option in self.make_options:
            digest.update(option.encode() + b"\0")
        return digest.hexdigest()[:16]

    def describe(self) -> str:
        """'tinyconfig + guest.config + extra.config' (with the arch when not x86_64)."""
        text = " + ".join([self.base_config, *(p.name for p in self.fragments)])
        return text if self.arch is X86_64 else f"{self.arch.name} {text}"


def make_recipe(
    base_config: str = "tinyconfig",
    fragments: tuple[Path, ...] = (),
    guest_config: bool = True,
    make_options: tuple[str, ...] = (),
    arch: Arch | None = None,
    sandbox: bool = False,
) -> BuildRecipe:
    """A recipe with the harness's guest fragment for ``arch`` first unless told not to."""
    arch = arch or host()
    first = (guest_fragment(arch),) if guest_config else ()
    return BuildRecipe(base_config, first + tuple(fragments), tuple(make_options), arch, sandbox)


@dataclass(frozen=True)
class BuiltKernel:
    """A finished build: the stored image and what the build said on the way."""

    image: KernelImage
    config_problems: tuple[ConfigProblem, ...]
    seconds: float
    log: Path | None  # None: not built now, an identical earlier build reused


@dataclass
class TreeBuild:
    """One build session on a slot, held under its lock: checkout, patches, config, make."""

    recipe: BuildRecipe
    progress: Callable[[str], None] = print
    cache: Path = field(default_factory=build_cache)
    source: SourceTree | None = None
    applied: list[Patch] = field(default_factory=list)
    problems: tuple[ConfigProblem, ...] = ()
    lock: bool = True  # False: the caller already holds the slot (a bisect step)
    meter: Progress = NO_PROGRESS  # live feedback: step, objects compiled, elapsed
    label: str = ""  # what the feedback calls this build (the kernel's name)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per build step
    _lock: IO[str] | None = None
    _activity: Activity | None = None
    _configured: int | None = None  # len(applied) when configure() last ran in this session

    @property
    def ws(self) -> Workspace:
        """This recipe's slot."""
        return Workspace(self.cache / "slots" / self.recipe.key())

    def __enter__(self) -> TreeBuild:
        self.ws.root.mkdir(parents=True, exist_ok=True)
        if not self.lock:
            return self
        self._lock = (self.ws.root / "lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.progress(f"waiting for another build using {self.ws.root}")
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        return self

    @property
    def activity(self) -> Activity:
        """This build's feedback line: started on first use, ended by make() or on exit."""
        if self._activity is None:
            self._activity = self.meter.activity(Kind.BUILD, self.label or self.recipe.describe())
        return self._activity

    def _step(self, name: str, started: float) -> None:
        """Add the seconds since ``started`` to the step ``name``."""
        key = f"build-{name}"
        self.phases[key] = round(self.phases.get(key, 0.0) + time.monotonic() - started, 3)

    def _end_activity(self, ok: bool) -> None:
        if self._activity is not None:
            self.meter.end(self._activity, ok)
            self._activity = None

    def __exit__(self, *exc: object) -> None:
        self._end_activity(ok=exc[0] is None)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def checkout(self, source: SourceTree) -> None:
        """Make the slot's source the pristine ``source``."""
        self.ws.prepare(source, self.progress)
        self.source, self.applied, self._configured = source, [], None

    def adopt(self, source: SourceTree) -> None:
        """Build whatever is checked out now (git bisect moves the tree, not us)."""
        self.source, self.applied, self._configured = source, [], None

    def config_current(self) -> bool:
        """Whether out/.config still holds: configured in this session, and no patch applied
        since touched what ``make olddefconfig`` reads (a Kconfig file, scripts/, a top or
        arch Makefile).  A series' step that changes C files only skips two make runs
        (6 to 10 s in the sandbox)."""
        if self._configured is None:
            return False
        return not any(touches_kconfig(p) for p in self.applied[self._configured :])

    def apply(self, patch: Patch) -> None:
        """Apply one patch; PatchFailed (a BuildFailed) names it and its rejected hunk."""
        assert self.source is not None, "checkout() first"
        self.progress(f"applying {patch.label}")
        self.activity.update(step=f"apply series ({len(self.applied) + 1}: {patch.subject})")
        started = time.monotonic()
        apply_patch(patch, self.ws.src, self.source.git, self.ws.root / "patches")
        self.applied.append(patch)
        self._step("apply", started)

    def log_path(self, label: str) -> Path:
        """A new log file for one step, named by time and label."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", label)[:60]
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{safe}"
        path = self.cache / "logs" / f"{stem}.log"
        n = 1
        while path.exists():  # same second, same label: never append to another build's log
            n += 1
            path = path.with_name(f"{stem}-{n}.log")
        return path

    def configure(self, log: Path) -> tuple[ConfigProblem, ...]:
        """Base config + fragments + olddefconfig into out/.config; report lost options."""
        tools = kbuild.toolchain(
            self.cache, self.recipe.make_options, self.recipe.arch, self.recipe.sandbox
        )
        work = self.ws.root / "config"
        work.mkdir(parents=True, exist_ok=True)
        base, new = work / "base.config", work / "new.config"
        self._make_config(tools, self.recipe.base_config, base, log)
        fragments = [read_fragment(p) for p in self.recipe.fragments]
        new.write_text(merge(sandbox.contained(base, work).read_text(), fragments))
        self._make_config(tools, "olddefconfig", new, log)
        sandbox.contained(new, work)  # written by make: no link to a host file
        final = sandbox.contained(self.ws.out / ".config", self.ws.out)  # we write through it
        if not final.is_file() or final.read_bytes() != new.read_bytes():
            shutil.copyfile(new, final)  # unchanged: keep its mtime, make stays incremental
        self.problems = tuple(
            check_config(parse_config(new.read_text()), fragments, index_kconfig(self.ws.src))
        )
        for problem in self.problems:
            self.progress(f"config: {problem.message()}")
        (self.ws.root / "config-check.txt").write_text(
            "".join(p.message() + "\n" for p in self.problems)
        )
        return self.problems

    def _make_config(self, tools: kbuild.Toolchain, target: str, config: Path, log: Path) -> None:
        self.ws.out.mkdir(parents=True, exist_ok=True)
        env = {"KCONFIG_CONFIG": str(config)}
        writable = (config.parent,)
        result = kbuild.run_make(
            tools, self.ws.src, self.ws.out, (target,), log, env=env, writable=writable
        )
        if result.returncode != 0:
            raise kbuild.build_failed(f"make {target}", result)

    def make(self, label: str) -> BuiltKernel:
        """Configure and build; the image is copied out of the slot into the image store."""
        log = self.log_path(label)
        started = time.monotonic()
        self.activity.update(step="config")
        if self.config_current():
            problems = self.problems
            self.progress("config: as for the step before (the patches since touch no Kconfig)")
        else:
            problems = self.configure(log)
        self._configured = len(self.applied)
        self._step("config", started)
        tools = kbuild.toolchain(
            self.cache, self.recipe.make_options, self.recipe.arch, self.recipe.sandbox
        )
        last = self.ws.root / "last-build.json"
        meter = kbuild.StepMeter(self.activity, _last_objects(last))
        compile_started = time.monotonic()
        try:
            kbuild.build_image(tools, self.ws.src, self.ws.out, log, self.progress, meter)
        finally:
            link = meter.link_started or time.monotonic()
            self.phases["build-compile"] = round(link - compile_started, 3)
            self.phases["build-link"] = round(time.monotonic() - link, 3)
            self._end_activity(ok=sys.exc_info()[0] is None)
        last.write_text(json.dumps({"objects": meter.objects}))
        image = replace(self._store(), phases=dict(self.phases))
        return BuiltKernel(image, problems, time.monotonic() - started, log)

    def origin(self) -> str:
        """One line: source, patches, recipe."""
        assert self.source is not None
        patches = ""
        if self.applied:
            patches = f" + {len(self.applied)} patch(es) up to '{self.applied[-1].subject}'"
        return f"built from {self.source.label}{patches} ({self.recipe.describe()})"

    def _store(self) -> KernelImage:
        """Copy the image out of the slot; with line info, vmlinux too (the slot moves on)."""
        out = self.ws.out
        built = self.recipe.arch.build_image
        image = out / built
        digest = hashlib.sha256(image.read_bytes()).hexdigest()[:20]
        dest = self.cache / "images" / digest
        names = [built, ".config", "System.map"]
        if has_line_info(out / ".config"):
            names.append("vmlinux")
        if not dest.exists():
            with atomic_dir(dest) as scratch:
                for name in names:
                    if (out / name).is_file():  # what make wrote: no link out of out/
                        shutil.copyfile(
                            sandbox.contained(out / name, out), scratch / Path(name).name
                        )
        release = kbuild.kernel_release(out)
        image = KernelImage(dest / Path(built).name, None, release, self.origin())
        return replace(image, debug=image_store.debug_info(dest, self.ws.src))


@dataclass(frozen=True)
class BuildSource:
    """A kernels.yaml ``build:`` entry."""

    source: str
    base: Path  # the directory of kernels.yaml: relative paths start there
    rev: str | None = None
    recipe: BuildRecipe = field(default_factory=BuildRecipe)
    series: tuple[Path, ...] = ()
    kind: str = "build"
    dirty: DirtyPolicy = DirtyPolicy.REFUSE  # a git tree with uncommitted changes
    inbox: str | None = None  # the public-inbox its series are posted to (--series <msgid>)

    def describe(self) -> str:
        """'build linux-source-6.12 (tinyconfig + guest.config) + fix.mbox'."""
        rev = f"@{self.rev}" if self.rev else ""
        series = "".join(f" + {p.name}" for p in self.series)
        return f"build {self.source}{rev} ({self.recipe.describe()}){series}"

    def short(self) -> str:
        """'linux-source-6.12 + 2 patches': a progress line's label."""
        count = len(self.patches()) if self.series else 0
        return Path(self.source).name + (f" + {count} patch(es)" if count else "")

    def patches(self) -> tuple[Patch, ...]:
        """Every patch of every series file, in order."""
        return tuple(p for path in self.series for p in read_series(path).patches)

    def resolve(self, log: Callable[[str], None], progress: Progress = NO_PROGRESS) -> KernelImage:
        """Build (or reuse an identical earlier build); BuildFailed when it does not build."""
        cache = build_cache()
        tree = locate(self.source, self.base, cache, self.rev, log, progress, self.dirty)
        patches = self.patches()
        key = self.image_key(tree, patches)
        exact = Exact(
            commit=tree.identity if tree.git else None,
            tree=tree.label,
            patches=tuple(hashlib.sha256(p.text.encode()).hexdigest() for p in patches),
        )
        cached = image_store.recall(cache, key)
        if cached is not None:
            log(f"reusing {cached.origin}")
            return replace(cached, exact=exact)
        with TreeBuild(self.recipe, log, cache, meter=progress, label=self.short()) as build:
            build.checkout(tree)
            for patch in patches:
                build.apply(patch)
            built = build.make(self.describe())
        image_store.remember(cache, key, built.image)
        return replace(built.image, exact=exact)

    def image_key(self, tree: SourceTree, patches: tuple[Patch, ...]) -> str | None:
        """Identical inputs give an identical kernel; none for a plain tree (it may change)."""
        if not tree.git and not is_package_name(self.source):
            return None
        return image_store.image_key(self.recipe, tree.identity, patches)


def touches_kconfig(patch: Patch) -> bool:
    """Whether ``patch`` changes a file the configuration is made from (conservatively)."""
    for change in changed_files(patch.text):
        for path in change.paths:
            parts = path.split("/")
            if parts[-1].startswith("Kconfig") or parts[0] == "scripts":
                return True
            top_or_arch = len(parts) == 1 or (parts[0] == "arch" and len(parts) <= 3)
            if parts[-1] == "Makefile" and top_or_arch:
                return True
    return False


def has_line_info(config: Path) -> bool:
    """Whether a .config builds DWARF into vmlinux (CONFIG_DEBUG_INFO=y)."""
    try:
        return "\nCONFIG_DEBUG_INFO=y\n" in "\n" + config.read_text()
    except OSError:
        return False


def _last_objects(path: Path) -> int | None:
    """How many objects the slot's last successful build compiled (None: unknown, or none)."""
    try:
        return int(json.loads(path.read_text())["objects"]) or None
    except (OSError, ValueError, KeyError, TypeError):
        return None
