"""A git tree with uncommitted changes: refused with the fix, or built as it is when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_kernels
from harness.errors import ConfigError
from harness.kernels.build import BuildSource
from harness.kernels.dirty import DirtyPolicy, DirtyTree
from harness.kernels.srctree import locate
from tests.unit.fake_kbuild import git, git_tree


def _locate(tree: Path, tmp_path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    return locate(str(tree), tmp_path, tmp_path / "cache", None, lambda _t: None, **kwargs)  # type: ignore[arg-type]


def _dirty_tree(tmp_path: Path) -> Path:
    tree = git_tree(tmp_path / "linux")
    (tree / "mm" / "memory.c").write_text("int fault(void) { return 42; }\n")
    (tree / "mm" / "new.c").write_text("int added(void) { return 1; }\n")
    return tree


def test_a_dirty_tree_is_refused_naming_the_files_and_the_fix(tmp_path: Path) -> None:
    tree = _dirty_tree(tmp_path)
    with pytest.raises(DirtyTree) as err:
        _locate(tree, tmp_path)
    text = str(err.value)
    assert "uncommitted changes (mm/memory.c, mm/new.c)" in text
    assert f"git -C {tree} stash" in text and "'dirty: build'" in text


def test_a_clean_tree_or_a_named_commit_is_built_as_before(tmp_path: Path) -> None:
    tree = git_tree(tmp_path / "linux")
    head = git(tree, "rev-parse", "HEAD").strip()
    assert _locate(tree, tmp_path).identity == head
    (tree / "mm" / "memory.c").write_text("edited\n")
    named = locate(str(tree), tmp_path, tmp_path / "c", head, lambda _t: None)
    assert named.identity == head, "rev: names a commit; the work tree does not matter"


def test_dirty_build_snapshots_the_work_tree_and_leaves_the_user_alone(tmp_path: Path) -> None:
    tree = _dirty_tree(tmp_path)
    head = git(tree, "rev-parse", "HEAD").strip()
    status = git(tree, "status", "--porcelain")
    found = _locate(tree, tmp_path, dirty=DirtyPolicy.BUILD)
    assert found.git and found.identity != head
    assert "return 42" in git(tree, "show", f"{found.identity}:mm/memory.c")
    assert "added" in git(tree, "show", f"{found.identity}:mm/new.c")
    assert git(tree, "rev-parse", f"{found.identity}^").strip() == head
    assert git(tree, "rev-parse", "HEAD").strip() == head, "the branch did not move"
    assert git(tree, "status", "--porcelain") == status, "index and files untouched"
    again = _locate(tree, tmp_path, dirty=DirtyPolicy.BUILD)
    assert again.identity == found.identity, "same edits, same commit: the image is reused"


def test_series_never_builds_uncommitted_edits(tmp_path: Path) -> None:
    tree = _dirty_tree(tmp_path)
    with pytest.raises(DirtyTree, match="kharness series builds commits only") as err:
        _locate(tree, tmp_path, dirty=DirtyPolicy.BUILD, commits_only="kharness series")
    assert "dirty: build" not in str(err.value)


def test_kernels_yaml_dirty_key(tmp_path: Path) -> None:
    tree = git_tree(tmp_path / "linux")
    path = tmp_path / "kernels.yaml"
    path.write_text(f"kernels:\n  - {{name: k, build: {{source: {tree}, dirty: build}}}}\n")
    (spec,) = load_kernels(path)
    assert isinstance(spec.source, BuildSource) and spec.source.dirty is DirtyPolicy.BUILD
    path.write_text(f"kernels:\n  - {{name: k, build: {{source: {tree}, dirty: maybe}}}}\n")
    with pytest.raises(ConfigError, match="dirty 'maybe' is not refuse or build"):
        load_kernels(path)
