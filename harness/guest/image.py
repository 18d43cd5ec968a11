"""The guest's initramfs, built on the host as concatenated cpio layers.

Layers, each cached by the hash of what went into it:

* base: busybox, dropbear and the libraries it links, /init, passwd (the
  host's programs, or Debian's for another architecture: :mod:`.userland`);
* modules: the kernel's own network modules, decompressed (per kernel release);
* tests: the compiled reproducers under /opt/tests;
* keys: this run's SSH host key and authorized client key (tiny, never cached).

The kernel unpacks concatenated archives in order, so changing a test rebuilds
a few megabytes of one layer and nothing else.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from harness.arch import Arch, host
from harness.cache import atomic_write, cache_root
from harness.errors import ToolMissing
from harness.guest import protocol
from harness.guest.cpio import CpioArchive
from harness.guest.keys import GuestKeys
from harness.guest.modules import resolve_modules
from harness.guest.userland import Userland, foreign_userland
from harness.kernels.base import KernelImage
from harness.testkinds.compile import CompileResult

TESTS_DIR = "/opt/tests"
_BUSYBOX = ("/bin/busybox", "busybox-static")
_DROPBEAR = ("/usr/sbin/dropbear", "dropbear-bin")


def _need(tool: tuple[str, str]) -> Path:
    path = Path(tool[0])
    if not path.is_file():
        raise ToolMissing(tool[0], tool[1])
    return path


def shared_libraries(binary: Path) -> list[Path]:
    """The shared objects ``binary`` loads, the dynamic loader included (via ldd)."""
    proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    libs = []
    for line in proc.stdout.splitlines():
        m = re.search(r"(/\S+)\s+\(0x", line)
        if m:
            libs.append(Path(m.group(1)))
    return libs


def busybox_applets(busybox: Path) -> list[str]:
    """The applet names of this busybox (links made on the host, not by the guest)."""
    proc = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=False)
    names = {line.strip() for line in proc.stdout.splitlines() if line.strip()}
    return sorted(names - {"busybox"} | {"sh"})


def _cached_layer(kind: str, inputs: Iterable[bytes], build) -> Path:
    digest = hashlib.sha256(kind.encode())
    for chunk in inputs:
        digest.update(hashlib.sha256(chunk).digest())
    path = cache_root() / "layers" / f"{kind}-{digest.hexdigest()[:24]}.cpio"
    if not path.exists():
        atomic_write(path, build())
    return path


def host_userland() -> Userland:
    """The host's busybox-static and dropbear with the libraries ldd names."""
    busybox, dropbear = _need(_BUSYBOX), _need(_DROPBEAR)
    libs = tuple((str(lib), lib) for lib in shared_libraries(dropbear))
    return Userland(busybox, dropbear, libs, True)


def base_layer(arch: Arch | None = None) -> Path:
    """busybox + dropbear + /init: the same for every kernel of one architecture."""
    arch = arch or host()
    land = host_userland() if arch.is_host else foreign_userland(arch)
    busybox, dropbear = land.busybox, land.dropbear
    # A foreign busybox cannot run here: the host's busybox-static of the same
    # Debian release has the same applets.
    applets = busybox_applets(busybox if land.can_run else _need(_BUSYBOX))
    files = [busybox, dropbear, *(lib for _, lib in land.libraries)]
    init = protocol.render_script(protocol.INIT_TEMPLATE)

    def build() -> bytes:
        a = CpioArchive()
        a.add_file("bin/busybox", busybox.read_bytes(), 0o755)
        for applet in applets:
            a.add_symlink(f"bin/{applet}", "busybox")
        a.add_file("bin/dropbear", dropbear.read_bytes(), 0o755)
        for guest_path, lib in land.libraries:
            a.add_file(guest_path, lib.resolve().read_bytes(), 0o755)
        a.add_file("init", init, 0o755)
        a.add_file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        a.add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        a.add_file("etc/shadow", b"root:*:1:0:99999:7:::\n", 0o600)
        a.add_file("etc/shells", b"/bin/sh\n")
        for d in ("proc", "sys", "dev", "tmp", "run", "root/.ssh", "etc/dropbear", "var/run"):
            a.add_dir(d, 0o700 if d.startswith("root") else 0o755)
        return a.getvalue()

    return _cached_layer("base", [init, *(f.read_bytes() for f in files)], build)


def modules_layer(kernel: KernelImage) -> Path | None:
    """The kernel's network modules, or None when it has none to load."""
    modules = resolve_modules(kernel.modules_dir)
    if not modules:
        return None

    def build() -> bytes:
        a = CpioArchive()
        for m in modules:
            a.add_file(f"lib/harness-modules/{m.name}.ko", m.data)
        a.add_file("etc/harness/modules", "\n".join(m.name for m in modules).encode() + b"\n")
        return a.getvalue()

    return _cached_layer("modules", (m.name.encode() + m.data for m in modules), build)


def tests_layer(tests: list[CompileResult]) -> Path | None:
    """The compiled reproducers under /opt/tests."""
    built = [t for t in tests if t.binary is not None]
    if not built:
        return None

    def build() -> bytes:
        a = CpioArchive()
        for t in built:
            a.add_file(f"{TESTS_DIR}/{t.name}", t.binary.read_bytes(), 0o755)  # type: ignore[union-attr]
        return a.getvalue()

    return _cached_layer("tests", (t.name.encode() + t.binary.read_bytes() for t in built), build)  # type: ignore[union-attr]


def keys_layer(keys: GuestKeys, directory: Path) -> Path:
    """This run's keys: not cached, written next to the keys themselves."""
    a = CpioArchive()
    a.add_file("etc/dropbear/host_key", keys.host_key.read_bytes(), 0o600)
    a.add_dir("root/.ssh", 0o700)
    a.add_file("root/.ssh/authorized_keys", keys.client_public.encode() + b"\n", 0o600)
    path = directory / "keys.cpio"
    atomic_write(path, a.getvalue())
    return path


def assemble(layers: list[Path | None], dest: Path) -> Path:
    """Concatenate the layers into one initrd file at ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as out:
        for layer in layers:
            if layer is not None:
                with layer.open("rb") as src:
                    shutil.copyfileobj(src, out)
    return dest


def build_initrd(
    kernel: KernelImage,
    tests: list[CompileResult],
    keys: GuestKeys,
    dest: Path,
    arch: Arch | None = None,
) -> Path:
    """The whole initrd for ``kernel`` (of ``arch``) with ``tests`` and ``keys``, at ``dest``."""
    layers = [
        base_layer(arch),
        modules_layer(kernel),
        tests_layer(tests),
        keys_layer(keys, keys.host_key.parent),
    ]
    return assemble(layers, dest)
