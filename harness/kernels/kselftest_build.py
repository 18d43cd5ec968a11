"""Building a kernel's kselftest targets from the very tree (and series) the kernel came from.

For a ``build:`` kernel with ``selftests: [mincore, ...]``, in a build slot
of their own (``<cache>/build/kselftest/slots/<recipe>``: the kernel's slot
stays the kernel's, its objects never wiped nor its lock held by a
kselftest build): check the pristine source out, apply the same series,
``make headers`` into the slot's O= directory, then per target::

    make -C src/tools/testing/selftests O=<slot>/out TARGETS=<t> \\
         KSFT_INSTALL_PATH=<store> install        (CFLAGS=-static LDFLAGS=-static)

so the tests compile against the candidate's own uapi headers
(``KHDR_INCLUDES`` follows O=) and link statically: the QEMU guest is a
busybox initramfs without a C library.  The installed target (binaries,
scripts, ``settings``, ``kselftest-list.txt``) is stored in the cache under
the kernel's build key, so a kernel that is reused from the cache reuses its
kselftests too.  A target that does not build is a :class:`BuiltTarget` with
the compiler's error lines, never an exception.

For an untrusted tree (``build: {sandbox: true}``) every make runs in the
sandbox (:mod:`harness.kernels.sandbox`): the source read-only but for
``tools/testing/selftests`` (some Makefiles write beside their sources), O=
and the install directory writable; an installed target holding a symlink
out of itself is refused (the guest's copy would follow it to a host file).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.cache import atomic_dir
from harness.display.progress import NO_PROGRESS, Progress
from harness.errors import BuildFailed, HarnessError, ToolMissing
from harness.gitrun import run_git
from harness.kernels import kbuild, sandbox
from harness.kernels.build import BuildSource, TreeBuild, build_cache
from harness.kernels.srctree import SourceTree, Workspace, locate
from harness.testkinds.kselftest import SELFTESTS, settings_timeout

#: bump when the way kselftests are built changes, so stored ones are not reused
KSELFTEST_RECIPE = "1"
#: how the build's progress line is labelled
LABEL = "kselftest"
#: static binaries: the QEMU guest has no C library (lib.mk adds CFLAGS to every link)
STATIC_ENV = {"CFLAGS": "-static", "LDFLAGS": "-static"}


@dataclass(frozen=True)
class BuiltTarget:
    """One kselftest target built for one kernel, or why it did not build."""

    target: str
    install: Path | None  # KSFT_INSTALL_PATH: kselftest/, <target>/, kselftest-list.txt
    tests: tuple[str, ...] = ()  # what kselftest-list.txt lists for the target
    timeout: float = 45.0  # its settings file's, as the kselftest runner reads it
    seconds: float = 0.0  # build time (0 when reused from the cache)
    error: str | None = None  # one line: what failed
    details: tuple[str, ...] = ()  # the compiler's error lines, the log's path

    @property
    def directory(self) -> Path:
        """The installed target itself (its tests, settings and data files)."""
        assert self.install is not None
        return self.install / self.target


def _failed(targets: list[str], exc: HarnessError) -> dict[str, BuiltTarget]:
    details: tuple[str, ...] = ()
    if isinstance(exc, BuildFailed):
        details = (exc.details,) + ((f"full log: {exc.log}",) if exc.log else ())
    return {t: BuiltTarget(t, None, error=str(exc), details=details) for t in targets}


def build_targets(
    source: BuildSource,
    targets: tuple[str, ...],
    log: Callable[[str], None],
    progress: Progress = NO_PROGRESS,
) -> dict[str, BuiltTarget]:
    """Every target of ``targets``, from the store or built now; failures are values."""
    cache = build_cache()
    try:
        tree = locate(source.source, source.base, cache, source.rev, log, progress, source.dirty)
        patches = source.patches()
        key = source.image_key(tree, patches)
    except HarnessError as exc:
        return _failed(list(targets), exc)
    store = cache / "kselftest" / f"{key}-{KSELFTEST_RECIPE}" if key else None
    done = {t: b for t in targets if store and (b := _recall(store / _slug(t), t)) is not None}
    missing = [t for t in targets if t not in done]
    if not missing:
        return done
    if not shutil.which("rsync"):  # lib.mk's install copies with rsync
        return {**done, **_failed(missing, ToolMissing("rsync", "rsync"))}
    try:
        slots = cache / "kselftest"  # beside, never in, the kernel's own slot
        with TreeBuild(source.recipe, log, slots, meter=progress, label=LABEL) as build:
            build.checkout(tree)
            for patch in patches:
                build.apply(patch)
            built = _make_targets(build, missing, store, source.recipe.make_options)
    except HarnessError as exc:
        return {**done, **_failed(missing, exc)}
    return {**done, **built}


def _make_targets(
    build: TreeBuild, targets: list[str], store: Path | None, make_options: tuple[str, ...]
) -> dict[str, BuiltTarget]:
    """``make headers`` once, then each target into the store (or the slot for plain trees)."""
    ws = build.ws
    log = build.log_path(f"kselftest-{'-'.join(targets)}")
    tools = kbuild.toolchain(build.cache, make_options, untrusted=build.recipe.sandbox)
    build.activity.update(step="kselftest headers")
    headers = kbuild.run_make(tools, ws.src, ws.out, ("headers",), log)
    if headers.returncode != 0:
        return _failed(targets, kbuild.build_failed("make headers", headers))
    if not (ws.src / ".git").exists():
        _private_copies(ws.src / SELFTESTS)
    found = {}
    for target in targets:
        build.activity.update(step=f"kselftest {target}")
        dest = (store or ws.root / "kselftest-install") / _slug(target)
        found[target] = _make_one(tools, ws, target, dest, log, keep=store is not None)
        build.progress(f"kselftest {target}: {found[target].error or 'built'}")
    return found


def _make_one(
    tools: kbuild.Toolchain, ws: Workspace, target: str, dest: Path, log: Path, keep: bool
) -> BuiltTarget:
    """Build and install one target into ``dest`` (kept only when it built)."""
    started = time.monotonic()
    if not keep and dest.exists():
        shutil.rmtree(dest)
    try:
        # a patch may turn the directory into a link: what is bound writable stays in the slot
        selftests = sandbox.contained(ws.src / SELFTESTS, ws.src)
        with atomic_dir(dest) as scratch:
            result = kbuild.run_make(
                tools,
                selftests,
                ws.out,
                (f"TARGETS={target}", f"KSFT_INSTALL_PATH={scratch}", "install"),
                log,
                env=STATIC_ENV,
                readable=(ws.src,),
                writable=(selftests, scratch),
            )
            if result.returncode != 0 or not (scratch / target).is_dir():
                raise kbuild.build_failed(f"kselftest build of '{target}'", result)
            _no_links_out(scratch, target)
            seconds = round(time.monotonic() - started, 3)
            (scratch / "harness-built.json").write_text(json.dumps({"seconds": seconds}))
    except BuildFailed as exc:
        return _failed([target], exc)[target]
    tests = _listed(dest / "kselftest-list.txt", target)
    return BuiltTarget(target, dest, tests, settings_timeout(dest / target), seconds)


def _no_links_out(install: Path, target: str) -> None:
    """BuildFailed when the installed target links to a file outside its install directory."""
    escaping = sandbox.escaping_links(install)
    if escaping:
        names = ", ".join(str(p.relative_to(install)) for p in escaping[:5])
        raise BuildFailed(
            f"kselftest '{target}' installed links out of its directory ({names}); "
            "a test's files must be in the tree it was built from"
        )


def _private_copies(directory: Path) -> None:
    """Give files hard-linked to a pristine tree copies of their own.

    A plain tree's slot is a hard-link copy (``cp -al``) and kbuild never
    writes into it, but some selftest Makefiles write beside their sources
    (mm regenerates local_config.mk with ``>``), which would rewrite the
    pristine tree's file through the shared inode.
    """
    for path in directory.rglob("*"):
        if path.is_symlink() or not path.is_file() or path.stat().st_nlink < 2:
            continue
        data, mode = path.read_bytes(), path.stat().st_mode
        path.unlink()
        path.write_bytes(data)
        path.chmod(mode)


def _listed(path: Path, target: str) -> tuple[str, ...]:
    if not path.is_file():
        return ()
    prefix = f"{target}:"
    lines = path.read_text(errors="replace").splitlines()
    return tuple(dict.fromkeys(x[len(prefix) :] for x in lines if x.startswith(prefix)))


def _recall(dest: Path, target: str) -> BuiltTarget | None:
    if not (dest / "harness-built.json").is_file():
        return None
    tests = _listed(dest / "kselftest-list.txt", target)
    return BuiltTarget(target, dest, tests, settings_timeout(dest / target))


def _slug(target: str) -> str:
    return target.replace("/", "__")


def selftests_tree(source: BuildSource, log: Callable[[str], None]) -> Path:
    """A directory holding the source's ``tools/`` (before its series) to list tests from.

    A package or plain tree is used as it is (read only); a git tree's
    ``rev`` is exported once into the cache with ``git archive``, so neither
    the repository's work tree nor its branch matter.
    """
    cache = build_cache()
    tree: SourceTree = locate(
        source.source, source.base, cache, source.rev, log, dirty=source.dirty
    )
    if not tree.git:
        return tree.path
    dest = cache / "kselftest" / "trees" / tree.identity
    if not (dest / "tools").is_dir():
        subarch = f"{tree.identity}:scripts/subarch.include"  # the selftests Makefile reads it
        has_subarch = run_git(tree.path, "cat-file", "-e", subarch, check=False).returncode == 0
        paths = ["tools", *(["scripts/subarch.include"] if has_subarch else [])]
        with atomic_dir(dest) as scratch:
            archive = scratch / "tools.tar"
            run_git(tree.path, "archive", f"--output={archive}", tree.identity, *paths)
            shutil.unpack_archive(archive, scratch, "tar")
            archive.unlink()
    return dest
