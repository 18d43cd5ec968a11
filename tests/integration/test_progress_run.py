"""Feedback during a real run: a real download and a real build, on a terminal.

One run under a pseudo-terminal (pexpect) with an empty kernel cache, so the
kernel is really downloaded from the mirror apt uses (Debian 6.1, ~70 MB, the
smallest of the default kernels), then booted, then a test that sleeps a
few seconds runs: one boot.  The build step's progress on a real build.
Plain lines, the live line of boots and tests and the help text are tested
on a replayed guest in tests/plumbing/test_progress_run.py.
"""

from __future__ import annotations

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
def test_build_step_progress_on_a_terminal(project: pytest.Pytester) -> None:
    import uuid

    from tests.integration.helpers import REPO

    patch = project.path / "token.patch"
    patch.write_text(TOKEN_PATCH.format(token=uuid.uuid4().hex))
    (project.path / "guest-tests" / "c" / "slow.c").write_text(SLOW)
    fragment = REPO / "guest-tests" / "kunit" / "selftest.config"
    fix = REPO / "guest-tests" / "fixes" / "uffd-move-devmap-migration-entry.patch"
    write_kernels(
        project,
        f"""
        kernels:
          - name: k
            build:
              source: linux-source-6.12
              fragments: [{fragment}]
              series: [{fix}, {patch}]
        """,
    )
    child = pexpect.spawn(
        sys.executable,
        ["-m", "pytest", "guest-tests", "--results-dir=res"],
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
    assert re.search(
        r"build k: linux-source-6\.12 \+ 2 patch\(es\): (apply series|config|compile)", text
    )
    assert re.search(r"build k: [^\n]*: (compile \d+/|link)", text), "a compile or link step"
    assert re.search(r"test k: slow: 0:0[1-3] of 0:30 timeout", text)
    assert SUMMARY.match(_last_line(text)), _last_line(text)
