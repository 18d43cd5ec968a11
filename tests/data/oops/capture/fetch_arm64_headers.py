"""Unpack Debian's arm64 kernel headers for cross-building harness_oops.ko (capture only).

    python tests/data/oops/capture/fetch_arm64_headers.py 6.12.117+deb12 DEST

Fetches linux-headers-<ver>-arm64 from bookworm-security's arm64 index through
the harness's verified archive code and unpacks it into DEST; its ``scripts`` and
``tools`` symlinks are pointed at the host's /usr/lib/linux-kbuild-<ver> (amd64 host tools,
from the amd64 linux-kbuild package the x86 captures already need).
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.cache import cache_root
from harness.kernels import debian_archive as archive

version, dest = sys.argv[1], Path(sys.argv[2])
cache = cache_root() / "debian"
sources = archive.read_apt_sources()
suite = "bookworm-security"
entries = archive.load_index(archive.mirror_for(suite, sources), suite, cache, "arm64")
name = f"linux-headers-{version}-arm64"
entry = max((e for e in entries if e.name == name), key=lambda e: e.version)
archive.unpack_deb(archive.download_deb(entry, cache), dest)
tree = dest / f"usr/src/{name}"
kbuild = Path(f"/usr/lib/linux-kbuild-{version}")
if not kbuild.is_dir():
    sys.exit(f"{kbuild} missing: apt-get install linux-kbuild-{version}")
# the arm64 Makefile is one line, "include /usr/src/linux-headers-<ver>-common/Makefile"
common = Path(f"/usr/src/linux-headers-{version}-common")
if not common.is_dir():
    sys.exit(f"{common} missing: apt-get install linux-headers-{version}-common")
for link in ("scripts", "tools"):
    (tree / link).unlink(missing_ok=True)
    (tree / link).symlink_to(kbuild / link)
print(tree)
