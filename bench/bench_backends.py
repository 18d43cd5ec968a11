"""make bench: boot-to-ready of each backend against its floor, measured in one run.

On the same kernel and accelerator, interleaved round by round so that load
from elsewhere hits every column alike:

* qemu floor: the QEMU backend's own command line with an init that powers
  off at once (spawn -> QEMU exit);
* qemu backend: the harness's boot until the channel answers;
* vng floor: virtme-ng's own ``vng --run K --exec true`` (boot the host's root,
  run ``true``, power off), with the same memory, CPUs and accelerator;
* virtme backend: the harness's virtme boot until the channel answers.

Printed as medians and ratios (qemu backend / qemu floor, virtme backend /
vng floor, virtme backend / qemu backend).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_boot import floor_config, floor_once  # noqa: E402
from harness.config import load_kernels, select  # noqa: E402
from harness.machine import accel  # noqa: E402
from harness.machine.accel import Accel  # noqa: E402
from harness.machine.virtme import stage_kernel  # noqa: E402
from harness.results.evidence import new_run_dir  # noqa: E402
from harness.session import KernelGuest, new_context  # noqa: E402
from harness.testkinds.testdef import read_test  # noqa: E402


def vng_once(vmlinuz: Path, memory_mib: int, cpus: int, kvm: bool) -> float:
    """``vng --run K --exec true``: seconds from spawn to its exit."""
    venv_bin = Path(sys.executable).parent
    argv = [str(venv_bin / "vng"), "--run", str(vmlinuz), "--force-9p", "--exec", "true"]
    argv += ["--memory", f"{memory_mib}M", "--cpus", str(cpus)]
    if not kvm:
        argv.append("--disable-kvm")
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"vng failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def ready_once(guest: KernelGuest) -> float:
    """A fresh boot of ``guest`` until its channel answers."""
    guest.shutdown()
    started = time.monotonic()
    if guest.ensure_booted() is not None:
        raise SystemExit(f"boot failed: {guest.setup_error}")
    assert guest.channel is not None and guest.channel.alive(30)
    return time.monotonic() - started


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernel", default="debian-6.12")
    parser.add_argument("--runs", type=int, default=3, help="boots per column")
    args = parser.parse_args()

    path = ROOT / "kernels.yaml"
    spec = select(load_kernels(path), [args.kernel], path)[0]
    tests = [read_test(ROOT / "tests/data/guest/noop.c")]
    choice = accel.choose(spec.accel)
    columns: dict[str, list[float]] = {"qemu floor": [], "qemu": [], "vng floor": [], "virtme": []}
    with tempfile.TemporaryDirectory(prefix="kharness-bench-") as tmp:
        ctx = new_context(new_run_dir(Path(tmp)), tests, log=lambda _t: None)
        guests = {b: KernelGuest(replace(spec, backend=b), ctx, tests) for b in ("qemu", "virtme")}
        for g in guests.values():
            if g.prepare() is not None:
                print(f"cannot prepare {args.kernel}: {g.setup_error}")
                return 1
        qemu_cfg = guests["qemu"].machine_config()
        floor_cfg = floor_config(guests["qemu"], Path(tmp))
        assert guests["virtme"].image is not None
        staged = stage_kernel(guests["virtme"].image)
        shape = qemu_cfg.shape
        print(f"kernel {args.kernel}: {guests['qemu'].image.origin}")  # type: ignore[union-attr]
        print(f"accelerator: {choice.accel.value} ({choice.reason})")
        print(f"shape: {shape.memory_mib} MiB, {shape.cpus} CPUs, {shape.numa_nodes} node(s)")
        try:
            ready_once(guests["virtme"])  # the first virtme boot runs depmod on the stage
            for _ in range(args.runs):
                columns["qemu floor"].append(floor_once(floor_cfg))
                columns["qemu"].append(ready_once(guests["qemu"]))
                columns["vng floor"].append(
                    vng_once(staged, shape.memory_mib, shape.cpus, choice.accel is Accel.KVM)
                )
                columns["virtme"].append(ready_once(guests["virtme"]))
        finally:
            for g in guests.values():
                g.shutdown()
    med = {name: statistics.median(values) for name, values in columns.items()}
    print(f"\n{'boot (median of ' + str(args.runs) + ')':40} {'seconds':>8}  ratio")
    print(f"{'qemu floor (init powers off)':40} {med['qemu floor']:8.2f}")
    ratio = med["qemu"] / med["qemu floor"]
    print(f"{'qemu backend, boot-to-ready':40} {med['qemu']:8.2f}  {ratio:.2f}x floor (aim 1.2)")
    print(f"{'vng --run K --exec true':40} {med['vng floor']:8.2f}")
    ratio = med["virtme"] / med["vng floor"]
    print(f"{'virtme backend, boot-to-ready':40} {med['virtme']:8.2f}  {ratio:.2f}x vng (aim 1.2)")
    print(f"{'virtme backend / qemu backend':40} {'':8}  {med['virtme'] / med['qemu']:.2f}x")
    for name, values in columns.items():
        print(f"  {name}: " + " ".join(f"{v:.2f}" for v in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
