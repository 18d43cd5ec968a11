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

import contextlib
import shlex
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from harness.arch import MagicKey
from harness.errors import InfraError, ToolMissing
from harness.guest.image import TESTS_DIR, build_initrd
from harness.machine import process
from harness.machine.accel import Accel
from harness.machine.base import (
    BootFiles,
    GuestPayload,
    GuestShape,
    MachineConfig,
    Ready,
    base_cmdline,
)
from harness.machine.console import ConsoleWatcher
from harness.machine.guest_ram import (
    GuestRam,
    copy_sparse,
    disk_bytes,
    held_file,
    ram_files,
    shm_dir,
)
from harness.machine.halt import halt_in_status, halt_in_stderr
from harness.machine.hosted import HostedMachine, wait_ready_line
from harness.machine.snapshot import (
    SavedState,
    StateDir,
    hmp,
    incoming_args,
    incoming_devices,
    save_to,
    wait_running,
    wait_status,
)
from harness.results import layout

_HOSTFWD_BUSY = b"Could not set up host forwarding rule"
#: the longest a new QEMU gets to set itself up before its forwards are trusted
SPAWN_SETTLE = 5.0
#: how often a boot waiting for its ready line looks for QEMU's own fatal signs
HALT_POLL = 0.5


def qemu_command(
    cfg: MachineConfig,
    ssh_port: int,
    nonce: str,
    monitor: Path | None = None,
    binary: str | None = None,
    ram: GuestRam | None = None,
) -> list[str]:
    """The full QEMU argv for ``cfg``: change how guests start here and only here.

    The guest's architecture (``cfg.payload.arch``) picks the emulator,
    machine, CPU and console.  For a guest with no keyboard the console's
    chardev is a mux, so that a serial break can be sent through QEMU's stdin
    (``Ctrl-A b``): its only sysrq path that needs no SSH.  With ``ram`` the
    guest's memory is those files (:mod:`harness.machine.guest_ram`).
    """
    shape = cfg.shape
    arch = cfg.payload.arch
    kvm = cfg.accel.accel is Accel.KVM and arch.is_host
    append = f"{base_cmdline(arch)} rdinit=/init harness.nonce={nonce}"
    serial_break = arch.magic_key is MagicKey.SERIAL_BREAK
    if shape.thp:
        append += f" harness.thp={shape.thp}"
    if shape.cmdline:
        append += f" {shape.cmdline}"
    one_backend = ram is not None and shape.numa_nodes <= 1
    machine = f"{arch.machine},memory-backend=m0" if one_backend else arch.machine
    if cfg.files.initrd is None:
        raise InfraError("the QEMU backend needs an initrd; prepare() did not make one")
    argv = [
        binary or arch.qemu,
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-machine",
        machine,
        "-accel",
        "kvm" if kvm else "tcg",
        "-cpu",
        "host" if kvm else arch.cpu_tcg,
        "-m",
        f"{shape.memory_mib}M",
        *smp_args(shape, ram),
        "-kernel",
        str(cfg.payload.kernel.vmlinuz),
        "-initrd",
        str(cfg.files.initrd),
        "-append",
        append,
        "-chardev",
        "stdio,id=con,signal=off,mux=on" if serial_break else "stdio,id=con,signal=off",
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


def smp_args(shape: GuestShape, ram: GuestRam | None = None) -> list[str]:
    """-smp and, for several NUMA nodes, one memory backend and one CPU socket per node.

    One socket per node because a socket split across nodes makes the
    scheduler WARN at boot (a report nobody's test caused).  With ``ram``
    each node's backend is its file (one node: the machine's one backend).
    """
    nodes = shape.numa_nodes
    cpus = max(shape.cpus, nodes)
    args = ["-smp", f"{cpus},sockets={nodes},cores={cpus // nodes},threads=1"]
    if nodes <= 1:
        return args + ([] if ram is None else ["-object", _backend(0, shape.memory_mib, ram)])
    per_node, per_cpu = shape.memory_mib // nodes, cpus // nodes
    for n in range(nodes):
        size = per_node if n < nodes - 1 else shape.memory_mib - per_node * (nodes - 1)
        first = n * per_cpu
        cpu_list = str(first) if per_cpu == 1 else f"{first}-{first + per_cpu - 1}"
        args += [
            "-object",
            f"memory-backend-ram,id=m{n},size={size}M" if ram is None else _backend(n, size, ram),
            "-numa",
            f"node,nodeid={n},cpus={cpu_list},memdev=m{n}",
        ]
    return args


def _backend(node: int, size_mib: int, ram: GuestRam) -> str:
    """A file memory backend: shared (the guest writes the file) or copy-on-write over it."""
    path = str(ram.files[node]).replace(",", ",,")
    share = "on" if ram.shared else "off"
    return f"memory-backend-file,id=m{node},size={size_mib}M,mem-path={path},share={share}"


class QemuBackend:
    """Boots the kernel with the harness's initramfs (busybox, dropbear, the tests)."""

    name = "qemu"

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary  # None: the emulator of each guest's architecture

    def prepare(self, payload: GuestPayload, directory: Path) -> BootFiles:
        """One initrd per kernel, assembled from cached layers."""
        initrd = build_initrd(
            payload.kernel,
            list(payload.tests),
            payload.keys,
            directory / "initrd.img",
            payload.arch,
        )
        return BootFiles(tests_dir=TESTS_DIR, initrd=initrd)

    def machine(self, cfg: MachineConfig, boot_dir: Path) -> QemuMachine:
        """A QEMU machine for one boot."""
        return QemuMachine(cfg, boot_dir, self.binary)

    def restore_machine(self, state: SavedState, boot_dir: Path) -> QemuMachine:
        """A QEMU machine that starts from ``state`` (same command line, same nonce)."""
        return QemuMachine(state.config, boot_dir, self.binary, nonce=state.nonce, restoring=state)

    def cannot_snapshot(self, cfg: MachineConfig) -> str | None:
        """Every guest this backend boots can be saved and restored (x86_64 and arm64 virt)."""
        return None

    def emulator_path(self, cfg: MachineConfig) -> Path | None:
        """The QEMU binary guests of ``cfg`` run in (a new one may not load an old state)."""
        found = shutil.which(self.binary or cfg.payload.arch.qemu)
        return Path(found) if found else None


@dataclass
class QemuMachine(HostedMachine):
    """One QEMU process booting the harness's initramfs."""

    binary: str | None = None
    restoring: SavedState | None = None  # start from this saved state instead of booting
    _halt: str | None = None  # QEMU's own fatal message, once seen
    _ram: GuestRam | None = None  # the files this guest's RAM lives in, if it does
    _live: StateDir | None = None  # a cold boot's shared RAM files until QEMU holds them
    _loaded: bool = False  # preload() loaded the saved devices

    @property
    def emulator(self) -> str:
        """The QEMU binary this boot runs."""
        return self.binary or self.cfg.payload.arch.qemu

    def _check_tools(self) -> None:
        if not shutil.which(self.emulator):
            raise ToolMissing(self.emulator, self.cfg.payload.arch.qemu_package)

    def _spawn(self, port: int) -> bool:
        assert self.monitor is not None
        self.port = port
        self._ram = self._guest_ram()
        self.argv = qemu_command(
            self.cfg, port, self.nonce, self.monitor.path, self.emulator, self._ram
        )
        if self.restoring is not None:
            in_files = self.restoring.ram_nodes > 0
            defer = ["-incoming", "defer", "-S"]  # loaded by preload(), run by wait_ready()
            self.argv += defer if in_files else incoming_args(self.restoring.path)
        (self.boot_dir / "qemu-cmdline.txt").write_text(shlex.join(self.argv) + "\n")
        self.guest = process.spawn(self.argv, self.stderr_path)
        self.watcher = ConsoleWatcher(self.guest.console_fd, self.boot_dir / layout.CONSOLE_LOG)
        # A taken hostfwd port makes QEMU exit at once with a message on stderr; once its
        # monitor greets, QEMU has set its forwards up (no fixed wait: a restore is short).
        self.monitor.greets(lambda: self.running, SPAWN_SETTLE)
        self._unlink_live_ram()  # QEMU holds its RAM files now: nothing to leave behind
        if self.guest.proc.poll() is not None and _HOSTFWD_BUSY in self.guest.stderr_bytes():
            self.stop()
            return False
        return True

    def _guest_ram(self) -> GuestRam | None:
        """Where this boot's RAM lives: a saved guest's files (copy-on-write), fresh shared
        files under /dev/shm for a cold boot, or ordinary memory when there is no /dev/shm."""
        if self.restoring is not None:
            saved = self.restoring.ram
            return GuestRam(saved, shared=False) if saved else None
        shm = shm_dir(self.cfg.shape.memory_mib << 20)
        if shm is None:
            return None
        self._live = StateDir(shm)
        return GuestRam(ram_files(self._live.path / "guest", self.cfg.shape.numa_nodes), True)

    def _unlink_live_ram(self) -> None:
        if self._live is not None:
            self._live.remove()
            self._live = None

    def halted(self) -> str | None:
        """QEMU's own message when it stopped the guest for good (its stderr, else its
        monitor's run state); None while the guest may still run."""
        if self._halt is None and self.guest is not None:
            self._halt = halt_in_stderr(self.guest.stderr_bytes(wait=0.5))
            if self._halt is None and self.running and self.monitor is not None:
                # no monitor to ask (OSError): stderr and the process's exit still tell
                with contextlib.suppress(OSError):
                    self._halt = halt_in_status(self.monitor.command("info status", 2))
        return self._halt

    def wait_ready(self, timeout: float) -> Ready | None:
        """A booting guest's ready line; a restoring one's "running" from the monitor.

        A restored guest prints no ready line (it said it before it was
        saved): it is ready once QEMU has loaded it, and its ready facts are
        the saved guest's, on this machine's port.
        """
        if self.restoring is None:
            return self._wait_ready_line(timeout)
        assert self.monitor is not None
        started = time.monotonic()
        if self.restoring.ram_nodes:
            try:  # started with -incoming defer -S (perhaps ahead of time, as a spare)
                self.preload(timeout)
                hmp(self.monitor, "cont", 10, "resuming the loaded guest")
            except InfraError as exc:
                self._halt = self._halt or str(exc)
                return None
        if not wait_running(self.monitor, lambda: self.running, timeout):
            self.halted()
            return None
        saved = self.restoring.ready
        return Ready(self.port, time.monotonic() - started, saved.boot_taint, saved.release)

    def preload(self, timeout: float) -> None:
        """Load the saved devices into this QEMU (started with ``-incoming defer -S``) and
        leave the guest paused: a spare does it before its restore is asked for."""
        assert self.monitor is not None and self.restoring is not None
        if self._loaded or not self.restoring.ram_nodes:
            return
        incoming_devices(self.monitor, self.restoring.path)
        if not wait_status(self.monitor, lambda: self.running, timeout, "paused"):
            raise InfraError(f"QEMU did not load the saved guest ({self.halted() or 'timed out'})")
        self._loaded = True

    def _wait_ready_line(self, timeout: float) -> Ready | None:
        """The ready line, in slices: between them QEMU's own fatal signs end the wait at once
        (a KVM that cannot run the guest pauses it with an empty console, and the boot
        timeout would be waited out in full)."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            left = deadline - time.monotonic()
            ready = wait_ready_line(self.console, self.nonce, self.port, min(left, HALT_POLL))
            if ready is not None:
                return replace(ready, seconds=time.monotonic() - started)
            if left <= HALT_POLL or self.console.eof or self.console.panicked:
                return None
            if self.halted() is not None:
                return None

    def _cleanup(self) -> None:
        self._unlink_live_ram()

    def save_state(self, path: Path, ready: Ready) -> SavedState:
        """Save the ready guest into ``path`` (migration to a file) and let it run on.

        A guest whose RAM is in shared files leaves it out of the stream; the
        files are copied beside ``path`` while the guest is paused.
        """
        assert self.monitor is not None and self.guest is not None, "start() the machine first"
        ram = self._ram if self._ram is not None and self._ram.shared else None
        if ram is None:
            seconds = save_to(self.monitor, path)
            return SavedState(path, self.cfg, self.nonce, ready, seconds, path.stat().st_size)
        copies = ram_files(path, len(ram.files))
        pid = self.guest.proc.pid

        def copy_ram() -> None:
            for live, copy in zip(ram.files, copies, strict=True):
                held = held_file(pid, live)
                if held is None:
                    raise InfraError(f"QEMU no longer holds the guest's RAM file {live}")
                copy_sparse(held, copy)

        try:
            seconds = save_to(self.monitor, path, while_paused=copy_ram)
        except OSError as exc:
            raise InfraError(f"copying the guest's RAM beside {path} failed: {exc}") from exc
        size = path.stat().st_size + sum(disk_bytes(c) for c in copies)
        return SavedState(path, self.cfg, self.nonce, ready, seconds, size, len(copies))
