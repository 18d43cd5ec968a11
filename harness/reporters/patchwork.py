"""Patchwork checks: the verdict a patch tracker shows beside each patch of a series.

Patchwork's REST API takes one check per POST to
``/api/patches/<id>/checks/`` with four fields: ``state`` (``pending``,
``success``, ``warning``, ``fail``), ``context`` (a slug naming the CI and
what it ran), ``description`` (one short line) and ``target_url`` (where
the evidence is).  ``patchwork.json`` holds those bodies ready to post, one
per kernel of the run, each meant for every patch of the series::

    jq -c '.checks[]' patchwork.json | while read -r body; do
      curl -sf -H "Authorization: Token $TOKEN" -H 'Content-Type: application/json' \
           -d "$body" "$PW/api/patches/$PATCH/checks/"; done

The state: ``fail`` when a test regressed (against the series' base, when
one is known: :mod:`harness.results.compare`; a series' regression only when its
confirmation runs upheld it, :mod:`harness.commands.confirm`) or, without a base,
failed unexpectedly; ``warning`` for what needs a look but is not the
series' fault (flaky or unstable tests, failures the base already had,
tests that could not run, an interrupted run); ``success`` otherwise.  ``target_url`` is the
run's ``index.html`` under ``$KHARNESS_RESULTS_URL`` when that is set (where
CI publishes results directories), and left out otherwise (Patchwork allows
that).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from harness.outcome import NOT_COMPARABLE, Outcome
from harness.results.compare import ChangeKind, Comparison
from harness.results.records import RunSummary, TestRecord

FILENAME = "patchwork.json"
CONTEXT = "kharness"
URL_ENV = "KHARNESS_RESULTS_URL"
STATES = ("pending", "success", "warning", "fail")
_DESCRIPTION_MAX = 250


@dataclass(frozen=True)
class Check:
    """One Patchwork check, as its REST API takes it."""

    state: str
    context: str
    description: str
    target_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The POST body."""
        body: dict[str, Any] = {
            "state": self.state,
            "context": self.context,
            "description": self.description,
        }
        if self.target_url:
            body["target_url"] = self.target_url
        return body


def context(kernel: str) -> str:
    """Patchwork's context is a slug: letters, digits, ``-`` and ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", f"{CONTEXT}-{kernel}")


def results_url(summary: RunSummary, base: str | None) -> str | None:
    """Where a reader finds this run's page, when CI publishes results under ``base``."""
    if not base:
        return None
    return f"{base.rstrip('/')}/{summary.run}/index.html"


def _plural(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _kernel_check(
    summary: RunSummary,
    kernel: str,
    comparison: Comparison | None,
    url: str | None,
    name: str | None = None,
) -> Check:
    tests = [t for t in summary.tests if t.kernel == kernel]
    flaky = [t for t in tests if t.flaky]
    untested = [t for t in tests if t.outcome in NOT_COMPARABLE]
    if comparison is not None:
        changes = [c for c in comparison.changes if c.new_kernel == kernel]
        failing = [c.new for c in changes if c.kind is ChangeKind.REGRESSION]
        known = [
            c.new for c in changes if c.kind in (ChangeKind.STILL_FAILING, ChangeKind.CHANGED_CRASH)
        ]
        # a series' failure its confirmation runs found split: flaky there, not in the record
        unstable = [c.new for c in changes if c.kind is ChangeKind.FLAKY and not c.new.flaky]
    else:
        failing = [t for t in summary.unexpected if t.kernel == kernel and not t.flaky]
        failing = [t for t in failing if t not in untested]
        known = unstable = []
    parts: list[str] = []
    if failing:
        what = "regression" if comparison is not None else "failure"
        parts.append(f"{_plural(len(failing), what)}: {_names(failing)}")
    if known:
        parts.append(f"{_plural(len(known), 'failure')} the base has too")
    if flaky:
        parts.append(f"{len(flaky)} flaky")
    if unstable:
        parts.append(f"{len(unstable)} unstable when run again: {_names(unstable)}")
    if untested:
        parts.append(f"{len(untested)} could not run")
    if summary.interrupted:
        parts.append("run interrupted")
    if failing:
        state = "fail"
    elif parts:
        state = "warning"
    else:
        state = "success"
    passed = sum(t.outcome is Outcome.PASS and not t.flaky for t in tests)
    head = f"{passed}/{len(tests)} passed on {name or kernel}"
    description = "; ".join([head, *parts])
    if len(description) > _DESCRIPTION_MAX:
        description = description[: _DESCRIPTION_MAX - 3] + "..."
    return Check(state, context(name or kernel), description, url)


def _names(tests: list[TestRecord]) -> str:
    return ", ".join(dict.fromkeys(t.test for t in tests))


def checks(
    summary: RunSummary,
    comparison: Comparison | None = None,
    base_url: str | None = None,
    name: str | None = None,
) -> list[Check]:
    """One check per kernel of the run (the NEW side's kernels of ``comparison``).

    ``name`` replaces the kernel's name in the context (the series mode's
    steps are kernels named 00, 01, ...: its checks say ``kharness-series``).
    """
    kernels = [k.name for k in summary.kernels] or list(
        dict.fromkeys(t.kernel for t in summary.tests)
    )
    if comparison is not None:
        kernels = [new for _old, new in comparison.kernels]
    url = results_url(summary, base_url)
    return [_kernel_check(summary, k, comparison, url, name) for k in kernels]


def document(found: list[Check]) -> str:
    """``patchwork.json``: ``{"checks": [POST body, ...]}``."""
    return json.dumps({"checks": [c.to_json() for c in found]}, indent=2) + "\n"


def render(summary: RunSummary) -> str:
    """The checks of one run on its own (no base to compare with)."""
    return document(checks(summary, None, os.environ.get(URL_ENV)))
