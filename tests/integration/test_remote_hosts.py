"""Remote test hosts for real: two hosts as network namespaces, each with its own sshd.

Each host is a network namespace with its own address on a veth pair and an
sshd started inside it with a throwaway host key and an authorized key made
for this test.  The namespaces share this machine's filesystem, so the
project is "installed" on each host at the same path (sshd's SetEnv puts this
checkout on PYTHONPATH, as ``make setup`` in a clone would on a real host).
The run goes through xdist's ssh gateway (``--tx ssh=...``); traffic stays on
the veth pairs.  Everything made here is removed at the end, also on failure.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.hosts import Host
from tests.integration.helpers import (
    REPO,
    SLEEPER,
    add_tests,
    harness_qemus,
    ready_boots,
    write_kernels,
)
from tests.integration.nshosts import NsHost, namespace_hosts, remote_scratch

pytestmark = pytest.mark.boot

PYTHON = sys.executable


@pytest.fixture
def ns_hosts(tmp_path: Path, session_tag: str, kernel_cache: Path) -> Iterator[list[NsHost]]:
    """Two namespace hosts reachable as ``kh0`` and ``kh1`` through ``ssh_config``."""
    with namespace_hosts(tmp_path, session_tag, kernel_cache) as hosts:
        yield hosts


def _tx(hosts: list[NsHost], config: Path, project: Path) -> list[str]:
    """``--tx`` for each host, built as a hosts.yaml entry would build it."""
    return [f"--tx={Host(h.alias, str(project), PYTHON, 1, str(config)).tx()}" for h in hosts]


def _start(project: pytest.Pytester, hosts: list[NsHost], tmp_path: Path, log: Path):
    base = project.path / "res"
    argv = [
        *(PYTHON, "-m", "pytest", "-v", "-rA", "-o", "testpaths=guest-tests"),
        *_tx(hosts, tmp_path / "ssh_config", project.path),
        *(f"--results-dir={base}", f"--junitxml={base}/junit.xml", "-p", "no:cacheprovider"),
    ]
    proc = subprocess.Popen(
        argv, cwd=project.path, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True
    )
    return base, proc


def _run_dir(base: Path) -> Path:
    (run,) = [p for p in base.iterdir() if p.is_dir() and not p.is_symlink()]
    return run


def test_matrix_across_hosts_then_one_is_lost(
    project: pytest.Pytester, ns_hosts: list[NsHost], tmp_path: Path
) -> None:
    """Two kernels on two hosts: merged reports with all evidence; then a host dies mid-run."""
    add_tests(project, "noop", "fails")
    write_kernels(
        project,
        """
        kernels:
          - name: ka
            debian: {package: "linux-image-6.12.*-amd64-unsigned", suite: bookworm-security}
            expect:
              fails: {outcome: fail, reason: "known here"}
          - name: kb
            debian: {package: "linux-image-6.12.*-amd64-unsigned", suite: bookworm-security}
        """,
    )
    scratch_before = remote_scratch()
    log = tmp_path / "run1.txt"
    base, proc = _start(project, ns_hosts, tmp_path, log)
    try:
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = log.read_text()
    assert proc.returncode == 1, out  # fails on kb
    assert "1 failed, 2 passed, 1 xfailed" in out, out
    workers = {k: set(re.findall(rf"\[(gw\d)\] .*::{k}\b", out)) for k in ("ka", "kb")}
    assert all(len(w) == 1 for w in workers.values()) and workers["ka"] != workers["kb"], out
    run = _run_dir(base)
    summary = json.loads((run / "summary.json").read_text())
    got = {(t["test"], t["kernel"]): t["outcome"] for t in summary["tests"]}
    assert got == {
        ("noop", "ka"): "pass",
        ("fails", "ka"): "fail",
        ("noop", "kb"): "pass",
        ("fails", "kb"): "fail",
    }
    # the evidence came back: per test, per boot, per kernel, at paths in our results
    for t in summary["tests"]:
        evidence = Path(t["evidence"])
        assert evidence.parent.parent == run, t
        assert (evidence / "result.json").is_file() and (evidence / "console.txt").is_file()
    for kernel in ("ka", "kb"):
        (boot,) = ready_boots(run / kernel)  # one boot that got ready (a failed one is retried)
        assert "HARNESS-START noop" in (run / kernel / f"boot-{boot}" / "console.log").read_text()
        record = json.loads((run / kernel / "kernel.json").read_text())
        assert (record["name"], record["error"]) == (kernel, None), record  # resolved, shipped
        assert summary["kernels"][kernel]["boots"] == boot
    assert str(run) in out and "kharness-remote-" not in (run / "summary.json").read_text()
    assert "evidence: " + str(run) in out  # failure text and log sections point here too
    assert not remote_scratch() - scratch_before, "a host kept its scratch results"
    assert not {"pytest", "_pytest"} & {p.name for p in project.path.iterdir()}, "rsynced"
    assert "fails on kb" in (run / "summary.txt").read_text()

    # -- the same matrix with a host lost while it runs kb -------------------------
    (project.path / "guest-tests" / "c" / "fails.c").unlink()
    (project.path / "guest-tests" / "c" / "a_sleeps.c").write_text(SLEEPER)
    write_kernels(
        project,
        """
        kernels:
          - name: ka
            debian: {package: "linux-image-6.12.*-amd64-unsigned", suite: bookworm-security}
          - name: kb
            debian: {package: "linux-image-6.12.*-amd64-unsigned", suite: bookworm-security}
            cmdline: kharness_test_sleep
        """,
    )
    shutil.rmtree(base)
    before = harness_qemus()
    log = tmp_path / "run2.txt"
    base, proc = _start(project, ns_hosts, tmp_path, log)
    try:
        victim = _wait_for_sleeper_host(ns_hosts, proc)
        victim.cut_off()
        proc.wait(timeout=300)
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
    lost = got[("a_sleeps", "kb")]["summary"]
    assert f"test host {victim.alias} was lost" in lost and "infrastructure error" in lost
    assert "not run" in got[("noop", "kb")]["summary"]
    assert "2 passed, 2 errors" in out, out
    assert (run / "ka" / "noop" / "console.txt").is_file()  # the other host's evidence
    deadline = time.monotonic() + 15
    while harness_qemus() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not harness_qemus() - before, "the lost host's QEMU must die with it"


def _wait_for_sleeper_host(hosts: list[NsHost], proc: subprocess.Popen[str]) -> NsHost:
    """The host whose guest runs a_sleeps on kb, once the test has started there."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        for pid in harness_qemus():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            initrd = next((a.decode() for a in argv if a.endswith(b"/kb/initrd.img")), None)
            if initrd is None:
                continue
            logs = Path(initrd).parent.glob("boot-*/console.log")  # a retried boot too
            if not any("HARNESS-START a_sleeps" in log.read_text(errors="replace") for log in logs):
                continue
            for host in hosts:
                if pid in host.pids():
                    return host
        time.sleep(0.3)
    pytest.fail(f"a_sleeps never started on kb (pytest exit {proc.poll()})")


def test_harness_run_with_a_hosts_file(ns_hosts: list[NsHost], tmp_path: Path) -> None:
    """What a user types (``make run HOSTS=hosts.yaml``): one kernel per host, merged results.

    The project's own guest tests (narrowed with ``-k``) on two kernels, the
    hosts given by a hosts.yaml that names each host's ssh config, as a user's
    would name a Host of ~/.ssh/config.
    """
    hosts_file = tmp_path / "hosts.yaml"
    hosts_file.write_text(
        "hosts:\n"
        + "".join(
            f"  - {{ssh: {h.alias}, path: {REPO}, python: {PYTHON}, "
            f"ssh_config: {tmp_path / 'ssh_config'}}}\n"
            for h in ns_hosts
        )
    )
    kernels = tmp_path / "kernels.yaml"
    kernels.write_text(
        "kernels:\n"
        + "".join(
            f'  - {{name: {k}, debian: {{package: "linux-image-6.12.*-amd64-unsigned",'
            " suite: bookworm-security}}\n"
            for k in ("ka", "kb")
        )
    )
    base = tmp_path / "res"
    argv = [PYTHON, "-m", "harness", "run", "--hosts", str(hosts_file)]  # as make run HOSTS=
    argv += [f"--kernels-file={kernels}", f"--results-dir={base}", "--", "-k", "uffd_api"]
    before = set(REPO.iterdir())
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # xdist once rsynced its pytest into each host's project directory (here: this checkout)
    new = {p.name for p in set(REPO.iterdir()) - before} - {"__pycache__"}  # conftest.py's
    assert not new, f"the run wrote {new} into the hosts' project"
    run = _run_dir(base)
    summary = json.loads((run / "summary.json").read_text())
    got = {(t["test"], t["kernel"]): t["outcome"] for t in summary["tests"]}
    assert got == {("uffd_api_unknown_feature", k): "pass" for k in ("ka", "kb")}, out
    workers = {k: set(re.findall(rf"\[(gw\d)\] .*::{k}\b", out)) for k in ("ka", "kb")}
    assert all(len(w) == 1 for w in workers.values()) and workers["ka"] != workers["kb"], out
    for t in summary["tests"]:
        assert (Path(t["evidence"]) / "stdout.txt").is_file(), t  # shipped back
    assert "uffd_api_unknown_feature" in out and str(run) in out  # the summary it prints
    assert (run / "junit.xml").is_file() and (run / "index.html").is_file()
