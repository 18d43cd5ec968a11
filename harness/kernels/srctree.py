"""Kernel source trees: where the source comes from and the private copy builds use.

A build never touches the user's tree.  A *source* is one of

* a git checkout (``source: ~/linux``): builds use a detached ``git worktree``
  in the cache at the requested revision, so the user's branch, index and
  working files stay as they were (a tree with uncommitted changes is refused,
  or built as a snapshot with ``dirty: build``: :mod:`harness.kernels.dirty`;
  the repository lists the worktree under .git/worktrees until ``git worktree
  prune`` runs after the cache is cleared);
* a plain tree (an unpacked tarball): builds use a hard-link copy in the cache
  (``cp -al``: seconds, no extra space); every file a patch touches is copied
  first, so the shared inodes of the original are never written, and a reset
  compares the copy with the original and undoes every difference
  (:mod:`harness.kernels.restore`), whatever the patches named;
* a Debian ``linux-source-X.Y`` package: the newest in the machine's apt
  suites, downloaded, checked and unpacked into the cache once, then used as
  a plain tree.

A :class:`Workspace` is the private copy.  It is reset to the pristine base
before each kernel's series is applied, rewriting only the files that
differ, so kbuild's timestamps make the next build incremental.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from debian.debian_support import Version

from harness.arch import host
from harness.cache import atomic_dir
from harness.display.progress import NO_PROGRESS, Progress
from harness.errors import HarnessError, InfraError, KernelNotFound, NotAKernelTree, UserError
from harness.gitrun import run_git
from harness.kernels import debian_archive as archive
from harness.kernels.dirty import DirtyPolicy, refusal, snapshot, uncommitted
from harness.kernels.restore import restore

_PACKAGE = re.compile(r"^linux-source-\d+\.\d+$")


def is_package_name(text: str) -> bool:
    """Whether ``source:`` names a Debian linux-source package rather than a path."""
    return bool(_PACKAGE.match(text))


def kernel_tree_problem(path: Path) -> str | None:
    """Why ``path`` is not the top of a kernel source tree, or None if it is."""
    if not path.is_dir():
        return f"{path} is not a directory"
    missing = [
        n
        for n in ("Makefile", "Kconfig", "arch/Kconfig", "scripts/kconfig")
        if not (path / n).exists()
    ]
    if missing:
        return (
            f"{path} is not a Linux source tree (no {', '.join(missing)}); "
            "point it at the directory holding the top-level Makefile and Kconfig"
        )
    if (path / ".config").exists() or (path / "include/config").is_dir():
        return (
            f"{path} has been configured or built in place (.config or include/config); "
            "builds use O= directories and kbuild refuses such a tree: run "
            "'make mrproper' there, or give a clean checkout"
        )
    return None


def kernel_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL from the top Makefile (for origins and logs)."""
    fields = dict(
        re.findall(
            r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d+)",
            (tree / "Makefile").read_text(errors="replace"),
            re.MULTILINE,
        )
    )
    return ".".join(fields.get(k, "?") for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL"))


def is_git_tree(path: Path) -> bool:
    """Whether ``path`` is the top of a git working tree."""
    proc = run_git(path, "rev-parse", "--show-toplevel", check=False, timeout=30)
    return proc.returncode == 0 and Path(proc.stdout.strip()).resolve() == path.resolve()


def resolve_rev(repo: Path, rev: str) -> str:
    """The full commit id of ``rev``; a UserError naming it when git does not know it."""
    proc = run_git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise UserError(
            f"'{rev}' is not a commit in {repo}; check the name with "
            f"'git -C {repo} log --oneline -5 {rev}'"
        )
    return proc.stdout.strip()


@dataclass(frozen=True)
class SourceTree:
    """A located, validated source: the tree, its kind and what exactly it is."""

    path: Path
    git: bool
    identity: str  # a commit id, a package version, or the path for a plain tree
    label: str  # one line for origins: "linux-source-6.12 6.12.57-1~deb12u1"


# -- Debian linux-source packages -------------------------------------------------


def newest_source_package(name: str, entries: list[archive.PackageEntry]) -> archive.PackageEntry:
    """The newest entry named exactly ``name``; KernelNotFound listing suites if none."""
    matches = [e for e in entries if e.name == name]
    if not matches:
        suites = ", ".join(sorted({e.suite for e in entries})) or "no suite"
        raise KernelNotFound(
            f"package {name} is in none of the apt suites ({suites}); "
            "Debian ships linux-source-6.12 in bookworm-security"
        )
    return max(matches, key=lambda e: Version(e.version))


def fetch_source_package(
    name: str, cache: Path, log: Callable[[str], None], progress: Progress = NO_PROGRESS
) -> SourceTree:
    """Download and unpack the newest ``name`` (once) and return its tree."""
    entries: list[archive.PackageEntry] = []
    sources = archive.read_apt_sources()
    for suite in sorted({s for src in sources for s in src.suites}):
        try:
            # linux-source is "Architecture: all": every index has it; the host's is cached
            entries += archive.load_index(
                archive.mirror_for(suite, sources), suite, cache / "debian", host().debian
            )
        except HarnessError as exc:
            log(f"skipping suite {suite}: {exc}")
    if not entries:
        cached = _cached_source(name, cache)
        if cached is not None:
            log(f"archive unreachable; using the cached {cached.label}")
            return cached
    entry = newest_source_package(name, entries)
    root = cache / "sources" / f"{entry.name}_{entry.version}".replace("~", "_")
    if not root.exists():
        with atomic_dir(root) as scratch:
            log(f"downloading {entry.name} {entry.version} ({entry.size // 1048576} MiB)")
            deb = archive.download_deb(entry, cache / "debian", progress)
            archive.unpack_deb(deb, scratch / "deb")
            _untar_source(scratch / "deb", scratch, log)
            shutil.rmtree(scratch / "deb")
    tree = root / name
    return SourceTree(
        tree,
        False,
        f"{entry.name} {entry.version}",
        f"{entry.name} {entry.version} ({entry.suite})",
    )


def _cached_source(name: str, cache: Path) -> SourceTree | None:
    """The newest already unpacked ``name``, for when the archive cannot be read."""
    found = []
    for root in (cache / "sources").glob(f"{name}_*"):
        if (root / name / "Makefile").is_file():
            found.append((Version(root.name.split("_", 1)[1].replace("_", "~")), root))
    if not found:
        return None
    version, root = max(found)
    return SourceTree(root / name, False, f"{name} {version}", f"{name} {version} (cached)")


def _untar_source(unpacked: Path, dest: Path, log: Callable[[str], None]) -> None:
    tarballs = sorted(unpacked.glob("usr/src/linux-source-*.tar.*"))
    if not tarballs:
        raise InfraError(f"{unpacked}: the package holds no usr/src/linux-source-*.tar.*")
    log(f"unpacking {tarballs[0].name}")
    with tarfile.open(tarballs[0]) as tar:
        tar.extractall(dest, filter="tar")


def locate(
    source: str,
    base: Path,
    cache: Path,
    rev: str | None,
    log: Callable[[str], None],
    progress: Progress = NO_PROGRESS,
    dirty: DirtyPolicy = DirtyPolicy.REFUSE,
    commits_only: str | None = None,
) -> SourceTree:
    """Turn kernels.yaml's ``source:`` into a checked :class:`SourceTree`.

    A git tree at HEAD with uncommitted changes is refused, or snapshotted
    with ``dirty: build``; ``commits_only`` names a command (series) that
    refuses it whatever ``dirty`` says (see :mod:`harness.kernels.dirty`).
    """
    if is_package_name(source) and not (base / source).exists():
        return fetch_source_package(source, cache, log, progress)
    path = (base / source).expanduser().resolve()
    if not path.exists():
        raise KernelNotFound(
            f"source tree {path} does not exist; give a kernel checkout "
            "or a Debian package name such as linux-source-6.12"
        )
    if is_git_tree(path):
        changed = uncommitted(path) if rev in (None, "HEAD") else []
        if changed and (dirty is DirtyPolicy.REFUSE or commits_only):
            raise refusal(path, changed, commits_only)
        if changed:
            commit = snapshot(path)
            log(f"building {path} with its uncommitted changes ({len(changed)} file(s))")
            return SourceTree(path, True, commit, f"{path} work tree (snapshot {commit[:12]})")
        commit = resolve_rev(path, rev or "HEAD")
        return SourceTree(path, True, commit, f"{path} at {commit[:12]}")
    if rev:
        raise UserError(f"'rev: {rev}' needs a git tree, but {path} is not one")
    problem = kernel_tree_problem(path)
    if problem:
        raise NotAKernelTree(problem)
    return SourceTree(path, False, str(path), f"{path} (plain tree)")


# -- the private working copy ------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    """A private copy of one source in the cache: ``src/`` beside the build's ``out/``."""

    root: Path

    @property
    def src(self) -> Path:
        """The tree that patches are applied to and make reads."""
        return self.root / "src"

    @property
    def out(self) -> Path:
        """The O= build directory."""
        return self.root / "out"

    @property
    def _state_file(self) -> Path:
        return self.root / "state.json"

    def state(self) -> dict[str, object]:
        """What is checked out: the source's path, kind and identity."""
        try:
            return json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}

    def save_state(self, **values: object) -> None:
        """Record the checkout (written after the fact: a crash leaves it unknown)."""
        self._state_file.write_text(json.dumps(values))

    def prepare(self, source: SourceTree, log: Callable[[str], None]) -> None:
        """Make ``src`` the pristine ``source``, keeping ``out`` when its objects stay valid.

        Same git repository: check out the base commit (git rewrites only the
        files that differ, so the next build is incremental).  Same plain
        tree: undo every difference from the source (the files patches
        changed, created, deleted or renamed, and anything else), rewriting
        only those, with fresh timestamps so make rebuilds what depends on
        them.  Another source: start over; the old objects' timestamps say
        nothing about the new files.
        """
        state = self.state()
        same = (
            state.get("path") == str(source.path)
            and state.get("git") == source.git
            and self.src.is_dir()
        )
        if not same:
            log(f"new workspace {self.src} for {source.label}")
            self._recreate(source, wipe_out=True)
        elif source.git:
            self._git_reset(source)
        else:
            if state.get("identity") != source.identity:
                self._recreate(source, wipe_out=False)
            else:
                done = restore(source.path, self.src)
                if done.rewritten or done.removed:
                    log(f"reset {self.src}: {done.rewritten} put back, {done.removed} removed")
        self.save_state(path=str(source.path), git=source.git, identity=source.identity)

    def _recreate(self, source: SourceTree, wipe_out: bool) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._state_file.unlink(missing_ok=True)
        if self.src.exists():
            shutil.rmtree(self.src)
        if wipe_out and self.out.exists():
            shutil.rmtree(self.out)
        if source.git:
            run_git(source.path, "worktree", "prune")
            run_git(
                source.path,
                "worktree",
                "add",
                "--force",
                "--detach",
                str(self.src),
                source.identity,
            )
            return
        proc = subprocess.run(
            ["cp", "-al", str(source.path), str(self.src)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:  # another filesystem: hard links impossible, copy
            shutil.rmtree(self.src, ignore_errors=True)
            shutil.copytree(source.path, self.src, symlinks=True)

    def _git_reset(self, source: SourceTree) -> None:
        if (self.src / ".git").exists():
            run_git(self.src, "am", "--abort", check=False)
            run_git(self.src, "bisect", "reset", check=False)
        run_git(self.src, "checkout", "-q", "-f", "--detach", source.identity)
        run_git(self.src, "clean", "-fdq")
