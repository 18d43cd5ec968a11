"""A plain-text summary fit for a mailing-list reply.

Short lines, no colour, a matrix of kernel x test, then only what needs a
reader's attention: unexpected results first, with the one-line verdict and
kernel report titles, then expected failures with their reasons.
"""

from __future__ import annotations

from typing import Any

_CELL = {
    "pass": "pass",
    "skip": "skip",
    "fail": "FAIL",
    "oops": "OOPS",
    "panic": "PANIC",
    "hang": "HANG",
    "boot-fail": "BOOT",
    "build-fail": "BUILD",
    "error": "ERROR",
}


def _cell(t: dict[str, Any]) -> str:
    cell = _CELL.get(t["outcome"], t["outcome"])
    if t.get("expected") and t["as_expected"]:
        return f"{t['outcome']} (expected)"
    return cell


def render(summary: dict[str, Any]) -> str:
    """The text summary of one run."""
    tests = summary["tests"]
    names = sorted({t["test"] for t in tests})
    kernels = list(summary["kernels"]) or sorted({t["kernel"] for t in tests})
    by_key = {(t["kernel"], t["test"]): t for t in tests}
    bad = [t for t in tests if not t.get("as_expected", t["outcome"] in ("pass", "skip"))]
    verdict = "all results as expected" if not bad else f"{len(bad)} unexpected result(s)"
    lines = [f"kpatch-harness run {summary.get('run', '')}: {verdict}", ""]
    width = max([len(k) for k in kernels] + [6])
    for i, name in enumerate(names):
        lines.append(f"  [{i + 1}] {name}")
    lines += [
        "",
        f"  {'kernel':{width}}  " + "  ".join(f"[{i + 1}]".ljust(16) for i in range(len(names))),
    ]
    for kernel in kernels:
        cells = [_cell(by_key[(kernel, n)]) if (kernel, n) in by_key else "-" for n in names]
        lines.append(f"  {kernel:{width}}  " + "  ".join(c.ljust(16) for c in cells))
    lines += _section("Unexpected", bad, with_reason=False)
    lines += _section(
        "Expected failures",
        [t for t in tests if t.get("expected") and t["as_expected"]],
        with_reason=True,
    )
    outside = summary.get("reports_outside_tests", [])
    if outside:
        lines += ["", "Kernel reports outside any test:"]
        lines += [f"  {o['kernel']} boot-{o['boot']} ({o['when']}): {o['title']}" for o in outside]
    lines += ["", "Kernels:"]
    for name, k in summary["kernels"].items():
        lines.append(f"  {name}: {k.get('origin') or k.get('source')}")
    return "\n".join(lines) + "\n"


def _section(title: str, tests: list[dict[str, Any]], with_reason: bool) -> list[str]:
    if not tests:
        return []
    lines = ["", f"{title}:"]
    for t in tests:
        lines.append(f"  {t['test']} on {t['kernel']}: {t['summary']}")
        lines += [f"    kernel report: {r['title']}" for r in t["reports"]]
        if with_reason and t.get("expected_reason"):
            lines.append(f"    reason: {t['expected_reason']}")
    return lines
