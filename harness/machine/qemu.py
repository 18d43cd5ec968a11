"""The QEMU backend: our own initramfs, our own QEMU command line.

:func:`qemu_command` is the only function that knows QEMU's flags.  A
:class:`QemuMachine` starts QEMU with the serial console on a pipe (drained
by a :class:`~harness.machine.console.ConsoleWatcher` for the guest's whole
life) and QEMU's own stderr in a file beside it, so that a QEMU that dies is
told apart from a kernel that does.  QEMU is always stopped again: on
success, on exceptions, on Ctrl-C, on SIGTERM (turned into an exception by
the caller), and, should the harness itself be killed, through
PR_SET_PDEATHSIG in the child.
"""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import InfraError, ToolMissing
from harness.guest.image import TESTS_DIR, build_initrd
from harness.machine import process
from harness.machine.accel import Accel
from harness.machine.base import (
    BASE_CMDLINE,
    BootFiles,
    Channel,
    GuestPayload,
    GuestShape,
    MachineConfig,
    Ready,
    describe_exit,
)
from harness.machine.console import ConsoleWatcher
from harness.machine.monitor import MonitorSocket
from harness.machine.ports import free_port
from harness.machine.ssh import SshChannel

QEMU = "qemu-system-x86_64"
READY = rb"HARNESS-READY (\S+) taint=(\d+) release=([^\s]+)\r*\n"
_HOSTFWD_BUSY = b"Could not set up host forwarding rule"


def qemu_command(
    cfg: MachineConfig,
    ssh_port: int,
    nonce: str,
    monitor: Path | None = None,
    binary: str = QEMU,
) -> list[str]:
    """The full QEMU argv for ``cfg``: change how guests start here and only here."""
    shape = cfg.shape
    kvm = cfg.accel.accel is Accel.KVM
    append = f"{BASE_CMDLINE} rdinit=/init harness.nonce={nonce}"
    if shape.thp:
        append += f" harness.thp={shape.thp}"
    if shape.cmdline:
        append += f" {shape.cmdline}"
    if cfg.files.initrd is None:
        raise InfraError("the QEMU backend needs an initrd; prepare() did not make one")
    argv = [
        binary,
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
        f"{shape.memory_mib}M",
        *smp_args(shape),
        "-kernel",
        str(cfg.payload.kernel.vmlinuz),
        "-initrd",
        str(cfg.files.initrd),
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


def smp_args(shape: GuestShape) -> list[str]:
    """-smp and, for several NUMA nodes, one memory backend and one CPU socket per node.

    One socket per node because a socket split across nodes makes the
    scheduler WARN at boot (a report nobody's test caused).
    """
    nodes = shape.numa_nodes
    cpus = max(shape.cpus, nodes)
    args = ["-smp", f"{cpus},sockets={nodes},cores={cpus // nodes},threads=1"]
    if nodes <= 1:
        return args
    per_node, per_cpu = shape.memory_mib // nodes, cpus // nodes
    for n in range(nodes):
        size = per_node if n < nodes - 1 else shape.memory_mib - per_node * (nodes - 1)
        first = n * per_cpu
        cpu_list = str(first) if per_cpu == 1 else f"{first}-{first + per_cpu - 1}"
        args += [
            "-object",
            f"memory-backend-ram,id=m{n},size={size}M",
            "-numa",
            f"node,nodeid={n},cpus={cpu_list},memdev=m{n}",
        ]
    return args


def wait_ready_line(console: ConsoleWatcher, nonce: str, port: int, timeout: float) -> Ready | None:
    """Wait for ``HARNESS-READY <nonce>``: a stale line of another boot cannot match."""
    started = time.monotonic()
    m = console.wait_for(READY.replace(rb"(\S+)", re.escape(nonce.encode()), 1), timeout)
    if not m:
        return None
    return Ready(port, time.monotonic() - started, int(m.group(1)), m.group(2).decode())


class QemuBackend:
    """Boots the kernel with the harness's initramfs (busybox, dropbear, the tests)."""

    name = "qemu"

    def __init__(self, binary: str = QEMU) -> None:
        self.binary = binary

    def prepare(self, payload: GuestPayload, directory: Path) -> BootFiles:
        """One initrd per kernel, assembled from cached layers."""
        initrd = build_initrd(
            payload.kernel, list(payload.tests), payload.keys, directory / "initrd.img"
        )
        return BootFiles(tests_dir=TESTS_DIR, initrd=initrd)

    def machine(self, cfg: MachineConfig, boot_dir: Path) -> QemuMachine:
        """A QEMU machine for one boot."""
        return QemuMachine(cfg, boot_dir, self.binary)


@dataclass
class QemuMachine:
    """One QEMU process with a console watcher; use as a context manager."""

    cfg: MachineConfig
    boot_dir: Path
    binary: str = QEMU
    guest: process.GuestProcess | None = None
    watcher: ConsoleWatcher | None = None
    argv: list[str] = field(default_factory=list)
    port: int = 0
    nonce: str = field(default_factory=lambda: secrets.token_hex(6))
    monitor: MonitorSocket | None = None

    def __enter__(self) -> QemuMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def console(self) -> ConsoleWatcher:
        """The serial console (after :meth:`start`)."""
        assert self.watcher is not None, "start() the machine first"
        return self.watcher

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """The QEMU process, once started."""
        return self.guest.proc if self.guest is not None else None

    def start(self, attempts: int = 5) -> None:
        """Start QEMU, retrying with a new port if the forward was taken meanwhile."""
        if not shutil.which(self.binary):
            raise ToolMissing(self.binary, "qemu-system-x86")
        self.boot_dir.mkdir(parents=True, exist_ok=True)
        self.monitor = MonitorSocket(self.boot_dir)
        tried: set[int] = set()
        for _ in range(attempts):
            port = free_port(self.cfg.port_range, avoid=tried)
            tried.add(port)
            if self._spawn(port):
                return
        raise InfraError(
            f"QEMU could not forward any of ports {sorted(tried)}; "
            f"see {self.boot_dir / 'qemu-stderr.txt'}"
        )

    def _spawn(self, port: int) -> bool:
        assert self.monitor is not None
        self.port = port
        self.argv = qemu_command(self.cfg, port, self.nonce, self.monitor.path, self.binary)
        (self.boot_dir / "qemu-cmdline.txt").write_text(shlex.join(self.argv) + "\n")
        self.guest = process.spawn(self.argv, self.boot_dir / "qemu-stderr.txt")
        self.watcher = ConsoleWatcher(self.guest.console_fd, self.boot_dir / "console.log")
        # A taken hostfwd port makes QEMU exit at once with a message on stderr.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and self.guest.proc.poll() is None:
            time.sleep(0.02)
        if self.guest.proc.poll() is not None and _HOSTFWD_BUSY in self.guest.stderr_bytes():
            self.stop()
            return False
        return True

    def wait_ready(self, timeout: float) -> Ready | None:
        """Wait for this boot's ready line; None if the kernel died or time ran out."""
        return wait_ready_line(self.console, self.nonce, self.port, timeout)

    def connect(self, ready: Ready, timeout: float = 30.0) -> Channel:
        """SSH to the guest's dropbear through the forwarded port (host key pinned)."""
        return SshChannel(ready.ssh_port, self.cfg.payload.keys, timeout)

    def magic_key(self, key: str) -> bool:
        """Press Alt-SysRq-``key`` on the guest's keyboard via the monitor (no SSH needed)."""
        if self.monitor is None or not self.running:
            return False
        return self.monitor.sendkey(f"alt-sysrq-{key}")

    @property
    def running(self) -> bool:
        """QEMU is still alive."""
        return self.proc is not None and self.proc.poll() is None

    def exit_status(self) -> str | None:
        """How QEMU ended, once it has."""
        return describe_exit(self.proc.poll()) if self.proc is not None else None

    def command_line(self) -> list[str]:
        """QEMU's argv of this boot."""
        return list(self.argv)

    def stop(self) -> None:
        """Stop QEMU for sure (SIGTERM, then SIGKILL) and close the console."""
        if self.guest is not None:
            self.guest.terminate()
        if self.watcher is not None:
            self.watcher.join(5)
        if self.monitor is not None:
            self.monitor.remove()
