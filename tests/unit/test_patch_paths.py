"""A patch touches only the tree: names from file headers, unsafe paths refused, resets whole.

Real ``patch``, real git, real trees in tmp_path; a file beside each tree
stands for what a hostile patch would like to delete (the cached pristine
source, the operator's files).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from harness.commands.series import NotApplied, SeriesReport, write_reports
from harness.kernels.diff_files import FileChange, changed_files, path_problem, tree_problem
from harness.kernels.patches import (
    Patch,
    PatchFailed,
    PatchRefused,
    _unnamed,
    apply_patch,
    first_misfit,
    read_series,
)
from harness.kernels.restore import restore
from harness.kernels.srctree import SourceTree, Workspace
from harness.mail import b4check, reply
from harness.mail.message import parse
from tests.unit.fake_kbuild import git, git_tree, make_tree

#: a hunk whose body holds lines that read like the headers of a file outside the tree
HUNK_LOOKS_LIKE_HEADER = """\
--- a/mm/memory.c
+++ b/mm/memory.c
@@ -1 +1,3 @@
-int fault(void) { return 1; }
+int fault(void) { return 7; }
+++ b/../../victim
+--- a/../../victim
"""


def _bare(text: str, name: str = "p") -> Patch:
    return Patch(name, text, f"{name}.diff")


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    """A plain kernel tree and a file beside it no patch may touch."""
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    return make_tree(tmp_path / "linux"), victim


def _snapshot(root: Path) -> dict[str, tuple[str, object]]:
    """Every entry under ``root``: kind, and bytes+mode or link target."""
    out: dict[str, tuple[str, object]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", None)
            else:
                out[rel] = ("file", (path.read_bytes(), path.stat().st_mode))
    return out


# -- which files a diff names ------------------------------------------------------


def test_header_like_lines_inside_a_hunk_are_content() -> None:
    assert _bare(HUNK_LOOKS_LIKE_HEADER).files() == ("mm/memory.c",)


def test_a_second_file_after_a_hunk_is_read_by_the_hunk_counts() -> None:
    diff = (
        HUNK_LOOKS_LIKE_HEADER + "--- a/kernel/fork.c\n+++ b/kernel/fork.c\n@@ -1 +1 @@\n-a\n+b\n"
    )
    assert _bare(diff).files() == ("mm/memory.c", "kernel/fork.c")


def test_renames_copies_creations_and_deletions_keep_both_sides() -> None:
    diff = (
        "diff --git a/mm/old.c b/mm/new.c\nsimilarity index 100%\n"
        "rename from mm/old.c\nrename to mm/new.c\n"
        "diff --git a/a.c b/b.c\nsimilarity index 90%\ncopy from a.c\ncopy to b.c\n"
        "--- a/a.c\n+++ b/b.c\n@@ -1 +1 @@\n-x\n+y\n"
        "diff --git a/gone.c b/gone.c\ndeleted file mode 100644\nindex 1..0\n"
        "--- a/gone.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
        'diff --git a/n.c "b/t\\303\\251st"\nnew file mode 120000\n'
    )
    assert changed_files(diff) == (
        FileChange("mm/old.c", "mm/new.c"),
        FileChange("a.c", "b.c"),
        FileChange("gone.c", None),
        FileChange(None, "tést", symlink=True),
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@@ -1 +1 @@\n",
        "--- a\n+++ b\n@@ -9" + "9" * 5000 + " +1 @@\n-x\n",
        "diff --git \n",
        'diff --git "a/\ud800\\303" "b/\\q\n',
        '--- "\n+++ "\\\n@@ -1 +1 @@\n',
    ],
)
def test_odd_diffs_give_a_result(text: str, tmp_path: Path) -> None:
    changes = changed_files(text)
    assert isinstance(changes, tuple)
    for name in (p for c in changes for p in c.paths):
        assert tree_problem(tmp_path, name) is None or path_problem(name) is not None


# -- refused before anything is applied ----------------------------------------------


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("--- a/../victim\n+++ b/../victim\n", "names a path outside the tree (../victim)"),
        ("--- a//tmp/x\n+++ b//tmp/x\n", "names an absolute path (/tmp/x)"),
        ("--- a/.git/config\n+++ b/.git/config\n", "names a path inside .git (.git/config)"),
    ],
)
def test_an_outside_path_is_refused_with_its_name(tmp_path: Path, header: str, why: str) -> None:
    tree, victim = _tree(tmp_path)
    before = _snapshot(tree)
    patch = _bare(header + "@@ -1 +1 @@\n-keep me\n+gone\n", "outside")
    with pytest.raises(PatchRefused) as info:
        apply_patch(patch, tree, git=False, scratch=tmp_path / "s")
    assert str(info.value) == f"patch outside {why}; nothing was applied"
    assert victim.read_text() == "keep me\n" and _snapshot(tree) == before


def test_a_rename_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    tree, _victim = _tree(tmp_path)
    diff = "diff --git a/mm/memory.c b/mm/x.c\nrename from mm/memory.c\nrename to ../stolen.c\n"
    with pytest.raises(PatchRefused, match=r"outside the tree \(\.\./stolen\.c\)"):
        apply_patch(_bare(diff), tree, git=False, scratch=tmp_path / "s")
    assert (tree / "mm/memory.c").is_file() and not (tmp_path / "stolen.c").exists()


def test_a_path_through_a_link_of_the_tree_is_refused(tmp_path: Path) -> None:
    tree, victim = _tree(tmp_path)
    (tree / "lnk").symlink_to("..")
    patch = _bare("--- a/lnk/victim\n+++ b/lnk/victim\n@@ -1 +1 @@\n-keep me\n+gone\n", "via")
    with pytest.raises(PatchRefused) as info:
        apply_patch(patch, tree, git=False, scratch=tmp_path / "s")
    assert str(info.value) == (
        "patch via names a path through the symbolic link lnk in the tree (lnk/victim); "
        "nothing was applied"
    )
    assert victim.read_text() == "keep me\n"


def test_git_workspaces_refuse_the_same_paths(tmp_path: Path) -> None:
    repo = git_tree(tmp_path / "repo")
    (tmp_path / "victim").write_text("keep me\n")
    patch = _bare("--- a/../victim\n+++ b/../victim\n@@ -1 +1 @@\n-keep me\n+gone\n")
    with pytest.raises(PatchRefused):
        apply_patch(patch, repo, git=True, scratch=tmp_path / "s")
    assert git(repo, "status", "--porcelain") == ""


def test_a_file_the_patch_program_names_but_the_headers_do_not_is_caught() -> None:
    patch = _bare("--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\n")
    assert _unnamed(patch, "checking file x.c\n") is None
    assert _unnamed(patch, "checking file x.c (renamed from y.c)\n") == "y.c"
    assert _unnamed(patch, "checking file 'other file'\n") == "other file"


def test_the_preflight_names_the_refused_patch_and_the_reply_says_so(tmp_path: Path) -> None:
    tree, victim = _tree(tmp_path)
    good = _bare(
        "--- a/mm/memory.c\n+++ b/mm/memory.c\n@@ -1 +1 @@\n-int fault(void) { return 1; }\n+x\n"
    )
    bad = Patch(
        "mm: evil", "--- a/../victim\n+++ b/../victim\n@@ -1 +1 @@\n-keep me\n+x\n", "m", 2, 2
    )
    found = first_misfit((good, bad), tree, tmp_path / "preflight")
    assert found is not None
    index, failed = found
    assert index == 2 and isinstance(failed, PatchRefused)
    assert str(failed) == (
        "patch [2/2] mm: evil names a path outside the tree (../victim); nothing was applied"
    )
    assert victim.read_text() == "keep me\n" and not (tmp_path / "preflight").exists()
    run = tmp_path / "run"
    run.mkdir()
    write_reports(SeriesReport(("t",), (), NotApplied(2, bad.label, str(failed), True)), run)
    assert json.loads((run / "series.json").read_text())["not_applied"]["refused"] is True
    assert (
        (run / "series.txt")
        .read_text()
        .startswith(
            "kharness series: patch 2 was refused (a path outside the tree), nothing was built"
        )
    )
    anchor = parse(
        b"From: Dev <dev@example.org>\nTo: list@example.org\nSubject: [PATCH 2/2] mm: evil\n"
        b"Message-ID: <p2@x>\n\nWhy.\n"
    )
    text = reply.compose(
        anchor, [reply.KernelResult("k", run)], reply.Settings("bot <bot@x.org>"), "cmd"
    ).get_content()
    assert "Patch 2 was refused: it names a path outside the tree" in text
    check = b4check.judge(anchor, run)
    assert (check.status, check.summary) == (
        "fail",
        "patch 2 was refused (a path outside the tree): [2/2] mm: evil",
    )
    assert "names a path outside the tree (../victim); nothing was applied" in text


# -- the reset of a plain tree -------------------------------------------------------


def _workspace(tmp_path: Path, tree: Path) -> tuple[Workspace, SourceTree]:
    source = SourceTree(tree, False, str(tree), "plain")
    ws = Workspace(tmp_path / "slot")
    ws.prepare(source, lambda _line: None)
    return ws, source


def test_a_hunk_naming_an_outside_file_deletes_nothing_at_the_reset(tmp_path: Path) -> None:
    tree, victim = _tree(tmp_path)
    ws, source = _workspace(tmp_path, tree)
    (tmp_path / "slot" / "victim").write_text("keep me too\n")  # ../victim seen from src
    patch = _bare(HUNK_LOOKS_LIKE_HEADER)
    apply_patch(patch, ws.src, git=False, scratch=tmp_path / "s")
    assert "return 7" in (ws.src / "mm/memory.c").read_text()
    ws.prepare(source, lambda _line: None)
    assert (ws.src / "mm/memory.c").read_text() == (tree / "mm/memory.c").read_text()
    assert victim.read_text() == "keep me\n"
    assert (tmp_path / "slot" / "victim").read_text() == "keep me too\n"


def test_a_rename_only_diff_is_undone_by_the_reset(tmp_path: Path) -> None:
    tree, _victim = _tree(tmp_path)
    ws, source = _workspace(tmp_path, tree)
    diff = (
        "diff --git a/mm/memory.c b/mm/renamed.c\nsimilarity index 100%\n"
        "rename from mm/memory.c\nrename to mm/renamed.c\n"
    )
    apply_patch(_bare(diff), ws.src, git=False, scratch=tmp_path / "s")
    assert (ws.src / "mm/renamed.c").is_file() and not (ws.src / "mm/memory.c").exists()
    ws.prepare(source, lambda _line: None)
    assert _snapshot(ws.src) == _snapshot(tree)


def test_a_series_applied_and_reset_leaves_the_tree_byte_identical(tmp_path: Path) -> None:
    repo = git_tree(
        tmp_path / "repo",
        {"mm/old.c": "old\n", "mm/big.c": "".join(f"line {n}\n" for n in range(40))},
    )
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "mm/memory.c").write_text("int fault(void) { return 9; }\n")
    (repo / "drivers/new").mkdir(parents=True)
    (repo / "drivers/new/new.c").write_text("int fresh;\n")
    (repo / "kernel/fork.c").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one: change, create, delete")
    git(repo, "mv", "mm/old.c", "mm/moved.c")
    (repo / "mm/big.c").chmod(0o755)
    (repo / "mm/big.c").write_text((repo / "mm/big.c").read_text().replace("line 20", "LINE"))
    os.symlink("memory.c", repo / "mm/link.c")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "two: rename, mode, link")
    mbox = tmp_path / "series.mbox"
    mbox.write_text(git(repo, "format-patch", "-M", "--stdout", f"{base}..HEAD"))
    tree = tmp_path / "linux"
    git(repo, "worktree", "add", "-q", "--detach", str(tree), base)
    (tree / ".git").unlink()  # a plain tree at the base
    pristine = _snapshot(tree)
    ws, source = _workspace(tmp_path, tree)
    untouched = (ws.src / "mm/filemap.c").stat()
    for patch in read_series(mbox).patches:
        apply_patch(patch, ws.src, git=False, scratch=tmp_path / "s")
    assert (ws.src / "mm/moved.c").is_file() and (ws.src / "mm/link.c").is_symlink()
    assert (ws.src / "drivers/new/new.c").is_file() and not (ws.src / "kernel/fork.c").exists()
    ws.prepare(source, lambda _line: None)
    assert _snapshot(ws.src) == pristine
    after = (ws.src / "mm/filemap.c").stat()
    assert (after.st_ino, after.st_mtime_ns) == (untouched.st_ino, untouched.st_mtime_ns)
    assert _snapshot(tree) == pristine  # the original's shared inodes were never written


def test_the_reset_removes_a_planted_link_without_following_it(tmp_path: Path) -> None:
    tree, victim = _tree(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "memory.c").write_text("not the tree's\n")
    ws, _source = _workspace(tmp_path, tree)
    for entry in (ws.src / "mm").iterdir():
        entry.unlink()
    (ws.src / "mm").rmdir()
    (ws.src / "mm").symlink_to(outside)  # a build script's doing, say
    (ws.src / "stray.o").write_text("junk\n")
    done = restore(tree, ws.src)
    assert (done.rewritten, done.removed) == (1, 1)
    assert (outside / "memory.c").read_text() == "not the tree's\n" and victim.is_file()
    assert _snapshot(ws.src) == _snapshot(tree)


#: pieces of diffs, headers and hunk lines, dangerous names among them
PIECES = (
    *("--- a/x\n", "+++ b/x\n", "--- a/y\n", "+++ b/y\n", "--- a/../v\n", "+++ b/../v\n"),
    *("@@ -1 +1 @@\n", "@@ -1,2 +1,2 @@\n", "@@ -0,0 +1 @@\n", "@@ -1 +0,0 @@\n"),
    *("-a\n", "+b\n", " z\n", "\n", "\\ No newline at end of file\n", "garbage\n"),
    *("diff --git a/x b/y\n", "diff --git a/x b/x\n", "rename from x\n", "rename to w\n"),
    *("copy from x\n", "copy to ../q\n", "new file mode 100644\n", "deleted file mode 100644\n"),
    *("Index: k\n", "--- /dev/null\n", "+++ /dev/null\n", "*** a/x\n", "***************\n"),
    *("similarity index 100%\n", "--- a/x\t2020-01-01\n", '+++ "b/x"\n', "--- a/lnk/v\n"),
)


def test_whatever_patch_writes_is_named_and_inside_or_the_patch_is_refused(
    tmp_path: Path,
) -> None:
    """Random diffs through the real patch program: the tree changes only where files() says."""
    rng = random.Random(25)
    for n in range(250):
        top = tmp_path / str(n)
        tree = top / "t"
        tree.mkdir(parents=True)
        for name in ("x", "y", "w"):
            (tree / name).write_text("a\nz\n")
        (top / "v").write_text("a\nz\n")
        (tree / "lnk").symlink_to("..")
        before, outside = _snapshot(tree), _snapshot(top)
        patch = _bare("".join(rng.choice(PIECES) for _ in range(rng.randint(3, 14))))
        try:
            apply_patch(patch, tree, git=False, scratch=top / "s")
        except PatchFailed:
            assert _snapshot(tree) == before
            continue
        after = _snapshot(tree)
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert changed <= set(patch.files()), patch.text
        assert {k: v for k, v in _snapshot(top).items() if not k.startswith(("t", "s"))} == {
            k: v for k, v in outside.items() if not k.startswith(("t", "s"))
        }, patch.text
