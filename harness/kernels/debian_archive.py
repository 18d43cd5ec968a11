"""Reading a Debian archive the way apt does, without apt.

The harness resolves package patterns itself (apt cannot tell it the newest
kernel of a suite the machine does not list, such as trixie-backports), so
this module does the parts of apt it needs: find the Debian mirrors in the
machine's apt sources, fetch a suite's InRelease, check its signature with
gpgv against Debian's keyring, fetch the Packages index named there and check
its SHA256, and download .deb files checked against the index.  Every step
that trusts a byte has a checksum or a signature behind it.
"""

from __future__ import annotations

import lzma
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.arch import X86_64
from harness.cache import atomic_write, sha256_of
from harness.display.progress import NO_PROGRESS, Activity, Kind, Progress, track
from harness.errors import InfraError, ToolMissing

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
_TIMEOUT = 60.0
_BLOCK = 1 << 18


@dataclass(frozen=True)
class AptSource:
    """One 'deb' line (or deb822 stanza) of the machine's apt sources."""

    uri: str
    suites: tuple[str, ...]


@dataclass(frozen=True)
class PackageEntry:
    """One binary package paragraph of a Packages index."""

    name: str
    version: str
    filename: str
    sha256: str
    size: int
    depends: str
    mirror: str
    suite: str


def read_apt_sources(etc: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every Debian 'deb' source the machine lists, in both file formats."""
    found: list[AptSource] = []
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for path in files:
        if path.is_file():
            found += _one_line_sources(path.read_text())
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        found += _deb822_sources(path.read_text())
    return [s for s in found if _is_debian(s.uri)]


def _one_line_sources(text: str) -> Iterator[AptSource]:
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            yield AptSource(words[1].rstrip("/"), (words[2],))


def _deb822_sources(text: str) -> Iterator[AptSource]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            for uri in fields.get("uris", "").split():
                yield AptSource(uri.rstrip("/"), tuple(fields.get("suites", "").split()))


def _is_debian(uri: str) -> bool:
    path = uri.split("://", 1)[-1]
    return bool(re.search(r"/debian(-security)?$", path))


def mirror_for(suite: str, sources: list[AptSource]) -> str:
    """The mirror that serves ``suite``: the one apt uses, else the same mirror family."""
    for source in sources:
        if suite in source.suites:
            return source.uri
    want_security = suite.endswith("-security")
    for source in sources:
        if source.uri.endswith("-security") == want_security:
            return source.uri
    if sources and want_security:
        return sources[0].uri + "-security"
    return sources[0].uri if sources else DEFAULT_MIRROR


def fetch(url: str, dest: Path, progress: Progress = NO_PROGRESS, label: str = "") -> Path:
    """Download ``url`` to ``dest`` atomically; InfraError names the URL on failure.

    With a ``label`` the download is reported to ``progress`` as it goes
    (bytes, total, rate, time left).
    """
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
            if not label:
                data = response.read()
            else:
                length = response.headers.get("Content-Length", "")
                total = int(length) if length.isdigit() else None
                with track(progress, Kind.DOWNLOAD, label, total) as act:
                    data = _read_reporting(response, act)
    except urllib.error.HTTPError as exc:
        raise InfraError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise InfraError(
            f"download of {url} failed: {exc}; check the network or the "
            "mirror in /etc/apt/sources.list"
        ) from None
    atomic_write(dest, data)
    return dest


def _read_reporting(response: Any, act: Activity) -> bytes:
    """The whole body, read in blocks, each reported to ``act``."""
    data = bytearray()
    while block := response.read(_BLOCK):
        data += block
        act.update(done=len(data))
    return bytes(data)


def verify_release(inrelease: Path) -> str:
    """Check the InRelease signature against Debian's keyring; return its text."""
    if not shutil.which("gpgv"):
        raise ToolMissing("gpgv", "gpgv")
    if not KEYRING.is_file():
        raise ToolMissing(str(KEYRING), "debian-archive-keyring")
    proc = subprocess.run(
        ["gpgv", "--keyring", str(KEYRING), str(inrelease)],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise InfraError(f"{inrelease}: signature check failed:\n{proc.stderr.strip()}")
    return inrelease.read_text(errors="replace")


def index_path(debian_arch: str) -> str:
    """The Packages index of one architecture, relative to ``dists/<suite>``."""
    return f"main/binary-{debian_arch}/Packages.xz"


def index_sha256(release_text: str, name: str) -> str:
    """The SHA256 that a Release file gives for ``name``."""
    in_sha = False
    for line in release_text.splitlines():
        if not line.startswith(" "):
            in_sha = line.startswith("SHA256:")
            continue
        parts = line.split()
        if in_sha and len(parts) == 3 and parts[2] == name:
            return parts[0]
    raise InfraError(f"the Release file does not list {name}")


def load_index(mirror: str, suite: str, cache: Path, debian_arch: str) -> list[PackageEntry]:
    """The verified Packages index of ``suite`` on ``mirror`` for ``debian_arch`` (cached)."""
    base = f"{mirror}/dists/{suite}"
    index = index_path(debian_arch)
    # amd64 keeps the cache path it had before other architectures existed
    key = f"{mirror}_{suite}" + ("" if debian_arch == X86_64.debian else f"_{debian_arch}")
    where = cache / "index" / re.sub(r"[^A-Za-z0-9.-]+", "_", key)
    release = fetch(f"{base}/InRelease", where / "InRelease")
    expected = index_sha256(verify_release(release), index)
    packed = where / f"Packages.{expected[:16]}.xz"
    if not packed.exists() or sha256_of(packed) != expected:
        for stale in where.glob("Packages.*.xz"):
            stale.unlink()
        fetch(f"{base}/{index}", packed)
        if sha256_of(packed) != expected:
            packed.unlink()
            raise InfraError(f"{base}/{index}: SHA256 does not match the signed Release file")
    return list(_entries(lzma.decompress(packed.read_bytes()).decode(), mirror, suite))


#: The fields a PackageEntry reads; every one is a single line in a Packages index.
_FIELDS = ("Package", "Version", "Filename", "SHA256", "Size", "Depends")


def _entries(text: str, mirror: str, suite: str) -> Iterator[PackageEntry]:
    """Every paragraph that names a downloadable file.

    A hand-rolled reader, not deb822: an index holds some 66 000 paragraphs and
    deb822 took 14 s per suite to read them, on every run that resolves a
    package; this reads the six one-line fields it needs in well under a
    second.  Continuation lines (a leading space) belong to multi-line fields
    such as Description, which nothing here reads.
    """
    for block in text.split("\n\n"):
        para: dict[str, str] = {}
        for line in block.splitlines():
            if not line or line[0] in " \t":
                continue
            name, sep, value = line.partition(":")
            if sep and name in _FIELDS:
                para[name] = value.strip()
        if "Package" not in para or "Filename" not in para or "SHA256" not in para:
            continue
        yield PackageEntry(
            para["Package"],
            para.get("Version", ""),
            para["Filename"],
            para["SHA256"],
            int(para.get("Size", "0") or 0),
            para.get("Depends", ""),
            mirror,
            suite,
        )


def download_deb(entry: PackageEntry, cache: Path, progress: Progress = NO_PROGRESS) -> Path:
    """Fetch one .deb and check it against the SHA256 of the signed index."""
    dest = cache / "debs" / Path(entry.filename).name
    if dest.exists() and sha256_of(dest) == entry.sha256:
        return dest
    fetch(f"{entry.mirror}/{entry.filename}", dest, progress, f"{entry.name} {entry.version}")
    if sha256_of(dest) != entry.sha256:
        dest.unlink()
        raise InfraError(
            f"{entry.filename}: SHA256 mismatch against the archive index; "
            "the mirror may be mid-sync, retry later"
        )
    return dest


def unpack_deb(deb: Path, dest: Path) -> None:
    """Extract a .deb's files (dpkg-deb is on every Debian machine)."""
    if not shutil.which("dpkg-deb"):
        raise ToolMissing("dpkg-deb", "dpkg")
    proc = subprocess.run(
        ["dpkg-deb", "-x", str(deb), str(dest)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise InfraError(f"dpkg-deb -x {deb} failed: {proc.stderr.strip()}")


def extract_members(deb: Path, dest: Path, patterns: list[str], first_only: bool = False) -> None:
    """Extract only the files of a .deb matching shell ``patterns`` (tar --wildcards).

    A debug package is a gigabyte of xz and six of files; the symbolizer wants
    vmlinux and the odd module.  ``first_only`` stops at the first match
    (tar --occurrence), so a file near the start of the archive is out in
    seconds, not after the whole stream.
    """
    if not shutil.which("dpkg-deb") or not shutil.which("tar"):
        raise ToolMissing("dpkg-deb", "dpkg")
    dest.mkdir(parents=True, exist_ok=True)
    occurrence = ["--occurrence=1"] if first_only else []
    tar = ["tar", "-x", "-C", str(dest), "--wildcards", *occurrence, *patterns]
    feed = subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        proc = subprocess.run(
            tar, stdin=feed.stdout, capture_output=True, text=True, timeout=1800, check=False
        )
    finally:
        if feed.stdout is not None:
            feed.stdout.close()
        feed.kill()
        feed.wait()
    if proc.returncode != 0 and "Not found in archive" not in proc.stderr:
        raise InfraError(f"extracting {patterns} from {deb} failed: {proc.stderr.strip()[:300]}")
