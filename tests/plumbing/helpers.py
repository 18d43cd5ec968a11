"""Helpers of the plumbing tests: kernels.yaml entries for replayed guests."""

from __future__ import annotations

from tests.support.paths import REPO

SCENARIOS = REPO / "tests" / "data" / "replay"


def replay_kernel(name: str, scenario: str = "d612", extra: str = "") -> str:
    """One kernels.yaml entry (flow style) for a kernel replaying ``scenario``."""
    more = f", {extra}" if extra else ""
    path = SCENARIOS / f"{scenario}.yaml"
    return f"{{name: {name}, replay: {{scenario: {path}}}, backend: replay{more}}}"
