"""Regressions between two runs: compare, --runs and flaky, CI reports, the page.

Two pytest runs on replayed Debian 6.12 guests, the same tests, the same
kernel name: the subject is compare, the reports and the page, not the
kernel.  In the second run one shell test crashes the kernel (the real
console of a sysrq c crash, tests/data/replay/regress-bad.yaml); the other
test fails on its second run in a boot, so ``--runs 3`` makes it flaky
(regress-good.yaml).  Then: ``compare`` lists exactly the regression and exits
1, the reverse lists the fix and the flaky test and exits 0; KCIDB (with an
issue for the panic) validates; the Patchwork check says fail; and the
second run's index.html, opened in a real headless Chromium, shows every
cell, links only to files that exist and raises no script error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import kcidb_io.schema
import pytest

from tests.browser import Chromium
from tests.plumbing.helpers import replay_kernel
from tests.support.paths import REPO
from tests.support.runs import write_kernels

CRASH = """#!/bin/sh
# regress_crash.sh - crashes the kernel when it was booted with kharness_regress=crash
#
# @timeout: 30
echo "TAP version 13"
echo "1..1"
grep -q kharness_regress=crash /proc/cmdline && echo c > /proc/sysrq-trigger
echo "ok 1 - alive"
"""
FLAKY = """#!/bin/sh
# regress_flaky.sh - fails on its second run in a boot, passes otherwise
#
# @timeout: 30
n=$(cat /tmp/regress_flaky 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > /tmp/regress_flaky
echo "TAP version 13"
echo "1..1"
if [ "$n" = 2 ]; then echo "not ok 1 - run $n"; exit 1; fi
echo "ok 1 - run $n"
"""
PANIC_TITLE = "Kernel panic: sysrq triggered crash"


def _run(project: pytest.Pytester, name: str, scenario: str, *args: str) -> Path:
    write_kernels(project, f"kernels:\n  - {replay_kernel('d612', scenario)}\n")
    project.runpytest_subprocess("guest-tests", f"--run-dir={name}", *args, timeout=120)
    return project.path / name


@pytest.fixture
def two_runs(project: pytest.Pytester) -> tuple[Path, Path]:
    """(good, bad) results directories of two runs of the same two tests."""
    sh = project.path / "guest-tests" / "sh"
    sh.mkdir()
    (sh / "regress_crash.sh").write_text(CRASH)
    (sh / "regress_flaky.sh").write_text(FLAKY)
    good = _run(project, "good", "regress-good", "--runs=3")
    bad = _run(project, "bad", "regress-bad")
    return good, bad


def _compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "compare", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_two_runs_compared_reported_and_shown(
    two_runs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = two_runs
    summary = json.loads((good / "summary.json").read_text())
    flaky = next(t for t in summary["tests"] if t["test"] == "regress_flaky")
    assert flaky["flaky"] is True and flaky["passes"] == 2, flaky
    assert [r["outcome"] for r in flaky["runs"]] == ["pass", "fail", "pass"]
    assert all((good / "d612" / "regress_flaky" / f"run-{n}").is_dir() for n in (1, 2, 3))
    assert "FLAKY 2/3" in (good / "summary.txt").read_text()

    forward = _compare(str(good), str(bad))
    assert forward.returncode == 1, forward.stdout + forward.stderr
    regressions = forward.stdout.split("New failures (regressions):\n")[1].split("\n\n")[0]
    assert regressions.splitlines() == [
        f"  regress_crash on d612: pass (3/3 runs passed) -> panic: {PANIC_TITLE}"
    ]
    back = _compare(str(bad), str(good))
    assert back.returncode == 0, back.stdout + back.stderr
    assert "regress_flaky on d612: passed 2 of 3 runs" in back.stdout
    assert "Fixed:\n  regress_crash on d612" in back.stdout
    assert "New failures" not in back.stdout

    kcidb = json.loads((bad / "kcidb.json").read_text())
    kcidb_io.schema.LATEST.validate(kcidb)
    assert [i["report_subject"] for i in kcidb["issues"]] == [PANIC_TITLE]
    (check,) = json.loads((bad / "patchwork.json").read_text())["checks"]
    assert check["state"] == "fail" and "regress_crash" in check["description"]

    monkeypatch.delenv("TMPDIR")  # the browser is not under test: its files go where they go
    with Chromium() as browser:
        load = browser.open((bad / "index.html").as_uri())
        assert load.errors == []
        cells = browser.evaluate(
            "JSON.stringify([...document.querySelectorAll('td.cell')]"
            ".map(td => [td.dataset.test, td.innerText.trim()]))"
        )
        assert sorted(json.loads(cells)) == [["regress_crash", "PANIC"], ["regress_flaky", "pass"]]
        links = json.loads(
            browser.evaluate(
                "JSON.stringify([...document.querySelectorAll('a[href]')].map(a => a.href))"
            )
        )
        files = [Path(unquote(urlparse(u).path)) for u in links if u.startswith("file:")]
        assert files and all(p.is_file() for p in files), [p for p in files if not p.is_file()]
        card = browser.evaluate("document.getElementById('t-d612-regress_crash').innerText")
        assert PANIC_TITLE in card
        marked = browser.evaluate(
            "document.querySelector('#t-d612-regress_crash .console .report-line').innerText"
        )
        assert "Kernel panic - not syncing" in marked
