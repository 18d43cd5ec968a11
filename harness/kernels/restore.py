"""A plain tree's private copy put back to its pristine source: whole, rewriting only what differs.

A plain tree's workspace (a hard-link copy, ``cp -al``) is patched in place,
so before the next kernel it must be made pristine again.  Trusting a list
of the files the patches named would trust the patches: a name they hid, a
rename, a file a build script wrote would survive the reset and break every
later build.  So the copy is compared with the source, directory by
directory, and every difference is undone: an entry the source lacks is
removed, one it has is put back, a file that differs is copied afresh.

It stays fast on a kernel tree (about 90,000 files) because the comparison
costs next to nothing for an untouched file: it is the source's own inode
(``scandir`` gives inode numbers without a ``stat``).  Only a file with an
inode of its own (one a patch or an earlier reset wrote) is compared by
size, mode and bytes, and only a file that differs is rewritten, with a
fresh timestamp so make rebuilds what depends on it and nothing else.

Nothing is followed out of the copy: directories are entered only when they
are real directories in both trees, links are read and re-made, never
followed, and removal unlinks a link itself (``shutil.rmtree`` does not
follow links inside what it removes).
"""

from __future__ import annotations

import filecmp
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Restored:
    """What a reset changed, for the log."""

    rewritten: int  # files, links and directories put back from the source
    removed: int  # entries the source does not have


def restore(pristine: Path, copy: Path) -> Restored:
    """Make ``copy`` hold exactly the entries of ``pristine``, touching only what differs."""
    same_fs = os.stat(pristine).st_dev == os.stat(copy).st_dev
    rewritten = removed = 0
    pending = [""]
    while pending:
        rel = pending.pop()
        ours = _entries(copy / rel)
        theirs = _entries(pristine / rel)
        for name, entry in ours.items():
            source = theirs.get(name)
            if source is None:
                _remove(entry)
                removed += 1
            elif _kind(entry) == "dir" and _kind(source) == "dir":
                pending.append(os.path.join(rel, name))
            elif not _same(entry, source, same_fs):
                _remove(entry)
                _put(source, Path(entry.path))
                rewritten += 1
        for name in theirs.keys() - ours.keys():
            _put(theirs[name], copy / rel / name)
            rewritten += 1
    return Restored(rewritten, removed)


def _entries(directory: Path) -> dict[str, os.DirEntry[str]]:
    with os.scandir(directory) as it:
        return {e.name: e for e in it}


def _kind(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "link"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    if entry.is_file(follow_symlinks=False):
        return "file"
    return "other"


def _same(ours: os.DirEntry[str], theirs: os.DirEntry[str], same_fs: bool) -> bool:
    """Whether the copy's entry is the source's (neither a directory in both)."""
    kind = _kind(ours)
    if kind != _kind(theirs) or kind == "other":
        return False
    if kind == "link":
        return os.readlink(ours.path) == os.readlink(theirs.path)
    if same_fs and ours.inode() == theirs.inode():
        return True  # the hard link cp -al made: untouched
    a, b = ours.stat(follow_symlinks=False), theirs.stat(follow_symlinks=False)
    if (a.st_size, stat.S_IMODE(a.st_mode)) != (b.st_size, stat.S_IMODE(b.st_mode)):
        return False
    if not same_fs and a.st_mtime_ns == b.st_mtime_ns:
        return True  # a full copy (another file system) keeps the source's times
    return filecmp.cmp(ours.path, theirs.path, shallow=False)


def _remove(entry: os.DirEntry[str]) -> None:
    if _kind(entry) == "dir":
        shutil.rmtree(entry.path)
    else:
        os.unlink(entry.path)


def _put(source: os.DirEntry[str], dest: Path) -> None:
    """Copy one entry of the source to ``dest`` (which is free): files get a fresh mtime."""
    kind = _kind(source)
    if kind == "link":
        os.symlink(os.readlink(source.path), dest)
    elif kind == "dir":
        shutil.copytree(source.path, dest, symlinks=True, copy_function=_copy_fresh)
    elif kind == "file":
        _copy_fresh(source.path, dest)


def _copy_fresh(source: str | Path, dest: str | Path) -> None:
    """A new file with the source's bytes and mode and a new mtime: make must rebuild it."""
    shutil.copyfile(source, dest, follow_symlinks=False)
    shutil.copymode(source, dest, follow_symlinks=False)
