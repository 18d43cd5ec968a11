"""Running kbuild: configure and build in an O= directory, ccache, -j nproc, a full log.

Every make invocation goes through :func:`run_make`, which writes the whole
output to a log file (named in every error), runs under ``nice`` so a build
does not starve the QEMU guests of the same machine, and uses ccache with a
cache directory of the harness's own, and, for an untrusted tree
(``Toolchain.sandbox``), inside bubblewrap (:mod:`harness.kernels.sandbox`):
the source read-only, only O=, the paths the caller names and a ccache of
its own writable.  A failed build becomes
:class:`~harness.errors.BuildFailed` with the compiler's error lines as its
details, which the runner turns into the ``build-fail`` outcome.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from harness.arch import Arch, host
from harness.display.progress import Activity
from harness.errors import BuildFailed, InfraError, ToolMissing
from harness.kernels import sandbox
from harness.machine.process import terminate

_ERROR_LINE = re.compile(
    r"(: (fatal )?error: |undefined reference to |^ERROR: |\*\*\* |: multiple definition of "
    r"|^ld: |Error \d+\s*$|No rule to make target)"
)
_ERROR_CONTEXT = 3
_MAX_DETAIL_LINES = 60
# kbuild's short lines: an object compiled or assembled, and the first step of the final link
_OBJECT_LINE = re.compile(r"^\s+(CC|AS)( \[M\])?\s+\S+\.o\s*$")
_LINK_LINE = re.compile(
    # not "LDS arch/*/kernel/vmlinux.lds": arm64 preprocesses its linker script early
    r"^\s+(LD|KSYMS|LDS|AR)\s+\S*(vmlinux|\.tmp_vmlinux)(?!\.lds)|^\s+(BUILD|OBJCOPY)\s+\S*Image"
)
_BUILD_TIMEOUT = 4 * 3600


@dataclass(frozen=True)
class Toolchain:
    """How make is invoked: parallelism, compiler wrapper, extra variables, sandbox or not."""

    jobs: int
    ccache_dir: Path | None  # None: ccache not installed, plain gcc
    make_options: tuple[str, ...] = ()
    arch: Arch = field(default_factory=host)
    sandbox: bool = False  # the tree is untrusted: make runs in bubblewrap

    def argv(self, src: Path, out: Path, targets: tuple[str, ...]) -> list[str]:
        """The full make command line."""
        argv = [
            "nice",
            "-n",
            "10",
            "make",
            "-C",
            str(src),
            f"O={out}",
            f"-j{self.jobs}",
            "KBUILD_BUILD_USER=kharness",
            "KBUILD_BUILD_HOST=kharness",
            "KBUILD_BUILD_TIMESTAMP=2000-01-01",
        ]
        if not self.arch.is_host:
            argv += [f"ARCH={self.arch.kbuild_arch}", f"CROSS_COMPILE={self.arch.cross_compile}"]
        if self.ccache_dir is not None:
            argv += [f"CC=ccache {self.arch.cc}", "HOSTCC=ccache gcc"]
        return [*argv, *self.make_options, *targets]

    def env(self) -> dict[str, str]:
        """The environment: the caller's plus ccache's directory and limits.

        In the sandbox nothing of the caller's environment goes in (it may
        hold tokens), only ccache's variables and the locale.

        Never a ``CCACHE_BASEDIR``, not even the caller's: ccache would hand
        gcc the source as ``../src/mm/x.c``, which kbuild's
        ``-fmacro-prefix-map=$(srctree)/=`` no longer strips, so ``__FILE__``
        and every ``kernel BUG at`` / ``WARNING: at`` line would name
        ``../src/...``.  Slots share objects by sharing a recipe instead.
        """
        env = {"LC_ALL": "C"} if self.sandbox else {**os.environ, "LC_ALL": "C"}
        env.pop("CCACHE_BASEDIR", None)
        if self.ccache_dir is not None:
            env["CCACHE_DIR"] = str(self.ccache_dir)
            env["CCACHE_MAXSIZE"] = os.environ.get("CCACHE_MAXSIZE", "5G")
        return sandbox.Sandbox.env(env) if self.sandbox else env

    def wrap(
        self,
        argv: list[str],
        src: Path,
        out: Path,
        readable: tuple[Path, ...] = (),
        writable: tuple[Path, ...] = (),
    ) -> list[str]:
        """``argv`` as it runs: in bubblewrap for an untrusted tree, as it is otherwise.

        The source is read-only there: a plain tree's slot is a hard-link copy
        of the pristine tree (a write would go through to it) and a git
        worktree's ``.git`` names the repository the harness runs git in.
        """
        if not self.sandbox:
            return argv
        ccache = (self.ccache_dir,) if self.ccache_dir is not None else ()
        for path in (out, *writable, *ccache):
            path.mkdir(parents=True, exist_ok=True)
        view = sandbox.Sandbox((src, *readable), (out, *writable, *ccache))
        return view.argv(argv)


def toolchain(
    cache: Path,
    make_options: tuple[str, ...] = (),
    arch: Arch | None = None,
    untrusted: bool = False,
) -> Toolchain:
    """The toolchain for ``arch`` (default: the host's): -j nproc, ccache if present.

    ``untrusted``: make runs in the sandbox (ToolMissing naming bubblewrap
    when it is absent), with a ccache directory of its own: an untrusted
    build writes its cache, and a trusted build that read objects from it
    would link what a hostile tree put there.  Untrusted builds share that
    cache among themselves, so one hostile series can spoil the objects of
    a later untrusted one (its verdict, not the host).
    """
    arch = arch or host()
    if untrusted:  # asked for and absent is an error, never a build outside it
        sandbox.require()
    for tool, package in (
        ("make", "make"),
        ("gcc", "gcc"),
        (arch.cc, arch.cc_packages),
        ("flex", "flex"),
        ("bison", "bison"),
        ("bc", "bc"),
    ):
        if not shutil.which(tool):
            raise ToolMissing(tool, package)
    name = "ccache-sandbox" if untrusted else "ccache"
    ccache = cache / name if shutil.which("ccache") else None
    return Toolchain(os.cpu_count() or 1, ccache, make_options, arch, untrusted)


@dataclass(frozen=True)
class MakeResult:
    """What one make run did."""

    returncode: int
    seconds: float
    log: Path


def run_make(
    tools: Toolchain,
    src: Path,
    out: Path,
    targets: tuple[str, ...],
    log: Path,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    readable: tuple[Path, ...] = (),
    writable: tuple[Path, ...] = (),
) -> MakeResult:
    """Run make, appending all its output to ``log``; never raises on a failed build.

    ``on_line`` sees each line of make's output as the log grows (read back
    from the log twice a second, so make writes to a plain file as before).
    ``readable`` and ``writable``: what a sandboxed make may see beside
    ``src`` (read-only) and ``out`` (writable); the log is written through
    the descriptor the harness opened, never by path.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = tools.wrap(tools.argv(src, out, targets), src, out, readable, writable)
    started = time.monotonic()
    with log.open("a") as sink, log.open() as follow:
        sink.write(f"$ {' '.join(argv)}\n")
        sink.flush()
        follow.seek(0, os.SEEK_END)
        proc = subprocess.Popen(  # its own process group: its sub-makes and compilers too
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**tools.env(), **(env or {})},
            start_new_session=True,
        )
        try:
            returncode = _wait(proc, follow, on_line)
        except subprocess.TimeoutExpired:
            raise InfraError(
                f"make {' '.join(targets)} ran longer than {_BUILD_TIMEOUT // 3600} h; see {log}"
            ) from None
        finally:
            if proc.poll() is None:  # timeout, Ctrl-C or SIGTERM: no make, no cc1 left behind
                terminate(proc, grace=0)  # the group at once: a sub-make outlives make alone
    return MakeResult(returncode, time.monotonic() - started, log)


def _wait(
    proc: subprocess.Popen[bytes], follow: IO[str], on_line: Callable[[str], None] | None
) -> int:
    """Wait for make (bounded), feeding ``on_line`` the log's new lines meanwhile."""
    deadline = time.monotonic() + _BUILD_TIMEOUT
    pending = ""
    while True:
        try:
            returncode = proc.wait(timeout=0.5 if on_line else _BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            if on_line is None or time.monotonic() > deadline:
                raise
            returncode = None
        if on_line is not None:
            *lines, pending = (pending + follow.read()).split("\n")
            for line in lines:
                on_line(line)
        if returncode is not None:
            return returncode


def error_lines(log_text: str) -> str:
    """The lines a developer needs from a failed build: errors with a little context."""
    lines = log_text.splitlines()
    keep: list[int] = []
    for i, line in enumerate(lines):
        if _ERROR_LINE.search(line):
            keep += range(max(0, i - 1), min(len(lines), i + _ERROR_CONTEXT))
    picked = [lines[i] for i in dict.fromkeys(keep)][:_MAX_DETAIL_LINES]
    return "\n".join(picked) if picked else "\n".join(lines[-20:])


def build_failed(what: str, result: MakeResult) -> BuildFailed:
    """The BuildFailed for a make run that did not succeed."""
    details = error_lines(result.log.read_text(errors="replace"))
    first = next((line for line in details.splitlines() if _ERROR_LINE.search(line)), "")
    summary = f"{what} failed (make exit {result.returncode})"
    if first:
        summary += f": {first.strip()[:200]}"
    return BuildFailed(f"{summary}; full log: {result.log}", details=details, log=str(result.log))


@dataclass
class StepMeter:
    """Follows kbuild's output: objects compiled so far, and when linking starts.

    ``activity`` gets the step ("compile", then "link") and the object count;
    ``expected`` is how many objects the same slot compiled last time.
    """

    activity: Activity
    expected: int | None = None
    objects: int = 0
    link_started: float | None = None  # monotonic time of the first link line

    def __post_init__(self) -> None:
        self.activity.update(step="compile", done=0, total=self.expected)

    def line(self, text: str) -> None:
        """One line of make's output."""
        if self.link_started is None and _LINK_LINE.match(text):
            self.link_started = time.monotonic()
            self.activity.update(step="link")
        elif _OBJECT_LINE.match(text):
            self.objects += 1
            self.activity.update(done=self.objects)


def build_image(
    tools: Toolchain,
    src: Path,
    out: Path,
    log: Path,
    progress: Callable[[str], None],
    meter: StepMeter | None = None,
) -> MakeResult:
    """Build the bootable image; BuildFailed with the error lines when it does not build."""
    target = tools.arch.make_target
    ccache = ", ccache" if tools.ccache_dir else ""
    progress(f"make {target} ARCH={tools.arch.kbuild_arch} in {out} (-j{tools.jobs}{ccache})")
    on_line = meter.line if meter is not None else None
    result = run_make(tools, src, out, (target,), log, on_line=on_line)
    if result.returncode != 0 or not (out / tools.arch.build_image).is_file():
        raise build_failed("kernel build", result)
    progress(f"built in {result.seconds:.0f}s")
    return result


def kernel_release(out: Path) -> str | None:
    """uname -r of the kernel just built, as kbuild recorded it (a file of ``out``, no link out)."""
    path = out / "include/config/kernel.release"
    if not path.is_file():
        return None
    return sandbox.contained(path, out).read_text(errors="replace").strip()[:200]
