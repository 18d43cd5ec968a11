"""A deterministic newc cpio writer.

The kernel unpacks every cpio archive concatenated in the initrd, so the guest
image is built as layers (base system, modules, tests, keys) that are cached
separately and simply concatenated.  Entries carry mtime 0 and uid/gid 0, so
the same inputs give the same bytes and the content hash is a valid cache key.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field


@dataclass
class CpioArchive:
    """An in-memory newc archive; add entries, then :meth:`getvalue`."""

    _chunks: list[bytes] = field(default_factory=list)
    _ino: int = 1
    _dirs: set[str] = field(default_factory=set)

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        name = name.lstrip("/")
        fields = [self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        header = b"070701" + b"".join(b"%08X" % v for v in fields)
        self._ino += 1
        raw = header + name.encode() + b"\0"
        raw += b"\0" * (-len(raw) % 4)
        raw += data + b"\0" * (-len(data) % 4)
        self._chunks.append(raw)

    def add_dir(self, path: str, mode: int = 0o755) -> None:
        """Add a directory (and its parents) once."""
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub and sub not in self._dirs:
                self._dirs.add(sub)
                self._entry(sub, stat.S_IFDIR | (mode if i == len(parts) else 0o755))

    def add_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Add a regular file, creating its parent directories."""
        parent = path.strip("/").rpartition("/")[0]
        if parent:
            self.add_dir(parent)
        self._entry(path, stat.S_IFREG | mode, data)

    def add_symlink(self, path: str, target: str) -> None:
        """Add a symbolic link."""
        parent = path.strip("/").rpartition("/")[0]
        if parent:
            self.add_dir(parent)
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def getvalue(self) -> bytes:
        """The archive bytes, with the TRAILER!!! entry."""
        trailer = CpioArchive(_ino=0)
        trailer._entry("TRAILER!!!", 0)
        return b"".join(self._chunks) + trailer._chunks[0]
