"""A ready guest's state saved once and restored in a fresh QEMU: the machine's side.

Measured here on 2026-12-02 (QEMU 7.2, TCG, 2 shared cores, Debian 6.12
x86_64, 2 GiB, a ready initramfs guest; a cold boot-to-ready took 4 to 10 s
on that loaded machine):

* ``savevm`` onto a scratch qcow2 given as an extra drive: 0.72 s, 132 MB;
  ``-loadvm`` in a new QEMU: running after 0.47 s, SSH answered after 1.23 s;
  ``loadvm`` in the same QEMU: 0.30 s, SSH answered 0.14 s later;
* migration to a file (``migrate "exec:cat > FILE"``): 1.0 s, 132 MB;
  ``-incoming "exec:cat FILE"`` in a new QEMU: running after 0.50 s, SSH
  answered after 1.22 s.

A restore always goes into a *new* QEMU: after a panic the guest reboots
(``panic=-1``) and QEMU exits (``-no-reboot``), so a same-process ``loadvm``
is impossible after the commonest crash; and between tests, where the QEMU is
alive, a new process mapping the saved RAM copy-on-write
(:mod:`.guest_ram`) is ready in 0.07 s where ``loadvm`` in the running one
took 0.27 s (2026-12-04, a 3.2 s cold boot): ``loadvm`` streams the whole
RAM back.  Migration to a file wins over ``savevm`` because it needs no
drive at all; with the RAM in files the stream holds only the devices.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness.errors import InfraError
from harness.machine.base import Machine, MachineConfig, Ready
from harness.machine.guest_ram import IGNORE_SHARED, ram_files
from harness.machine.halt import halt_in_status
from harness.machine.monitor import MonitorSocket
from harness.machine.process import alive

#: the name of every state directory: the owner's pid follows, so orphans can be told
PREFIX = "kharness-state-"


@dataclass(frozen=True)
class SavedState:
    """A ready guest's state on disk and what is needed to load it again."""

    path: Path
    config: MachineConfig  # restored only into a machine of exactly this shape
    nonce: str  # the saved guest's command line carries it: the restoring QEMU's must too
    ready: Ready  # what the saved guest's ready line said (taint, release)
    seconds: float  # how long saving took
    size: int  # bytes on disk
    ram_nodes: int = 0  # RAM files beside ``path`` (guest_ram); 0: the RAM is in the stream

    @property
    def ram(self) -> tuple[Path, ...]:
        """The files holding the saved guest's RAM (none when it is in the stream)."""
        return ram_files(self.path, self.ram_nodes) if self.ram_nodes else ()


class StateDir:
    """A private temporary directory holding one kernel's saved state, removed for sure.

    :meth:`remove` is called when the kernel's session shuts down; should
    that never happen (an interrupt that skips it), the directory goes at
    interpreter exit at the latest.
    """

    def __init__(self, parent: Path | None = None) -> None:
        parent = parent or Path(tempfile.gettempdir())
        sweep_orphans(parent)
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, True)

    def file(self) -> Path:
        """Where the state is written."""
        return self.path / "guest.state"

    def remove(self) -> None:
        """Remove the directory and what it holds (idempotent)."""
        self._finalizer()


def sweep_orphans(parent: Path, prefix: str = PREFIX) -> list[Path]:
    """Remove the state directories of processes that are gone; the ones removed.

    A process killed outright (SIGKILL, a lost xdist worker: the remote-host
    test kills one) never runs its cleanup, and each state is some 130 MB.
    The owner's pid is in the name; a directory whose owner is alive, or
    whose name carries no pid, is left alone.
    """
    removed = []
    for path in parent.glob(f"{prefix}*"):
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@runtime_checkable
class SnapshotBackend(Protocol):
    """A backend whose machines can save a ready guest and start from a saved one."""

    def restore_machine(self, state: SavedState, boot_dir: Path) -> Machine:
        """A not yet started machine that loads ``state`` instead of booting."""
        ...

    def cannot_snapshot(self, cfg: MachineConfig) -> str | None:
        """Why guests of ``cfg`` cannot be snapshotted here; None when they can."""
        ...

    def emulator_path(self, cfg: MachineConfig) -> Path | None:
        """The program that saves and loads guests of ``cfg`` (a kept state's key holds it)."""
        ...


@runtime_checkable
class SpareMachine(Protocol):
    """A restoring machine that can be started ahead, in a scratch directory, and then
    become the boot it serves (its directory renamed)."""

    def move_to(self, boot_dir: Path) -> None:
        """Rename its boot directory to ``boot_dir`` (raises OSError)."""
        ...

    def preload(self, timeout: float) -> None:
        """Load the saved state ahead, the guest left paused (raises InfraError)."""
        ...


@runtime_checkable
class SnapshotMachine(Protocol):
    """A running machine whose state can be saved."""

    def save_state(self, path: Path, ready: Ready) -> SavedState:
        """Save the ready guest to ``path`` and let it run on (raises InfraError)."""
        ...


def hmp(monitor: MonitorSocket, line: str, timeout: float, what: str) -> str:
    """One HMP command; InfraError naming ``what`` if it failed or QEMU said Error."""
    try:
        answer = monitor.command(line, timeout)
    except OSError as exc:
        raise InfraError(f"{what} through QEMU's monitor failed: {exc}") from exc
    said = [ln.strip() for ln in answer.splitlines() if "Error" in ln or "error" in ln]
    if said:
        raise InfraError(f"{what} failed: {said[-1][:200]}")
    return answer


def incoming_args(path: Path) -> list[str]:
    """QEMU's arguments to start from the state at ``path`` (QEMU 7.2 has no ``file:`` URI)."""
    return ["-incoming", f"exec:cat {shlex.quote(str(path))}"]


def incoming_devices(monitor: MonitorSocket, path: Path, timeout: float = 10.0) -> None:
    """Migrate a saved guest's devices into a QEMU started with ``-incoming defer``.

    Its RAM is already there (files mapped copy-on-write): the stream holds
    none, which the capability tells this side too.
    """
    hmp(monitor, f"migrate_set_capability {IGNORE_SHARED} on", timeout, "the incoming capability")
    hmp(monitor, f'migrate_incoming "exec:cat {shlex.quote(str(path))}"', timeout, "loading")


def save_to(
    monitor: MonitorSocket,
    path: Path,
    timeout: float = 120.0,
    while_paused: Callable[[], None] | None = None,
) -> float:
    """Migrate the running guest into ``path``, resume it; the seconds it took.

    The migration runs detached (``migrate -d``) and its status is asked for
    until it ended: HMP's own wait looks once a second, which made every save
    last a second more than its 0.05 s (2026-12-04).  The guest is then paused
    ("postmigrate") and ``cont`` lets it run on.  With ``while_paused`` the
    stream leaves shared RAM out and that callable copies it meanwhile; the
    guest runs on whatever it raised.
    """
    started = time.monotonic()
    try:
        if while_paused is not None:
            hmp(monitor, f"migrate_set_capability {IGNORE_SHARED} on", 10, "the capability")
        hmp(monitor, f'migrate -d "exec:cat > {shlex.quote(str(path))}"', 10, "migrate")
        info = _migration_end(monitor, started + timeout)
        try:
            if while_paused is not None and "Migration status: completed" in info:
                while_paused()
        finally:
            monitor.command("cont", 10)
    except OSError as exc:
        raise InfraError(f"saving the guest's state through QEMU's monitor failed: {exc}") from exc
    if "Migration status: completed" not in info:
        status = next((ln for ln in info.splitlines() if "status" in ln), info.strip()[-200:])
        raise InfraError(f"saving the guest's state did not complete ({status.strip()})")
    return time.monotonic() - started


#: the states a migration ends in (QEMU's MigrationStatus)
_ENDED = ("completed", "failed", "cancelled")


def _migration_end(monitor: MonitorSocket, deadline: float) -> str:
    """``info migrate`` once the migration ended (or was cancelled at ``deadline``)."""
    while True:
        info = monitor.command("info migrate", 10)
        status = next((ln for ln in info.splitlines() if "Migration status:" in ln), "")
        if any(word in status for word in _ENDED):
            return info
        if time.monotonic() > deadline:
            monitor.command("migrate_cancel", 10)
            return monitor.command("info migrate", 10)
        time.sleep(0.005)


def wait_running(monitor: MonitorSocket, alive: Callable[[], bool], timeout: float) -> bool:
    """Wait until a restoring QEMU says its guest runs; False if it died or time ran out."""
    return wait_status(monitor, alive, timeout, "running")


def wait_status(
    monitor: MonitorSocket, alive: Callable[[], bool], timeout: float, wanted: str
) -> bool:
    """Wait until QEMU's run state is exactly ``wanted`` (``paused``: loaded with ``-S``, not
    ``paused (inmigrate)``); False if it died, stopped the guest for good or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            status = monitor.command("info status", 5)
        except OSError:
            status = ""  # the monitor is not listening yet
        if any(ln.strip() == f"VM status: {wanted}" for ln in status.splitlines()):
            return True
        if halt_in_status(status) is not None:
            return False  # QEMU stopped the guest for good: no use waiting
        time.sleep(0.005)
    return False
