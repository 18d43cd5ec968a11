"""The next restore's QEMU, started ahead while a test runs (``isolation: test``).

Under ``isolation: test`` every test's guest is a restore
(:mod:`.saved_guest`).  Starting its QEMU and loading the saved devices took
0.07 s of a 0.34 s restore (2026-12-04), so that work is done during the test
before: a spare QEMU starts in a scratch directory, loads the state with its
guest paused (``-incoming defer -S``), and the restore only renames the
directory to its boot's and resumes the guest.  A spare that failed, stopped,
or was made for another state is discarded and the restore starts its own.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness.machine.base import Backend, Machine
from harness.machine.snapshot import SavedState, SnapshotBackend, SpareMachine

#: how long a spare QEMU may take to load the saved devices ahead of its restore
LOAD_TIMEOUT = 30.0


@dataclass
class Spare:
    """A QEMU started ahead, in a scratch directory, for the next restore of ``state``."""

    machine: Machine
    state: SavedState
    directory: Path
    started: Future[None]

    def problem(self) -> str | None:
        """Wait for the start; why it failed, if it did."""
        try:
            self.started.result()
        except Exception as exc:  # any: said when the spare is not used
            return str(exc)
        return None

    def discard(self) -> None:
        """Stop it and remove its scratch directory."""
        self.problem()
        self.machine.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class Spares:
    """One kernel's spare QEMU (at most one) and the thread spares start in."""

    kernel: str
    log: Callable[[str], None]
    spare: Spare | None = None
    # Spares start in this one long-lived thread: a guest's QEMU dies with the thread that
    # forked it (PR_SET_PDEATHSIG follows the thread), so never a thread that ends sooner.
    _spawner: ThreadPoolExecutor | None = field(default=None, repr=False)

    def start(self, backend: Backend, state: SavedState, scratch: Path) -> None:
        """Start a spare for ``state`` in ``scratch``, in the background (none if one is
        there already, or the backend's machines cannot be started ahead)."""
        if self.spare is not None or not isinstance(backend, SnapshotBackend):
            return
        shutil.rmtree(scratch, ignore_errors=True)
        machine = backend.restore_machine(state, scratch)
        if not isinstance(machine, SpareMachine):
            return
        if self._spawner is None:
            self._spawner = ThreadPoolExecutor(1, thread_name_prefix=f"spare-{self.kernel}")

        def start() -> None:
            assert isinstance(machine, SpareMachine)
            machine.start()
            machine.preload(LOAD_TIMEOUT)

        self.spare = Spare(machine, state, scratch, self._spawner.submit(start))

    def take(self, state: SavedState, boot_dir: Path) -> Machine | None:
        """The spare, moved to ``boot_dir``, if it was started for ``state`` and runs."""
        spare, self.spare = self.spare, None
        if spare is None:
            return None
        failed = spare.problem()
        if failed is None and spare.state is state and spare.machine.running:
            try:
                assert isinstance(spare.machine, SpareMachine)
                spare.machine.move_to(boot_dir)
                return spare.machine
            except OSError as exc:
                failed = str(exc)
        self.log(f"{self.kernel}: the spare QEMU is not used ({failed or 'it stopped'})")
        spare.discard()
        return None

    def drop(self) -> None:
        """Stop the spare, if there is one, and the thread spares start in (idempotent)."""
        spare, self.spare = self.spare, None
        if spare is not None:
            spare.discard()
        if self._spawner is not None:
            self._spawner.shutdown()
            self._spawner = None
