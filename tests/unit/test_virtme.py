"""The virtme backend's pure parts: its command line, guest shape and kernel staging."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.guest import protocol
from harness.guest.keys import GuestKeys
from harness.kernels.base import KernelImage
from harness.machine.accel import Accel, AccelChoice
from harness.machine.backends import BACKENDS
from harness.machine.base import BootFiles, GuestPayload, GuestShape, MachineConfig
from harness.machine.virtme import (
    OVERLAYS,
    VirtmeBackend,
    check_visible,
    guest_script_command,
    kernel_options,
    shape_args,
    stage_kernel,
    virtme_command,
)
from harness.testkinds.compile import CompileResult

TCG = AccelChoice(Accel.TCG, "test")
KVM = AccelChoice(Accel.KVM, "test")


def _cfg(accel: AccelChoice = TCG, **kw: object) -> MachineConfig:
    keys = GuestKeys(Path("/k/host"), "ssh-ed25519 AAAA", Path("/k/client"), "ssh-ed25519 BBBB")
    payload = GuestPayload(KernelImage(Path("/k/vmlinuz"), None, None, "test"), (), keys)
    return MachineConfig(payload, BootFiles("/run/tests"), accel, GuestShape(**kw))  # type: ignore[arg-type]


def _argv(cfg: MachineConfig, **kw: object) -> list[str]:
    args: dict[str, object] = {
        "vmlinuz": Path("/stage/boot/vmlinuz-6.12"),
        "ssh_port": 4242,
        "nonce": "n0nce",
        "authorized": Path("/b/authorized_keys"),
        "monitor": Path("/b/monitor.sock"),
        "script": Path("/b/virtme-guest.sh"),
    }
    args.update(kw)
    return virtme_command(cfg, **args)  # type: ignore[arg-type]


def _after(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def _qemu_opts(argv: list[str]) -> list[str]:
    return argv[argv.index("--qemu-opts") + 1 :]


def test_pid_namespace_wraps_virtme_run_and_qemu_opts_come_last() -> None:
    argv = _argv(_cfg())
    assert argv[:5] == ["unshare", "--pid", "--fork", "--kill-child", "--"]
    assert argv[5] == "virtme-run"
    # --qemu-opts is greedy in virtme-run: everything after it goes to QEMU
    assert not any(a.startswith("--") for a in _qemu_opts(argv))
    assert _argv(_cfg(), pid_namespace=False)[0] == "virtme-run"


def test_tcg_disables_kvm_and_kvm_does_not() -> None:
    assert "--disable-kvm" in _argv(_cfg(TCG))
    assert "--disable-kvm" not in _argv(_cfg(KVM))


def test_host_root_with_overlays_9p_and_the_staged_kernel() -> None:
    argv = _argv(_cfg())
    assert _after(argv, "--overlay-rwdir") == list(OVERLAYS)
    assert _after(argv, "--kimg") == ["/stage/boot/vmlinuz-6.12"]
    assert _after(argv, "--mods") == ["auto"]
    assert "--force-9p" in argv and "--force-initramfs" in argv


def test_console_is_our_uart_on_stdout_with_earlycon_kept() -> None:
    argv = _argv(_cfg())
    opts = _qemu_opts(argv)
    assert _after(opts, "-chardev") == ["file,id=hcon,path=/proc/self/fd/1"]
    assert _after(opts, "-serial") == ["chardev:hcon"]
    kopts = _after(argv, "--kopt")
    assert "harness.nonce=n0nce" in kopts  # how leak checks find the harness's QEMUs
    assert "earlycon=uart8250,io,0x2f8,115200" in kopts and "keep_bootcon" in kopts
    # a second console=ttyS1 cannot work: the 8250 console is registered once
    assert not any(k.startswith("console=") for k in kopts)


def test_ssh_forward_and_monitor_socket() -> None:
    opts = _qemu_opts(_argv(_cfg()))
    net = _after(opts, "-netdev")[0]
    assert "restrict=on" in net and "hostfwd=tcp:127.0.0.1:4242-:22" in net
    assert _after(opts, "-device") == ["virtio-net-pci,netdev=hnet"]
    assert _after(opts, "-monitor") == ["unix:/b/monitor.sock,server=on,wait=off"]


def test_guest_script_gets_nonce_keys_and_thp() -> None:
    argv = _argv(_cfg(thp="always"))
    script = shlex.split(_after(argv, "--script-sh")[0])
    assert script == [
        "sh",
        "/b/virtme-guest.sh",
        "n0nce",
        "/k/host",
        "/b/authorized_keys",
        "always",
    ]


def test_guest_script_is_rendered_with_the_protocols_ready_line() -> None:
    text = protocol.render_script(protocol.VIRTME_TEMPLATE).decode()
    assert protocol.READY_TOKEN not in text
    assert f'say "{protocol.READY_SHELL}"' in text


def test_guest_script_quotes_odd_paths() -> None:
    line = guest_script_command(Path("/s"), "n", Path("/a b/key"), Path("/c'd/auth"), None)
    assert shlex.split(line)[2:] == ["n", "/a b/key", "/c'd/auth"]


def test_two_numa_nodes_one_socket_each() -> None:
    flags, qemu = shape_args(GuestShape(memory_mib=2048, cpus=2, numa_nodes=2))
    assert _after(flags, "--memory") == ["2048M"]
    assert _after(flags, "--cpus") == ["2"]
    assert _after(flags, "--numa") == ["1024M,cpus=0", "1024M,cpus=1"]
    assert qemu == ["-smp", "2,sockets=2,cores=1,threads=1"]


def test_uneven_memory_and_more_cpus_per_node() -> None:
    flags, qemu = shape_args(GuestShape(memory_mib=3001, cpus=4, numa_nodes=2))
    assert _after(flags, "--numa") == ["1500M,cpus=0-1", "1501M,cpus=2-3"]
    assert qemu == ["-smp", "4,sockets=2,cores=2,threads=1"]


def test_cpus_grow_to_the_number_of_nodes() -> None:
    flags, qemu = shape_args(GuestShape(cpus=1, numa_nodes=2))
    assert _after(flags, "--cpus") == ["2"]
    assert qemu[1].startswith("2,sockets=2")


def test_single_node_has_no_numa_flags() -> None:
    flags, qemu = shape_args(GuestShape(cpus=2))
    assert "--numa" not in flags
    assert qemu == ["-smp", "2,sockets=1,cores=2,threads=1"]


def test_kernel_options_thp_and_user_cmdline_last() -> None:
    words = kernel_options(GuestShape(thp="never", cmdline='nokaslr foo="a b"'))
    assert "transparent_hugepage=never" in words
    assert words[-2:] == ["nokaslr", "foo=a b"]
    blacklist = next(w for w in words if w.startswith("modprobe.blacklist="))
    assert "kvm" in blacklist.split("=", 1)[1].split(",")
    assert "virtio_net" not in blacklist


def test_stage_links_image_and_modules_without_touching_them(tmp_path: Path) -> None:
    deb = tmp_path / "deb"
    mods = deb / "lib" / "modules" / "6.12.0-1-amd64"
    (mods / "kernel").mkdir(parents=True)
    (mods / "modules.order").write_text("")
    image = deb / "boot" / "vmlinuz-6.12.0-1-amd64"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"MZ")
    kernel = KernelImage(image, mods, "6.12.0-1-amd64", "test")
    vmlinuz = stage_kernel(kernel, tmp_path / "stage")
    assert vmlinuz.name == "vmlinuz-6.12.0-1-amd64" and vmlinuz.resolve() == image
    staged = vmlinuz.parent.parent / "lib" / "modules" / "6.12.0-1-amd64"
    assert (staged / "kernel").resolve() == mods / "kernel"
    assert not (staged / "kernel").parent.is_symlink()  # depmod writes into the stage
    assert stage_kernel(kernel, tmp_path / "stage") == vmlinuz  # idempotent


def test_stage_of_a_built_kernel_hides_its_tree(tmp_path: Path) -> None:
    """``.../arch/x86/boot/bzImage`` would make virtme treat the build tree as a kdir."""
    image = tmp_path / "build" / "arch" / "x86" / "boot" / "bzImage"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"MZ")
    vmlinuz = stage_kernel(KernelImage(image, None, "6.13.0-rc1", "build"), tmp_path / "s")
    assert vmlinuz.name == "vmlinuz-6.13.0-rc1"
    # an empty lib/modules stops virtme's upward search before the host's
    assert (vmlinuz.parent.parent / "lib" / "modules").is_dir()


def test_prepare_copies_tests_where_the_guest_sees_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    binary = tmp_path / "bin" / "t1"
    binary.parent.mkdir()
    binary.write_bytes(b"\x7fELF")
    image = tmp_path / "vmlinuz"
    image.write_bytes(b"MZ")
    keys = GuestKeys(Path("/k/host"), "ssh-ed25519 AAAA", Path("/k/client"), "ssh-ed25519 BBBB")
    payload = GuestPayload(
        KernelImage(image, None, "6.1", "test"),
        (CompileResult("t1", binary, ""), CompileResult("broken", None, "error")),
        keys,
    )
    files = VirtmeBackend().prepare(payload, tmp_path / "kernel")
    assert files.initrd is None
    assert Path(files.tests_dir).is_absolute()
    assert sorted(p.name for p in Path(files.tests_dir).iterdir()) == ["t1"]


def test_backend_is_registered() -> None:
    assert BACKENDS["virtme"]().name == "virtme"


def test_a_built_kernel_without_9p_is_refused_with_the_fix(tmp_path: Path) -> None:
    from harness.errors import UserError
    from harness.kernels.base import KernelImage
    from harness.machine.virtme import VIRTME_FRAGMENT, check_built_config

    (tmp_path / "bzImage").write_bytes(b"")
    (tmp_path / ".config").write_text("CONFIG_9P_FS=y\n# CONFIG_OVERLAY_FS is not set\n")
    kernel = KernelImage(tmp_path / "bzImage", None, "6.12.0", "built from linux")
    with pytest.raises(UserError) as info:
        check_built_config(kernel)
    message = str(info.value)
    assert "CONFIG_NET_9P_VIRTIO, CONFIG_OVERLAY_FS, CONFIG_VIRTIO_CONSOLE" in message
    assert str(VIRTME_FRAGMENT) in message and "qemu backend" in message
    (tmp_path / ".config").write_text(
        "".join(f"{o}=y\n" for o in ("CONFIG_9P_FS", "CONFIG_NET_9P_VIRTIO", "CONFIG_OVERLAY_FS"))
        + "CONFIG_VIRTIO_CONSOLE=y\n"
    )
    check_built_config(kernel)  # all there: no error


@pytest.mark.parametrize("masked", ["/var/tmp", "/var/log/x", "/dev/shm/cache", "/run/k"])
def test_what_virtme_hides_from_its_guest_is_refused_by_name(masked: str) -> None:
    """virtme-ng mounts empty tmpfs on these in the guest: a kernel cache there left the
    guest without its network module and the run with a bare SSH timeout."""
    with pytest.raises(UserError, match=f"cannot see its modules at {masked}.*KHARNESS_CACHE"):
        check_visible(Path(masked), "its modules")
    check_visible(Path("/root/.cache/kpatch-harness"), "its modules")  # seen: no error
    check_visible(Path("/var/lib"), "its modules")
