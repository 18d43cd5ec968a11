"""The virtme backend against a real Debian 6.12 kernel: one boot, every promise.

One guest (about 30 s under TCG) is booted on the host's root and must give
what the harness relies on: SSH with the pinned key, host binaries, the shape
asked for, the kernel console with sysrq output pressed through the monitor,
a panic seen on the console and the guest's end noticed, and no process left.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.config import load_kernels, select
from harness.errors import GuestUnreachable, InfraError
from harness.guest.keys import make_keys
from harness.machine.accel import Accel, AccelChoice
from harness.machine.base import GuestPayload, GuestShape, MachineConfig
from harness.machine.virtme import VirtmeBackend, find_virtme_run
from harness.session import Policy
from tests.integration.helpers import REPO

pytestmark = pytest.mark.boot


def _virtme_left(nonce: str) -> list[str]:
    out = subprocess.run(
        ["pgrep", "-f", f"harness.nonce={nonce}"], capture_output=True, text=True, check=False
    ).stdout
    return out.split()


def test_virtme_boots_debian_612_and_keeps_the_harness_promises(tmp_path: Path) -> None:
    try:
        find_virtme_run()
    except InfraError as exc:
        pytest.skip(str(exc))
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 is not installed")
    spec = select(load_kernels(REPO / "kernels.yaml"), ["debian-6.12"], REPO)[0]
    kernel = spec.source.resolve(lambda _m: None)
    payload = GuestPayload(kernel, (), make_keys(tmp_path / "keys"))
    backend = VirtmeBackend()
    files = backend.prepare(payload, tmp_path / "kernel")
    shape = GuestShape(memory_mib=2048, cpus=2, numa_nodes=2, thp="always")
    cfg = MachineConfig(payload, files, AccelChoice(Accel.TCG, "test"), shape)
    # as many tries as Policy.boot_attempts: TCG can crash a sound kernel in early boot
    for attempt in range(1, Policy().boot_attempts + 1):
        boot_dir = tmp_path / f"boot-{attempt}"
        machine, ready = backend.machine(cfg, boot_dir), None
        try:
            machine.start()
            ready = machine.wait_ready(240)
        finally:
            if ready is None:
                machine.stop()
        if ready is not None:
            break
        assert not _virtme_left(machine.nonce)
        print(f"boot-{attempt} never got ready:\n{machine.console.tail()}")
    try:
        assert ready is not None, machine.console.tail()
        assert ready.release == kernel.release and ready.boot_taint == 0
        channel = machine.connect(ready)
        shown = channel.run(
            "uname -r; cat /sys/devices/system/node/online;"
            " cat /sys/kernel/mm/transparent_hugepage/enabled; test -x /usr/sbin/dropbear",
            60,
        )
        assert shown.exit_code == 0, shown.stderr
        assert shown.stdout.split("\n")[:3] == [kernel.release, "0-1", "[always] madvise never"]

        start = machine.console.offset()
        assert machine.magic_key("w")
        assert machine.console.wait_for(rb"sysrq: Show Blocked State", 30, start)

        start = machine.console.offset()
        with contextlib.suppress(GuestUnreachable):  # the panic takes the session down
            channel.run("echo c > /proc/sysrq-trigger", 10)
        panic = machine.console.wait_for(rb"Kernel panic - not syncing", 60, start)
        assert panic is not None, machine.console.tail()
        assert machine.console.panicked, "the console watcher must see the panic too"
        machine.console.join(60)
        assert machine.console.eof, "QEMU must exit after the panic (panic=-1, -no-reboot)"
    finally:
        machine.stop()
    assert not _virtme_left(machine.nonce)
    evidence = {p.name for p in boot_dir.iterdir()}
    assert {"console.log", "virtme-cmdline.txt", "qemu-cmdline.txt", "virtme-stderr.txt"} <= (
        evidence
    )
    assert "virtme-tmp" not in evidence and "monitor.sock" not in evidence
