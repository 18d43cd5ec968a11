"""QEMU command line, accelerator choice, ports and the missing-QEMU error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.arch import ARM64
from harness.errors import NoFreePort, ToolMissing
from harness.guest.keys import GuestKeys
from harness.kernels.base import KernelImage
from harness.machine.accel import Accel, AccelChoice, _cpu_flags, choose, host_kvm, kvm_usable
from harness.machine.base import BootFiles, GuestPayload, GuestShape, MachineConfig, describe_exit
from harness.machine.halt import halt_in_status, halt_in_stderr
from harness.machine.ports import free_port
from harness.machine.qemu import QemuMachine, qemu_command

TCG = AccelChoice(Accel.TCG, "test")


def _cfg(**kw: object) -> MachineConfig:
    keys = GuestKeys(Path("/k/host"), "ssh-ed25519 AAAA", Path("/k/client"), "ssh-ed25519 BBBB")
    payload = GuestPayload(KernelImage(Path("/k/vmlinuz"), None, None, "test"), (), keys)
    files = BootFiles("/opt/tests", Path("/k/initrd"))
    return MachineConfig(payload, files, TCG, GuestShape(**kw))  # type: ignore[arg-type]


def _after(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_two_numa_nodes_one_socket_each() -> None:
    argv = qemu_command(_cfg(memory_mib=2048, cpus=2, numa_nodes=2, thp="always"), 4242, "n0nce")
    assert _after(argv, "-smp") == ["2,sockets=2,cores=1,threads=1"]
    assert _after(argv, "-numa") == [
        "node,nodeid=0,cpus=0,memdev=m0",
        "node,nodeid=1,cpus=1,memdev=m1",
    ]
    assert _after(argv, "-object") == [
        "memory-backend-ram,id=m0,size=1024M",
        "memory-backend-ram,id=m1,size=1024M",
    ]
    append = _after(argv, "-append")[0]
    assert (
        "panic=-1" in append and "harness.nonce=n0nce" in append and "harness.thp=always" in append
    )
    assert "-no-reboot" in argv
    net = _after(argv, "-netdev")[0]
    assert "restrict=on" in net and "hostfwd=tcp:127.0.0.1:4242-:22" in net


def test_single_node_has_no_numa_flags_and_user_cmdline_last() -> None:
    argv = qemu_command(_cfg(cpus=1, cmdline="mitigations=auto"), 1, "x")
    assert "-numa" not in argv
    assert _after(argv, "-append")[0].endswith("mitigations=auto")
    assert _after(argv, "-accel") == ["tcg"]


def test_kvm_needs_both_device_and_cpu_flags(tmp_path: Path) -> None:
    dev = tmp_path / "kvm"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor: 0\nflags\t\t: fpu sse2 hypervisor\n")
    assert kvm_usable(dev, cpuinfo) == (False, f"{dev} does not exist")
    dev.write_text("")
    ok, why = kvm_usable(dev, cpuinfo)
    assert not ok and "neither vmx nor svm" in why
    cpuinfo.write_text("flags\t\t: fpu vmx sse2\n")
    assert kvm_usable(dev, cpuinfo)[0]


def test_choose_honours_explicit_requests() -> None:
    assert choose(Accel.TCG).accel is Accel.TCG
    assert choose(Accel.KVM).accel is Accel.KVM
    auto = choose(Accel.AUTO)
    assert auto.reason.startswith("auto:")
    assert auto.accel is (Accel.KVM if kvm_usable()[0] else Accel.TCG)


def test_auto_never_takes_a_kvm_the_probe_rejects(tmp_path: Path) -> None:
    dev, cpuinfo = tmp_path / "kvm", tmp_path / "cpuinfo"
    dev.write_text("")  # /dev/kvm there and read-writable, as on this host
    cpuinfo.write_text("flags\t\t: fpu sse2 hypervisor\n")
    auto = choose(Accel.AUTO, probe=lambda: kvm_usable(dev, cpuinfo))
    assert auto.accel is Accel.TCG and "neither vmx nor svm" in auto.reason
    cpuinfo.write_text("flags\t\t: fpu svm sse2\n")
    assert choose(Accel.AUTO, probe=lambda: kvm_usable(dev, cpuinfo)).accel is Accel.KVM
    assert choose(Accel.AUTO, ARM64, probe=lambda: (True, "x")).accel is Accel.TCG


_HOST_FLAGS = _cpu_flags(Path("/proc/cpuinfo").read_text()) & {"vmx", "svm"}


@pytest.mark.skipif(
    not Path("/dev/kvm").exists() or bool(_HOST_FLAGS),
    reason="needs a host like CI's: /dev/kvm present, no vmx/svm in the CPU flags",
)
def test_auto_is_tcg_on_a_host_whose_kvm_cannot_run_guests() -> None:
    host_kvm.cache_clear()
    auto = choose(Accel.AUTO)
    assert auto.accel is Accel.TCG, auto.reason
    assert host_kvm() is host_kvm(), "probed once, cached"


@pytest.mark.parametrize(
    ("stderr", "status", "found"),
    [
        (
            b"KVM internal error. Suberror: 1\nextra data[0]: 0x1\nemulation failure\nRAX=0\n",
            "",
            "KVM internal error. Suberror: 1 / emulation failure",
        ),
        (b"qemu: fatal: Trying to execute code outside RAM or ROM at 0x0\n", "", "qemu: fatal:"),
        (b"", "VM status: paused (internal-error)\r\n", "run state is paused (internal-error)"),
        (b"", "VM status: paused (guest-panicked)\r\n", "guest-panicked"),
        (b"", "VM status: running\r\n", None),
        (b"", "VM status: paused (inmigrate)\r\n", None),
        (b"qemu-system-x86_64: terminating on signal 15\n", "", None),
    ],
)
def test_qemu_halt_signs(stderr: bytes, status: str, found: str | None) -> None:
    seen = halt_in_stderr(stderr) or halt_in_status(status)
    assert (seen is None) if found is None else (found in (seen or "")), seen


def test_qemu_halt_lines_are_bounded() -> None:
    seen = halt_in_stderr(
        b"emulation failure " + b"x" * 10_000 + b"\n" + b"emulation failure\n" * 50
    )
    assert seen is not None and len(seen) <= 3 * 200 + 6


def test_no_free_port_in_a_full_range() -> None:
    held = []
    try:
        for _ in range(3):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen()
            held.append(s)
        ports = sorted(s.getsockname()[1] for s in held)
        with pytest.raises(NoFreePort, match=r"no free TCP port on 127\.0\.0\.1"):
            free_port((ports[0], ports[0]))
        assert free_port() not in ports
    finally:
        for s in held:
            s.close()


def test_qemu_missing_is_a_clear_error(tmp_path: Path) -> None:
    machine = QemuMachine(_cfg(), tmp_path, binary="qemu-system-nonexistent")
    with pytest.raises(ToolMissing, match="apt-get install -y qemu-system-x86"):
        machine.start()
    assert machine.proc is None and not machine.running


def test_exit_status_in_words() -> None:
    assert describe_exit(None) is None
    assert describe_exit(1) == "exit status 1"
    assert describe_exit(-9) == "killed by SIGKILL"
