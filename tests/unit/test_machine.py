"""QEMU command line, accelerator choice, ports and the missing-QEMU error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.errors import NoFreePort, ToolMissing
from harness.guest.keys import GuestKeys
from harness.kernels.base import KernelImage
from harness.machine.accel import Accel, AccelChoice, choose, kvm_usable
from harness.machine.base import BootFiles, GuestPayload, GuestShape, MachineConfig, describe_exit
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
