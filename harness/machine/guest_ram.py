"""A guest's RAM as files: saved without streaming it, restored copy-on-write.

Why: a restore that streams the guest's RAM back (``-incoming exec:cat``, or
``loadvm`` in place) spent 0.2 to 0.3 s of a 0.5 s restore writing some
150 MB into fresh memory, on a machine whose cold boot takes 3 s.  Mapping
the saved RAM copy-on-write costs next to nothing up front; the restored
guest then faults in only the pages it touches, from the page cache.

How, with QEMU's own parts only:

* a cold-booted QEMU keeps each NUMA node's RAM in a file under /dev/shm
  (``memory-backend-file,share=on``); the file is unlinked as soon as QEMU
  has set up, so nothing is left even when QEMU and the harness are killed
  outright, and found again through ``/proc/PID/fd`` when it is wanted;
* saving migrates only the devices (the ``x-ignore-shared`` capability skips
  shared RAM) and, while the guest is paused after the migration, copies each
  RAM file, holes and all, beside the state file (:func:`copy_sparse`);
* restoring starts a new QEMU over private mappings of those copies
  (``share=off``: MAP_PRIVATE, the guest's writes never reach the file) and
  migrates the devices in (``-incoming defer``, the capability set first).

Where /dev/shm is missing or not writable, RAM is ordinary memory and travels
in the migration stream as before (:func:`shm_dir` says None).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

#: where a live guest's shared RAM files go (memory, not disk: the guest writes them)
SHM = Path("/dev/shm")
#: QEMU's migration capability that leaves shared RAM out of the stream
IGNORE_SHARED = "x-ignore-shared"


@dataclass(frozen=True)
class GuestRam:
    """The files a guest's RAM lives in, one per NUMA node, and how they are mapped.

    ``shared``: the guest writes into the files (a machine that may be saved);
    otherwise the files are a saved guest's, mapped copy-on-write.
    """

    files: tuple[Path, ...]
    shared: bool


def shm_dir(need: int = 0, root: Path = SHM) -> Path | None:
    """The directory shared RAM files may go in, or None (RAM then stays ordinary memory).

    ``need``: the bytes that may be written there.  A guest writing past a full
    tmpfs would die of SIGBUS (a container's /dev/shm is often 64 MiB), so a
    /dev/shm with less room than that is not used.
    """
    if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
        return None
    try:
        room = os.statvfs(root)
    except OSError:
        return None
    return root if room.f_bavail * room.f_frsize >= need else None


def ram_files(base: Path, nodes: int) -> tuple[Path, ...]:
    """The RAM files of a guest with ``nodes`` NUMA nodes, named after ``base``."""
    return tuple(base.with_name(f"{base.name}.ram{n}") for n in range(max(nodes, 1)))


def held_file(pid: int, path: Path) -> Path | None:
    """The ``/proc/PID/fd`` link through which process ``pid`` still holds ``path``.

    The link opens the file even after ``path`` was unlinked; None when the
    process holds no such file (or is gone).
    """
    fds = Path(f"/proc/{pid}/fd")
    wanted = {str(path), f"{path} (deleted)"}
    try:
        entries = list(fds.iterdir())
    except OSError:
        return None
    for entry in entries:
        try:
            if os.readlink(entry) in wanted:
                return entry
        except OSError:
            continue
    return None


def copy_sparse(src: Path, dst: Path) -> int:
    """Copy ``src`` to a new ``dst`` of the same length, its holes left holes; bytes copied.

    A 2 GiB guest has touched some 10 % of its RAM when it is ready: only
    those extents are read (SEEK_DATA/SEEK_HOLE) and copied in the kernel
    (``copy_file_range``), with a read/write fallback between file systems
    that cannot.
    """
    copied = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        size = os.fstat(fin.fileno()).st_size
        os.ftruncate(fout.fileno(), size)
        offset = 0
        while offset < size:
            try:
                start = os.lseek(fin.fileno(), offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break  # only a hole is left
                raise
            end = os.lseek(fin.fileno(), start, os.SEEK_HOLE)
            _copy_range(fin.fileno(), fout.fileno(), start, end - start)
            copied += end - start
            offset = end
    return copied


def _copy_range(fin: int, fout: int, offset: int, length: int) -> None:
    done = 0
    while done < length:
        try:
            n = os.copy_file_range(fin, fout, length - done, offset + done, offset + done)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            n = _copy_by_hand(fin, fout, offset + done, min(length - done, 1 << 22))
        if n == 0:
            raise OSError(errno.EIO, "the source ended inside its own data extent")
        done += n


def _copy_by_hand(fin: int, fout: int, offset: int, length: int) -> int:
    data = os.pread(fin, length, offset)
    return os.pwrite(fout, data, offset)


def disk_bytes(path: Path) -> int:
    """Bytes ``path`` takes on disk (a sparse RAM file's length says nothing)."""
    try:
        return os.stat(path).st_blocks * 512
    except OSError:
        return 0
