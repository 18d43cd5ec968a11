"""The cache of kept ready guests: its key, one entry per kernel, the size bound, orphans.

Real files in a temporary directory; the "saving" writes bytes where QEMU's
migration would (the save itself is the integration test's business).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.guest.keys import GuestKeys
from harness.kernels.base import KernelImage
from harness.machine.accel import Accel, AccelChoice
from harness.machine.base import BootFiles, GuestPayload, GuestShape, MachineConfig, Ready
from harness.machine.guest_ram import ram_files
from harness.machine.snapshot import SavedState
from harness.machine.snapshot_cache import LIMIT_ENV, SnapshotCache, snapshot_key

READY = Ready(40000, 3.2, 0, "6.12.0-test")


@pytest.fixture
def cfg(tmp_path: Path) -> MachineConfig:
    (tmp_path / "vmlinuz").write_bytes(b"kernel" * 1000)
    (tmp_path / "initrd").write_bytes(b"initrd" * 1000)
    keys = GuestKeys(tmp_path / "host", "ssh-ed25519 AAAA", tmp_path / "client", "ssh-ed25519 B")
    image = KernelImage(tmp_path / "vmlinuz", None, None, "test")
    payload = GuestPayload(image, (), keys)
    files = BootFiles("/opt/tests", tmp_path / "initrd")
    return MachineConfig(payload, files, AccelChoice(Accel.TCG, "no vmx"), GuestShape())


def _saver(cfg: MachineConfig, size: int, nonce: str = "abc123"):  # type: ignore[no-untyped-def]
    def save(path: Path) -> SavedState:
        path.write_bytes(b"\0" * size)
        return SavedState(path, cfg, nonce, READY, 0.7, size)

    return save


def test_key_follows_what_shapes_the_guest(cfg: MachineConfig, tmp_path: Path) -> None:
    qemu = tmp_path / "qemu-system-x86_64"
    qemu.write_bytes(b"qemu 7.2")
    key = snapshot_key(cfg, "qemu", qemu)
    assert key == snapshot_key(cfg, "qemu", qemu)
    assert key == snapshot_key(replace(cfg, port_range=(40000, 41000)), "qemu", qemu)
    assert key == snapshot_key(replace(cfg, accel=AccelChoice(Accel.TCG, "other")), "qemu", qemu)
    changed = [
        snapshot_key(replace(cfg, shape=GuestShape(cmdline="quiet")), "qemu", qemu),
        snapshot_key(replace(cfg, shape=GuestShape(memory_mib=4096)), "qemu", qemu),
        snapshot_key(replace(cfg, accel=AccelChoice(Accel.KVM, "x")), "qemu", qemu),
        snapshot_key(cfg, "other-backend", qemu),
    ]
    (tmp_path / "initrd").write_bytes(b"another test layer")
    changed.append(snapshot_key(cfg, "qemu", qemu))
    (tmp_path / "vmlinuz").write_bytes(b"a rebuilt kernel")
    changed.append(snapshot_key(cfg, "qemu", qemu))
    qemu.write_bytes(b"qemu 8.2, upgraded")
    changed.append(snapshot_key(cfg, "qemu", qemu))
    assert len({key, *changed}) == len(changed) + 1, "every change must give a new key"


def test_stored_entry_is_found_by_a_later_cache(cfg: MachineConfig, tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path / "cache")
    logged: list[str] = []
    stored = cache.store("k1", "key1", _saver(cfg, 1000, "n0nce"), logged.append)
    assert stored.path.is_file() and stored.path.parent.parent == cache.root
    later = SnapshotCache(tmp_path / "cache")
    found = later.lookup("k1", "key1", cfg)
    assert found is not None
    assert (found.nonce, found.ready, found.size, found.config) == ("n0nce", READY, 1000, cfg)
    assert later.lookup("k1", "other-key", cfg) is None
    assert later.lookup("k2", "key1", cfg) is None, "never across kernels"
    later.drop("k1", "key1")
    assert later.lookup("k1", "key1", cfg) is None


def test_a_new_key_drops_the_kernels_older_entry(cfg: MachineConfig, tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path / "cache")
    logged: list[str] = []
    cache.store("k1", "old", _saver(cfg, 10), logged.append)
    cache.store("k2", "other", _saver(cfg, 10), logged.append)
    cache.store("k1", "new", _saver(cfg, 10), logged.append)
    assert sorted((e.kernel, e.key) for _, e in cache.entries()) == [("k1", "new"), ("k2", "other")]
    assert any("kept snapshot old dropped (its key changed)" in line for line in logged), logged


def test_size_bound_drops_least_recently_used(cfg: MachineConfig, tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path / "cache", limit=20_000)  # two entries of 8 KiB on disk
    for n, name in enumerate(("a", "b")):
        cache.store(name, "k", _saver(cfg, 1000), lambda _t: None)
        os.utime(cache.root / f"{name}-k" / "entry.json", (1000 + n, 1000 + n))
    assert cache.lookup("a", "k", cfg) is not None  # "a" used now: "b" is the oldest
    logged: list[str] = []
    cache.store("c", "k", _saver(cfg, 1000), logged.append)
    assert sorted(e.kernel for _, e in cache.entries()) == ["a", "c"]
    assert any("b-k" in line and "MiB" in line for line in logged), logged


def test_entry_bigger_than_the_bound_is_still_kept_for_its_run(
    cfg: MachineConfig, tmp_path: Path
) -> None:
    cache = SnapshotCache(tmp_path / "cache", limit=10)
    state = cache.store("a", "k", _saver(cfg, 1000), lambda _t: None)
    assert state.path.is_file(), "the run that saved it restores from it"


def test_failed_save_leaves_nothing(cfg: MachineConfig, tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path / "cache")

    def broken(path: Path) -> SavedState:
        path.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        cache.store("a", "k", broken, lambda _t: None)
    assert [p.name for p in cache.root.iterdir()] == []


def test_scratch_of_a_killed_saver_is_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    root = tmp_path / "cache"
    orphan = root / f".saving-{dead.pid}-abc"
    alive = root / f".saving-{os.getpid()}-def"
    for d in (orphan, alive):
        d.mkdir(parents=True)
        (d / "guest.state").write_bytes(b"x")
    SnapshotCache(root)
    assert not orphan.exists() and alive.exists()


def test_unreadable_entry_is_ignored(cfg: MachineConfig, tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path / "cache")
    cache.store("a", "k", _saver(cfg, 10), lambda _t: None)
    (cache.root / "a-k" / "entry.json").write_text("{not json")
    assert cache.lookup("a", "k", cfg) is None
    assert list(cache.entries()) == []


def test_a_bad_size_bound_is_named_not_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LIMIT_ENV, "4G")
    with pytest.raises(ConfigError, match=r"\$KHARNESS_SNAPSHOT_CACHE_MIB='4G' is not a size"):
        SnapshotCache(tmp_path / "cache")
    monkeypatch.setenv(LIMIT_ENV, "512")
    assert SnapshotCache(tmp_path / "cache").limit == 512 << 20


def test_a_kept_state_with_ram_files_counts_their_disk_blocks_and_needs_them(
    cfg: MachineConfig, tmp_path: Path
) -> None:
    """A RAM file is as long as the guest's memory but mostly holes: the bound counts
    blocks; an entry whose RAM file went missing is no entry."""

    def save(path: Path) -> SavedState:
        path.write_bytes(b"devices")
        with open(ram_files(path, 1)[0], "wb") as ram:
            ram.truncate(2 << 30)  # 2 GiB of holes
            ram.write(b"\1" * 4096)
        return SavedState(path, cfg, "n", READY, 0.3, 8192, ram_nodes=1)

    cache = SnapshotCache(tmp_path / "cache", limit=1 << 20)
    state = cache.store("a", "k", save, lambda _t: None)
    assert state.ram == ram_files(state.path, 1) and state.ram[0].stat().st_size == 2 << 30
    assert [e.kernel for _, e in cache.entries()] == ["a"], "2 GiB of holes fit a 1 MiB bound"
    found = cache.lookup("a", "k", cfg)
    assert found is not None and found.ram_nodes == 1
    state.ram[0].unlink()
    assert cache.lookup("a", "k", cfg) is None


def test_entries_of_an_older_format_are_removed_when_the_cache_opens(
    cfg: MachineConfig, tmp_path: Path
) -> None:
    cache = SnapshotCache(tmp_path / "cache")
    cache.store("a", "k", _saver(cfg, 100), lambda _t: None)
    old = tmp_path / "cache" / "b-old"
    old.mkdir()
    (old / "entry.json").write_text('{"format": "1", "kernel": "b"}')
    (old / "guest.state").write_bytes(b"\0" * 100)
    SnapshotCache(tmp_path / "cache")
    assert not old.exists() and [e.kernel for _, e in cache.entries()] == ["a"]
