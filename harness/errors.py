"""The two error families of the harness.

A *user* error is something the person running the harness can fix (a bad
kernels.yaml, a missing file, a package pattern that matches nothing); an
*infrastructure* error is the machine failing us (QEMU missing, no free port,
the archive unreachable).  Both carry a message that names the offending value
and the fix, and the CLI prints them without a traceback.

What a *kernel* does (oops, panic, hang, failing to boot) is never an
exception: it is a result, see :mod:`harness.outcome`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any


class HarnessError(Exception):
    """Base class: an error the harness explains to its user in one message."""

    exit_code = 2


class UserError(HarnessError):
    """The input is wrong: the message says which value and how to fix it."""


class ConfigError(UserError):
    """kernels.yaml (or a test header) is malformed."""


class KernelNotFound(UserError):
    """A kernel source (path, package pattern) resolves to nothing usable."""


class InfraError(HarnessError):
    """The host cannot do what is needed (a tool missing, network down, ...)."""

    exit_code = 3


class ToolMissing(InfraError):
    """A host program the harness needs is not installed."""

    def __init__(self, tool: str, package: str) -> None:
        super().__init__(f"{tool} is not installed; install it with: apt-get install -y {package}")
        self.tool = tool
        self.package = package


class NoFreePort(InfraError):
    """No TCP port on the loopback interface could be reserved for SSH."""


class GuestUnreachable(InfraError):
    """The guest printed its ready marker but SSH could not be established."""


class BuildFailed(UserError):
    """A kernel from source did not build (or its patch series did not apply).

    It is raised by the build provider and becomes the ``build-fail`` outcome for
    every test of that kernel; ``details`` carries the lines a developer needs
    (compiler errors, the rejected hunk) and ``log`` the full log's path.
    """

    def __init__(self, message: str, details: str = "", log: str | None = None) -> None:
        super().__init__(message)
        self.details = details
        self.log = log


class BisectRangeError(UserError):
    """The good/bad range cannot be bisected as given."""


class FragmentError(UserError):
    """A config fragment is missing or has a line that is not a config assignment."""


class SeriesError(UserError):
    """A series file or directory cannot be read as patches."""


class PatchFailed(BuildFailed):
    """A patch of the series does not apply; ``details`` holds the rejected hunk."""


class PatchRefused(PatchFailed):
    """A patch names a path it may not write (outside the tree, through a link): none applied."""


class NotAKernelTree(UserError):
    """A path given as a kernel source is not the top of a Linux source tree."""


class CommandFailed(subprocess.CalledProcessError):
    """A command exited non-zero; its message ends with the tail of what it printed.

    ``CalledProcessError`` says only "returned non-zero exit status 2": with
    the output captured and dropped, a failing step never said why.  Still a
    CalledProcessError, so every ``except`` that caught one catches this.
    """

    #: lines of stdout and of stderr kept in the message
    TAIL = 40

    def __str__(self) -> str:
        parts = [super().__str__()]
        for name, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            if isinstance(text, bytes):
                text = text.decode(errors="replace")
            lines = (text or "").rstrip("\n").splitlines()[-self.TAIL :]
            if lines:
                parts.append(f"--- its {name} (last {len(lines)} lines):\n" + "\n".join(lines))
        return "\n".join(parts)


def run_checked(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` with output captured as text; a failure raises :class:`CommandFailed`."""
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise CommandFailed(done.returncode, list(argv), done.stdout, done.stderr)
    return done


class InboxUnavailable(InfraError):
    """A public-inbox could not be read: the server is down, or it is not an inbox."""
