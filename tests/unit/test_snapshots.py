"""Snapshots: the pure parts of saving a ready guest and checking a restored one.

Restoring itself needs a real QEMU (tests/integration/test_snapshots.py); the
replay backend has no saved state to load, so a replayed console cannot
express a restore.  Here: the health check's verdict, the records, the
kernels.yaml keys, the monitor's prompt reading, the state directory's
removal, and the session's bookkeeping with small recording fakes.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.config import Isolation, load_kernels
from harness.errors import ConfigError, InfraError
from harness.machine import process
from harness.machine.base import CommandResult, Ready
from harness.machine.monitor import MonitorSocket, _read_prompt
from harness.machine.snapshot import (
    PREFIX,
    SavedState,
    StateDir,
    incoming_args,
    load_in_place,
    save_in_place,
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


@dataclass
class FakeRewinder:
    """A machine that keeps and goes back to a pristine state; fails when told."""

    fail_keep: bool = False
    fail_rewind: bool = False
    running: bool = True
    rewinds: int = 0
    stopped: bool = False

    def keep_pristine(self) -> float:
        if self.fail_keep:
            raise InfraError("qemu-img is missing")
        return 0.3

    def rewind(self) -> float:
        if self.fail_rewind:
            raise InfraError("loadvm failed: Error: no snapshot")
        self.rewinds += 1
        return 0.1

    def connect(self, ready: Ready, timeout: float = 30.0) -> FakeChannel:
        return FakeChannel()

    def stop(self) -> None:
        self.stopped, self.running = True, False


@dataclass
class FakeChannel:
    """Answers the restored guest's check with taint 0."""

    closed: bool = False

    def run(self, command: str, timeout: float, stdin: bytes | None = None) -> CommandResult:
        seed = base64.b64decode(command.split()[1])
        assert len(seed) == RESEED_BYTES and stdin is None
        assert command == health_command(int(command.split("@")[1].split()[0]), seed)
        return CommandResult(command, 0, "0\n", "", 0.01, False)

    def close(self) -> None:
        self.closed = True


def test_in_place_restore_goes_back_checks_and_writes_its_parts(tmp_path: Path) -> None:
    snaps = Snapshots("k", print)
    machine, other = FakeRewinder(), FakeRewinder()
    assert not snaps.can_rewind(machine)  # nothing kept yet
    assert snaps.keep_pristine(machine, READY) == 0.3  # type: ignore[arg-type]
    assert snaps.can_rewind(machine) and not snaps.can_rewind(other)  # type: ignore[arg-type]
    restored = snaps.rewind(machine, tmp_path / "boot-2", 10)  # type: ignore[arg-type]
    assert restored.problem is None and restored.machine is machine and machine.rewinds == 1
    assert restored.ready == READY and restored.parts.start == 0.0
    written = json.loads((tmp_path / "boot-2" / "restore.json").read_text())
    assert written["in_place"] is True and written["problem"] is None
    assert set(written["parts"]) == {"start", "load", "ssh", "check"}
    assert snaps.starts().restores == (restored.seconds,) and len(snaps.rewound) == 1
    machine.running = False  # its QEMU died (a panic): no going back in it
    assert not snaps.can_rewind(machine)  # type: ignore[arg-type]


def test_failed_in_place_restore_stops_the_machine_and_ends_in_place_restores(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    snaps = Snapshots("k", lines.append)
    machine = FakeRewinder(fail_rewind=True)
    snaps.keep_pristine(machine, READY)  # type: ignore[arg-type]
    restored = snaps.rewind(machine, tmp_path / "boot-3", 10)  # type: ignore[arg-type]
    assert restored.machine is None and "no snapshot" in (restored.problem or "")
    assert machine.stopped and snaps.rewinds_off is not None
    assert not snaps.can_rewind(FakeRewinder())  # type: ignore[arg-type]
    assert snaps.enabled, "restores from the saved file go on"
    assert "fresh guests come from the saved file" in lines[-1]
    written = json.loads((tmp_path / "boot-3" / "restore.json").read_text())
    assert written["problem"] and written["parts"] is None


def test_keeping_fails_once_and_is_not_tried_again() -> None:
    snaps = Snapshots("k", print)
    assert snaps.keep_pristine(FakeRewinder(fail_keep=True), READY) is None  # type: ignore[arg-type]
    assert snaps.keep_pristine(FakeRewinder(), READY) is None  # type: ignore[arg-type]
    assert "qemu-img is missing" in (snaps.rewinds_off or "")


def _tiny_qemu(tmp_path: Path) -> tuple[process.GuestProcess, MonitorSocket]:
    """A real QEMU with no kernel (its firmware idles): what savevm/loadvm act on."""
    monitor = MonitorSocket(tmp_path)
    argv = [
        "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
        "-accel", "tcg", "-m", "32M", "-monitor", f"unix:{monitor.path},server=on,wait=off",
    ]  # fmt: skip
    guest = process.spawn(argv, tmp_path / "stderr.txt")
    os.close(guest.console_fd)
    assert monitor.greets(lambda: guest.proc.poll() is None, 30), guest.stderr_bytes()
    return guest, monitor


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) missing")
def test_a_real_qemu_goes_back_in_place_and_says_when_it_cannot(tmp_path: Path) -> None:
    guest, monitor = _tiny_qemu(tmp_path)
    try:
        with pytest.raises(InfraError, match="loadvm failed"):
            load_in_place(monitor)  # nothing saved yet: QEMU's error, named
        scratch = tmp_path / "pristine.qcow2"
        assert save_in_place(monitor, scratch) > 0 and scratch.stat().st_size > 32 * 1024
        assert "kharness-pristine" in monitor.command("info snapshots", 10)
        assert "kharness-vmstate" in monitor.command("info block", 10)
        load_in_place(monitor)
        assert "VM status: running" in monitor.command("info status", 10)
        assert "storage" not in monitor.command("info pci", 10).lower()
    finally:
        guest.terminate()
        monitor.remove()
