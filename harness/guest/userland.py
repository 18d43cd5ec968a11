"""The guest's userland programs (busybox, dropbear and its libraries) for its architecture.

A guest of the host's architecture gets the host's own busybox-static and
dropbear (what ci/bootstrap.sh installs).  A guest of another architecture
cannot run those, so its programs come from Debian's packages for that
architecture, through the same verified archive code as the kernels
(:mod:`harness.kernels.debian_archive`: signed InRelease, SHA256 of index and
.deb): busybox-static, dropbear-bin and the library packages they depend on,
unpacked once into the cache.  The libraries dropbear loads are found by
following its ELF ``NEEDED`` entries (``readelf`` reads any architecture).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from debian.debian_support import Version

from harness.arch import Arch
from harness.cache import atomic_dir, atomic_write, cache_root
from harness.errors import InfraError, ToolMissing
from harness.kernels import debian_archive as archive

BUSYBOX_PACKAGE = "busybox-static"
DROPBEAR_PACKAGE = "dropbear-bin"
_NEEDED = r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]"


@dataclass(frozen=True)
class Userland:
    """The programs of a guest's base layer, as host files and where they go in the guest."""

    busybox: Path
    dropbear: Path
    libraries: tuple[tuple[str, Path], ...]  # (path in the guest, file on the host)
    can_run: bool  # whether the host can run busybox (to list its applets)


def base_suite(sources: list[archive.AptSource]) -> str:
    """The machine's release suite (bookworm, not bookworm-security or -updates)."""
    for source in sources:
        for suite in source.suites:
            if "-" not in suite and "/" not in suite:
                return suite
    raise InfraError(
        "no Debian release suite in /etc/apt sources; add one (e.g. 'deb "
        f"{archive.DEFAULT_MIRROR} bookworm main') to fetch the guest's userland"
    )


def newest(entries: list[archive.PackageEntry]) -> dict[str, archive.PackageEntry]:
    """The newest entry of each package name."""
    best: dict[str, archive.PackageEntry] = {}
    for e in entries:
        if e.name not in best or Version(e.version) > Version(best[e.name].version):
            best[e.name] = e
    return best


def closure(roots: list[str], index: dict[str, archive.PackageEntry]) -> list[archive.PackageEntry]:
    """``roots`` and every package they depend on (first alternative, when in the index)."""
    wanted: dict[str, archive.PackageEntry] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        if name not in index:
            if name in roots:
                raise InfraError(f"package {name} is not in the archive index")
            continue
        wanted[name] = index[name]
        for dep in index[name].depends.split(","):
            first = dep.split("|")[0].strip()
            if first:
                todo.append(re.split(r"[\s(:]", first, maxsplit=1)[0])
    return sorted(wanted.values(), key=lambda e: e.name)


def foreign_userland(arch: Arch) -> Userland:
    """busybox and dropbear from Debian's ``arch`` packages, unpacked once into the cache."""
    cache = cache_root() / "debian"
    sources = archive.read_apt_sources()
    suite = base_suite(sources)
    mirror = archive.mirror_for(suite, sources)
    # Reading a whole Packages index costs seconds; the signed Release file
    # (small) names the index's hash, and an unchanged index gives the same parts.
    memo = _memo(mirror, suite, cache, arch)
    root = Path(memo.read_text().strip()) if memo.is_file() else None
    if root is None or not root.is_dir():
        index = newest(archive.load_index(mirror, suite, cache, arch.debian))
        parts = closure([BUSYBOX_PACKAGE, DROPBEAR_PACKAGE], index)
        stamp = hashlib.sha256("".join(f"{e.name}={e.version}\n" for e in parts).encode())
        root = cache_root() / "userland" / f"{arch.debian}-{stamp.hexdigest()[:16]}"
        if not root.exists():
            with atomic_dir(root) as scratch:
                for part in parts:
                    archive.unpack_deb(archive.download_deb(part, cache), scratch)
        atomic_write(memo, f"{root}\n".encode())
    busybox = _first(root, ("bin/busybox", "usr/bin/busybox"))
    dropbear = _first(root, ("usr/sbin/dropbear", "sbin/dropbear"))
    return Userland(busybox, dropbear, tuple(shared_libraries(dropbear, root)), arch.is_host)


def _memo(mirror: str, suite: str, cache: Path, arch: Arch) -> Path:
    """Where the userland resolved from the index that the signed Release names is noted."""
    where = cache / "index" / re.sub(r"[^A-Za-z0-9.-]+", "_", f"{mirror}_{suite}_release")
    release = archive.fetch(f"{mirror}/dists/{suite}/InRelease", where / "InRelease")
    index = archive.index_sha256(archive.verify_release(release), archive.index_path(arch.debian))
    return cache_root() / "userland" / f"{arch.debian}-index-{index[:16]}"


def _first(root: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    raise InfraError(f"{root}: none of {', '.join(names)} in the unpacked packages")


def _readelf(flag: str, binary: Path) -> str:
    if not shutil.which("readelf"):
        raise ToolMissing("readelf", "binutils")
    proc = subprocess.run(
        ["readelf", flag, str(binary)], capture_output=True, text=True, check=False
    )
    return proc.stdout


def shared_libraries(binary: Path, root: Path) -> list[tuple[str, Path]]:
    """(guest path, host file) of the loader and every library ``binary`` needs, transitively."""
    interp = re.search(r"program interpreter: (\S+?)\]", _readelf("-l", binary))
    found: dict[str, Path] = {}
    if interp:
        found[interp.group(1)] = _in_root(root, interp.group(1))
    dirs = sorted({p.parent for p in root.glob("**/*.so*")})
    todo = [binary]
    while todo:
        for name in re.findall(
            r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _readelf("-d", todo.pop())
        ):
            if any(Path(g).name == name for g in found):
                continue
            host = next((d / name for d in dirs if (d / name).exists()), None)
            if host is None:
                raise InfraError(f"{binary.name} needs {name}, which no unpacked package has")
            found["/" + str(host.relative_to(root))] = host
            todo.append(host.resolve())
    return sorted(found.items())


def _in_root(root: Path, guest_path: str) -> Path:
    """A guest path's file among the unpacked packages (usr-merged or not)."""
    for candidate in (guest_path, "/usr" + guest_path):
        path = root / candidate.lstrip("/")
        if path.exists():
            return path
    raise InfraError(f"the loader {guest_path} is in no unpacked package under {root}")
