"""KTAP / TAP 13 output of guest tests, read into plain data.

The reproducers print kselftest-style KTAP; the harness shows the failing
lines (with the diagnostics just before them) in the pytest report, and takes
the skip reason from ``1..0 # SKIP reason``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RESULT = re.compile(r"^\s*(not ok|ok)\s+(\d+)\s*-?\s*(.*)$")
_PLAN = re.compile(r"^\s*1\.\.(\d+)(?:\s*#\s*SKIP\s*(.*))?", re.IGNORECASE)
_DIAG_CONTEXT = 3


@dataclass(frozen=True)
class KtapResult:
    """The parts of a KTAP stream the harness reports on."""

    planned: int | None
    passed: int
    failures: tuple[str, ...]  # each "not ok" line with up to 3 diagnostics before it
    skipped: int
    skip_reason: str | None  # from a "1..0 # SKIP why" plan, else the last "# SKIP why" line
    diagnostics: tuple[str, ...]  # every "# ..." line, for counts the test printed
    bailed_out: str | None


def parse_ktap(text: str) -> KtapResult:
    """Parse KTAP from a test's stdout; tolerant of noise between lines."""
    planned = skip_reason = bail = last_skip = None
    passed = skipped = 0
    failures: list[str] = []
    diags: list[str] = []
    recent: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        plan = _PLAN.match(line)
        if plan and planned is None:
            planned = int(plan.group(1))
            skip_reason = (plan.group(2) or "").strip() or None
            continue
        if line.lstrip().startswith("#"):
            diags.append(line.strip())
            recent = [*recent, line.strip()][-_DIAG_CONTEXT:]
            continue
        if line.startswith("Bail out!"):
            bail = line
            failures.append(line)
            continue
        m = _RESULT.match(line)
        if not m:
            continue
        if "# SKIP" in m.group(3).upper():
            skipped += 1
            last_skip = _skip_directive(m.group(3))
        elif m.group(1) == "ok":
            passed += 1
        else:
            failures.append("\n".join([*recent, line.strip()]))
        recent = []
    reason = skip_reason or last_skip  # a test that skips after its plan: its last SKIP line
    return KtapResult(planned, passed, tuple(failures), skipped, reason, tuple(diags), bail)


def _skip_directive(text: str) -> str:
    """'madvise # SKIP kernel lacks X' -> 'kernel lacks X' (the description if no reason)."""
    before, _, after = text.partition("#")
    reason = re.sub(r"^\s*SKIP\b\s*", "", after, flags=re.IGNORECASE).strip()
    return reason or before.strip()
