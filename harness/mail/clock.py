"""The bot's clock: the one place the watch loop and its stores read the time and sleep.

Every decision of the loop is a comparison with the clock (the next poll,
``--wait-missing``, the deadline, a refused reply's next try), so the loop
and the stores under it (:mod:`harness.mail.state`, :mod:`harness.mail.outbox`,
:mod:`harness.mail.retest`) take a :class:`Clock` instead of calling
:mod:`time`.  :class:`SystemClock` is the real one; a test passes its own and
drives hours of the bot's life in-process, in seconds, without sleeping.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """What the bot reads of time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals: polls, deadlines)."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch (stored stamps, next tries, host retries)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait between turns."""
        ...


@dataclass(frozen=True)
class SystemClock:
    """The real clock: :mod:`time`."""

    def monotonic(self) -> float:
        """:func:`time.monotonic`."""
        return time.monotonic()

    def time(self) -> float:
        """:func:`time.time`."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """:func:`time.sleep`."""
        time.sleep(seconds)
