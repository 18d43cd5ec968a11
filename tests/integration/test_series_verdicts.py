"""Confirmed before blamed, on real kernels: the ``pre-existing`` and ``unstable`` verdicts.

``kharness series`` as a user runs it (a subprocess, results in tmp_path) on
the self-test kernel history (tests/integration/selftest_history.py: base,
two harmless commits, the UFFDIO_API bug, one harmless commit).  The kernel
entry is the mailing-list tests' (``History.kernels_file``: selftest.config, debug
info, the KUnit suites, the UFFDIO_MOVE fix carried on the tree, sandboxed), so
``kharness series`` (no ``--sandbox`` needed: the entry says it) builds in the slot the
bot, the self-test kernels and the bisect fill
(``~/.cache/kpatch-harness/build/slots/6801025ec801fdd6`` today), which already holds
objects for the history's base, bug and head commits: each step is an incremental
rebuild, never a cold one.  Each step boots once; the confirmation runs are runs on
the step's guest still up and restores of the step before.

* pre-existing: the base is the bug commit and the series the harmless
  commit after it (``git format-patch``); the bug's test fails on the base
  and after the patch: no patch is blamed and the run exits 0.
* unstable: the base is the commit before the bug and the series the bug
  commit; the test is one of this module's making that fails on a kernel
  with the bug only on odd runs in a guest (a counter in the guest's /tmp),
  and always passes without it.  Its first run after the patch fails, so
  the step is confirmed: 3/3 pass on the base, 2/3 after the patch, a split
  result: ``unstable``, no patch blamed.

It is a C test, not a shell one: the only difference between the two
kernels is what UFFDIO_API answers, which a shell cannot ask.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.helpers import REPO
from tests.integration.selftest_history import BISECT_TEST, History

pytestmark = [pytest.mark.build, pytest.mark.boot]

FLAKY = "uffd_flaky_after_bug"

#: fails on odd runs in a guest where UFFDIO_API takes a feature bit it does not know
FLAKY_SOURCE = r"""// SPDX-License-Identifier: GPL-2.0
/*
 * uffd_flaky_after_bug - flaky on purpose, only on a kernel with the UFFDIO_API bug.
 *
 * @timeout: 30
 * @needs: config=USERFAULTFD
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ktap.h"

#define COUNTER "/tmp/uffd_flaky_after_bug.count"

int main(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 1ULL << 63 };
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int buggy, n = 0;
	FILE *f;

	ktap_plan(1);
	if (fd < 0)
		ktap_bail("userfaultfd");
	buggy = ioctl(fd, UFFDIO_API, &api) == 0;	/* an unknown bit taken: the bug */
	close(fd);
	f = fopen(COUNTER, "r");
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = 0;
		fclose(f);
	}
	n++;
	f = fopen(COUNTER, "w");
	if (!f)
		ktap_bail("cannot write " COUNTER);
	fprintf(f, "%d\n", n);
	fclose(f);
	ktap_diag("run %d in this guest, UFFDIO_API bug %s", n, buggy ? "present" : "absent");
	ktap_result(!(buggy && n % 2), "not an odd run on a kernel with the UFFDIO_API bug");
	ktap_finish();
}
"""


def _series(tmp_path: Path, history: History, commit: str) -> Path:
    """``commit`` as a one-patch mbox, made by ``git format-patch``."""
    mbox = tmp_path / f"{commit[:12]}.mbox"
    with mbox.open("wb") as out:
        subprocess.run(
            ["git", "-C", str(history.repo), "format-patch", "--stdout", "-1", commit],
            stdout=out,
            check=True,
        )
    return mbox


def _run(
    tmp_path: Path, kernels: Path, mbox: Path, tests: list[str], *extra: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``kharness series`` with its results in tmp_path; the run and its results directory."""
    results = tmp_path / "results"
    argv = [sys.executable, "-m", "harness", "--kernels-file", str(kernels), "series"]
    argv += ["--kernel", "selftest", "--series", str(mbox), "--results-dir", str(results)]
    for test in tests:
        argv += ["--test", test]
    started = time.monotonic()
    done = subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=3600, cwd=REPO)
    print(f"kharness series ran {time.monotonic() - started:.0f}s\n{done.stderr[-3000:]}")
    (run,) = [p.parent for p in results.glob("*/series.json") if not p.parent.is_symlink()]
    return done, run


def test_a_failure_the_base_already_has_is_pre_existing(history: History, tmp_path: Path) -> None:
    kernels = history.kernels_file(tmp_path, history.bug)
    mbox = _series(tmp_path, history, history.head)  # the harmless commit after the bug
    done, run = _run(tmp_path, kernels, mbox, [BISECT_TEST])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(re.findall(r"boot (\d\d): boot-\d+: done", done.stderr)) == ["00", "01"]
    text = (run / "series.txt").read_text()
    assert text.startswith("kharness series: no regressions introduced by the series\n"), text
    assert "Failures the base already had:" in text, text
    verdict = "already failing without the series (pre-existing, not blamed)"
    assert f"{BISECT_TEST}: {verdict}" in text, text
    assert "first broken by" not in text, text
    record = json.loads((run / "series.json").read_text())
    assert [s["outcomes"] for s in record["steps"]] == [{BISECT_TEST: "fail"}] * 2, record
    assert record["first_break"] == {} and record["regressions"] == [], record
    assert record["confirmations"] == [], "nothing turned from pass to fail: no reruns"
    (change,) = record["comparison"]["changes"]
    assert change["test"] == BISECT_TEST and change["kind"] == "still failing", change


def test_a_split_result_is_unstable_and_blames_no_patch(history: History, tmp_path: Path) -> None:
    tests = tmp_path / "guest-tests" / "c"
    tests.mkdir(parents=True)
    for header in (REPO / "guest-tests" / "c").glob("*.h"):
        shutil.copy(header, tests)
    (tests / f"{FLAKY}.c").write_text(FLAKY_SOURCE)
    before_bug = subprocess.run(
        ["git", "-C", str(history.repo), "rev-parse", f"{history.bug}~1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    kernels = history.kernels_file(tmp_path, before_bug)
    mbox = _series(tmp_path, history, history.bug)
    # its flakiness is a counter the guest keeps in /tmp: it needs the tests of a step to
    # share a guest, which a series does only when told (its default isolates every test)
    extra = ("--tests-dir", str(tests), "--isolation", "kernel")
    done, run = _run(tmp_path, kernels, mbox, [FLAKY], *extra)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # one cold boot per step; the base's reruns were a restore, patch 1's ran on its guest
    assert sorted(re.findall(r"boot (\d\d): boot-\d+: done", done.stderr)) == ["00", "01"]
    assert "boot 00: boot-2 (restore): done" in done.stderr, done.stderr[-3000:]
    text = (run / "series.txt").read_text()
    assert text.startswith("kharness series: no regressions introduced by the series\n"), text
    assert "Unstable when run again (a split result: no patch blamed):" in text, text
    assert "first broken by" not in text, text
    # the side-by-side table: 3 runs again on the base (a restore) and on patch 1 (still up)
    table = text[text.index(f"\n{FLAKY} ") + 1 :].splitlines()
    assert table[0].split()[1:4] == ["base", "(step", "0)"], table
    assert table[1].split() == ["pass", "3/3", "2/3"], table
    fail = "fail: not ok 1 - not an odd run on a kernel with the UFFDIO_API bug"
    assert table[2].split() == [*fail.split(), "0/3", "1/3"], table
    assert table[3] == "=> unstable: split after the patch: passed 2 of 3 runs", table
    record = json.loads((run / "series.json").read_text())
    assert record["first_break"] == {} and record["regressions"] == [], record
    (checked,) = record["confirmations"]
    assert (checked["test"], checked["before"], checked["after"]) == (FLAKY, 0, 1), checked
    assert checked["kind"] == "unstable", checked
    assert [r["outcome"] for r in checked["before_runs"]] == ["pass"] * 3, checked
    assert [r["outcome"] for r in checked["after_runs"]] == ["pass", "fail", "pass"], checked
