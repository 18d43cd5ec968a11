"""Code from a patch runs inside bubblewrap: the one place a command is wrapped in ``bwrap``.

A posted patch controls the Makefiles, Kconfig ``$(shell ...)`` calls and
scripts of the tree it produces, so whatever runs them (kbuild, kselftest
builds, the tree's ``scripts/get_maintainer.pl``) runs, for an untrusted
kernel (``build: {sandbox: true}``, ``--sandbox``, and always for the list
bot, ``b4-check`` and the MCP server's series and bisect), as::

    bwrap --unshare-all --unshare-user --uid 65534 --gid 65534 --cap-drop ALL
          --die-with-parent --new-session
          --ro-bind /usr /usr (/bin, /lib... as the host has them) + a few of /etc
          --proc /proc --dev /dev --tmpfs /tmp
          --ro-bind <what it may read> --bind <what it may write> -- COMMAND

The view is an allow-list, not the host's root with holes: no /root,
/home, /work, /var, /run or harness cache is in it, nor /etc's secrets (SSH
host keys, shadow, mail settings), so $HOME, SSH keys, the bot's state and
results are absent rather than hidden.  No network (its own empty network
namespace: not even the host's 127.0.0.1), no capabilities, its own PID
namespace (when the harness kills bwrap, everything inside dies with it),
a private /tmp and a scrubbed environment (the harness's variables may hold
tokens: only the variables the caller names go in; PATH is /usr's, so a
compiler in /opt or ~/.local is not seen).  Starting it costs about 20-35 ms
per command (a make, not a compiler call: those run inside the one sandbox).

What this does not promise: the uid inside is mapped to the harness's own
uid outside (as root, to root), so the *view* is what keeps files out of
reach; a kernel bug reachable from an unprivileged user namespace is not
contained; CPU, memory and disk are bounded only by the build deadline.
Everything the sandbox writes (its O= directory, its config) is untrusted
too: the harness reads it only through :func:`contained`, which refuses a
symlink out of the directory (a planted ``System.map -> /root/.ssh/id_rsa``
would otherwise be copied into the results by the trusted side).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BuildFailed, InfraError, ToolMissing, UserError

TOOL = "bwrap"
PACKAGE = "bubblewrap"
#: the backend untrusted kernels boot on: a QEMU guest sees only its initramfs and a
#: restricted user-mode network
UNTRUSTED_BACKEND = "qemu"
#: backends whose guest sees the host's file system
_HOST_SHARING = {
    "virtme": "backend: virtme shows the host's file system to the guest",
}
#: the unprivileged user inside (nobody:nogroup)
_NOBODY = "65534"
#: the top-level entries a compiler, make, perl and python need (merged /usr: symlinks)
_ROOT_ENTRIES = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
#: the parts of /etc a build reads; none holds a secret
_ETC = (
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "passwd",
    "group",
    "nsswitch.conf",
    "localtime",
    "perl",
    "ccache.conf",
)
_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
_PROBE_TIMEOUT = 30


@dataclass(frozen=True)
class Sandbox:
    """What one sandboxed command may see: the system's tools plus these directories.

    ``readable`` are bound read-only, ``writable`` read-write (a writable
    directory under a readable one stays writable: binds are made parents
    first).  Each exists on the host; paths inside are the same as outside,
    so ``make -C SRC O=OUT`` needs no rewriting.
    """

    readable: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()

    def argv(self, command: Sequence[str], cwd: Path | None = None) -> list[str]:
        """``bwrap ... -- command``: the command as it runs in the sandbox."""
        argv = [
            TOOL,
            "--unshare-all",
            "--unshare-user",
            "--uid",
            _NOBODY,
            "--gid",
            _NOBODY,
            "--hostname",
            "kharness-sandbox",
            "--cap-drop",
            "ALL",
            "--die-with-parent",
            "--new-session",
            *_system_view(),
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
        ]
        binds = [(p, "--ro-bind") for p in self.readable] + [(p, "--bind") for p in self.writable]
        for path, how in sorted(binds, key=lambda b: len(b[0].absolute().parts)):
            # the host's directory at the path the command is given (a symlinked cache root too)
            argv += [how, str(path.resolve()), str(path.absolute())]
        if cwd is not None:
            argv += ["--chdir", str(cwd.absolute())]
        return [*argv, "--", *command]

    @staticmethod
    def env(variables: Mapping[str, str]) -> dict[str, str]:
        """The sandbox's whole environment: a fixed PATH and HOME, then ``variables``."""
        return {"PATH": _PATH, "HOME": "/tmp", "TMPDIR": "/tmp", "USER": "nobody", **variables}


def _system_view() -> list[str]:
    """/usr and its merged-/usr symlinks as the host has them, and the allowed /etc files."""
    argv: list[str] = []
    for name in _ROOT_ENTRIES:
        path = Path("/") / name
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            argv += ["--ro-bind", str(path), str(path)]
    for name in _ETC:
        path = Path("/etc") / name
        if path.exists():
            argv += ["--ro-bind", str(path), str(path)]
    return argv


def require() -> None:
    """ToolMissing naming the package when bwrap is absent; InfraError when it cannot run.

    A sandbox that is asked for and unavailable is an error, never a silent
    unsandboxed build.  The probe runs ``true`` in the very sandbox builds
    get, so a kernel or container that forbids user namespaces is named here
    rather than as a build that fails on its first line.
    """
    if shutil.which(TOOL) is None:
        raise ToolMissing(TOOL, PACKAGE)
    argv = Sandbox().argv(["true"])
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InfraError(f"the build sandbox ({TOOL}) did not start: {exc}") from None
    if proc.returncode != 0:
        raise InfraError(
            f"the build sandbox ({TOOL}) cannot run here: {proc.stderr.strip()[:300]}; "
            "it needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
            "user.max_user_namespaces > 0, or run the harness outside a container that "
            "forbids them)"
        )


def available() -> bool:
    """Whether bwrap is installed (callers that sandbox only when they can)."""
    return shutil.which(TOOL) is not None


def backend_problem(backend: str) -> str | None:
    """Why an untrusted kernel may not boot on ``backend``, with the fix; None: it may."""
    reason = _HOST_SHARING.get(backend)
    if reason is None:
        return None
    return f"{reason}; untrusted kernels (sandboxed builds) run on backend: {UNTRUSTED_BACKEND}"


def refuse_backend(backend: str, kernel: str) -> None:
    """UserError when the untrusted ``kernel`` would boot on a backend that shares the host."""
    problem = backend_problem(backend)
    if problem is not None:
        raise UserError(f"kernel '{kernel}': {problem}")


def contained(path: Path, root: Path) -> Path:
    """``path`` when it resolves to a file inside ``root``; BuildFailed otherwise.

    For reading what a sandboxed build wrote: a symlink (or a symlinked
    directory on the way) that leads out of ``root`` is refused by name, so
    the trusted side never copies or parses a host file in its place.
    """
    real, top = path.resolve(), root.resolve()
    if real != top and top not in real.parents:
        raise BuildFailed(
            f"{path} leads out of {root} (to {real}); a build's output must stay in its "
            "directory: refusing to read it",
            details=f"{path} -> {real}",
        )
    return path


def escaping_links(root: Path) -> list[Path]:
    """Every symlink under ``root`` whose target resolves outside it (what a copy would follow)."""
    top = root.resolve()
    found = []
    for path in root.rglob("*"):
        if path.is_symlink():
            real = path.resolve()
            if real != top and top not in real.parents:
                found.append(path)
    return found
