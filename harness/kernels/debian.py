"""The ``debian`` provider: the newest Debian kernel package matching a pattern.

Pattern syntax: ``*`` matches within one dash-separated part of a package
name, ``**`` across parts.  So ``linux-image-6.12.*-amd64-unsigned`` names
the generic 6.12 flavour and not ``...-cloud-amd64-unsigned``; a pattern that
still matches several packages at the newest version is an error listing them.

Two package layouts exist.  Up to Debian 13, ``linux-image-<ver>-amd64[-unsigned]``
holds ``boot/vmlinuz-<ver>`` and ``lib/modules/<ver>``.  Newer kernels split
it: ``linux-image-<ver>`` is a meta package depending on ``linux-binary-<ver>``
(``usr/lib/modules/<ver>/vmlinuz``), ``linux-modules-<ver>`` and
``linux-base-<ver>`` (the config).  The provider follows the dependencies, so
either kind of name works.

``version: 6.12.57-1~deb12u1`` takes exactly that version instead of the
newest (what ``kharness rerun`` pins); one the archive dropped is refused,
naming the versions it still has.

``debug_info: true`` also fetches the matching ``linux-image-<release>-dbg``
package (same version, same verified archive code) for symbolized reports.
It is big (985 MiB download, 6.4 GiB unpacked for 6.12.117 amd64), so only
``usr/lib/debug/boot/vmlinux-<release>`` is extracted (354 MiB, the second
file of the archive: seconds); the verified .deb stays in the cache and a
module's ``.ko`` is extracted from it the first time a ``[module]`` frame
needs it.
"""

from __future__ import annotations

import difflib
import json
import re
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path

from debian.debian_support import Version

from harness.arch import ARCHES, X86_64, Arch, host
from harness.cache import atomic_dir, cache_root, locked
from harness.display.progress import NO_PROGRESS, Progress
from harness.errors import HarnessError, KernelNotFound
from harness.kernels import debian_archive as archive
from harness.kernels.base import DebugInfo, Exact, KernelImage, PackagePin
from harness.kernels.image import bootable
from harness.yamlcheck import Fields

#: The packages a split-layout meta package pulls in: the image, its modules, and
#: linux-base-<ver> (``usr/lib/modules/<ver>/config`` and System.map: without it no
#: ``@needs: config=`` can be checked on the host).
_SPLIT_PARTS = ("linux-binary-", "linux-modules-", "linux-base-")


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Compile a package pattern: ``*`` stays inside a dash part, ``**`` does not."""
    out = []
    for token in re.split(r"(\*\*|\*|\?)", pattern):
        out.append({"**": ".*", "*": "[^-]*", "?": "[^-]"}.get(token, re.escape(token)))
    return re.compile("^" + "".join(out) + "$")


def newest_match(
    pattern: str,
    entries: list[archive.PackageEntry],
    debian_arch: str = X86_64.debian,
    version: str | None = None,
) -> archive.PackageEntry:
    """The newest package whose name matches (at ``version`` if given); KernelNotFound if none.

    A version the archive no longer has is refused naming the ones it still has.
    """
    rx = pattern_regex(pattern)
    matches = [e for e in entries if rx.match(e.name)]
    suites = ", ".join(sorted({e.suite for e in entries})) or "no suite"
    if not matches:
        raise KernelNotFound(
            f"no {debian_arch} package in {suites} matches '{pattern}'{_near(pattern, entries)}"
        )
    if version is not None:
        pinned = [e for e in matches if e.version == version]
        if not pinned:
            have = sorted({e.version for e in matches}, key=Version, reverse=True)
            raise KernelNotFound(
                f"'{pattern}' version {version} is no longer in {suites} (Debian keeps only "
                f"the newest builds); versions it has: {', '.join(have)}; set 'version:' to "
                "one of them, or remove it for the newest"
            )
        matches = pinned
    best = max(Version(e.version) for e in matches)
    top = {e.name: e for e in matches if Version(e.version) == best}
    if len(top) > 1:
        raise KernelNotFound(
            f"'{pattern}' matches several packages at version {best}: "
            f"{', '.join(sorted(top))}; make the pattern name one flavour"
        )
    return next(iter(top.values()))


def _near(pattern: str, entries: list[archive.PackageEntry]) -> str:
    """A hint: package names that share the pattern's literal prefix."""
    prefix = re.split(r"[*?]", pattern, maxsplit=1)[0]
    names = sorted({e.name for e in entries if e.name.startswith(prefix)})
    close = difflib.get_close_matches(pattern.replace("*", ""), names, n=3, cutoff=0.5)
    if not close:
        return "; check the name with: apt-cache search --names-only '^linux-image'"
    return f"; similar packages: {', '.join(close)} (* does not cross a '-', ** does)"


def split_parts(entry: archive.PackageEntry) -> list[tuple[str, str]]:
    """(name, version) of the linux-binary/-modules/-base packages a meta package needs."""
    parts = []
    for dep in entry.depends.split(","):
        m = re.match(r"\s*(\S+)\s*\(=\s*([^)]+)\)", dep.split("|")[0])
        if m and m.group(1).startswith(_SPLIT_PARTS):
            parts.append((m.group(1), m.group(2).strip()))
    return parts


@dataclass(frozen=True)
class DebianSource:
    """A Debian kernel package pattern and, optionally, the suite to look in."""

    package: str
    _: KW_ONLY  # the rest by name: a positional mix-up once passed an arch as the suite
    suite: str | None = None
    arch: Arch = field(default_factory=host)
    debug_info: bool = False  # also fetch the -dbg package: symbolized reports
    version: str | None = None  # exactly this Debian version, not the newest
    kind: str = "debian"

    def describe(self) -> str:
        """The pattern and suite as written (and the architecture when not the host's)."""
        text = f"debian {self.package}" + (f" = {self.version}" if self.version else "")
        text += f" from {self.suite}" if self.suite else ""
        return text if self.arch.is_host else f"{text} ({self.arch.debian})"

    def resolve(self, log: Callable[[str], None], progress: Progress = NO_PROGRESS) -> KernelImage:
        """Find the newest match, download and unpack it (once), return the kernel."""
        cache = cache_root() / "debian"
        try:
            entries = self._index(cache, log)
        except HarnessError as exc:
            cached = self._last_resolution(cache)
            if cached is None:
                raise
            log(f"{self.describe()}: archive unreachable ({exc}); using cached {cached.origin}")
            return cached
        entry = newest_match(self.package, entries, self.arch.debian, self.version)
        image = unpack_kernel(entry, entries, cache, log, progress, self.arch)
        if self.debug_info and image.release:
            dbg = debug_package(entry, image.release, entries)
            debug = unpack_debug(dbg, image.release, cache, log, progress)
            image = replace(image, debug=replace(debug, source=cached_source_tree(entry)))
        self._remember(cache, image)
        return image

    def _index(self, cache: Path, log: Callable[[str], None]) -> list[archive.PackageEntry]:
        sources = archive.read_apt_sources()
        suites = [self.suite] if self.suite else sorted({s for src in sources for s in src.suites})
        if not suites:
            raise KernelNotFound(
                f"{self.describe()}: no Debian suite in /etc/apt sources; "
                "add 'suite:' to the kernels.yaml entry"
            )
        entries: list[archive.PackageEntry] = []
        for suite in suites:
            mirror = archive.mirror_for(suite, sources)
            log(f"reading {mirror} {suite}")
            entries += archive.load_index(mirror, suite, cache, self.arch.debian)
        return entries

    def _memo(self, cache: Path) -> Path:
        suffix = "" if self.arch is X86_64 else f"@{self.arch.debian}"
        pin = f"={self.version}" if self.version else ""
        key = f"{self.package}{pin}@{self.suite or 'apt'}{suffix}"
        key = re.sub(r"[^A-Za-z0-9.+-]+", "_", key)
        return cache / "resolved" / f"{key}.json"

    def _remember(self, cache: Path, image: KernelImage) -> None:
        memo = self._memo(cache)
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(
            json.dumps(
                {
                    "vmlinuz": str(image.vmlinuz),
                    "origin": image.origin,
                    "modules": str(image.modules_dir),
                    "release": image.release,
                    "debug_deb": str(image.debug.archive) if image.debug else None,
                    "exact": image.exact.to_json() if image.exact else None,
                }
            )
        )

    def _last_resolution(self, cache: Path) -> KernelImage | None:
        try:
            d = json.loads(self._memo(cache).read_text())
        except (OSError, ValueError):
            return None
        if not Path(d["vmlinuz"]).is_file():
            return None
        modules = Path(d["modules"]) if d.get("modules") not in (None, "None") else None
        exact = Exact.from_json(d["exact"]) if d.get("exact") else None
        image = KernelImage(Path(d["vmlinuz"]), modules, d["release"], d["origin"], exact=exact)
        if self.debug_info and d.get("debug_deb") and d["release"]:
            root = Path(d["debug_deb"]).parent.parent / "debug" / Path(d["debug_deb"]).stem
            image = replace(image, debug=locate_debug(root, d["release"], Path(d["debug_deb"])))
        return image


def unpack_kernel(
    entry: archive.PackageEntry,
    entries: list[archive.PackageEntry],
    cache: Path,
    log: Callable[[str], None],
    progress: Progress = NO_PROGRESS,
    arch: Arch | None = None,
) -> KernelImage:
    """Download and unpack ``entry`` (following the split layout) into the cache.

    A kernel QEMU cannot load as packaged (arm64's EFI zboot vmlinuz) is
    unpacked beside it once; see :func:`harness.kernels.image.bootable`.
    """
    wanted = [entry]
    for name, version in split_parts(entry):
        wanted.append(_exact(name, version, entries))
    # "+base": entries unpacked before linux-base was followed lack the config
    based = "+base" if any(p.name.startswith("linux-base-") for p in wanted) else ""
    root = cache / "kernels" / f"{entry.name}_{entry.version}{based}".replace("~", "_")
    phases: dict[str, float] = {}
    with locked(root.with_name(f".{root.name}.lock")):  # parallel workers: one download
        if not root.exists():
            started = time.monotonic()
            with atomic_dir(root) as scratch:
                for part in wanted:
                    log(f"downloading {part.name} {part.version} ({part.size // 1048576} MiB)")
                    deb = archive.download_deb(part, cache, progress)
                    archive.unpack_deb(deb, scratch)
                    deb.unlink()
            phases["download"] = round(time.monotonic() - started, 3)
    vmlinuz, modules = _find_kernel(root)
    vmlinuz = bootable(vmlinuz, arch or host())
    origin = f"Debian {entry.name} {entry.version} ({entry.suite})"
    pins = tuple(PackagePin(p.name, p.version, p.sha256) for p in wanted)
    return KernelImage(
        vmlinuz,
        modules,
        modules.name if modules else None,
        origin,
        phases,
        exact=Exact(version=entry.version, packages=pins),
    )


def debug_package(
    entry: archive.PackageEntry, release: str, entries: list[archive.PackageEntry]
) -> archive.PackageEntry:
    """The -dbg package of a kernel package: ``linux-image-<release>-dbg``, same version."""
    names = [f"linux-image-{release}-dbg", entry.name.removesuffix("-unsigned") + "-dbg"]
    for name in dict.fromkeys(names):
        for e in entries:
            if e.name == name and e.version == entry.version:
                return e
    raise KernelNotFound(
        f"no debug package {names[0]} {entry.version} in the archive index "
        f"({entry.suite}); drop 'debug_info: true' or pick a kernel Debian ships -dbg for"
    )


def unpack_debug(
    dbg: archive.PackageEntry,
    release: str,
    cache: Path,
    log: Callable[[str], None],
    progress: Progress = NO_PROGRESS,
) -> DebugInfo:
    """Download the verified -dbg .deb (kept) and extract its vmlinux (once)."""
    deb = cache / "debs" / Path(dbg.filename).name
    root = cache / "debug" / deb.stem
    if not (root / _DEBUG_VMLINUX.format(release=release)).is_file() or not deb.is_file():
        log(f"downloading {dbg.name} {dbg.version} ({dbg.size // 1048576} MiB) for line info")
        deb = archive.download_deb(dbg, cache, progress)
        with atomic_dir(root) as scratch:
            archive.extract_members(
                deb, scratch, ["./" + _DEBUG_VMLINUX.format(release=release)], first_only=True
            )
    return locate_debug(root, release, deb)


_DEBUG_VMLINUX = "usr/lib/debug/boot/vmlinux-{release}"
_DEBUG_MODULES = "usr/lib/debug/lib/modules/{release}"


def locate_debug(root: Path, release: str, deb: Path | None) -> DebugInfo:
    """Where a -dbg package puts vmlinux and modules (as Debian 12/13 lay it out)."""
    vmlinux = root / _DEBUG_VMLINUX.format(release=release)
    if not vmlinux.is_file():
        raise KernelNotFound(
            f"{root}: no {_DEBUG_VMLINUX.format(release=release)} in the debug package"
        )
    modules = root / _DEBUG_MODULES.format(release=release)
    return DebugInfo(vmlinux, modules, None, deb)


def cached_source_tree(entry: archive.PackageEntry) -> Path | None:
    """The same version's linux-source tree, if a build already unpacked it (no download).

    With it, get_maintainer.pl names who to tell for a Debian kernel's report too.
    """
    from harness.kernels.build import build_cache

    m = re.match(r"(\d+\.\d+)", entry.version)
    if not m:
        return None
    name = f"linux-source-{m.group(1)}"
    tree = build_cache() / "sources" / f"{name}_{entry.version}".replace("~", "_") / name
    return tree if (tree / "MAINTAINERS").is_file() else None


def extract_module(debug: DebugInfo, module: str) -> None:
    """Extract one module's .ko (either spelling, - or _) from the kept -dbg .deb."""
    if debug.archive is None or debug.modules is None or not debug.archive.is_file():
        return
    root = debug.modules.parents[5]  # .../usr/lib/debug/lib/modules/<release>
    inside = debug.modules.relative_to(root)
    names = dict.fromkeys([module, module.replace("_", "-"), module.replace("-", "_")])
    patterns = [f"./{inside}/*/{name}.ko" for name in names]
    archive.extract_members(debug.archive, root, patterns)


def _exact(name: str, version: str, entries: list[archive.PackageEntry]) -> archive.PackageEntry:
    for e in entries:
        if e.name == name and e.version == version:
            return e
    raise KernelNotFound(
        f"{name} {version} is named by the kernel package but not in the "
        "archive index; the mirror may be mid-sync, retry later"
    )


def _find_kernel(root: Path) -> tuple[Path, Path | None]:
    candidates = sorted(root.glob("usr/lib/modules/*/vmlinuz")) + sorted(
        root.glob("boot/vmlinuz-*")
    )
    if not candidates:
        raise KernelNotFound(f"{root}: the package holds no vmlinuz; is it a kernel image package?")
    vmlinuz = candidates[0]
    release = vmlinuz.parent.name if vmlinuz.name == "vmlinuz" else vmlinuz.name[len("vmlinuz-") :]
    for mods in (root / "usr/lib/modules" / release, root / "lib/modules" / release):
        if (mods / "kernel").is_dir():
            return vmlinuz, mods
    return vmlinuz, None


def from_yaml(f: Fields, base: Path, arch: Arch | None = None) -> DebianSource | None:
    """``debian: PATTERN`` or ``debian: {package: PATTERN, suite: SUITE}``."""
    arch = arch or host()
    package = f.get("package", str, required=True)
    suite = f.get("suite", str)
    debug_info = f.get("debug_info", bool, default=False)
    version = f.get("version", str)
    f.finish()
    if package is None:
        return None
    example = f"linux-image-6.12.*-{arch.debian}-unsigned"
    if not package.startswith("linux-"):
        f.problem(f"package '{package}' is not a kernel package; write e.g. {example}")
    other = _other_arch(package, arch)
    if other is not None:
        f.problem(
            f"package '{package}' is a Debian {other.debian} kernel but the entry's arch is "
            f"{arch.name}; write e.g. {example}, or set 'arch: {other.name}'"
        )
    return DebianSource(
        package, suite=suite, arch=arch, debug_info=bool(debug_info), version=version
    )


def _other_arch(package: str, arch: Arch) -> Arch | None:
    """Another architecture whose Debian name is a dash part of ``package``."""
    parts = package.split("-")
    for other in ARCHES.values():
        if other is not arch and other.debian in parts:
            return other
    return None
