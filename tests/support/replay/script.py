"""What a replayed guest does: the records a replay script is made of.

A :class:`Script` says what the console prints while booting, and how the
guest answers each command (by regex): what the kernel prints meanwhile
(real console text, cut from logs captured on real kernels), when the
command returns and with what, or whether it never does, whether the
kernel dies, whether the channel breaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RELEASE = "6.12.0-replay"


@dataclass(frozen=True)
class Chunk:
    """Console bytes printed ``delay`` seconds after the previous chunk."""

    data: bytes
    delay: float = 0.0


def lines(text: str, delay: float = 0.0) -> tuple[Chunk, ...]:
    """Console text as one chunk per line, ``delay`` apart (as a real console trickles)."""
    return tuple(Chunk((line + "\n").encode(), delay) for line in text.splitlines())


@dataclass(frozen=True)
class Step:
    """How the guest answers a command matching ``match`` (a regex)."""

    match: str
    console: tuple[Chunk, ...] = ()  # printed while the command runs
    exit_code: int | None = 0  # None: it never returns by itself (a hang)
    stdout: str = ""
    stderr: str = ""
    after: float = 0.0  # seconds between the console part and the result
    new_taint: int = 0  # taint bits the command adds
    kernel_exits: bool = False  # the guest's process exits after the console part
    channel_breaks: bool = False  # the channel dies (the kernel may live on)
    wedges: bool = False  # once it has timed out, the channel answers no more
    afterwards: tuple[Chunk, ...] = ()  # printed in the background after it returned


@dataclass(frozen=True)
class Script:
    """A whole recorded guest life."""

    boot: tuple[Chunk, ...] = ()
    ready: bool = True  # print the ready line after the boot chunks
    exit_after_boot: bool = False  # the process exits after the boot chunks (boot panic)
    steps: tuple[Step, ...] = ()
    magic: dict[str, tuple[Chunk, ...]] = field(default_factory=dict)  # sysrq key -> console
    boot_taint: int = 0
    release: str = RELEASE  # uname -r on the ready line
