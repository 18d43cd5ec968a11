"""The replay backend: a recorded console and scripted answers instead of a guest.

It exists so the runner's policy (attribution windows, settle, abort after a
report, hang probes, the magic key, reboots, boot failures, a lost channel)
is covered by unit tests that run in seconds.  It implements the same
:class:`~harness.machine.base.Machine` protocol as QEMU and virtme-ng, and
feeds the real :class:`~harness.machine.console.ConsoleWatcher` through a
real pipe, in real (short) time: only the kernel is missing.

The machine plays a :class:`~tests.support.replay.script.Script`; test
commands get the runner's kmsg markers echoed onto the console around their
part, as /dev/kmsg would.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from harness.guest import protocol
from harness.machine.base import BootFiles, Channel, GuestPayload, MachineConfig, Ready
from harness.machine.console import ConsoleWatcher
from harness.machine.hosted import wait_ready_line
from tests.support.replay.channel import ReplayChannel
from tests.support.replay.script import Chunk, Script, Step


class ReplayBackend:
    """Boots nothing: every Machine plays the same script from the start.

    ``later`` scripts play on the second, third, ... boot (the last one on
    every boot after): a boot that crashes and a retry that comes up.
    """

    name = "replay"

    def __init__(self, script: Script, *later: Script) -> None:
        self.script = script
        self.later = later
        self.machines: list[ReplayMachine] = []  # every boot, for the tests to inspect

    def prepare(self, payload: GuestPayload, directory: Path) -> BootFiles:
        """Nothing to build."""
        directory.mkdir(parents=True, exist_ok=True)
        return BootFiles(tests_dir="/opt/tests")

    def machine(self, cfg: MachineConfig, boot_dir: Path) -> ReplayMachine:
        """A machine that will play the script."""
        scripts = (self.script, *self.later)
        m = ReplayMachine(scripts[min(len(self.machines), len(scripts) - 1)], cfg, boot_dir)
        self.machines.append(m)
        return m


class ReplayMachine:
    """Plays a :class:`Script` onto a console pipe; answers through :class:`ReplayChannel`."""

    def __init__(self, script: Script, cfg: MachineConfig, boot_dir: Path) -> None:
        self.script = script
        self.cfg = cfg
        self.boot_dir = boot_dir
        self.nonce = secrets.token_hex(6)
        self.keys_pressed: list[str] = []
        self.commands: list[str] = []
        self.channel_dead = False
        self._write_fd: int | None = None
        self._watcher: ConsoleWatcher | None = None
        self._lock = threading.Lock()
        self._exit: str | None = None
        self._used: set[int] = set()

    # -- Machine -------------------------------------------------------------
    @property
    def console(self) -> ConsoleWatcher:
        """The console pipe's watcher."""
        assert self._watcher is not None, "start() the machine first"
        return self._watcher

    @property
    def running(self) -> bool:
        """Until the script or stop() ends the 'process'."""
        return self._write_fd is not None and self._exit is None

    def start(self) -> None:
        """Open the console pipe and play the boot in the background."""
        self.boot_dir.mkdir(parents=True, exist_ok=True)
        read_fd, self._write_fd = os.pipe()
        self._watcher = ConsoleWatcher(read_fd, self.boot_dir / "console.log")
        threading.Thread(target=self._boot, name="replay-boot", daemon=True).start()

    def _boot(self) -> None:
        self.play(self.script.boot)
        if self.script.exit_after_boot:
            self.exit("exit status 0")
        elif self.script.ready:
            script = self.script
            self.print(protocol.ready_line(self.nonce, script.boot_taint, script.release))

    def wait_ready(self, timeout: float) -> Ready | None:
        """The ready line, as with QEMU."""
        return wait_ready_line(self.console, self.nonce, 0, timeout)

    def connect(self, ready: Ready, timeout: float = 30.0) -> Channel:
        """The scripted channel."""
        return ReplayChannel(self)

    def magic_key(self, key: str) -> bool:
        """Record the key and print what the script says the kernel printed for it."""
        if not self.running:
            return False
        self.keys_pressed.append(key)
        self.play(self.script.magic.get(key, ()))
        return True

    def exit_status(self) -> str | None:
        """How the 'process' ended."""
        return self._exit

    def command_line(self) -> list[str]:
        """No process: a description instead."""
        return ["replay", self.nonce]

    def stop(self) -> None:
        """End the console stream (idempotent)."""
        self.exit(self._exit or "killed by SIGTERM")
        if self._watcher is not None:
            self._watcher.join(5)

    # -- what the channel and the boot thread use --------------------------------
    def print(self, text: str) -> None:
        """Put ``text`` on the console now."""
        self.write(text.encode())

    def write(self, data: bytes) -> None:
        """Put ``data`` on the console now (dropped once the process ended)."""
        with self._lock:
            if self._write_fd is not None and self._exit is None:
                with contextlib.suppress(OSError):
                    os.write(self._write_fd, data)

    def play(self, chunks: Iterable[Chunk]) -> None:
        """Print chunks with their delays."""
        for chunk in chunks:
            if chunk.delay:
                time.sleep(chunk.delay)
            self.write(chunk.data)

    def exit(self, status: str) -> None:
        """The 'process' ends: the console reaches EOF."""
        with self._lock:
            if self._exit is None:
                self._exit = status
            fd, self._write_fd = self._write_fd, None
        if fd is not None:
            os.close(fd)

    def step_for(self, command: str) -> Step | None:
        """The first unused step matching ``command``, else the last one that matches."""
        self.commands.append(command)
        last = None
        for index, step in enumerate(self.script.steps):
            if re.search(step.match, command):
                if index not in self._used:
                    self._used.add(index)
                    return step
                last = step
        return last
