"""A kernel's saved ready guest: save it once, restore it for a fresh guest, check it first.

After the first cold boot of a kernel is ready, and before its first test,
the guest's state is saved (:mod:`harness.machine.snapshot`); when the next
test needs a fresh guest (:func:`.policy.needs_fresh_guest`, or ``isolation:
test``) a new QEMU loads that state instead of booting.  A restored guest
is not trusted until it has been checked: its channel answers, its clock is
set to the host's (it lives in the past otherwise), its entropy pool gets
fresh bytes (every restore would otherwise start from the same pool), and its
taint is what the saved guest's was.  Anything wrong falls back to a cold
boot, once: the snapshot is then dropped for the rest of the run, and the
evidence (``boot-N/restore.json``, kernel.json's ``starts.notes``) says why.

Under ``isolation: test`` every test's guest is such a restore: the done
guest's QEMU is let go in the background (:mod:`.life`) and a new one maps
the saved RAM copy-on-write (:mod:`harness.machine.guest_ram`).  That beats
going back inside the running QEMU (``loadvm``), which streams the whole RAM
back: measured on 2026-12-04, 0.07 s against 0.27 s to a running guest.

Each restore into a new QEMU is a boot directory of its own with its own console stream and
watcher, so a test's window on a restored guest is cut exactly as on a
cold-booted one (the kernel's printk continues from the saved state; the
console watcher sees only what the restored guest prints from then on).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from harness.errors import GuestUnreachable, HarnessError
from harness.machine.base import Backend, Channel, Machine, MachineConfig, Ready
from harness.machine.guest_ram import shm_dir
from harness.machine.halt import HaltAware
from harness.machine.snapshot import (
    SavedState,
    SnapshotBackend,
    SnapshotMachine,
    StateDir,
)
from harness.machine.snapshot_cache import SnapshotCache, snapshot_key
from harness.machine.ssh import ConnectParts
from harness.results import evidence
from harness.results.starts import GuestStarts
from harness.session.spare import Spares

#: bytes of host randomness mixed into a restored guest's entropy pool
RESEED_BYTES = 512


@dataclass(frozen=True)
class RestoreParts:
    """Where one restore's seconds went (bench/bench_boot.py prints each as a row)."""

    start: float = 0.0  # a new QEMU spawned and set up (0 in place)
    load: float = 0.0  # the saved state loaded, the guest running
    ssh: float = 0.0  # SSH connected
    check: float = 0.0  # clock, entropy, taint (one command)
    connect: ConnectParts | None = None  # the SSH connect's own parts, when the channel has them


@dataclass(frozen=True)
class Restored:
    """A restored guest checked and connected, or why not."""

    machine: Machine | None = None
    channel: Channel | None = None
    ready: Ready | None = None
    problem: str | None = None
    seconds: float = 0.0
    parts: RestoreParts = RestoreParts()

    def evidence(self, between_tests: bool = False) -> dict[str, object]:
        """restore.json: the time, its parts, why it failed, and whether the guest before
        was alive and let go for it (between tests) rather than gone (a crash)."""
        whole = replace(self.parts, connect=None)
        parts = {k: round(v, 3) for k, v in asdict(whole).items() if k != "connect"}
        connect = self.parts.connect
        ssh = {k: round(v, 3) for k, v in asdict(connect).items()} if connect else None
        return {
            "seconds": round(self.seconds, 3),
            "problem": self.problem,
            "between_tests": between_tests,
            "parts": parts if self.problem is None else None,
            "ssh_parts": ssh if self.problem is None else None,
        }


def health_command(epoch: int, seed: bytes) -> str:
    """The guest command that readies a restored guest and reports its taint.

    The host's bytes into the pool (``seed``, base64: the pool mixes whatever is
    written), the taint to compare, then the clock (tests and TLS care about the
    date).  One process besides the shell, no stdin: right after a restore QEMU
    translates every guest code path afresh (loading a state flushes its code cache),
    so each ``cat`` and each round trip costs there; ``echo`` and ``read`` are
    the shell's own, and the shell execs ``date`` in its place.
    """
    text = base64.b64encode(seed).decode()
    return (
        f"echo {text} > /dev/urandom && "
        '{ read -r t < /proc/sys/kernel/tainted; echo "$t"; } && '
        f"exec date -s @{epoch} >/dev/null"
    )


def health_problem(exit_code: int | None, stdout: str, stderr: str, taint: int) -> str | None:
    """Why a restored guest's check says it is unhealthy; None when it is sound."""
    if exit_code != 0:
        return f"the check exited {exit_code}: {stderr.strip()[-200:] or 'no output'}"
    words = stdout.split()
    if not words or not words[-1].isdigit():
        return f"the check printed no taint ({stdout.strip()[-200:]!r})"
    if int(words[-1]) != taint:
        return f"the restored kernel's taint is {words[-1]}, the saved guest's was {taint}"
    return None


def _checked(
    machine: Machine, ready: Ready, taint: int, timeout: float, started: float, start: float
) -> Restored:
    """Connect to a restored guest and check it; the parts of its time."""
    loaded = time.monotonic()
    try:
        channel = machine.connect(ready, timeout)
    except GuestUnreachable as exc:
        return Restored(problem=f"its channel did not answer: {exc}")
    connected = time.monotonic()
    problem = check_restored(channel, taint)
    if problem is not None:
        channel.close()
        return Restored(problem=problem)
    now = time.monotonic()
    connect = getattr(channel, "parts", None)
    parts = RestoreParts(
        start,
        loaded - started - start,
        connected - loaded,
        now - connected,
        connect if isinstance(connect, ConnectParts) else None,
    )
    return Restored(machine, channel, ready, seconds=now - started, parts=parts)


def check_restored(channel: Channel, taint: int) -> str | None:
    """Set the clock, reseed, re-read the taint; why the guest is unhealthy, if it is."""
    try:
        result = channel.run(health_command(int(time.time()), os.urandom(RESEED_BYTES)), 20)
    except GuestUnreachable as exc:
        return f"the check could not run: {exc}"
    if result.timed_out:
        return "the check timed out"
    return health_problem(result.exit_code, result.stdout, result.stderr, taint)


@dataclass
class Snapshots:
    """One kernel's saved guest (at most one), what restoring it cost, and why not."""

    kernel: str
    log: Callable[[str], None]
    enabled: bool = True  # kernels.yaml snapshot:, --no-snapshots
    state: SavedState | None = None
    kept: SnapshotCache | None = None  # snapshot: keep: states live in the cache across runs
    _key: str | None = None  # this kernel's key in the cache, once computed
    _from_cache: bool = False  # the state is an earlier run's
    _kept_note: str | None = None  # GuestStarts.kept
    _dir: StateDir | None = None
    _cold: list[float] = field(default_factory=list)
    _restores: list[float] = field(default_factory=list)
    _notes: list[str] = field(default_factory=list)
    _saved: tuple[float, int] | None = None  # (seconds, bytes) of the save, kept after removal
    restored: list[RestoreParts] = field(default_factory=list)  # every restore's parts
    spares: Spares = field(init=False)  # the next restore's QEMU, started ahead

    def __post_init__(self) -> None:
        self.spares = Spares(self.kernel, self.log)

    def cold_boot(self, seconds: float) -> None:
        """Count a cold boot (start to channel connected)."""
        self._cold.append(seconds)

    def supported(self, backend: Backend, name: str, cfg: MachineConfig) -> bool:
        """Whether ``backend`` can save guests of ``cfg``; says once why not."""
        if not self.enabled:
            return False
        why = (
            backend.cannot_snapshot(cfg)
            if isinstance(backend, SnapshotBackend)
            else f"the {name} backend cannot snapshot a guest"
        )
        if why is not None:
            self.give_up(f"{why}: every fresh guest is a cold boot")
        return why is None

    def find_kept(
        self, cache: SnapshotCache | None, backend: Backend, name: str, cfg: MachineConfig
    ) -> None:
        """Before the first boot: take an earlier run's state of this guest from ``cache``
        (snapshot: keep), if it holds one; the ready guest is saved there later if not."""
        if cache is None or self._key is not None or self.state is not None:
            return
        self.kept = cache
        if not self.supported(backend, name, cfg):
            return
        assert isinstance(backend, SnapshotBackend)
        self._key = snapshot_key(cfg, name, backend.emulator_path(cfg))
        state = self.kept.lookup(self.kernel, self._key, cfg)
        if state is not None:
            self.state, self._from_cache = state, True
            self.log(
                f"{self.kernel}: a kept ready guest ({self._key[:12]}, saved by an earlier run) "
                "is restored instead of a cold boot"
            )

    def save(self, machine: Machine, ready: Ready, memory: int = 0) -> str | None:
        """Save the ready guest once (the first cold boot); why it failed, if it did.

        ``memory``: the guest's bytes of memory, what its state may take at most.
        """
        if self.state is not None or not self.enabled or not isinstance(machine, SnapshotMachine):
            return None
        try:
            if self.kept is not None and self._key is not None:
                self.state = self.kept.store(
                    self.kernel, self._key, lambda path: machine.save_state(path, ready), self.log
                )
                self._kept_note = "stored"
            else:
                # in memory where there is room for it: a state is at most the guest's memory
                self._dir = self._dir or StateDir(shm_dir(memory))
                self.state = machine.save_state(self._dir.file(), ready)
            self._saved = (self.state.seconds, self.state.size)
        except HarnessError as exc:
            self.give_up(f"saving the ready guest failed ({exc}): every fresh guest is a cold boot")
            return str(exc)
        self.log(
            f"{self.kernel}: ready guest saved in {self.state.seconds:.2f}s "
            f"({self.state.size / 1e6:.0f} MB); fresh guests are restored from it"
        )
        return None

    def restorable(self, cfg: MachineConfig) -> SavedState | None:
        """The saved state if it fits a guest of ``cfg``."""
        if self.state is None or not self.enabled:
            return None
        return self.state if self.state.config == cfg else None

    def restore(
        self,
        backend: Backend,
        name: str,
        boot_dir: Path,
        timeout: float,
        between_tests: bool = False,
    ) -> Restored:
        """Start a machine from the saved state, connect, check it; stopped again if unsound.

        The boot directory gets a boot.json like a cold boot's (``name`` is the
        backend's) and a restore.json: the restore's time, or why it failed.
        """
        assert self.state is not None and isinstance(backend, SnapshotBackend)
        config = self.state.config  # give_up() below drops the state
        started = time.monotonic()
        spare = self.spares.take(self.state, boot_dir)
        machine = spare or backend.restore_machine(self.state, boot_dir)
        try:
            restored = self._start(machine, timeout, started, started_ahead=spare is not None)
        except BaseException:  # Ctrl-C mid-restore: nothing may be left running
            machine.stop()
            raise
        if restored.problem is not None:
            restored = replace(restored, seconds=time.monotonic() - started)
            machine.stop()
            if self._from_cache:
                self._drop_kept(f"restoring the kept ready guest failed ({restored.problem})")
            else:
                self.give_up(f"restore into {boot_dir.name} failed ({restored.problem}); cold boot")
        else:
            self._restores.append(restored.seconds)
            self.restored.append(restored.parts)
            if self._from_cache and self._kept_note is None:
                self._kept_note = "restored"
        ready = restored.ready if restored.problem is None else None
        evidence.write_boot(boot_dir, name, config, ready, restored.seconds)
        evidence.write_json(boot_dir / "restore.json", restored.evidence(between_tests))
        return restored

    def _start(
        self, machine: Machine, timeout: float, started: float, started_ahead: bool = False
    ) -> Restored:
        assert self.state is not None
        try:
            if not started_ahead:
                machine.start()
        except HarnessError as exc:
            return Restored(problem=f"QEMU did not start: {exc}")
        spawned = time.monotonic()
        ready = machine.wait_ready(timeout)
        if ready is None:
            halted = machine.halted() if isinstance(machine, HaltAware) else None
            return Restored(
                problem=f"QEMU never ran the saved guest ({halted or machine.exit_status()})"
            )
        return _checked(
            machine, ready, self.state.ready.boot_taint, timeout, started, spawned - started
        )

    def start_spare(self, backend: Backend, scratch: Path) -> None:
        """Start the next restore's QEMU now, in ``scratch`` (:mod:`.spare`)."""
        if self.state is not None and self.enabled:
            self.spares.start(backend, self.state, scratch)

    def _drop_kept(self, why: str) -> None:
        """An earlier run's state would not restore: drop it; a cold boot saves a new one."""
        assert self.kept is not None and self._key is not None
        self.kept.drop(self.kernel, self._key)
        self._notes.append(f"{why}: dropped from the cache; cold boot, saved anew")
        self.log(f"{self.kernel}: {self._notes[-1]}")
        self.state, self._from_cache = None, False

    def give_up(self, why: str) -> None:
        """No more restores for this kernel: say why, drop the saved state."""
        if self._notes and self._notes[-1] == why:
            return
        self.log(f"{self.kernel}: {why}")
        self._notes.append(why)
        self.enabled = False
        self.remove()

    def remove(self) -> None:
        """Remove the run's saved state from disk (idempotent); no restore after this.

        A kept state stays in the cache: only this run lets go of it.
        """
        self.spares.drop()
        self.state = None
        if self._dir is not None:
            self._dir.remove()
            self._dir = None

    def starts(self) -> GuestStarts:
        """The record of this kernel's guest starts."""
        seconds, size = self._saved or (None, None)
        return GuestStarts(
            tuple(self._cold),
            tuple(self._restores),
            seconds,
            size,
            tuple(self._notes),
            self._kept_note,
        )
