"""Ready guests kept across runs: ``snapshot: keep`` / ``--keep-snapshots``.

A saved state (:mod:`.snapshot`) normally lives for one run.  Kept, it goes
into the cache under a key made of everything that shapes the guest, so the
next run's first test starts from a restore instead of a cold boot:

* the kernel image's bytes and the initrd's (which hold the modules, the
  guest userland layers, the compiled tests and the SSH keys),
* the guest's shape (memory, CPUs, NUMA nodes, command line, THP), the
  accelerator and the architecture,
* the QEMU binary (path, size and mtime: an upgrade changes it) and the
  state format of this module.

The restored guest carries the SSH keys and the ready-line nonce of the run
that saved it, so those belong to the cache, not to a results directory:
kernels with kept snapshots boot with the cache's own key pair
(:meth:`SnapshotCache.keys`), which makes their initrd, and so the key, the
same from run to run.

One entry per kernel name: storing a new one (its key changed because the
kernel was rebuilt, a test changed, the command line grew) drops the older
ones of that name.  The whole cache is bounded in size; the least recently
used entries go first.  A process killed while saving leaves a scratch
directory carrying its pid, removed by the next cache opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness.cache import cache_root, sha256_of
from harness.errors import ConfigError
from harness.guest.keys import GuestKeys, make_keys
from harness.machine.base import MachineConfig, Ready
from harness.machine.guest_ram import disk_bytes
from harness.machine.snapshot import SavedState, sweep_orphans

#: changes whenever what an entry holds, or how it is restored, changes
FORMAT = "2"  # 2: the RAM in files beside the state (guest_ram)
#: where the cache is (default: <kharness cache>/snapshots)
DIR_ENV = "KHARNESS_SNAPSHOT_CACHE"
#: its size bound in MiB (default :data:`DEFAULT_LIMIT_MIB`)
LIMIT_ENV = "KHARNESS_SNAPSHOT_CACHE_MIB"
DEFAULT_LIMIT_MIB = 4096
_SCRATCH = ".saving-"  # + pid + random: a save in progress
_STATE = "guest.state"
_ENTRY = "entry.json"


@dataclass(frozen=True)
class Kept:
    """One cache entry as its ``entry.json`` describes it."""

    kernel: str
    key: str
    nonce: str
    ready: Ready
    saved_seconds: float
    size: int
    ram_nodes: int = 0  # RAM files beside the state file


def snapshot_key(cfg: MachineConfig, backend: str, emulator: Path | None) -> str:
    """The key of a guest of ``cfg``: changes with anything that shapes the restored guest.

    ``port_range`` is left out on purpose (the restoring QEMU forwards its own
    port), and so is the accelerator's reason (only the accelerator counts).
    """
    digest = hashlib.sha256(f"kharness-snapshot {FORMAT}\0{backend}\0".encode())
    digest.update(sha256_of(cfg.payload.kernel.vmlinuz).encode())
    if cfg.files.initrd is not None:
        digest.update(sha256_of(cfg.files.initrd).encode())
    digest.update(f"\0{cfg.files.tests_dir}\0{cfg.payload.arch.name}".encode())
    digest.update(f"\0{cfg.accel.accel}\0{sorted(asdict(cfg.shape).items())}".encode())
    if emulator is not None:
        stat = emulator.stat()
        digest.update(f"\0{emulator}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]


def limit_bytes() -> int:
    """The cache's size bound: $KHARNESS_SNAPSHOT_CACHE_MIB, else 4 GiB; ConfigError if bad."""
    raw = os.environ.get(LIMIT_ENV, "").strip() or str(DEFAULT_LIMIT_MIB)
    if not raw.isdigit():
        raise ConfigError(
            f"${LIMIT_ENV}={raw!r} is not a size in MiB; set a number (default "
            f"{DEFAULT_LIMIT_MIB}) or unset it"
        )
    return int(raw) * 1024 * 1024


class SnapshotCache:
    """The directory of kept ready guests, an entry per kernel, bounded in size."""

    def __init__(self, root: Path | None = None, limit: int | None = None) -> None:
        override = os.environ.get(DIR_ENV)
        self.root = root or (Path(override) if override else cache_root() / "snapshots")
        self.root.mkdir(parents=True, exist_ok=True)
        self.limit = limit_bytes() if limit is None else limit
        sweep_orphans(self.root, _SCRATCH)
        self._sweep_old_formats()

    def _sweep_old_formats(self) -> None:
        """Remove entries an older harness wrote: none of them can be restored any more,
        and the size bound only sees entries of this format."""
        for path in self.root.iterdir():
            try:
                data = json.loads((path / _ENTRY).read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("format") != FORMAT:
                shutil.rmtree(path, ignore_errors=True)

    def keys(self) -> GuestKeys:
        """The key pair every kept guest was booted with (made once)."""
        return make_keys(self.root / "keys")

    def _entry_dir(self, kernel: str, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in kernel)
        return self.root / f"{safe}-{key}"

    def lookup(self, kernel: str, key: str, cfg: MachineConfig) -> SavedState | None:
        """The kept state of ``kernel`` under ``key``, ready to restore into ``cfg``; or None."""
        entry = self._entry_dir(kernel, key)
        kept = _read_entry(entry)
        if kept is None or kept.key != key or not (entry / _STATE).is_file():
            return None
        state = SavedState(
            entry / _STATE, cfg, kept.nonce, kept.ready, kept.saved_seconds, kept.size,
            kept.ram_nodes,
        )  # fmt: skip
        if not all(f.is_file() for f in state.ram):
            return None
        os.utime(entry / _ENTRY)  # least recently used goes first
        return state

    def store(
        self,
        kernel: str,
        key: str,
        save: Callable[[Path], SavedState],
        log: Callable[[str], None],
    ) -> SavedState:
        """Save through ``save`` straight into a new entry; older entries of ``kernel`` go.

        ``save`` writes the state to the path it is given (the scratch
        directory's state file) and says what it saved; the entry appears
        only once it is complete.  Raises what ``save`` raises.
        """
        scratch = self.root / f"{_SCRATCH}{os.getpid()}-{key}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        try:
            state = save(scratch / _STATE)
            kept = Kept(
                kernel, key, state.nonce, state.ready, state.seconds, state.size, state.ram_nodes
            )
            (scratch / _ENTRY).write_text(json.dumps(_entry_json(kept), indent=1) + "\n")
            final = self._entry_dir(kernel, key)
            shutil.rmtree(final, ignore_errors=True)
            scratch.rename(final)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        for old in self.entries():
            if old[1].kernel == kernel and old[1].key != key:
                log(f"{kernel}: kept snapshot {old[1].key[:12]} dropped (its key changed)")
                shutil.rmtree(old[0], ignore_errors=True)
        for gone in self.bound(keep=final):
            log(f"kept snapshot {gone.name} dropped: the cache is over {self.limit >> 20} MiB")
        return replace(state, path=final / _STATE)

    def drop(self, kernel: str, key: str) -> None:
        """Remove an entry (a restore from it failed: it is not to be tried again)."""
        shutil.rmtree(self._entry_dir(kernel, key), ignore_errors=True)

    def entries(self) -> Iterator[tuple[Path, Kept]]:
        """Every complete entry with its description."""
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(".") or path.name == "keys" or not path.is_dir():
                continue
            kept = _read_entry(path)
            if kept is not None:
                yield path, kept

    def bound(self, keep: Path | None = None) -> list[Path]:
        """Remove least recently used entries until the cache fits its limit; those removed."""
        ranked = sorted(((_used(p), p, _size(p)) for p, _ in self.entries()), key=lambda t: t[0])
        total = sum(size for _, _, size in ranked)
        removed = []
        for _, path, size in ranked:
            if total <= self.limit:
                break
            if path == keep:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            total -= size
        return removed


def _entry_json(kept: Kept) -> dict[str, object]:
    return {**asdict(kept), "format": FORMAT}


def _read_entry(path: Path) -> Kept | None:
    try:
        data = json.loads((path / _ENTRY).read_text())
        if data.get("format") != FORMAT:
            return None
        names = ("kernel", "key", "nonce", "saved_seconds", "size", "ram_nodes")
        fields = {k: data[k] for k in names}
        return Kept(**fields, ready=Ready(**data["ready"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _used(path: Path) -> float:
    try:
        return (path / _ENTRY).stat().st_mtime
    except OSError:
        return 0.0


def _size(path: Path) -> int:
    """Bytes on disk (a RAM file is sparse: its length is the guest's whole memory)."""
    return sum(disk_bytes(f) for f in path.rglob("*") if f.is_file())
