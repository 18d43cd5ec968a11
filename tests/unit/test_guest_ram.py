"""A guest's RAM as files: sparse copies, files found again after unlinking, QEMU's flags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.machine.guest_ram import (
    GuestRam,
    copy_sparse,
    disk_bytes,
    held_file,
    ram_files,
    shm_dir,
)
from harness.machine.qemu import qemu_command
from tests.unit.test_machine import _cfg


def test_copy_sparse_copies_the_data_and_keeps_the_holes(tmp_path: Path) -> None:
    src = tmp_path / "ram"
    with open(src, "wb") as f:
        f.truncate(64 << 20)
        for offset in (0, 5 << 20, (64 << 20) - 4096):
            f.seek(offset)
            f.write(os.urandom(4096))
    dst = tmp_path / "copy"
    copied = copy_sparse(src, dst)
    assert dst.read_bytes() == src.read_bytes()
    assert dst.stat().st_size == 64 << 20
    assert copied < 1 << 20, f"only the data extents are copied, not {copied} bytes"
    assert disk_bytes(dst) < 1 << 20, "the holes stay holes"


def test_copy_sparse_of_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"")
    assert copy_sparse(tmp_path / "a", tmp_path / "b") == 0
    assert (tmp_path / "b").read_bytes() == b""


def test_an_unlinked_file_is_found_through_the_process_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "guest.ram0"
    path.write_bytes(b"pristine")
    code = f"f = open({str(path)!r}, 'rb'); print('open', flush=True); input()"
    holder = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        path.unlink()
        held = held_file(holder.pid, path)
        assert held is not None and held.read_bytes() == b"pristine"
        assert held_file(holder.pid, tmp_path / "other") is None
    finally:
        holder.kill()
        holder.wait()
    assert held_file(holder.pid, path) is None, "a process that is gone holds nothing"


def test_ram_files_are_named_after_the_state(tmp_path: Path) -> None:
    assert ram_files(tmp_path / "guest.state", 2) == (
        tmp_path / "guest.state.ram0",
        tmp_path / "guest.state.ram1",
    )
    assert ram_files(tmp_path / "s", 0) == (tmp_path / "s.ram0",)
    assert shm_dir(0, tmp_path / "missing") is None
    assert shm_dir(0, tmp_path) == tmp_path
    assert shm_dir(1 << 62, tmp_path) is None, "no file system has that much room"


def test_qemu_maps_the_files_shared_or_copy_on_write() -> None:
    one = qemu_command(
        _cfg(memory_mib=1024, cpus=2), 1, "n", ram=GuestRam((Path("/s/a,b"),), shared=True)
    )
    assert one[one.index("-machine") + 1] == "q35,memory-backend=m0"
    assert "memory-backend-file,id=m0,size=1024M,mem-path=/s/a,,b,share=on" in one
    two = qemu_command(
        _cfg(memory_mib=2048, cpus=2, numa_nodes=2),
        1,
        "n",
        ram=GuestRam((Path("/r/0"), Path("/r/1")), shared=False),
    )
    assert two[two.index("-machine") + 1] == "q35", "NUMA nodes name their own backends"
    assert "memory-backend-file,id=m1,size=1024M,mem-path=/r/1,share=off" in two
    assert "node,nodeid=1,cpus=1,memdev=m1" in two
    plain = qemu_command(_cfg(memory_mib=2048, cpus=2, numa_nodes=2), 1, "n")
    assert "memory-backend-ram,id=m0,size=1024M" in plain
