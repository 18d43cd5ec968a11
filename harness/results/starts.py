"""How a kernel's guests were started: cold boots and snapshot restores, each with its time.

A record of its own (kernel.json and summary.json carry it under
``starts``, an optional key: summaries written before it read back as
None), so that a reader sees what a run's crashes cost and what a restore
saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GuestStarts:
    """Cold boots and restores of one kernel's guest, seconds to ready each."""

    cold_boots: tuple[float, ...] = ()
    restores: tuple[float, ...] = ()
    saved_seconds: float | None = None  # saving the ready guest's state, once
    saved_bytes: int | None = None
    notes: tuple[str, ...] = ()  # why no snapshot, why a restore fell back to a cold boot
    kept: str | None = None  # "restored": from an earlier run's kept state; "stored": kept now

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "cold_boots": [round(s, 3) for s in self.cold_boots],
            "restores": [round(s, 3) for s in self.restores],
            "saved_seconds": None if self.saved_seconds is None else round(self.saved_seconds, 3),
            "saved_bytes": self.saved_bytes,
            "notes": list(self.notes),
            "kept": self.kept,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GuestStarts:
        """Back from :meth:`to_json`."""
        return cls(
            tuple(data.get("cold_boots", ())),
            tuple(data.get("restores", ())),
            data.get("saved_seconds"),
            data.get("saved_bytes"),
            tuple(data.get("notes", ())),
            data.get("kept"),
        )
