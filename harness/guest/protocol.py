"""The guest protocol: every line the harness and its guests exchange, in one place.

Three lines cross between host and guest besides the tests' own output:

* the **ready line** a guest prints on its console once its sshd listens
  (``HARNESS-READY <nonce> taint=<n> release=<r>``); the nonce comes from the
  kernel command line, so a stale line of an earlier boot cannot match;
* the **markers** a test command writes to ``/dev/kmsg`` before and after the
  test (``HARNESS-START <tag>`` / ``HARNESS-END <tag>``), so they sit in the
  console stream in order with whatever the kernel printed: a report between
  them is the test's;
* the **trailer** the same command prints on stderr after the test
  (``@@HARNESS rc=<rc> taint_before=<t> taint_after=<t>``), carrying the exit
  code and the taint across a channel that may lose the exit status.

This module both generates what the guest runs (the guest scripts are
rendered from templates with :func:`render_script`, the test command by
:func:`wrap`) and parses what comes back; the replay machine of the test suite
prints its lines with the same functions, so a change of format cannot pass
the replay tests on the old one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: the token the guest-script templates hold where the ready line is said
READY_TOKEN = "@HARNESS_READY_LINE@"
#: the shell words of the ready line, with the variables every guest script sets
READY_SHELL = "HARNESS-READY $nonce taint=$taint release=$release"

_READY = rb"HARNESS-READY (\S+) taint=(\d+) release=([^\s]+)\r*\n"
#: the trailer's words, as printf(1) and Python's % operator both read them
TRAILER_FORMAT = "@@HARNESS rc=%d taint_before=%s taint_after=%s"
_TRAILER = re.compile(r"@@HARNESS rc=(\d+) taint_before=(\d+) taint_after=(\d+)\s*$")
_START_IN_COMMAND = re.compile(r"HARNESS-START (\S+)'")

GUEST_DIR = Path(__file__).resolve().parent
#: our initramfs's /init (template)
INIT_TEMPLATE = GUEST_DIR / "init.sh"
#: the virtme backend's guest script (template)
VIRTME_TEMPLATE = GUEST_DIR / "virtme-guest.sh"


# -- the ready line ---------------------------------------------------------------
def ready_line(nonce: str, taint: int, release: str) -> str:
    """The ready line as a guest prints it (the replay machine prints this)."""
    return f"HARNESS-READY {nonce} taint={taint} release={release}\n"


def ready_pattern(nonce: str) -> bytes:
    """A console regex for this boot's ready line: groups (taint, release)."""
    return _READY.replace(rb"(\S+)", re.escape(nonce.encode()), 1)


@dataclass(frozen=True)
class ReadyFacts:
    """What a guest's ready line says about the boot."""

    taint: int
    release: str


def parse_ready(match: re.Match[bytes]) -> ReadyFacts:
    """The facts of a :func:`ready_pattern` match."""
    return ReadyFacts(int(match.group(1)), match.group(2).decode())


def render_script(template: Path) -> bytes:
    """A guest script with the protocol's lines filled in.

    The scripts say ready in shell (``$nonce``, ``$taint``, ``$release``);
    the words of that line come from here, not from the script.
    """
    text = template.read_text()
    if READY_TOKEN not in text:
        raise ValueError(f"{template} does not hold {READY_TOKEN}: it would never say ready")
    return text.replace(READY_TOKEN, READY_SHELL).encode()


# -- markers around a test --------------------------------------------------------
def start_marker(tag: str) -> str:
    """The kmsg line before a test."""
    return f"HARNESS-START {tag}"


def end_marker(tag: str) -> str:
    """The kmsg line after a test."""
    return f"HARNESS-END {tag}"


def end_pattern(tag: str) -> bytes:
    """A console regex for a test's end marker."""
    return re.escape(end_marker(tag)).encode()


def tag_in_command(command: str) -> str | None:
    """The tag of a command made by :func:`wrap`; None for any other command."""
    m = _START_IN_COMMAND.search(command)
    return m.group(1) if m else None


# -- the trailer ---------------------------------------------------------------------
def trailer(rc: int, taint_before: int, taint_after: int) -> str:
    """The trailer line as the guest's command prints it on stderr."""
    return "\n" + TRAILER_FORMAT % (rc, taint_before, taint_after) + "\n"


@dataclass(frozen=True)
class Trailer:
    """A test command's stderr without the trailer, its exit code and the taint it added."""

    stderr: str
    exit_code: int | None
    new_taint: int


def split_trailer(stderr: str, exit_code: int | None) -> Trailer:
    """Take the trailer off ``stderr``; without one, the channel's own exit code stands."""
    m = _TRAILER.search(stderr)
    if not m:
        return Trailer(stderr, exit_code, 0)
    before, after = int(m.group(2)), int(m.group(3))
    return Trailer(stderr[: m.start()].removesuffix("\n"), int(m.group(1)), after & ~before)


# -- the test command ------------------------------------------------------------------
def wrap(binary: str, tag: str) -> str:
    """The guest command: markers in the kernel log and taint around the test.

    The markers go through /dev/kmsg so they sit in the console stream in
    order with whatever the kernel prints.  Exit code and taint travel back
    as the trailer on stderr (``printf`` here, :func:`trailer` in the replay).
    """
    return (
        f"echo '{start_marker(tag)}' > /dev/kmsg; tb=$(cat /proc/sys/kernel/tainted); "
        f"cd /tmp && {binary}; rc=$?; "
        f"ta=$(cat /proc/sys/kernel/tainted); echo '{end_marker(tag)}' > /dev/kmsg; "
        f"printf '\\n{TRAILER_FORMAT}\\n' $rc $tb $ta >&2; exit $rc"
    )
