"""Feedback during a real run: a real download and a real build, on a terminal.

One run under a pseudo-terminal (pexpect) with an empty kernel cache, so the
kernel is really downloaded from the mirror apt uses (Debian 6.1, ~70 MB, the
smallest of the default kernels), then booted, then a test that sleeps a
few seconds runs: one boot.  The build step's progress on a real build (an ad-hoc ``--tree``
of the self-test history's checkout, in the self-test kernels' build slot).
Plain lines, the live line of boots and tests and the help text are tested
on a replayed guest in tests/plumbing/test_progress_run.py.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pexpect
import pytest

from tests.integration.helpers import ANSI, SLOW, SUMMARY, write_kernels
from tests.integration.selftest_history import History

pytestmark = pytest.mark.boot

DEBIAN_61 = '{package: "linux-image-6.1.0-*-amd64-unsigned", suite: bookworm-security}'


def _slow_project(project: pytest.Pytester, kernel: str) -> None:
    (project.path / "guest-tests" / "c" / "slow.c").write_text(SLOW)
    write_kernels(project, f"kernels:\n  - name: k\n    debian: {kernel}\n")


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1].strip()


def test_live_progress_on_a_terminal(project: pytest.Pytester, tmp_path: Path) -> None:
    _slow_project(project, DEBIAN_61)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "pytest", "guest-tests", "--results-dir=res"],
        cwd=str(project.path),
        env={**os.environ, "KHARNESS_CACHE": str(tmp_path / "empty-cache")},
        encoding="utf-8",
        timeout=600,
        dimensions=(40, 160),
    )
    child.expect(pexpect.EOF)
    child.close()
    raw = child.before or ""
    text = ANSI.sub("", raw).replace("\r", "\n")
    assert child.exitstatus == 0, text[-3000:]
    assert re.search(r"download k: linux-image-6\.1\.0-\S+ \S+: [\d.]+ ?\S*/[\d.]+ MiB", text)
    assert re.search(r"\[kharness\] download k: linux-image-6\.1\S* \S+: [\d.]+ MiB done in", text)
    assert re.search(r"boot k: boot-1: 0:0\d", text)
    assert re.search(r"\[kharness\] boot k: boot-1: done in [\d.]+s", text)
    assert re.search(r"test k: slow: 0:0[1-3] of 0:30 timeout", text), "the running test's line"
    assert "\x1b[2K" in raw, "the live line is redrawn in place"
    assert SUMMARY.match(_last_line(text)), _last_line(text)


def _mtimes(tree: Path) -> dict[str, int]:
    """Every file of ``tree``'s work tree (not .git) and its mtime: what "nothing written" is
    checked against (a mtime threshold would catch the checkout's own last second)."""
    found = {}
    for root, dirs, names in os.walk(tree):
        dirs[:] = [d for d in dirs if not (root == str(tree) and d == ".git")]
        found.update((f"{root}/{n}", os.lstat(f"{root}/{n}").st_mtime_ns) for n in names)
    return found


#: a one-line patch with a fresh token each run: the build slot shared with the
#: self-test kernels recompiles a few objects and relinks (seconds once warm)
TOKEN_PATCH = """From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: kharness progress test <progress@kharness.invalid>
Date: Thu, 1 Jan 2026 00:00:00 +0000
Subject: [PATCH] progress test: a comment in mm/userfaultfd.c

---
 mm/userfaultfd.c | 1 +
 1 file changed, 1 insertion(+)

--- a/mm/userfaultfd.c
+++ b/mm/userfaultfd.c
@@ -1,3 +1,4 @@
 // SPDX-License-Identifier: GPL-2.0-only
+/* kharness progress test {token} */
 /*
  *  mm/userfaultfd.c
"""


@pytest.mark.build
def test_an_ad_hoc_tree_builds_with_progress_and_stays_untouched(
    project: pytest.Pytester, history: History
) -> None:
    """``--tree`` with ``--config``, ``--sandbox`` and two ``--patch``: no kernels.yaml at all.

    The tree is a git checkout: the self-test history's own work tree, at its
    head, with the self-test recipe (``History.tree_options``), so the build
    lands in the slot the self-test kernels, the series and the bot fill (a
    git reset of a few files there, never a cold build of a slot of its own;
    a plain copy of the package would be one: a slot holds one source).  The
    patches are applied in the build slot's worktree, never in the checkout:
    afterwards no file of its work tree is newer than the run's start and the
    patched file is byte for byte what it was (a plain tree's hard-link copy
    is checked the same way on small trees, tests/unit/test_patch_paths.py).
    One real build, so this is also where the build step's live progress is
    seen on a terminal.
    """
    import uuid

    tree = history.work_tree()
    patched = tree / "mm" / "userfaultfd.c"
    before = patched.read_bytes()
    patch = project.path / "token.patch"
    patch.write_text(TOKEN_PATCH.format(token=uuid.uuid4().hex))
    (project.path / "guest-tests" / "c" / "slow.c").write_text(SLOW)
    unwritten = _mtimes(tree)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "pytest", "guest-tests", "--results-dir=res", *history.tree_options(patch)],
        cwd=str(project.path),
        encoding="utf-8",
        timeout=1800,
        dimensions=(40, 160),
    )
    child.expect(pexpect.EOF)
    child.close()
    raw = child.before or ""
    text = ANSI.sub("", raw).replace("\r", "\n")
    assert child.exitstatus == 0, text[-3000:]
    assert not (project.path / "kernels.yaml").exists()
    result = json.loads(
        (project.path / "res" / "latest" / "tree" / "slow" / "result.json").read_text()
    )
    assert result["outcome"] == "pass", result
    assert re.search(r"build tree: linux \+ 2 patch\(es\): (apply series|config|compile)", text)
    assert re.search(r"build tree: [^\n]*: (compile \d+/|link)", text), "a compile or link step"
    assert re.search(r"test tree: slow: 0:0[1-3] of 0:30 timeout", text)
    assert SUMMARY.match(_last_line(text)), _last_line(text)
    # the work tree: nothing written, the patched file as it was (.git is git's own: the
    # dirty check refreshes its index, the slot's worktree is registered there)
    assert patched.read_bytes() == before
    after = _mtimes(tree)
    written = sorted(set(after.items()) ^ set(unwritten.items()))
    assert not written, written[:10]
