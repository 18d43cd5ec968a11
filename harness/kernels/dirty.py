"""A git tree with uncommitted changes: refused, or built as it is when asked.

A build from a git tree checks out a commit in a worktree of its own, so
edits that are not committed would silently be missing from the kernel.
Such a tree is refused with the fix (commit, stash, or ``dirty: build``);
with ``dirty: build`` the work tree as it is becomes a snapshot commit that
nothing references (a temporary index, ``git write-tree``, ``git
commit-tree``): the user's branch, index and files are left alone, and the
same edits give the same commit, so an unchanged dirty tree reuses its image.
Series and bisect build commits only and never take a snapshot.
"""

from __future__ import annotations

import shutil
import tempfile
from enum import Enum
from pathlib import Path

from harness.errors import UserError
from harness.gitrun import run_git

#: fixed dates make the snapshot commit a function of the tree alone
_FIXED_DATES = {"GIT_AUTHOR_DATE": "@0 +0000", "GIT_COMMITTER_DATE": "@0 +0000"}


class DirtyPolicy(Enum):
    """kernels.yaml ``build: {dirty: ...}``: what a tree with uncommitted changes gets."""

    REFUSE = "refuse"
    BUILD = "build"


class DirtyTree(UserError):
    """A git tree whose uncommitted changes a build would leave out."""


def uncommitted(repo: Path) -> list[str]:
    """Files whose work-tree state differs from HEAD: changed, staged, or new and not ignored."""
    out = run_git(repo, "status", "--porcelain", "--untracked-files=normal").stdout
    return [line[3:] for line in out.splitlines() if line.strip()]


def refusal(repo: Path, changed: list[str], commits_only: str | None = None) -> DirtyTree:
    """The error naming the changed files and the fix.

    ``commits_only`` names a command that never builds uncommitted edits
    (series, bisect); it is told there is no key to change that.
    """
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    fix = f"commit them, or stash them (git -C {repo} stash)"
    if commits_only:
        return DirtyTree(
            f"{repo} has uncommitted changes ({shown}); {commits_only} builds commits only: {fix}"
        )
    return DirtyTree(
        f"{repo} has uncommitted changes ({shown}); a build takes a commit, so they would be "
        f"left out: {fix}, or set 'dirty: build' in the kernel's build: to build the work "
        "tree as it is"
    )


def snapshot(repo: Path) -> str:
    """A commit holding the work tree as it is (on top of HEAD); nothing of the user's moves."""
    index = Path(run_git(repo, "rev-parse", "--git-path", "index").stdout.strip())
    index = index if index.is_absolute() else repo / index
    with tempfile.TemporaryDirectory(prefix="kharness-index-") as scratch:
        temp = Path(scratch) / "index"
        if index.is_file():
            shutil.copyfile(index, temp)
        env = {"GIT_INDEX_FILE": str(temp), **_FIXED_DATES}
        run_git(repo, "add", "-A", env=env)
        tree = run_git(repo, "write-tree", env=env).stdout.strip()
    head = run_git(repo, "rev-parse", "HEAD").stdout.strip()
    message = "kharness: the work tree with its uncommitted changes"
    return run_git(repo, "commit-tree", tree, "-p", head, "-m", message, env=env).stdout.strip()
