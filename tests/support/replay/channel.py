"""The replay backend's Channel: answers commands from the machine's script.

A test command (the runner's wrapper, recognised by its HARNESS-START tag)
gets the guest's side of the protocol acted out: the start marker on the
console, the step's console text, the end marker, and the exit code and taint
trailer on stderr, exactly as the real wrapper produces them.  Other commands
(the NUMA probe, ``true``, sysrq over the channel) answer from their step or,
with no step, exit 0 with no output.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Protocol

from harness.errors import GuestUnreachable
from harness.guest import protocol
from harness.machine.base import CommandResult
from harness.machine.capture import Capture
from tests.support.replay.script import Chunk, Step


class Stage(Protocol):
    """What the channel needs of the machine it acts on (a ReplayMachine).

    A protocol rather than the class, so the machine can make its channel
    without the two modules importing each other.
    """

    channel_dead: bool

    @property
    def running(self) -> bool:
        """Whether the 'process' still runs."""
        ...

    def print(self, text: str) -> None:
        """Put ``text`` on the console now."""
        ...

    def play(self, chunks: Iterable[Chunk]) -> None:
        """Print chunks with their delays."""
        ...

    def exit(self, status: str) -> None:
        """The 'process' ends."""
        ...

    def step_for(self, command: str) -> Step | None:
        """The scripted answer to ``command``."""
        ...


class ReplayChannel:
    """A scripted Channel into a :class:`~tests.support.replay.machine.ReplayMachine`."""

    def __init__(self, machine: Stage) -> None:
        self.machine = machine

    def run(
        self,
        command: str,
        timeout: float,
        stdin: bytes | None = None,
        abort: Callable[[], bool] | None = None,
        capture: Capture | None = None,
    ) -> CommandResult:
        """Act out the step for ``command``; block like a hung command where it says so.

        The step's output goes through ``capture`` as the SSH channel's does,
        so the evidence files and the output limit behave as on a real guest.
        """
        result = self._act(command, timeout, abort)
        cap = capture or Capture.in_memory()
        cap.stdout.feed(result.stdout.encode())
        cap.stderr.feed(result.stderr.encode())
        return replace(result, stdout=cap.stdout.text(), stderr=cap.stderr.text())

    def _act(self, command: str, timeout: float, abort: Callable[[], bool] | None) -> CommandResult:
        m = self.machine
        if m.channel_dead or not m.running:
            raise GuestUnreachable("SSH session lost: the replayed channel is gone")
        started = time.monotonic()
        step = m.step_for(command) or Step(".*")
        tag = protocol.tag_in_command(command)
        if tag:
            m.print(f"[  100.000000] {protocol.start_marker(tag)}\n")
        m.play(step.console)
        if step.kernel_exits:
            m.exit("exit status 0")
        if step.channel_breaks:
            m.channel_dead = True
        if step.kernel_exits or step.channel_breaks:
            self._wait(min(step.after, timeout), started, abort)
            raise GuestUnreachable("SSH session lost: connection reset by peer")
        if step.exit_code is None or step.after >= timeout:
            stopped = self._wait(timeout, started, abort)
            m.channel_dead = m.channel_dead or step.wedges
            return CommandResult(command, None, step.stdout, step.stderr, _since(started), stopped)
        if self._wait(step.after, started, abort) is False:
            return CommandResult(command, None, step.stdout, step.stderr, _since(started))
        stderr = step.stderr
        if step.afterwards:
            threading.Thread(target=m.play, args=(step.afterwards,), daemon=True).start()
        if tag:
            m.print(f"[  100.500000] {protocol.end_marker(tag)}\n")
            stderr += protocol.trailer(step.exit_code, 0, step.new_taint)
        return CommandResult(command, step.exit_code, step.stdout, stderr, _since(started))

    @staticmethod
    def _wait(seconds: float, started: float, abort: Callable[[], bool] | None) -> bool:
        """Sleep until ``seconds`` after ``started``: True if the time ran out, False on abort."""
        while time.monotonic() - started < seconds:
            if abort is not None and abort():
                return False
            time.sleep(0.02)
        return True

    def push(self, data: bytes, remote: str, mode: int = 0o755, timeout: float = 60) -> None:
        """Accept and forget the file."""
        self.run(f"cat > {remote}", timeout, stdin=data)

    def alive(self, timeout: float = 5.0) -> bool:
        """Alive while the machine runs and the channel was not broken."""
        return self.machine.running and not self.machine.channel_dead

    def close(self) -> None:
        """Nothing to release."""


def _since(started: float) -> float:
    return time.monotonic() - started
