"""Feedback during a run on a replayed guest: a live line on a terminal, plain lines in a log.

The subject is the progress plumbing (the reporter's live line, plain lines,
the streamed console), so the guest is a replayed real console; the test
runs three seconds on the terminal, as the real reproducer sleeps (half a
second for the plain lines, which need no tick).  The download progress of
a real kernel on an empty cache, and a real build's steps, stay in
tests/integration/test_progress_run.py.
"""

from __future__ import annotations

import re
import sys

import pexpect
import pytest

from tests.plumbing.helpers import SCENARIOS
from tests.support.runs import ANSI, SLOW, SUMMARY, write_kernels


def _slow_project(project: pytest.Pytester, seconds: float = 3.0) -> None:
    """slow.c on a replayed guest where it runs ``seconds`` (d612's boot; 3 s: as on a real
    guest, long enough for the live line to count it)."""
    (project.path / "guest-tests" / "c" / "slow.c").write_text(SLOW)
    scenario = project.path / "slow.yaml"
    scenario.write_text(
        "release: 6.12.118+deb12-amd64\n"
        f"boot: {{console: {{file: {SCENARIOS / '6.12-boot.log'}}}}}\n"
        f'tests:\n  slow: {{after: {seconds}, stdout: "TAP version 13\\n1..1\\nok 1 - slept\\n"}}\n'
    )
    write_kernels(
        project, f"kernels:\n  - {{name: k, replay: {{scenario: {scenario}}}, backend: replay}}\n"
    )


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1].strip()


def test_live_progress_on_a_terminal(project: pytest.Pytester) -> None:
    _slow_project(project)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "pytest", "guest-tests", "--results-dir=res"],
        cwd=str(project.path),
        encoding="utf-8",
        timeout=120,
        dimensions=(40, 160),
    )
    child.expect(pexpect.EOF)
    child.close()
    raw = child.before or ""
    text = ANSI.sub("", raw).replace("\r", "\n")
    assert child.exitstatus == 0, text[-3000:]
    assert re.search(r"boot k: boot-1: 0:0\d", text)
    assert re.search(r"\[kharness\] boot k: boot-1: done in [\d.]+s", text)
    assert re.search(r"test k: slow: 0:0[1-3] of 0:30 timeout", text), "the running test's line"
    assert "\x1b[2K" in raw, "the live line is redrawn in place"
    assert SUMMARY.match(_last_line(text)), _last_line(text)


def test_plain_lines_when_not_a_terminal(project: pytest.Pytester) -> None:
    _slow_project(project, 0.5)  # lines at its start and end: no need to wait for a tick
    result = project.runpytest_subprocess(
        "guest-tests", "--results-dir=res", "--progress=plain", "--console", timeout=120
    )
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    stamped = r"\d\d:\d\d:\d\d \[kharness\] "
    for line in (
        r"boot k: boot-1: 0:00 \(started\)",
        r"boot k: boot-1: done in [\d.]+s",
        r"test k: slow: 0:00 of 0:30 timeout \(started\)",
        r"test k: slow: done in [\d.]+s",
    ):
        assert re.search(f"^{stamped}{line}$", out, re.M), line
    assert re.search(r"^k: \[\s*[\d.]+\] Linux version", out, re.M), "console streamed"
    assert "\x1b[" not in out, "no terminal control codes in a log"
    progress = re.findall(f"^{stamped}(boot|test) ", out, re.M)
    assert len(progress) <= 2 * 2 + 2, "start, end and at most one line per 10 s"
    assert SUMMARY.match(_last_line(out)), _last_line(out)


def test_options_in_pytest_help(project: pytest.Pytester) -> None:
    out = project.runpytest_subprocess("--help").stdout.str()
    assert "--progress={auto,live,plain,off}" in out
    assert "--console" in out
    assert "--backend={qemu,virtme}" in out
    assert "replay" not in out, "the test suite's replay backend is not a user's option"
