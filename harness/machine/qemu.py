"""QEMU: the one place that builds its command line, and its lifecycle.

:func:`qemu_command` is the only function that knows QEMU's flags.  A
:class:`QemuMachine` starts QEMU under pexpect (the serial console on its
pty), waits a bounded time for the guest's ready line, and always stops QEMU
again: on success, on exceptions, on Ctrl-C, on SIGTERM (turned into an
exception by the caller), and, should the harness itself be killed, through
PR_SET_PDEATHSIG in the child.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import secrets
import shlex
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pexpect

from harness.errors import InfraError, ToolMissing
from harness.machine.accel import Accel, AccelChoice
from harness.machine.console import ConsoleWatcher
from harness.machine.ports import free_port

QEMU = "qemu-system-x86_64"
BASE_CMDLINE = "console=ttyS0,115200 panic=-1 rdinit=/init mitigations=off"
_READY = rb"HARNESS-READY (\S+) taint=(\d+) release=([^\s]+)\r*\n"
_HOSTFWD_BUSY = b"Could not set up host forwarding rule"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class MachineConfig:
    """Everything that decides how one guest boots."""

    vmlinuz: Path
    initrd: Path
    accel: AccelChoice
    memory_mib: int = 2048
    cpus: int = 2
    numa_nodes: int = 1
    cmdline: str = ""
    thp: str | None = None
    port_range: tuple[int, int] | None = None
    qemu_binary: str = QEMU


@dataclass(frozen=True)
class BootInfo:
    """What the ready line and the clock told us about a boot."""

    ssh_port: int
    seconds: float
    boot_taint: int
    release: str


def qemu_command(
    cfg: MachineConfig, ssh_port: int, nonce: str, monitor: Path | None = None
) -> list[str]:
    """The full QEMU argv for ``cfg``: change how guests start here and only here."""
    kvm = cfg.accel.accel is Accel.KVM
    cpus = max(cfg.cpus, cfg.numa_nodes)
    append = f"{BASE_CMDLINE} harness.nonce={nonce}"
    if cfg.thp:
        append += f" harness.thp={cfg.thp}"
    if cfg.cmdline:
        append += f" {cfg.cmdline}"
    argv = [
        cfg.qemu_binary,
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-machine",
        "q35",
        "-accel",
        "kvm" if kvm else "tcg",
        "-cpu",
        "host" if kvm else "max",
        "-m",
        f"{cfg.memory_mib}M",
        "-smp",
        f"{cpus},sockets={cfg.numa_nodes},cores={cpus // cfg.numa_nodes},threads=1",
        *_numa_args(cfg.memory_mib, cpus, cfg.numa_nodes),
        "-kernel",
        str(cfg.vmlinuz),
        "-initrd",
        str(cfg.initrd),
        "-append",
        append,
        "-chardev",
        "stdio,id=con,signal=off",
        "-serial",
        "chardev:con",
        "-netdev",
        f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
        "-device",
        "virtio-net-pci,netdev=net0",
    ]
    if monitor is not None:
        argv += ["-monitor", f"unix:{monitor},server=on,wait=off"]
    return argv


def _numa_args(memory_mib: int, cpus: int, nodes: int) -> list[str]:
    """One memory backend and one CPU socket per node (a split socket WARNs at boot)."""
    if nodes <= 1:
        return []
    args: list[str] = []
    per_node, per_cpu = memory_mib // nodes, cpus // nodes
    for n in range(nodes):
        size = per_node if n < nodes - 1 else memory_mib - per_node * (nodes - 1)
        first = n * per_cpu
        cpu_list = str(first) if per_cpu == 1 else f"{first}-{first + per_cpu - 1}"
        args += [
            "-object",
            f"memory-backend-ram,id=m{n},size={size}M",
            "-numa",
            f"node,nodeid={n},cpus={cpu_list},memdev=m{n}",
        ]
    return args


def _die_with_parent() -> None:
    """Runs in the QEMU child: get SIGKILL if the harness dies without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class QemuMachine:
    """One QEMU process with a console watcher; use as a context manager."""

    cfg: MachineConfig
    boot_dir: Path
    child: pexpect.spawn | None = None
    console: ConsoleWatcher | None = None
    argv: list[str] = field(default_factory=list)
    port: int = 0
    _sockdir: Path | None = None
    nonce: str = field(default_factory=lambda: secrets.token_hex(6))

    def __enter__(self) -> QemuMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, attempts: int = 5) -> int:
        """Start QEMU, retrying with a new port if the forward was taken meanwhile."""
        if not shutil.which(self.cfg.qemu_binary):
            raise ToolMissing(self.cfg.qemu_binary, "qemu-system-x86")
        self.boot_dir.mkdir(parents=True, exist_ok=True)
        tried: set[int] = set()
        for _ in range(attempts):
            port = free_port(self.cfg.port_range, avoid=tried)
            tried.add(port)
            if self._spawn(port):
                return port
        raise InfraError(
            f"QEMU could not forward any of ports {sorted(tried)}; "
            f"see {self.boot_dir / 'console.log'}"
        )

    def _spawn(self, port: int) -> bool:
        self.port = port
        # A short private directory: unix socket paths are limited to 107 bytes.
        self.argv = qemu_command(self.cfg, port, self.nonce, self._monitor_path())
        (self.boot_dir / "qemu-cmdline.txt").write_text(shlex.join(self.argv) + "\n")
        self.child = pexpect.spawn(
            self.argv[0],
            self.argv[1:],
            preexec_fn=_die_with_parent,
            echo=False,
            dimensions=(50, 200),
        )
        self.console = ConsoleWatcher(self.child, self.boot_dir / "console.log")
        time.sleep(0.05)
        if self.console.wait_for(re.escape(_HOSTFWD_BUSY), timeout=0.3) or (
            self.console.eof and _HOSTFWD_BUSY in self.console.text().encode()
        ):
            self.stop()
            return False
        return True

    def wait_ready(self, timeout: float, started: float) -> BootInfo | None:
        """Wait for this boot's ready line; None if the kernel died or time ran out."""
        assert self.console is not None
        m = self.console.wait_for(
            _READY.replace(rb"(\S+)", re.escape(self.nonce.encode()), 1), timeout
        )
        if not m:
            return None
        return BootInfo(self.port, time.monotonic() - started, int(m.group(1)), m.group(2).decode())

    def _monitor_path(self) -> Path:
        """The monitor socket: in the boot directory, or a private temporary one
        when that path is too long for a unix socket (107 bytes)."""
        if self._sockdir is None:
            short = len(str(self.boot_dir.resolve() / "monitor.sock")) < 100
            self._sockdir = self.boot_dir if short else Path(tempfile.mkdtemp(prefix="kharness-"))
        return self._sockdir / ("monitor.sock" if self._sockdir == self.boot_dir else "monitor")

    def sysrq(self, key: str) -> bool:
        """Press Alt-SysRq-``key`` on the guest's keyboard via the monitor (no SSH needed)."""
        if self._sockdir is None or not self.running:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(str(self._monitor_path()))
                sock.sendall(f"sendkey alt-sysrq-{key}\n".encode())
                time.sleep(0.2)
            return True
        except OSError:
            return False

    @property
    def running(self) -> bool:
        """QEMU is still alive."""
        return self.child is not None and self.child.isalive()

    def stop(self) -> None:
        """Stop QEMU for sure (SIGTERM, then SIGKILL) and close the console."""
        child, self.child = self.child, None
        if child is None:
            return
        with contextlib.suppress(Exception):
            if child.isalive():
                child.kill(signal.SIGTERM)
                deadline = time.monotonic() + 3
                while child.isalive() and time.monotonic() < deadline:
                    time.sleep(0.05)
            if child.isalive():
                child.kill(signal.SIGKILL)
        with contextlib.suppress(Exception):
            child.wait()
        if self.console is not None:
            self.console.join(5)
        with contextlib.suppress(Exception):
            child.close(force=True)
        if self._sockdir is not None:
            if self._sockdir == self.boot_dir:
                (self.boot_dir / "monitor.sock").unlink(missing_ok=True)
            else:
                shutil.rmtree(self._sockdir, ignore_errors=True)
            self._sockdir = None
