"""Feedback during a real run: a real download and a real build, on a terminal.

One run under a pseudo-terminal (pexpect) with an empty kernel cache, so the
kernel is really downloaded from the mirror apt uses (Debian 6.1, ~70 MB, the
smallest of the default kernels), then booted, then a test that sleeps a
few seconds runs: one boot.  The build step's progress on a real build (an ad-hoc ``--tree``).
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


#: a one-line patch with a fresh token each run: the build slot shared with the
#: self-test kernels recompiles one object and relinks (seconds once warm)
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
def test_an_ad_hoc_tree_builds_with_progress_and_stays_untouched(project: pytest.Pytester) -> None:
    """``--tree`` with ``--config`` and two ``--patch``: no kernels.yaml at all.

    The tree is Debian's linux-source-6.12 as the cache unpacked it (a plain
    tree, as a user's unpacked source would be).  The patches are applied in
    the build slot's copy, never in the tree: afterwards no file of the tree
    is newer than the run's start and the patched file is byte for byte what
    it was.  One real build, so this is also where the build step's live
    progress is seen on a terminal.
    """
    import time
    import uuid

    from harness.kernels.build import build_cache
    from harness.kernels.srctree import fetch_source_package
    from tests.integration.helpers import REPO

    tree = fetch_source_package("linux-source-6.12", build_cache(), print).path
    patched = tree / "mm" / "userfaultfd.c"
    before = patched.read_bytes()
    patch = project.path / "token.patch"
    patch.write_text(TOKEN_PATCH.format(token=uuid.uuid4().hex))
    (project.path / "guest-tests" / "c" / "slow.c").write_text(SLOW)
    fragment = REPO / "guest-tests" / "kunit" / "selftest.config"
    fix = REPO / "guest-tests" / "fixes" / "uffd-move-devmap-migration-entry.patch"
    started = time.time() - 1  # mtime granularity
    child = pexpect.spawn(
        sys.executable,
        [
            *("-m", "pytest", "guest-tests", "--results-dir=res", f"--tree={tree}"),
            *(f"--config={fragment}", f"--patch={fix}", f"--patch={patch}"),
        ],
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
    assert re.search(
        r"build tree: linux-source-6\.12 \+ 2 patch\(es\): (apply series|config|compile)", text
    )
    assert re.search(r"build tree: [^\n]*: (compile \d+/|link)", text), "a compile or link step"
    assert re.search(r"test tree: slow: 0:0[1-3] of 0:30 timeout", text)
    assert SUMMARY.match(_last_line(text)), _last_line(text)
    # the tree: nothing written, the patched file as it was
    assert patched.read_bytes() == before
    written = [p for p in tree.rglob("*") if p.is_file() and p.stat().st_mtime > started]
    assert not written, written[:10]
