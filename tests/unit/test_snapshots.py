"""Snapshots: the pure parts of saving a ready guest and checking a restored one.

Restoring itself needs a real QEMU (tests/integration/test_snapshots.py); the
replay backend has no saved state to load, so a replayed console cannot
express a restore.  Here: the health check's verdict, the records, the
kernels.yaml keys, the monitor's prompt reading, the state directory's
removal, and the session's bookkeeping with small recording fakes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.config import Isolation, load_kernels
from harness.errors import ConfigError, InfraError
from harness.machine import process
from harness.machine.base import Ready
from harness.machine.guest_ram import copy_sparse, ram_files
from harness.machine.monitor import MonitorSocket, _read_prompt
from harness.machine.snapshot import (
    PREFIX,
    SavedState,
    StateDir,
    incoming_args,
    incoming_devices,
    save_to,
    wait_running,
)
from harness.results.records import KernelRecord
from harness.results.starts import GuestStarts
from harness.session.saved_guest import RESEED_BYTES, Snapshots, health_command, health_problem

READY = Ready(2222, 1.0, 0, "6.12.0")


def test_health_command_sets_clock_reseeds_and_reads_taint() -> None:
    seed = bytes(range(256)) * 2
    cmd = health_command(1_700_000_000, seed)
    assert cmd.startswith(f"echo {base64.b64encode(seed).decode()} > /dev/urandom && ")
    assert "read -r t < /proc/sys/kernel/tainted" in cmd
    assert cmd.endswith("exec date -s @1700000000 >/dev/null")


def test_health_command_runs_in_a_shell(tmp_path: Path) -> None:
    """The real command in a real sh, with the guest's paths swapped for files here."""
    (tmp_path / "tainted").write_text("4096\n")
    cmd = health_command(1_700_000_000, os.urandom(RESEED_BYTES))
    cmd = cmd.replace("/dev/urandom", str(tmp_path / "pool"))
    cmd = cmd.replace("/proc/sys/kernel/tainted", str(tmp_path / "tainted"))
    cmd = cmd.replace("exec date -s", "exec echo")  # never the host's clock
    done = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert health_problem(done.returncode, done.stdout, done.stderr, 4096) is None
    pool = base64.b64decode((tmp_path / "pool").read_text())
    assert len(pool) == RESEED_BYTES


@pytest.mark.parametrize(
    ("rc", "out", "err", "problem"),
    [
        (0, "0\n", "", None),
        (1, "", "date: invalid date", "exited 1: date: invalid date"),
        (0, "", "", "printed no taint"),
        (0, "512\n", "", "taint is 512, the saved guest's was 0"),
        (None, "", "", "exited None"),
    ],
)
def test_health_problem(rc: int | None, out: str, err: str, problem: str | None) -> None:
    found = health_problem(rc, out, err, 0)
    assert found is None if problem is None else problem in (found or "")


def test_guest_starts_round_trip_and_old_summaries() -> None:
    starts = GuestStarts((4.1234,), (0.51, 0.49), 1.0, 132_000_000, ("why",))
    record = KernelRecord("k", "debian", starts=starts)
    back = KernelRecord.from_json("k", record.to_json())
    assert back.starts == GuestStarts((4.123,), (0.51, 0.49), 1.0, 132_000_000, ("why",))
    old = KernelRecord("k", "debian").to_json()
    assert "starts" not in old
    assert KernelRecord.from_json("k", old).starts is None


def _yaml(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "bzImage").write_bytes(b"\0" * 0x202 + b"HdrS" + b"\0" * 0x1FA)
    path = tmp_path / "kernels.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            kernels:
              - name: k
                image: {tmp_path / "bzImage"}
            """
        )
        + "".join(f"    {line}\n" for line in extra.splitlines())
    )
    return path


def test_isolation_and_snapshot_keys(tmp_path: Path) -> None:
    spec = load_kernels(_yaml(tmp_path, "isolation: test\nsnapshot: false"))[0]
    assert spec.isolation is Isolation.TEST and spec.snapshot is False
    default = load_kernels(_yaml(tmp_path, ""))[0]
    assert default.isolation is Isolation.KERNEL and default.snapshot is True


def test_bad_isolation_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="isolation 'tests' is not one of kernel, test"):
        load_kernels(_yaml(tmp_path, "isolation: tests"))


def test_incoming_args_quote_the_path() -> None:
    assert incoming_args(Path("/tmp/a b/guest.state")) == [
        "-incoming",
        "exec:cat '/tmp/a b/guest.state'",
    ]


def test_monitor_answer_is_the_text_between_prompts() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.sendall(b"QEMU 7.2 monitor\r\n(qemu) ")
        assert "QEMU 7.2 monitor" in _read_prompt(left)
        right.sendall(b"VM status: running\r\n(qemu) ")
        assert _read_prompt(left).strip() == "VM status: running"
        right.close()
        with pytest.raises(OSError, match="closed"):
            _read_prompt(left)


def test_state_dir_is_removed() -> None:
    state = StateDir()
    state.file().write_bytes(b"x")
    assert state.path.is_dir()
    state.remove()
    state.remove()
    assert not state.path.exists()


def test_a_killed_owners_state_is_swept_by_the_next_one(tmp_path: Path) -> None:
    """A lost worker never cleans up: the next state directory made removes its orphan."""
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    orphan = tmp_path / f"{PREFIX}{dead.pid}-abcd"
    orphan.mkdir()
    (orphan / "guest.state").write_bytes(b"x" * 1024)
    mine = tmp_path / f"{PREFIX}{os.getpid()}-live"  # an owner still alive: kept
    mine.mkdir()
    foreign = tmp_path / f"{PREFIX}nopid"  # no pid in the name: not ours to judge
    foreign.mkdir()
    state = StateDir(tmp_path)
    assert not orphan.exists() and mine.is_dir() and foreign.is_dir()
    assert state.path.name.startswith(f"{PREFIX}{os.getpid()}-")
    state.remove()


@dataclass
class FakeMachine:
    """Records saves; fails them when told."""

    fail: bool = False
    saved: list[Path] = field(default_factory=list)

    def save_state(self, path: Path, ready: Ready) -> SavedState:
        if self.fail:
            raise InfraError("monitor gone")
        path.write_bytes(b"state")
        self.saved.append(path)
        return SavedState(path, None, "n", ready, 0.5, 5)  # type: ignore[arg-type]


def test_save_once_then_remove_leaves_nothing() -> None:
    lines: list[str] = []
    snaps = Snapshots("k", lines.append)
    machine = FakeMachine()
    assert snaps.save(machine, READY) is None  # type: ignore[arg-type]
    assert snaps.save(machine, READY) is None  # type: ignore[arg-type]
    assert len(machine.saved) == 1 and machine.saved[0].exists()
    assert "ready guest saved" in lines[0]
    snaps.remove()
    assert not machine.saved[0].parent.exists()
    assert snaps.starts().saved_bytes == 5  # the record outlives the file


def test_failed_save_turns_snapshots_off_and_says_why() -> None:
    lines: list[str] = []
    snaps = Snapshots("k", lines.append)
    assert snaps.save(FakeMachine(fail=True), READY) == "monitor gone"  # type: ignore[arg-type]
    assert not snaps.enabled and snaps.state is None
    assert "monitor gone" in snaps.starts().notes[0] and len(lines) == 1


class NoSnapshots:
    """A backend without restore_machine (like virtme, or the replay machine)."""

    name = "plain"


def test_backend_without_snapshots_is_noted_once() -> None:
    lines: list[str] = []
    snaps = Snapshots("k", lines.append)
    cfg = None
    assert not snaps.supported(NoSnapshots(), "virtme", cfg)  # type: ignore[arg-type]
    assert not snaps.supported(NoSnapshots(), "virtme", cfg)  # type: ignore[arg-type]
    assert lines == [
        "k: the virtme backend cannot snapshot a guest: every fresh guest is a cold boot"
    ]


def test_disabled_snapshots_never_restore() -> None:
    snaps = Snapshots("k", print, enabled=False)
    assert snaps.save(FakeMachine(), READY) is None  # type: ignore[arg-type]
    assert snaps.state is None and snaps.restorable(None) is None  # type: ignore[arg-type]


def _tiny_qemu(tmp_path: Path, extra: list[str]) -> tuple[process.GuestProcess, MonitorSocket]:
    """A real QEMU with no kernel (its firmware idles): what saving and loading act on."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    monitor = MonitorSocket(tmp_path)
    argv = [
        "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
        "-accel", "tcg", "-m", "32M", "-monitor", f"unix:{monitor.path},server=on,wait=off",
        *extra,
    ]  # fmt: skip
    guest = process.spawn(argv, tmp_path / "stderr.txt")
    os.close(guest.console_fd)
    assert monitor.greets(lambda: guest.proc.poll() is None, 30), guest.stderr_bytes()
    return guest, monitor


def _ram(path: Path, share: str) -> list[str]:
    backend = f"memory-backend-file,id=m0,size=32M,mem-path={path},share={share}"
    return ["-object", backend, "-machine", "pc,memory-backend=m0"]


def test_a_real_qemu_saves_its_devices_only_and_a_new_one_runs_on_a_private_copy(
    tmp_path: Path,
) -> None:
    """The RAM is copied beside the state while the guest is paused, not streamed; the
    restoring QEMU maps that copy copy-on-write, so the copy never changes."""
    live = tmp_path / "live.ram"
    state = tmp_path / "saved" / "guest.state"
    state.parent.mkdir()
    copy = ram_files(state, 1)[0]
    source, monitor = _tiny_qemu(tmp_path / "a", _ram(live, "on"))
    try:
        time.sleep(0.5)  # the firmware writes its tables into RAM
        copied = lambda: copy_sparse(live, copy) and None  # noqa: E731
        assert save_to(monitor, state, 30, while_paused=copied) > 0
        assert "VM status: running" in monitor.command("info status", 10), "runs on"
    finally:
        source.terminate()
        monitor.remove()
    assert state.stat().st_size < 1 << 20, "the devices only: the 32 MiB RAM is not in it"
    assert copy.stat().st_size == 32 << 20
    before = hashlib.sha256(copy.read_bytes()).hexdigest()
    restored, monitor = _tiny_qemu(tmp_path / "b", [*_ram(copy, "off"), "-incoming", "defer"])
    try:
        incoming_devices(monitor, state)
        assert wait_running(monitor, lambda: restored.proc.poll() is None, 30)
        dump = tmp_path / "low.bin"
        said = monitor.command(f'pmemsave 0 0x2000000 "{dump}"', 10)
        assert dump.is_file(), said[-300:]
        saved, seen = copy.read_bytes(), dump.read_bytes()
        pages = [i for x, y in ((0, 0x9F000), (0x100000, 32 << 20)) for i in range(x, y, 4096)]
        differ = sum(seen[i : i + 4096] != saved[i : i + 4096] for i in pages)
        written = sum(saved[i : i + 4096].count(0) < 4096 for i in pages)
        # the firmware runs on (its timer tick in the BIOS data area counts): a page or two
        assert written > 20 and differ <= 4, f"{differ} pages differ of {written} saved"
    finally:
        restored.terminate()
        monitor.remove()
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == before, "the copy is never written"
