"""Kernels side by side with pytest-xdist (-n): same results as serial, a dead worker.

The subject is xdist's glue (scheduling by kernel, shipping records and
evidence, relayed progress, lost workers, SIGTERM), so both kernels are
replayed guests of one real console (tests/data/replay); each test "boots"
each kernel once.  The sleeping test hangs on the kernels whose scenario says
so (d612.yaml) and returns at once on sleeper-returns.yaml.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.plumbing.helpers import replay_kernel
from tests.support.processes import TEST_TAG, tagged_processes
from tests.support.runs import SLEEPER, add_tests, ready_boots, write_kernels


def _run_dir(base: Path) -> Path:
    (run,) = [p for p in base.iterdir() if p.is_dir() and not p.is_symlink()]
    return run


def _results(run: Path) -> dict:
    """What must not depend on how the run was spread: every result, in every format."""
    summary = json.loads((run / "summary.json").read_text())
    tests = sorted(
        (t["test"], t["kernel"], t["outcome"], t["expected"], t["summary"], t["as_expected"])
        for t in summary["tests"]
    )
    kcidb = json.loads((run / "kcidb.json").read_text())
    statuses = sorted(
        (t["path"], t["status"], t["build_id"].replace(run.name, "RUN")) for t in kcidb["tests"]
    )
    junit = ET.parse(run / "junit.xml").getroot()
    cases = sorted(
        (
            c.get("classname"),
            c.get("name"),
            tuple(sorted((e.tag, e.get("message") or "") for e in c if e.tag not in _OUTPUT)),
        )
        for c in junit.iter("testcase")
    )
    props = sorted(
        (p.get("name"), p.get("value"))
        for p in junit.iter("property")
        if not p.get("name", "").endswith(" evidence")
    )
    text = (run / "summary.txt").read_text().replace(run.name, "RUN")
    # a boot TCG crashed before it got ready, and was retried, is reported in either run
    # as it happened; the rest of the reports outside tests must match
    text = re.sub(r"\nKernel reports outside any test:\n(?:  .*\n)+", "\n", text)
    outside = sorted(
        (o["kernel"], o["when"], o["title"])
        for o in summary["reports_outside_tests"]
        if o["boot"] in ready_boots(run / o["kernel"])
    )
    return {
        "tests": tests,
        "kcidb": statuses,
        "junit": cases,
        "props": props,
        "text": text,
        "outside": outside,
    }


_OUTPUT = ("system-out", "system-err", "properties")


def workers_of(out: str) -> dict[str, set[str]]:
    """The xdist workers each kernel's tests ran on, from -v output."""
    return {
        kernel: {m for m in re.findall(rf"\[(gw\d+)\] [^\n]*::{kernel}\b", out)}
        for kernel in ("ka", "kb")
    }


def test_parallel_results_equal_serial(project: pytest.Pytester) -> None:
    """-n 2: one boot per kernel, each kernel on one worker, and exactly the serial results."""
    add_tests(project, "fails", "uffd_api_unknown_feature")
    expect = 'expect: {fails: {outcome: fail, reason: "known here"}}'
    write_kernels(
        project,
        f"kernels:\n  - {replay_kernel('ka', extra=expect)}\n  - {replay_kernel('kb')}\n",
    )
    runs = {}
    # the parallel run also shows its workers' progress (harness/plugin/relay.py)
    for label, extra in (("serial", ()), ("parallel", ("-n", "2", "--progress=plain"))):
        base = project.path / label
        result = project.runpytest_subprocess(
            "guest-tests",
            "-v",
            f"--results-dir={base}",
            f"--junitxml={base}/junit.xml",
            *extra,
            timeout=180,
        )
        result.assert_outcomes(passed=2, failed=1, xfailed=1)
        run = _run_dir(base)
        os.replace(base / "junit.xml", run / "junit.xml")
        runs[label] = (run, result.stdout.str())
    serial, parallel = (_results(runs[k][0]) for k in ("serial", "parallel"))
    for key in serial:
        assert serial[key] == parallel[key], key
    out = runs["parallel"][1]
    assert "scheduling tests via KernelGroups" in out
    # each kernel ran on one worker, and booted once
    workers = workers_of(out)
    assert all(len(w) == 1 for w in workers.values()), workers
    # each worker's boot and tests reached the controller's output, marked with the worker
    for kernel, (worker,) in workers.items():
        assert re.search(rf"\[kharness\] boot \[{worker}\] {kernel}: boot-\d+: done in", out), out
        assert re.search(rf"\[kharness\] test \[{worker}\] {kernel}: fails: done in", out), out
    run = runs["parallel"][0]
    summary = json.loads((run / "summary.json").read_text())
    assert {k: len(ready_boots(run / k)) for k in summary["kernels"]} == {"ka": 1, "kb": 1}
    for t in summary["tests"]:
        assert Path(t["evidence"]).parent.parent == run, t
        assert (Path(t["evidence"]) / "result.json").is_file()
    # the controller alone wrote the run: one results directory, one latest link
    assert sorted(p.name for p in (project.path / "parallel").iterdir()) == sorted(
        ["latest", run.name]
    )  # (junit.xml was moved into the run)


def _worker_of(kernel: str, root: Path) -> int | None:
    """The pid of the worker playing ``kernel``: the process writing its console log."""
    for pid in tagged_processes(r"python", os.environ[TEST_TAG]):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
            targets = [os.readlink(fd) for fd in fds]
        except OSError:
            continue
        if any(t.startswith(str(root)) and f"/{kernel}/boot-" in t for t in targets):
            return pid
    return None


def _wait_for_sleeper(console_glob: str, base: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        logs = base.glob(console_glob)
        if any("HARNESS-START a_sleeps" in log.read_text(errors="replace") for log in logs):
            return
        time.sleep(0.2)
    pytest.fail(f"the sleeping test never started (pytest exit {proc.poll()})")


def test_dead_worker_errors_its_kernel_only(project: pytest.Pytester) -> None:
    """A worker killed mid-test: its kernel's unfinished tests are errors, the rest stands."""
    (project.path / "guest-tests" / "c" / "a_sleeps.c").write_text(SLEEPER)
    add_tests(project, "noop")
    ka, kb = replay_kernel("ka", "sleeper-returns"), replay_kernel("kb")
    write_kernels(project, f"kernels:\n  - {ka}\n  - {kb}\n")
    base = project.path / "res"
    log = project.path / "pytest-output.txt"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "pytest", "guest-tests", "-v", "-rA", "-n", "2"),
            *(f"--results-dir={base}", f"--junitxml={base}/junit.xml", "-p", "no:cacheprovider"),
        ],
        cwd=project.path,
        stdout=log.open("w"),  # a file: a full pipe nobody reads would stall pytest
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_sleeper("*/kb/boot-*/console.log", base, proc)
        worker = _worker_of("kb", base)
        assert worker is not None and worker != proc.pid
        os.kill(worker, signal.SIGKILL)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    run = _run_dir(base)
    summary = json.loads((run / "summary.json").read_text())
    got = {(t["test"], t["kernel"]): t for t in summary["tests"]}
    assert {k: v["outcome"] for k, v in got.items()} == {
        ("a_sleeps", "ka"): "pass",
        ("noop", "ka"): "pass",
        ("a_sleeps", "kb"): "error",
        ("noop", "kb"): "error",
    }, out
    assert (
        "was lost while running guest-tests/c/a_sleeps.c::kb" in got[("a_sleeps", "kb")]["summary"]
    )
    assert "not run" in got[("noop", "kb")]["summary"]
    assert "infrastructure error" in got[("noop", "kb")]["summary"]
    junit = ET.parse(base / "junit.xml").getroot()
    kinds = {
        c.get("name"): [e.tag for e in c if e.tag in ("error", "failure", "skipped")]
        for c in junit.iter("testcase")
        if c.get("name") == "kb"
    }
    assert kinds == {"kb": ["error"]}, kinds  # both kb cases (same name, two classnames)
    assert sum(1 for c in junit.iter("testcase") if c.find("error") is not None) == 2
    assert "2 passed" in out and "2 errors" in out, out
    # ka's evidence is all there
    assert (run / "ka" / "noop" / "result.json").is_file()


def test_sigterm_under_n_stops_every_guest_and_says_interrupted(project: pytest.Pytester) -> None:
    """SIGTERM to the controller mid-test: workers and guests stop, reports say interrupted."""
    (project.path / "guest-tests" / "c" / "a_sleeps.c").write_text(SLEEPER)
    write_kernels(project, f"kernels:\n  - {replay_kernel('ka')}\n  - {replay_kernel('kb')}\n")
    base = project.path / "res"
    log = project.path / "pytest-output.txt"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "pytest", "guest-tests", "-v", "-n", "2"),
            *(f"--results-dir={base}", "-p", "no:cacheprovider"),
        ],
        cwd=project.path,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_sleeper("*/kb/boot-*/console.log", base, proc)
        workers = _workers_of(proc.pid)
        assert len(workers) == 2, workers
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    summary = json.loads((_run_dir(base) / "summary.json").read_text())
    assert summary["interrupted"] is True
    got = {(t["test"], t["kernel"]): t["outcome"] for t in summary["tests"]}
    assert got[("a_sleeps", "kb")] == "not-run", got
    assert set(got) == {("a_sleeps", "ka"), ("a_sleeps", "kb")}
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {w for w in workers if Path(f"/proc/{w}").exists()}
    assert not left, "every worker (and the guest it plays) must stop"


def _workers_of(controller: int) -> set[int]:
    """This session's processes whose parent is ``controller`` (its xdist workers)."""
    found = set()
    for pid in tagged_processes(r".", os.environ[TEST_TAG]):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == controller:
            found.add(pid)
    return found
