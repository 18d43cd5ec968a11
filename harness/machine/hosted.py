"""What the QEMU and virtme backends share: a host process tree reached over SSH.

Both start a process (QEMU, or virtme-run which starts QEMU) with the kernel
console on a pipe, forward a loopback port to the guest's sshd, and put a
QEMU monitor socket in the boot directory for the magic key.  Only how the
argv is built and how a spawn is judged differ: subclasses implement
:meth:`HostedMachine._spawn` (and may add :meth:`HostedMachine._cleanup`).
"""

from __future__ import annotations

import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.arch import MagicKey
from harness.errors import InfraError
from harness.guest import protocol
from harness.machine import process
from harness.machine.base import Channel, MachineConfig, Ready, describe_exit
from harness.machine.console import ConsoleWatcher
from harness.machine.monitor import MonitorSocket
from harness.machine.ports import free_port
from harness.machine.ssh import SshChannel


def wait_ready_line(console: ConsoleWatcher, nonce: str, port: int, timeout: float) -> Ready | None:
    """Wait for ``HARNESS-READY <nonce>``: a stale line of another boot cannot match."""
    started = time.monotonic()
    m = console.wait_for(protocol.ready_pattern(nonce), timeout)
    if not m:
        return None
    facts = protocol.parse_ready(m)
    return Ready(port, time.monotonic() - started, facts.taint, facts.release)


@dataclass
class HostedMachine:
    """One boot as a host process tree with a console watcher; a context manager."""

    cfg: MachineConfig
    boot_dir: Path
    guest: process.GuestProcess | None = None
    watcher: ConsoleWatcher | None = None
    argv: list[str] = field(default_factory=list)
    port: int = 0
    nonce: str = field(default_factory=lambda: secrets.token_hex(6))
    monitor: MonitorSocket | None = None

    #: how many ports to try when QEMU finds its forward taken
    attempts = 5
    #: the file of the boot directory that holds the process's stderr
    stderr_name = "qemu-stderr.txt"

    def __enter__(self) -> HostedMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def console(self) -> ConsoleWatcher:
        """The kernel console (after :meth:`start`)."""
        assert self.watcher is not None, "start() the machine first"
        return self.watcher

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """The process, once started."""
        return self.guest.proc if self.guest is not None else None

    @property
    def stderr_path(self) -> Path:
        """The process's stderr, kept apart from the console."""
        return self.boot_dir / self.stderr_name

    def _check_tools(self) -> None:
        """Raise ToolMissing before anything starts (subclasses name theirs)."""

    def _spawn(self, port: int) -> bool:
        """Start the process forwarding ``port``; False if the forward was taken."""
        raise NotImplementedError

    def _cleanup(self) -> None:
        """Remove what one boot left besides the monitor socket (subclasses)."""

    def start(self) -> None:
        """Start the guest, retrying with a new port if the forward was taken meanwhile."""
        self._check_tools()
        self.boot_dir.mkdir(parents=True, exist_ok=True)
        self.monitor = MonitorSocket(self.boot_dir)
        tried: set[int] = set()
        for _ in range(self.attempts):
            port = free_port(self.cfg.port_range, avoid=tried)
            tried.add(port)
            if self._spawn(port):
                return
        raise InfraError(
            f"QEMU could not forward any of ports {sorted(tried)}; see {self.stderr_path}"
        )

    def move_to(self, boot_dir: Path) -> None:
        """Rename a started machine's boot directory to ``boot_dir`` (a spare QEMU, started
        ahead in a scratch directory, becomes the boot it serves); open files follow."""
        self.boot_dir.rename(boot_dir)
        self.boot_dir = boot_dir
        if self.monitor is not None:
            self.monitor.moved(boot_dir)
        if self.guest is not None:
            self.guest.stderr = self.stderr_path

    def wait_ready(self, timeout: float) -> Ready | None:
        """Wait for this boot's ready line; None if the kernel died or time ran out."""
        return wait_ready_line(self.console, self.nonce, self.port, timeout)

    def connect(self, ready: Ready, timeout: float = 30.0) -> Channel:
        """SSH to the guest's dropbear through the forwarded port (host key pinned)."""
        return SshChannel(ready.ssh_port, self.cfg.payload.keys, timeout)

    def magic_key(self, key: str) -> bool:
        """Press sysrq-``key`` without the guest's help (no SSH needed).

        With a keyboard (x86): Alt-SysRq-``key`` through the monitor.  Without
        one (arm64): a break on the serial line, then the key; QEMU's mux
        chardev turns ``Ctrl-A b`` on its stdin into the break.
        """
        if self.monitor is None or not self.running:
            return False
        if self.cfg.payload.arch.magic_key is MagicKey.SERIAL_BREAK:
            return self._serial_break(key)
        return self.monitor.sendkey(f"alt-sysrq-{key}")

    def _serial_break(self, key: str) -> bool:
        stdin = self.proc.stdin if self.proc is not None else None
        if stdin is None:
            return False
        try:
            stdin.write(b"\x01b")
            stdin.flush()
            time.sleep(0.2)
            stdin.write(key.encode())
            stdin.flush()
        except OSError:
            return False
        return True

    @property
    def running(self) -> bool:
        """The process is still alive."""
        return self.proc is not None and self.proc.poll() is None

    def exit_status(self) -> str | None:
        """How the process ended, once it has."""
        return describe_exit(self.proc.poll()) if self.proc is not None else None

    def command_line(self) -> list[str]:
        """The argv of this boot."""
        return list(self.argv)

    def stop(self) -> None:
        """Stop the whole process tree for sure, close the console, remove temporaries."""
        if self.guest is not None:
            self.guest.terminate()
        if self.watcher is not None:
            self.watcher.join(5)
        if self.monitor is not None:
            self.monitor.remove()
        self._cleanup()
