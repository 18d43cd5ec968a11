"""Patch series: mbox splitting, cover letters, ordering, and applying with real tools."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.kernels.patches import (
    PatchFailed,
    SeriesError,
    apply_patch,
    hunk_text,
    read_series,
    split_mbox,
)
from tests.unit.fake_kbuild import format_patch, git, git_tree, make_tree

COVER = """\
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Dev <dev@example.org>
Subject: [PATCH v2 0/2] mm: two fixes

Two fixes. From the last version: nothing. A line that says
From here on, prose (not a separator: no headers follow).

Dev (2):
  mm: one
  mm: two

"""


def _mbox(tmp_path: Path, *messages: str) -> Path:
    path = tmp_path / "series.mbox"
    path.write_text("".join(messages))
    return path


def test_b4_mbox_cover_letter_is_set_aside_and_patches_ordered(tmp_path: Path) -> None:
    one = format_patch("mm/memory.c", "a", "b", "mm: one", "v2 1/2")
    two = format_patch("mm/filemap.c", "c", "d", "mm: two", "v2 2/2")
    series = read_series(_mbox(tmp_path, COVER, two, one))  # out of order on purpose
    assert [p.subject for p in series.patches] == ["mm: one", "mm: two"]
    assert [p.label for p in series.patches] == ["[1/2] mm: one", "[2/2] mm: two"]
    assert series.cover is not None and series.cover.subject == "mm: two fixes"
    assert series.patches[0].files() == ("mm/memory.c",)


def test_prose_line_starting_with_from_does_not_split_a_message() -> None:
    assert len(split_mbox(COVER)) == 1


def test_mboxrd_escaped_from_lines_are_unescaped(tmp_path: Path) -> None:
    text = format_patch("mm/memory.c", "a", "b", "mm: one").replace(
        "Why this change.", "Why this change.\n>From the archive."
    )
    patch = read_series(_mbox(tmp_path, text)).patches[0]
    assert "\nFrom the archive." in patch.text


def test_replies_in_a_thread_mbox_are_skipped(tmp_path: Path) -> None:
    one = format_patch("mm/memory.c", "a", "b", "mm: one", "1/1")
    reply = one.replace("Subject: [PATCH 1/1] mm: one", "Subject: Re: [PATCH 1/1] mm: one")
    series = read_series(_mbox(tmp_path, one, reply))
    assert len(series.patches) == 1
    assert series.skipped == ("reply: Re: [PATCH 1/1] mm: one",)


def test_a_gap_in_the_numbering_is_an_error_naming_the_missing_patch(tmp_path: Path) -> None:
    one = format_patch("mm/memory.c", "a", "b", "mm: one", "1/3")
    three = format_patch("mm/memory.c", "a", "b", "mm: three", "3/3")
    with pytest.raises(SeriesError, match="2/3 is missing"):
        read_series(_mbox(tmp_path, one, three))


def test_two_versions_in_one_mbox_are_refused(tmp_path: Path) -> None:
    one = format_patch("mm/memory.c", "a", "b", "mm: one", "1/1")
    with pytest.raises(SeriesError, match="same place"):
        read_series(_mbox(tmp_path, one, one))


def test_a_file_that_is_not_an_mbox_or_patch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.patch"
    path.write_text("just some notes\nabout a patch\n")
    with pytest.raises(SeriesError, match="neither an mbox nor a patch"):
        read_series(path)


def test_mbox_with_only_a_cover_letter_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SeriesError, match="no patch with a diff"):
        read_series(_mbox(tmp_path, COVER))


def test_missing_series_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(SeriesError, match="does not exist"):
        read_series(tmp_path / "nope.mbox")


def test_directory_of_numbered_files_is_one_series(tmp_path: Path) -> None:
    d = tmp_path / "patches"
    d.mkdir()
    (d / "0002-two.patch").write_text(format_patch("mm/memory.c", "a", "b", "two", "2/2"))
    (d / "0001-one.patch").write_text(format_patch("mm/memory.c", "a", "b", "one", "1/2"))
    assert [p.label for p in read_series(d).patches] == ["[1/2] one", "[2/2] two"]
    (d / "0001-one.patch").unlink()
    with pytest.raises(SeriesError, match="1/2 is missing"):
        read_series(d)


def test_directory_uses_quilt_series_order(tmp_path: Path) -> None:
    d = tmp_path / "patches"
    d.mkdir()
    (d / "a.patch").write_text(format_patch("mm/memory.c", "a", "b", "first by name"))
    (d / "b.patch").write_text(format_patch("mm/memory.c", "a", "b", "second by name"))
    assert [p.subject for p in read_series(d).patches] == ["first by name", "second by name"]
    (d / "series").write_text("# quilt\nb.patch\na.patch -p1\n")
    assert [p.subject for p in read_series(d).patches] == ["second by name", "first by name"]


def test_bare_diff_is_one_patch_named_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "fix-fault.diff"
    path.write_text("--- a/mm/memory.c\n+++ b/mm/memory.c\n@@ -1 +1 @@\n-x\n+y\n")
    patch = read_series(path).patches[0]
    assert (patch.subject, patch.is_mail, patch.files()) == ("fix-fault", False, ("mm/memory.c",))


def test_hunk_text_picks_the_numbered_hunk_of_the_file() -> None:
    diff = (
        "--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\n@@ -9 +9 @@\n-c\n+d\n"
        "--- a/y.c\n+++ b/y.c\n@@ -1 +1 @@\n-e\n+f\n"
    )
    assert hunk_text(diff, "x.c", 2) == "@@ -9 +9 @@\n-c\n+d"
    assert hunk_text(diff, "y.c", 1) == "@@ -1 +1 @@\n-e\n+f"
    assert hunk_text(diff, "x.c", 3) is None


def test_patch_p1_on_a_hardlinked_copy_leaves_the_original_alone(tmp_path: Path) -> None:
    original = make_tree(tmp_path / "orig")
    copy = tmp_path / "copy"
    os.system(f"cp -al {original} {copy}")
    patch_file = tmp_path / "p.patch"
    patch_file.write_text(
        format_patch(
            "mm/memory.c",
            "int fault(void) { return 1; }",
            "int fault(void) { return 7; }",
            "mm: seven",
        )
    )
    apply_patch(read_series(patch_file).patches[0], copy, git=False, scratch=tmp_path / "s")
    assert "return 7" in (copy / "mm/memory.c").read_text()
    assert "return 1" in (original / "mm/memory.c").read_text()


def test_patch_that_does_not_apply_names_subject_and_rejected_hunk(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    before = (tree / "mm/memory.c").read_text()
    patch_file = tmp_path / "p.patch"
    patch_file.write_text(
        format_patch(
            "mm/memory.c",
            "int fault(void) { return 3; }",
            "int fault(void) { return 4; }",
            "mm: stale",
        )
    )
    patch = read_series(patch_file).patches[0]
    with pytest.raises(PatchFailed) as info:
        apply_patch(patch, tree, git=False, scratch=tmp_path / "s")
    assert "mm: stale" in str(info.value) and "does not apply" in str(info.value)
    assert "rejected hunk #1 of mm/memory.c" in info.value.details
    assert "-int fault(void) { return 3; }" in info.value.details
    assert (tree / "mm/memory.c").read_text() == before  # nothing half-applied


def test_git_am_on_a_git_tree_makes_a_commit_with_the_subject(tmp_path: Path) -> None:
    repo = git_tree(tmp_path / "repo")
    patch_file = tmp_path / "p.patch"
    patch_file.write_text(
        format_patch(
            "kernel/fork.c",
            "int fork(void) { return 0; }",
            "int fork(void) { return -1; }",
            "fork: fail",
        )
    )
    apply_patch(read_series(patch_file).patches[0], repo, git=True, scratch=tmp_path / "s")
    assert git(repo, "log", "-1", "--format=%s").strip() == "fork: fail"
    assert git(repo, "status", "--porcelain").strip() == ""
