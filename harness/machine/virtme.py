"""The virtme-ng backend: the candidate kernel boots on the host's own root.

Why a second backend: tests that need host tools (perf, bpftool, a Python)
get them without packing anything into an initramfs, because virtme-ng
exports the host's root filesystem read-only over 9p and lays tmpfs overlays
on the writable parts.  The price is boot time (udev and systemd-tmpfiles run
in the guest: ~15 s more than the QEMU backend under TCG) and a guest that can
read whatever the host's root can; see VIRTME-NOTES.md for the measurements.

What stays the same as the QEMU backend, on purpose:

* the kernel console is one byte stream for the guest's whole life, apart
  from QEMU's and virtme's stderr.  virtme sends ttyS0 to /dev/null in script
  mode and the 8250 driver cannot be a console on two ports, so we add our
  own UART (ttyS1) and point the kernel's *earlycon* at it with
  ``keep_bootcon``: polled writes from the first early parameter to the last
  panic line;
* commands reach the guest over our own SSH: the guest script starts the
  host's dropbear with this run's pinned host key, then prints
  ``HARNESS-READY <nonce> ...`` (no trust on first use, no virtme --ssh);
* sysrq works without the guest's help: a QEMU monitor socket, ``sendkey``;
* it stops for sure: virtme-run runs QEMU (and maybe virtiofsd) as
  descendants, out of reach of PR_SET_PDEATHSIG, so as root the tree runs in
  its own PID namespace (``unshare --pid --fork --kill-child``) that the
  kernel empties when the harness dies, and in its own process group that
  :meth:`VirtmeMachine.stop` kills.

:func:`virtme_command` is the only function that knows virtme-run's flags.
virtme-run is called directly, not through ``vng``, because vng joins its
arguments into an unquoted ``sh -c`` line; the flags are the ones vng passes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.arch import host
from harness.cache import cache_root
from harness.errors import InfraError, ToolMissing, UserError
from harness.guest import protocol
from harness.kernels.base import KernelImage
from harness.machine import process
from harness.machine.accel import Accel
from harness.machine.base import (
    BootFiles,
    GuestPayload,
    GuestShape,
    MachineConfig,
)
from harness.machine.console import ConsoleWatcher
from harness.machine.hosted import HostedMachine
from harness.results import layout

VIRTME_RUN = "virtme-run"
#: the rendered guest script's name in a boot directory (from protocol.VIRTME_TEMPLATE)
GUEST_SCRIPT_NAME = "virtme-guest.sh"
#: the UART we add is the second one; earlycon writes to it by I/O port
CONSOLE_IOPORT = "0x2f8"
#: what vng lays over the read-only host root so the guest may write there
OVERLAYS = ("/etc", "/lib", "/home", "/opt", "/srv", "/usr", "/var", "/tmp")
#: modules udev would load for q35's devices and the CPU's features under TCG;
#: no reproducer needs them and loading them costs seconds per boot
#: (an explicit ``modprobe NAME`` still works)
BLACKLIST = (
    "kvm",
    "kvm_amd",
    "kvm_intel",
    "ccp",
    "sr_mod",
    "cdrom",
    "sg",
    "ahci",
    "libahci",
    "lpc_ich",
    "i2c_i801",
    "iTCO_wdt",
    "iTCO_vendor_support",
    "i6300esb",
    "pcspkr",
    "serio_raw",
    "evdev",
    "joydev",
    "powernow_k8",
    "aesni_intel",
    "crct10dif_pclmul",
    "ghash_clmulni_intel",
    "polyval_clmulni",
    "sha1_ssse3",
    "sha256_ssse3",
    "sha512_ssse3",
    "cryptd",
)
_HOSTFWD_BUSY = b"Could not set up host forwarding rule"
#: host directories virtme-ng's init mounts an empty tmpfs on: the guest cannot see into them
MASKED = (Path("/var/tmp"), Path("/var/log"), Path("/dev/shm"), Path("/run"))
#: files of a modules directory depmod needs; depmod writes the rest in the stage
_MODULE_FILES = ("kernel", "modules.order", "modules.builtin", "modules.builtin.modinfo")


#: what a kernel without modules must have built in to boot under virtme
VIRTME_FRAGMENT = Path(__file__).resolve().parents[1] / "kernels" / "virtme.config"
_BUILT_IN_NEEDS = (
    "CONFIG_9P_FS",
    "CONFIG_NET_9P_VIRTIO",
    "CONFIG_OVERLAY_FS",
    "CONFIG_VIRTIO_CONSOLE",
)


def check_built_config(kernel: KernelImage) -> None:
    """A kernel without modules whose .config lacks what virtme needs: a UserError now.

    Without it the guest would hang or panic in virtme's init, far from the
    cause.  Kernels whose .config is not beside the image are not checked.
    """
    config = kernel.vmlinuz.parent / ".config"
    if kernel.modules_dir is not None or not config.is_file():
        return
    have = {
        line.split("=", 1)[0] for line in config.read_text().splitlines() if line.endswith("=y")
    }
    missing = [name for name in _BUILT_IN_NEEDS if name not in have]
    if missing:
        raise UserError(
            f"{kernel.origin} lacks {', '.join(missing)} (built in), which the virtme backend "
            f"needs; add {VIRTME_FRAGMENT} to its build fragments (kernels.yaml "
            "'backend: virtme' does it for you) or use the qemu backend"
        )


def find_virtme_run() -> str:
    """virtme-run from PATH, else beside this interpreter (the venv's bin)."""
    found = shutil.which(VIRTME_RUN)
    if found:
        return found
    beside = Path(sys.executable).parent / VIRTME_RUN
    if beside.is_file():
        return str(beside)
    raise InfraError(
        "virtme-run is not installed; install virtme-ng with: .venv/bin/pip install virtme-ng"
    )


def stage_kernel(kernel: KernelImage, root: Path | None = None) -> Path:
    """A tree of symlinks virtme finds the kernel's modules in; returns its image path.

    virtme walks up from the image to ``<root>/lib/modules/<release>`` and
    runs depmod there when modules.dep is missing, writing into the tree.
    The stage keeps those writes out of the harness cache and out of a user's
    modules directory, and its ``vmlinuz-<release>`` name keeps virtme from
    treating ``.../arch/x86/boot/bzImage`` as a kernel source tree.  A kernel
    without modules gets an empty ``lib/modules`` so the walk stops there
    instead of reaching the host's /lib/modules.
    """
    image = kernel.vmlinuz.resolve()
    mods = kernel.modules_dir.resolve() if kernel.modules_dir else None
    release = mods.name if mods else (kernel.release or "unknown")
    key = hashlib.sha256(f"{image}\0{image.stat().st_mtime_ns}\0{mods}".encode()).hexdigest()
    stage = (root or cache_root() / "virtme-stage") / key[:20]
    vmlinuz = stage / "boot" / f"vmlinuz-{release}"
    (stage / "lib" / "modules").mkdir(parents=True, exist_ok=True)
    vmlinuz.parent.mkdir(parents=True, exist_ok=True)
    _symlink(image, vmlinuz)
    if mods is not None:
        moddir = stage / "lib" / "modules" / release
        moddir.mkdir(exist_ok=True)
        for name in _MODULE_FILES:
            if (mods / name).exists():
                _symlink(mods / name, moddir / name)
    return vmlinuz


def check_visible(path: Path, what: str) -> None:
    """UserError if a virtme guest would not see ``path``: virtme-ng mounts empty tmpfs on
    /var/tmp, /var/log, /dev/shm and /run, and a guest missing its modules boots with no
    network (its SSH then times out, which names nothing)."""
    resolved = path.resolve()
    mask = next((m for m in MASKED if resolved == m or m in resolved.parents), None)
    if mask is not None:
        raise UserError(
            f"the virtme guest cannot see {what} at {resolved}: virtme-ng mounts an empty "
            f"tmpfs on {mask} inside the guest; put the harness cache ($KHARNESS_CACHE) and "
            f"the results directory outside {mask}, or use --backend qemu"
        )


def _symlink(target: Path, link: Path) -> None:
    """Make ``link`` point at ``target`` (replacing a stale link)."""
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    link.unlink(missing_ok=True)
    link.symlink_to(target)


def shape_args(shape: GuestShape) -> tuple[list[str], list[str]]:
    """(virtme-run flags, extra QEMU flags) for memory, CPUs and NUMA nodes.

    virtme makes one memfd backend per ``--numa`` node but a plain ``-smp N``,
    which puts one socket across the nodes and makes the kernel WARN at boot;
    the later ``-smp`` with one socket per node overrides it.
    """
    nodes = max(shape.numa_nodes, 1)
    cpus = max(shape.cpus, nodes)
    flags = ["--memory", f"{shape.memory_mib}M", "--cpus", str(cpus)]
    qemu = ["-smp", f"{cpus},sockets={nodes},cores={cpus // nodes},threads=1"]
    if nodes > 1:
        per_node, per_cpu = shape.memory_mib // nodes, cpus // nodes
        for n in range(nodes):
            size = per_node if n < nodes - 1 else shape.memory_mib - per_node * (nodes - 1)
            first = n * per_cpu
            cpu_list = str(first) if per_cpu == 1 else f"{first}-{first + per_cpu - 1}"
            flags += ["--numa", f"{size}M,cpus={cpu_list}"]
    return flags, qemu


def kernel_options(shape: GuestShape, nonce: str = "") -> list[str]:
    """Kernel command line words on top of virtme's own (which has console=ttyS0, panic=-1).

    ``harness.nonce`` means nothing to the guest here (the script gets the
    nonce); it marks the QEMU process as the harness's, like the QEMU backend's.
    """
    words = [f"harness.nonce={nonce}"] if nonce else []
    words += [
        f"earlycon=uart8250,io,{CONSOLE_IOPORT},115200",
        "keep_bootcon",
        "loglevel=7",
        "mitigations=off",
        "modprobe.blacklist=" + ",".join(BLACKLIST),
    ]
    if shape.thp:
        words.append(f"transparent_hugepage={shape.thp}")
    words += shlex.split(shape.cmdline)
    return words


def guest_script_command(
    script: Path, nonce: str, host_key: Path, authorized: Path, thp: str | None
) -> str:
    """The --script-sh line: our guest script with this boot's nonce and keys."""
    args = [str(script), nonce, str(host_key), str(authorized)]
    if thp:
        args.append(thp)
    return shlex.join(["sh", *args])


def virtme_command(
    cfg: MachineConfig,
    *,
    vmlinuz: Path,
    ssh_port: int,
    nonce: str,
    authorized: Path,
    monitor: Path,
    script: Path,
    virtme_run: str = VIRTME_RUN,
    pid_namespace: bool = True,
) -> list[str]:
    """The full argv for one boot: change how virtme guests start here and only here."""
    shape = cfg.shape
    shape_flags, smp = shape_args(shape)
    argv: list[str] = []
    if pid_namespace:
        argv += ["unshare", "--pid", "--fork", "--kill-child", "--"]
    argv += [virtme_run, "--name", "kharness"]
    argv += [
        "--script-sh",
        guest_script_command(script, nonce, cfg.payload.keys.host_key, authorized, shape.thp),
    ]
    for path in OVERLAYS:
        argv += ["--overlay-rwdir", path]
    # --force-initramfs: virtme boots a kernel with 9p built in straight off
    # rootfstype=9p and no root=, which 6.12 turns into a 9p mount of tag ""
    # ("9pnet_virtio: no channels available for device"); its initramfs
    # mounts the /dev/root tag itself, for built and Debian kernels alike.
    argv += ["--kimg", str(vmlinuz), "--mods", "auto", "--force-9p", "--force-initramfs"]
    if cfg.accel.accel is not Accel.KVM:
        argv.append("--disable-kvm")
    for word in kernel_options(shape, nonce):
        argv += ["--kopt", word]
    argv += shape_flags
    qemu_opts = [
        *smp,
        "-nodefaults",
        "-chardev",
        "file,id=hcon,path=/proc/self/fd/1",
        "-serial",
        "chardev:hcon",
        "-netdev",
        f"user,id=hnet,restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
        "-device",
        "virtio-net-pci,netdev=hnet",
        "-monitor",
        f"unix:{monitor},server=on,wait=off",
    ]
    # --qemu-opts swallows the rest of the argv: it must come last.
    argv += ["--qemu-opts", *qemu_opts]
    return argv


class VirtmeBackend:
    """Boots the kernel with virtme-ng on the host's root (tests run from a host directory)."""

    name = "virtme"

    def prepare(self, payload: GuestPayload, directory: Path) -> BootFiles:
        """Copy the compiled tests where the guest sees them and stage the kernel.

        The copy, not the cache path, because the guest reads the host's
        filesystem live: a rebuild during the run must not change a test
        under a running guest.
        """
        tests_dir = (directory / "virtme-tests").resolve()
        tests_dir.mkdir(parents=True, exist_ok=True)
        for test in payload.tests:
            if test.binary is not None:
                shutil.copy2(test.binary, tests_dir / test.name)
        check_built_config(payload.kernel)
        stage = stage_kernel(payload.kernel).parent  # the stage's boot/, not the link in it
        kernel = payload.kernel
        for path, what in (
            (tests_dir, "the tests"),
            (stage, "the staged kernel"),
            (kernel.vmlinuz, "the kernel"),
            (kernel.modules_dir, "its modules"),
        ):
            if path is not None:
                check_visible(path, what)
        return BootFiles(tests_dir=str(tests_dir))

    def machine(self, cfg: MachineConfig, boot_dir: Path) -> VirtmeMachine:
        """A virtme machine for one boot."""
        return VirtmeMachine(cfg, boot_dir)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc's children lists)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{current}/task/{task}/children").read_text()
                kids = [int(k) for k in text.split()]
                found += kids
                todo += kids
    return found


def _qemu_argv(pid: int) -> list[str] | None:
    """The argv of the QEMU that virtme-run started below ``pid``, if it runs yet."""
    for child in _descendants(pid):
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{child}/cmdline").read_bytes()
            argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
            if argv and Path(argv[0]).name.startswith("qemu-system"):
                return argv
    return None


@dataclass
class VirtmeMachine(HostedMachine):
    """One virtme-run process tree (QEMU below it) on the host's root."""

    attempts = 3
    stderr_name = "virtme-stderr.txt"

    @property
    def _tmpdir(self) -> Path:
        """TMPDIR of virtme-run: inside the boot directory, removed by stop()."""
        return self.boot_dir / "virtme-tmp"

    def _check_tools(self) -> None:
        arch = host()  # virtme boots the host's own root: only the host's architecture
        if not shutil.which(arch.qemu):
            raise ToolMissing(arch.qemu, arch.qemu_package)

    def _spawn(self, port: int) -> bool:
        assert self.monitor is not None
        self.port = port
        tmp = self._tmpdir
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        authorized = self.boot_dir / "authorized_keys"
        authorized.write_text(self.cfg.payload.keys.client_public + "\n")
        script = self.boot_dir / GUEST_SCRIPT_NAME
        script.write_bytes(protocol.render_script(protocol.VIRTME_TEMPLATE))
        virtme_run = find_virtme_run()
        self.argv = virtme_command(
            self.cfg,
            vmlinuz=stage_kernel(self.cfg.payload.kernel),
            ssh_port=port,
            nonce=self.nonce,
            authorized=authorized.resolve(),
            monitor=self.monitor.path,
            script=script.resolve(),
            virtme_run=virtme_run,
            pid_namespace=os.geteuid() == 0 and shutil.which("unshare") is not None,
        )
        (self.boot_dir / "virtme-cmdline.txt").write_text(shlex.join(self.argv) + "\n")
        env = dict(os.environ)
        # virtme-run's own temporary files (its script return-code file) go
        # where stop() removes them; if the harness is killed they stay in the
        # boot directory rather than litter /tmp.
        env["TMPDIR"] = str(tmp)
        env["PATH"] = f"{Path(virtme_run).parent}{os.pathsep}{env.get('PATH', '')}"
        self.guest = process.spawn(self.argv, self.stderr_path, env)
        self.watcher = ConsoleWatcher(self.guest.console_fd, self.boot_dir / layout.CONSOLE_LOG)
        # virtme builds its initramfs before QEMU runs: the first console byte
        # says QEMU runs and its hostfwd was set up; an early exit may say why not.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.guest.proc.poll() is None:
            if self.watcher.offset() > 0:
                self._save_qemu_argv()
                return True
            time.sleep(0.05)
        if self.guest.proc.poll() is not None and _HOSTFWD_BUSY in self.guest.stderr_bytes():
            self.stop()
            return False
        return True

    def _save_qemu_argv(self) -> None:
        """Evidence: the QEMU command line virtme-run built, read from /proc."""
        if self.proc is None:
            return
        argv = _qemu_argv(self.proc.pid)
        if argv is not None:
            (self.boot_dir / "qemu-cmdline.txt").write_text(shlex.join(argv) + "\n")

    def _cleanup(self) -> None:
        shutil.rmtree(self._tmpdir, ignore_errors=True)
