"""make bench: boot floor vs the harness, time to first result, warm per-test overhead.

Everything is measured in the same run on the same kernel so ratios mean
something on a shared, noisy machine:

* floor: the same kernel and the same QEMU command line, but an init that
  powers off at once (spawn -> QEMU exit);
* boot-to-ready: the harness's boot until SSH answers;
* first result: fresh boot until the first reproducer's verdict;
* warm overhead: a trivial guest test run 20 times on a booted guest;
* restore-to-ready, both ways, against the cold boot-to-ready above (the
  cold rows run with snapshots off, so they time what they always timed):
  after a crash (the QEMU is gone) and between tests under ``isolation:
  test`` (the done guest's QEMU, still running, is let go in the background
  first, and that is timed too); each a new QEMU mapping the saved RAM
  copy-on-write, checked and connected, each with its parts as rows (QEMU
  started, state loaded, SSH connected, the one command that sets the clock,
  reseeds and reads the taint), the SSH connect in its own parts (TCP, the
  guest's first byte, key exchange, auth).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pexpect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.config import Isolation, KernelSpec, load_kernels, select  # noqa: E402
from harness.guest.cpio import CpioArchive  # noqa: E402
from harness.guest.userland import foreign_userland  # noqa: E402
from harness.machine import accel  # noqa: E402
from harness.machine.base import MachineConfig  # noqa: E402
from harness.machine.ports import free_port  # noqa: E402
from harness.machine.qemu import qemu_command  # noqa: E402
from harness.results.evidence import new_run_dir  # noqa: E402
from harness.results.starts import GuestStarts  # noqa: E402
from harness.session import KernelGuest, new_context  # noqa: E402
from harness.testkinds.testdef import GuestTest, read_test  # noqa: E402

POWEROFF_INIT = b"#!/bin/busybox sh\n/bin/busybox poweroff -f\n"


def floor_once(cfg: MachineConfig) -> float:
    """Spawn QEMU with an init that powers off immediately; seconds until it exits."""
    argv = qemu_command(cfg, free_port(), "floor")
    started = time.monotonic()
    child = pexpect.spawn(argv[0], argv[1:], timeout=300)
    child.expect(pexpect.EOF)
    seconds = time.monotonic() - started
    output = child.before.decode(errors="replace")
    child.close()
    if "Run /init as init process" not in output:
        raise SystemExit(f"the floor boot did not reach init:\n{output[-2000:]}")
    return seconds


def floor_config(guest: KernelGuest, tmp: Path) -> MachineConfig:
    """The guest's own machine config with a poweroff-at-once initrd."""
    cfg = guest.machine_config()
    arch = guest.spec.arch
    busybox = Path("/bin/busybox") if arch.is_host else foreign_userland(arch).busybox
    archive = CpioArchive()
    archive.add_file("bin/busybox", busybox.read_bytes(), 0o755)
    archive.add_file("init", POWEROFF_INIT, 0o755)
    initrd = tmp / "poweroff.cpio"
    initrd.write_bytes(archive.getvalue())
    return replace(cfg, files=replace(cfg.files, initrd=initrd), port_range=None)


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernel", default="debian-6.12")
    parser.add_argument("--runs", type=int, default=5, help="boots per measurement")
    parser.add_argument("--warm", type=int, default=20, help="warm trivial-test runs")
    args = parser.parse_args()

    path = ROOT / "kernels.yaml"
    spec = select(load_kernels(path), [args.kernel], path)[0]
    tests = [
        read_test(ROOT / "guest-tests/c/uffd_api_unknown_feature.c"),
        read_test(ROOT / "tests/data/guest/noop.c"),
    ]
    tests += [
        read_test(p)
        for p in sorted((ROOT / "guest-tests/c").glob("*.c"))
        if p.stem != tests[0].name
    ]
    with tempfile.TemporaryDirectory(prefix="kharness-bench-") as tmp:
        ctx = new_context(new_run_dir(Path(tmp)), tests, log=lambda _t: None, snapshots=False)
        guest = KernelGuest(spec, ctx, tests)
        if guest.prepare() is not None:
            print(f"cannot prepare {args.kernel}: {guest.setup_error}")
            return 1
        choice = accel.choose(spec.accel, spec.arch)
        origin = guest.image.origin if guest.image else "?"
        print(f"kernel {args.kernel} ({spec.arch.name}): {origin}")
        print(f"accelerator: {choice.accel.value} ({choice.reason})")
        # Interleaved, so that load from elsewhere hits floor and harness alike.
        floor_cfg = floor_config(guest, Path(tmp))
        floors, ready, first = [], [], []
        for round_ in range(args.runs):
            floors.append(floor_once(floor_cfg))
            started = time.monotonic()
            if guest.ensure_booted() is not None:
                print(f"boot failed: {guest.setup_error}")
                return 1
            ready.append(time.monotonic() - started)
            run = guest.run(tests[0])
            first.append(time.monotonic() - started)
            if round_ < args.runs - 1:
                guest.shutdown()
        warm = [guest.run(tests[1]).seconds for _ in range(args.warm)]
        guest.shutdown()
        restores = _restores(spec, tests, Path(tmp), args.runs)
    _report(floors, ready, first, warm, run.verdict.outcome.value)
    _report_restore(statistics.median(ready), restores)
    return 0


@dataclass(frozen=True)
class RestoreRuns:
    """The restores of one bench run, by path, from their boot-N/restore.json."""

    after_crash: list[dict[str, Any]]  # the QEMU was gone
    between_tests: list[dict[str, Any]]  # isolation: test: the done guest's QEMU let go first
    saved: GuestStarts


def _restores(spec: KernelSpec, tests: list[GuestTest], tmp: Path, runs: int) -> RestoreRuns:
    """``runs`` of each restore path, interleaved, after the cold boot that saved the guest.

    ``isolation: test``: each guest done is let go and the next restored; a
    QEMU stopped first stands for a crash.  Letting go (the channel closed,
    the QEMU's stop started in the background) is timed into ``parts.let_go``
    and the row's seconds.
    """
    ctx = new_context(new_run_dir(tmp / "restore"), tests, log=lambda _t: None)
    guest = KernelGuest(replace(spec, isolation=Isolation.TEST), ctx, tests)
    try:
        if guest.prepare() is not None or guest.ensure_booted() is not None:
            raise SystemExit(f"cannot boot {spec.name}: {guest.setup_error}")
        let_go = []
        for _ in range(runs):
            time.sleep(TEST_SECONDS)  # a test on the guest; the next guest's QEMU starts meanwhile
            started = time.monotonic()
            guest.stop_guest()  # the next guest is a restore, this QEMU stops meanwhile
            let_go.append(time.monotonic() - started)
            if guest.ensure_booted() is not None:
                raise SystemExit(f"restore between tests failed: {guest.setup_error}")
            time.sleep(TEST_SECONDS)
            assert guest.machine is not None
            guest.machine.stop()  # as a panic does: the QEMU is gone
            guest.stop_guest()
            if guest.ensure_booted() is not None:
                raise SystemExit(f"restore failed: {guest.setup_error}")
        starts = guest.record().starts
    finally:
        guest.shutdown()
    assert starts is not None
    found = [json.loads(p.read_text()) for p in sorted(guest.directory.glob("boot-*/restore.json"))]
    done = [r for r in found if r["problem"] is None]
    crash = [r for r in done if not r["between_tests"]]
    between = [r for r in done if r["between_tests"]]
    if len(crash) != runs or len(between) != runs:
        raise SystemExit(f"expected {runs} restores of each kind: {starts.notes}")
    for r, seconds in zip(between, let_go, strict=True):
        r["parts"]["let_go"] = seconds
        r["seconds"] += seconds
    return RestoreRuns(crash, between, starts)


def _report_restore(cold: float, runs: RestoreRuns) -> None:
    starts = runs.saved
    print(
        f"saved once in {starts.saved_seconds or 0:.2f}s, "
        f"{(starts.saved_bytes or 0) / 1e6:.0f} MB; ratios x cold boot-to-ready (aim <= 0.10)"
    )
    for title, found in (
        ("restore after a crash (QEMU gone)", runs.after_crash),
        ("restore between tests (isolation: test)", runs.between_tests),
    ):
        r = statistics.median(x["seconds"] for x in found)
        print(f"{title:38} {r:9.2f} {r / cold:7.2f}  (n={len(found)})")
        for part, what in PARTS:
            if any(part not in x["parts"] for x in found):
                continue
            m = statistics.median(x["parts"][part] for x in found)
            if m or part != "start":
                print(f"{'  ' + what:38} {m:9.2f} {m / cold:7.2f}")
            if part == "ssh":
                _report_connect(found, cold)


def _report_connect(found: list[dict[str, Any]], cold: float) -> None:
    """The SSH connect's own parts (restore.json's ssh_parts), as sub-rows."""
    connects = [x["ssh_parts"] for x in found if x.get("ssh_parts")]
    if not connects:
        return
    for part, what in SSH_PARTS:
        m = statistics.median(c[part] for c in connects)
        print(f"{'    ' + what:38} {m:9.3f} {m / cold:7.3f}")
    most = max(c["attempts"] for c in connects)
    print(f"{'    connects tried (most)':38} {most:9d}")


#: how long each restored guest is left to itself, as a test would use it (a spare QEMU for
#: the next restore starts meanwhile, as it does during a test under ``isolation: test``)
TEST_SECONDS = 0.3
#: the parts of a restore (RestoreParts), as the rows name them
PARTS = (
    ("let_go", "done guest let go (stops meanwhile)"),
    ("start", "QEMU started, set up"),
    ("load", "state loaded, guest running"),
    ("ssh", "SSH connected"),
    ("check", "checks: clock, entropy, taint"),
)
#: the parts of the SSH connect (harness.machine.ssh.ConnectParts)
SSH_PARTS = (
    ("tcp", "TCP connect (QEMU's forward)"),
    ("banner", "guest's first byte (SYN, fork)"),
    ("kex", "key exchange, host key checked"),
    ("auth", "public key auth"),
)


def _report(
    floors: list[float],
    ready: list[float],
    first: list[float],
    warm: list[float],
    first_outcome: str,
) -> None:
    f, r, fr = statistics.median(floors), statistics.median(ready), statistics.median(first)
    w = statistics.median(warm)
    print(f"{'measurement':38} {'median s':>9} {'ratio':>7}")
    print(f"{'floor (boot + poweroff, same flags)':38} {f:9.2f} {1:7.2f}")
    print(f"{'harness boot-to-ready (SSH answers)':38} {r:9.2f} {r / f:7.2f}  (aim <= 1.30)")
    print(f"{'fresh boot to first result':38} {fr:9.2f} {fr / f:7.2f}  ({first_outcome})")
    print(
        f"{'warm per-test overhead (trivial test)':38} {w:9.3f} {'':7}  "
        f"(aim < 0.2; min {min(warm):.3f}, max {max(warm):.3f}, n={len(warm)})"
    )


if __name__ == "__main__":
    sys.exit(main())
