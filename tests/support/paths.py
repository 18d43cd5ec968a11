"""Where the project's own files are, for tests of every kind."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: the guest tests the harness's own tests run (tests/data/guest)
GUEST_DATA = REPO / "tests" / "data" / "guest"
