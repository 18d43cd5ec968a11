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

After a crash a restore goes into a *new* QEMU: after a panic the guest
reboots (``panic=-1``) and QEMU exits (``-no-reboot``), so a same-process
``loadvm`` is impossible after the commonest crash.  Between the two ways of
loading into a new process the times are the same; migration to a file wins
because it needs no drive at all.  Between tests under ``isolation: test``
the QEMU is alive, and it goes back in place (:func:`save_in_place` once,
:func:`load_in_place` per test): ``savevm`` needs a qcow2, so one is added
at run time as an ``if=none`` drive (no device: the guest sees no disk a
cold boot lacks), in a scratch directory removed with the machine.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness.errors import InfraError
from harness.machine.base import Machine, MachineConfig, Ready
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
class SnapshotMachine(Protocol):
    """A running machine whose state can be saved."""

    def save_state(self, path: Path, ready: Ready) -> SavedState:
        """Save the ready guest to ``path`` and let it run on (raises InfraError)."""
        ...


@runtime_checkable
class RewindMachine(Protocol):
    """A running machine that can go back to a state of its own without a new process."""

    def keep_pristine(self) -> float:
        """Save the guest as it is now, inside this process; the seconds it took (InfraError)."""
        ...

    def rewind(self) -> float:
        """Load that state again, the guest running; the seconds it took (InfraError)."""
        ...


#: the internal snapshot a rewindable QEMU keeps its ready guest under
PRISTINE = "kharness-pristine"


def save_in_place(monitor: MonitorSocket, scratch: Path, timeout: float = 120.0) -> float:
    """``savevm`` the running guest into a scratch qcow2 added now; the seconds it took.

    The drive is ``if=none``: no device, so the guest sees no disk a cold
    boot lacks; it only holds the vmstate ``loadvm`` reads back.
    """
    started = time.monotonic()
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise InfraError("qemu-img is missing (apt-get install qemu-utils): no in-place restore")
    made = subprocess.run(
        [qemu_img, "create", "-q", "-f", "qcow2", str(scratch), "1M"],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        raise InfraError(f"qemu-img create {scratch} failed: {made.stderr.strip()[-200:]}")
    spec = f"if=none,id=kharness-vmstate,format=qcow2,file={str(scratch).replace(',', ',,')}"
    _hmp(monitor, f"drive_add 0 {spec}", 10, "adding the vmstate drive")
    _hmp(monitor, f"savevm {PRISTINE}", timeout, "savevm")
    return time.monotonic() - started


def load_in_place(monitor: MonitorSocket, timeout: float = 60.0) -> float:
    """``loadvm`` the pristine guest in the running QEMU, running again; the seconds it took."""
    started = time.monotonic()
    _hmp(monitor, f"loadvm {PRISTINE}", timeout, "loadvm")
    if "VM status: running" not in _hmp(monitor, "info status", 10, "info status"):
        _hmp(monitor, "cont", 10, "cont")
    return time.monotonic() - started


def _hmp(monitor: MonitorSocket, line: str, timeout: float, what: str) -> str:
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


def save_to(monitor: MonitorSocket, path: Path, timeout: float = 120.0) -> float:
    """Migrate the running guest into ``path``, resume it; the seconds it took.

    HMP's ``migrate`` returns once the migration ended; the guest is then
    paused ("postmigrate") and ``cont`` lets it run on.
    """
    started = time.monotonic()
    try:
        monitor.command(f'migrate "exec:cat > {shlex.quote(str(path))}"', timeout)
        info = monitor.command("info migrate", 10)
        monitor.command("cont", 10)
    except OSError as exc:
        raise InfraError(f"saving the guest's state through QEMU's monitor failed: {exc}") from exc
    if "Migration status: completed" not in info:
        status = next((ln for ln in info.splitlines() if "status" in ln), info.strip()[-200:])
        raise InfraError(f"saving the guest's state did not complete ({status.strip()})")
    return time.monotonic() - started


def wait_running(monitor: MonitorSocket, alive: Callable[[], bool], timeout: float) -> bool:
    """Wait until a restoring QEMU says its guest runs; False if it died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            status = monitor.command("info status", 5)
        except OSError:
            status = ""  # the monitor is not listening yet
        if "VM status: running" in status:
            return True
        if halt_in_status(status) is not None:
            return False  # QEMU stopped the guest for good: no use waiting
        time.sleep(0.02)
    return False
