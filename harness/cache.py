"""Where the harness keeps what it can reuse between runs (XDG cache rules).

Downloads, unpacked kernels, guest image layers and compiled tests live under
``$XDG_CACHE_HOME/kpatch-harness`` (default ``~/.cache/kpatch-harness``);
``KHARNESS_CACHE`` overrides it.  Entries are written to a temporary sibling
and renamed into place, so an interrupted run never leaves a half entry that a
later run would trust.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def cache_root() -> Path:
    """The cache directory, created on first use."""
    override = os.environ.get("KHARNESS_CACHE")
    if override:
        root = Path(override)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "kpatch-harness"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a scratch dir that becomes ``final`` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield scratch
        try:
            scratch.rename(final)
        except OSError as exc:
            # Another run (an xdist worker beside us) renamed its own into place
            # first, between our work and our rename: theirs is as good as ours.
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
                raise
            shutil.rmtree(scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def atomic_write(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` via a temporary file and a rename."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(name: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``name`` (a lock file beside a cache entry).

    Parallel workers that want the same entry (one Debian kernel under two
    names, on two workers) wait for the first to make it instead of both
    downloading it; the lock goes with the process, also when it is killed.
    """
    name.parent.mkdir(parents=True, exist_ok=True)
    with name.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sha256_of(path: Path) -> str:
    """Hex SHA256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
