"""Compiling the C reproducers on the host, static, one file at a time.

Each test compiles on its own, for the architecture of the guest it runs in
(Debian's cross compiler, named in :mod:`harness.arch`, for a foreign one),
so that one that does not build is one errored test carrying the compiler's
message, while the others still run.  Binaries
are cached by the hash of the compiler, the flags, the source and the headers
beside it.  A shell test is not compiled: busybox's ``sh -n`` (the shell of
the QEMU guest) checks its syntax, and the script itself goes to the guest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.arch import Arch, host
from harness.cache import atomic_write, cache_root
from harness.errors import ToolMissing

CFLAGS = ("-O2", "-Wall", "-Wextra", "-static", "-pthread", "-s")


@dataclass(frozen=True)
class CompileResult:
    """A binary, or the compiler's complaint."""

    name: str
    binary: Path | None
    log: str

    @property
    def ok(self) -> bool:
        """Whether a binary exists to run."""
        return self.binary is not None


def _compiler_id(cc: str) -> str:
    proc = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.splitlines()[0] if proc.stdout else cc


def compile_test(source: Path, arch: Arch | None = None) -> CompileResult:
    """Compile ``source`` for ``arch`` (default: the host's; cached); never raises for a
    compile error.  Another architecture's binaries come from Debian's cross compiler.
    """
    arch = arch or host()
    cc = arch.cc
    if not shutil.which(cc):
        raise ToolMissing(cc, arch.cc_packages)
    digest = hashlib.sha256(_compiler_id(cc).encode() + " ".join(CFLAGS).encode())
    for path in [source, *sorted(source.parent.glob("*.h"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    out = cache_root() / "tests" / digest.hexdigest()[:24] / source.stem
    if out.exists():
        return CompileResult(source.stem, out, "")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # parallel runs compile too
    cmd = [cc, *CFLAGS, "-I", str(source.parent), str(source), "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    log = f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        return CompileResult(source.stem, None, log)
    tmp.rename(out)
    atomic_write(out.with_suffix(".log"), log.encode())
    return CompileResult(source.stem, out, log)


#: the shell the QEMU guest runs scripts with; ``sh -n`` with it checks their syntax
BUSYBOX = "/bin/busybox"


def check_script(source: Path) -> CompileResult:
    """A shell test: itself, or the syntax error ``sh -n`` finds (never raises)."""
    shell = [BUSYBOX, "sh"] if Path(BUSYBOX).is_file() else ["sh"]
    cmd = [*shell, "-n", str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    log = f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
    return CompileResult(source.stem, source if proc.returncode == 0 else None, log)
