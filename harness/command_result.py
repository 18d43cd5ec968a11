"""What one command run in a guest did: the record channels return.

A neutral home (not :mod:`harness.machine`) because the records every
reporter reads keep it too (:class:`harness.results.records.TestRun`), and the
reporting side must not depend on the layer that boots machines.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandResult:
    """What one command did in the guest."""

    command: str
    exit_code: int | None  # None when it did not finish
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
