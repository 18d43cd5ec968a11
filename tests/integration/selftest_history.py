"""The self-test kernel tree as a small git history, shared by the modules that build it.

linux-source-6.12 turned into a git history (base, two harmless commits, the
UFFDIO_API bug, one harmless commit) with fixed dates, so its commit ids are
the same on every machine.  The self-test kernels and the bisect use it, and
the mailing-list tests post series made from its commits.

Every kernel the suite builds from it has one recipe (:data:`FRAGMENTS`,
sandboxed: the bot always builds in the sandbox), so they all share one build
slot and its ccache: on a fresh machine that is one cold build, not one per
module (a sandboxed and a trusted build never share a slot nor a ccache; a
slot switched to another source starts over).  test_selftest_kernels.py checks,
without a build, that every writer of the recipe still lands in that slot.

What the integration suite builds from source (``make test``, x86_64):

* this slot: the list bot's series steps (test_mailing_list), the four
  self-test kernels, the boot panic and the bisect (test_selftest_kernels),
  the series verdicts, the ad-hoc ``--tree`` build (the history's work
  tree, test_progress_run); the kselftest target's kernel is selftest-good
  itself, from the image store.  Fresh: one cold build, the rest incremental.
* the kselftest target: ``make headers`` and mincore in a kselftest slot.
* harness_oops.ko against Debian's headers (test_kernel_reports): a module.
* opt-in only: the arm64 cross build (KHARNESS_ARM64_BUILD, a slot and a cold
  build of its own, no line info).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import inspect
import json
import os
import subprocess
import time
from pathlib import Path

from harness.cache import atomic_dir
from harness.errors import run_checked
from harness.kernels.build import build_cache
from harness.kernels.config_fragments import DEBUGINFO_FRAGMENT, KUNIT_FRAGMENT
from harness.kernels.patches import read_series
from harness.kernels.srctree import fetch_source_package
from tests.integration.helpers import REPO

BISECT_TEST = "uffd_api_unknown_feature"
#: the self-test kernels' fragments after guest.config, in the order kernels-selftest.yaml's
#: entries give (selftest.config, ``debug_info: true``, then ``kunit:``'s): the slot key
#: hashes them in order
FRAGMENTS = (
    REPO / "guest-tests" / "kunit" / "selftest.config",
    DEBUGINFO_FRAGMENT,
    KUNIT_FRAGMENT,
)
#: the series every self-test kernel carries (see kernels-selftest.yaml)
FIX = REPO / "guest-tests" / "fixes" / "uffd-move-devmap-migration-entry.patch"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "kharness self-test",
    "GIT_AUTHOR_EMAIL": "selftest@kharness.invalid",
    "GIT_COMMITTER_NAME": "kharness self-test",
    "GIT_COMMITTER_EMAIL": "selftest@kharness.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}


@dataclasses.dataclass(frozen=True)
class History:
    """The git history built on linux-source-6.12 and its interesting commits."""

    repo: Path
    base: str
    bug: str
    head: str

    def build_entry(self, rev: str | None = None) -> str:
        """kernels.yaml's ``build:`` value (one flow mapping) for ``rev`` (default: the base)
        with the self-test recipe, sandboxed: the one slot every suite build of it uses."""
        fragments = ", ".join(str(f) for f in FRAGMENTS)
        return (
            f"{{source: {self.repo}, rev: {rev or self.base}, fragments: [{fragments}], "
            f"series: [{FIX}], sandbox: true}}"
        )

    def kernels_file(self, directory: Path, rev: str | None = None) -> Path:
        """A kernels.yaml whose ``selftest`` entry builds ``rev`` (default: the base) with
        the self-test recipe (:meth:`build_entry`) and reports its KUnit suites."""
        path = directory / "kernels.yaml"
        path.write_text(
            "kernels:\n"
            "  - name: selftest\n"
            f"    build: {self.build_entry(rev)}\n"
            "    kunit: [list-kunit-test, example]\n"
        )
        return path

    def tree_options(self, *patches: Path) -> list[str]:
        """``--tree`` options building the history's work tree (:meth:`work_tree`) at its
        head with the self-test recipe, the fix and then ``patches``: the same slot."""
        configs = [f"--config={f}" for f in FRAGMENTS]
        series = [f"--patch={p}" for p in (FIX, *patches)]
        return [f"--tree={self.repo}", "--sandbox", *configs, *series]

    def work_tree(self) -> Path:
        """The history's own work tree, checked out at its head once (a minute, 1.3 GB).

        Made on demand, for the ad-hoc ``--tree`` test: a git checkout at the
        history's path builds in the slot that already holds a worktree of the
        history (a plain copy of the package would be a slot, and a cold build,
        of its own).  The commits are made without it (plumbing, own index).
        """
        done = self.repo.parent / "work-tree.done"
        with (self.repo.parent / "work-tree.lock").open("w") as lock:  # one checkout at a time
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.is_file():
                run_checked(["git", "-C", str(self.repo), "reset", "-q", "--hard", "HEAD"])
                done.write_text(self.head + "\n")
        return self.repo


class _Committer:
    """Makes commits with git plumbing: the 1.3 GB tree is never checked out here."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.env = {
            **os.environ,
            **_IDENTITY,
            "GIT_INDEX_FILE": str(repo / ".git" / "history-index"),
        }
        self.head: str | None = None

    def git(self, *args: str, stdin: str | None = None) -> str:
        return run_checked(
            ["git", "-C", str(self.repo), *args], input=stdin, env=self.env
        ).stdout.strip()

    def put(self, path: str, content: str) -> None:
        blob = self.git("hash-object", "-w", "--stdin", stdin=content)
        self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")

    def edit(self, path: str, old: str, new: str) -> None:
        text = self.git("cat-file", "blob", f":{path}") + "\n"
        assert old in text, f"{path} lacks {old!r}"
        self.put(path, text.replace(old, new, 1))

    def commit(self, message: str) -> str:
        tree = self.git("write-tree")
        parents = ["-p", self.head] if self.head else []
        self.head = self.git("commit-tree", tree, *parents, "-m", message)
        return self.head


def make_history(pristine: Path, repo: Path, patch_file: Path) -> History:
    """base, 2 harmless commits, the UFFDIO_API bug, 1 harmless commit (fixed dates: same ids)."""
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    c = _Committer(repo)
    c.git("-c", "core.looseCompression=0", f"--work-tree={pristine}", "add", "-f", "-A")
    gitignore = (pristine / ".gitignore").read_text().splitlines()
    c.put(".gitignore", "\n".join(x for x in gitignore if x not in ("/*", "!/debian/")) + "\n")
    base = c.commit("Linux 6.12 from Debian's linux-source-6.12")
    c.edit(
        "Documentation/admin-guide/README.rst",
        "Linux kernel release",
        "Linux kernel release (selftest)",
    )
    c.commit("Documentation: harmless change before the bug")
    c.edit("mm/mmap.c", "/*\n", "/* harmless comment change before the bug */\n/*\n")
    c.commit("mm: harmless comment change before the bug")
    c.git("apply", "--cached", str(patch_file))
    bug = c.commit(read_series(patch_file).patches[0].subject)
    c.edit("Documentation/admin-guide/README.rst", "(selftest)", "(selftest, again)")
    head = c.commit("Documentation: harmless change after the bug")
    c.git("update-ref", "refs/heads/master", head)
    c.git("symbolic-ref", "HEAD", "refs/heads/master")
    return History(repo, base, bug, head)


def selftest_history() -> History:
    """linux-source-6.12 as a small git history, made once and kept in the build cache.

    Making it hashes the whole 1.3 GB tree (about a minute); kept at a stable
    path, the build slot's worktree of it stays valid between runs, so the
    bisect's steps are incremental builds (or, warm, stored images).  The key
    covers the package version, the bug patch and the code that makes the
    history, so a change to any of them makes a new one.
    """
    started = time.monotonic()
    pristine = fetch_source_package("linux-source-6.12", build_cache(), print)
    patch = REPO / "guest-tests" / "bugs" / f"{BISECT_TEST}.patch"
    recipe = inspect.getsource(_Committer) + inspect.getsource(make_history)
    digest = hashlib.sha256(f"{pristine.identity}\0{recipe}\0".encode() + patch.read_bytes())
    home = build_cache() / "selftest-history" / digest.hexdigest()[:16]
    if not (home / "history.json").is_file():
        with atomic_dir(home) as scratch:
            made = make_history(pristine.path, scratch / "linux", patch)
            ids = {"base": made.base, "bug": made.bug, "head": made.head}
            (scratch / "history.json").write_text(json.dumps(ids))
        print(f"history made in {time.monotonic() - started:.0f}s")
    return History(home / "linux", **json.loads((home / "history.json").read_text()))
