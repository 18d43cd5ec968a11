"""The integration leak check sees only processes carrying its session's tag."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from harness.errors import run_checked
from tests.support.processes import TEST_TAG, harness_qemus, tagged_processes


@pytest.fixture
def sleepers() -> Iterator[tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """Two short-lived ``sleep`` children alike but for the tag in their environment."""
    tag = uuid.uuid4().hex
    seconds = f"{30 + int(tag[:4], 16) % 1000}.{os.getpid()}"  # an argv no one else has
    env = {k: v for k, v in os.environ.items() if k != TEST_TAG}
    ours = subprocess.Popen(["sleep", seconds], env={**env, TEST_TAG: tag})
    other = subprocess.Popen(["sleep", seconds], env={**env, TEST_TAG: uuid.uuid4().hex})
    try:
        for proc in (ours, other):  # on a loaded machine exec may lag Popen's return
            _wait_for_exec(proc.pid, b"sleep")
        yield tag, ours, other
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait()


def _wait_for_exec(pid: int, program: bytes) -> None:
    """Until /proc/PID/cmdline names ``program`` (bounded: a child that never execs fails)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if f.read().startswith(program):
                return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not exec {program!r} within 10 s")


def test_only_processes_with_the_tag_match(
    sleepers: tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]],
) -> None:
    tag, ours, other = sleepers
    seconds = ours.args[1]  # type: ignore[index]
    assert tagged_processes(rf"^sleep {seconds}", tag) == {ours.pid}
    assert tagged_processes(rf"^sleep {seconds}", uuid.uuid4().hex) == set()
    assert tagged_processes(r"^no-such-command ", tag) == set()
    assert other.poll() is None  # still running: seen, but not ours


def test_a_process_is_matched_by_its_pattern_too(
    sleepers: tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]],
) -> None:
    """The tag alone is not enough: the same tagged process, another pattern, is not found."""
    tag, ours, _other = sleepers
    seconds = ours.args[1]  # type: ignore[index]
    assert tagged_processes(rf"sleep {seconds}\b", tag) == {ours.pid}
    assert tagged_processes(r"qemu-system.*harness\.nonce", tag) == set()
    assert tagged_processes(rf"^sleep {seconds}0", tag) == set()


def test_harness_qemus_refuses_to_guess_without_a_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TEST_TAG, raising=False)
    with pytest.raises(RuntimeError, match=TEST_TAG):
        harness_qemus()
    monkeypatch.setenv(TEST_TAG, uuid.uuid4().hex)
    assert harness_qemus() == set()  # no QEMU carries a fresh tag


def test_an_orphan_is_still_recognised_by_its_tag() -> None:
    tag = uuid.uuid4().hex
    seconds = f"{30 + int(tag[:4], 16) % 1000}.{os.getpid()}1"
    env = {**os.environ, TEST_TAG: tag}
    shell = run_checked(["sh", "-c", f"sleep {seconds} >/dev/null 2>&1 & echo $!"], env=env)
    orphan = int(shell.stdout)  # its parent shell has exited: reparented
    try:
        _wait_for_exec(orphan, b"sleep")
        assert tagged_processes(rf"^sleep {seconds}", tag) == {orphan}
    finally:
        os.kill(orphan, signal.SIGKILL)
