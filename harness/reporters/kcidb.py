"""KCIDB (kernelci.org's common reporting database) I/O data, schema v5.

One checkout for the run, one build per kernel (a Debian package or an image
counts as a build we were given), one test per guest test on that kernel.
Kernel reports travel in ``misc`` and the verdict line in ``log_excerpt``;
the status of each outcome comes from the one outcome table
(:data:`harness.outcome.RULES`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from harness.arch import ARCHES
from harness.outcome import Outcome
from harness.records import RunSummary, TestRecord

FILENAME = "kcidb.json"
ORIGIN = "kharness"
SCHEMA_VERSION = {"major": 5, "minor": 3}


def _id(*parts: str) -> str:
    return ORIGIN + ":" + ":".join(re.sub(r"[^A-Za-z0-9_.+-]", "_", p) for p in parts)


def render(summary: RunSummary) -> str:
    """The KCIDB JSON document of one run."""
    run = summary.run or "run"
    checkout = _id(run)
    builds = []
    for k in summary.kernels:
        failed = any(t.kernel == k.name and t.outcome is Outcome.BUILD_FAIL for t in summary.tests)
        builds.append(
            {
                "id": _id(run, k.name),
                "checkout_id": checkout,
                "origin": ORIGIN,
                "architecture": ARCHES[k.arch].kcidb if k.arch in ARCHES else k.arch,
                "config_name": k.name,
                "status": "FAIL" if failed else "PASS",
                "misc": {
                    "source": k.source,
                    "origin": k.origin,
                    "release": k.release,
                    "backend": k.backend,
                },
            }
        )
    doc = {
        "version": SCHEMA_VERSION,
        "checkouts": [{"id": checkout, "origin": ORIGIN}],
        "builds": builds,
        "tests": [_test(run, t) for t in summary.tests],
    }
    return json.dumps(doc, indent=2) + "\n"


def _test(run: str, t: TestRecord) -> dict[str, Any]:
    test: dict[str, Any] = {
        "id": _id(run, t.kernel, t.test),
        "build_id": _id(run, t.kernel),
        "origin": ORIGIN,
        "path": f"kharness.{re.sub(r'[^A-Za-z0-9_-]', '_', t.test)}",
        "status": t.outcome.rule.kcidb,
        "log_excerpt": t.summary[:16384],
        "misc": {
            "outcome": t.outcome.value,
            "expected": t.expected.value if t.expected else None,
            "reports": [r.to_json() for r in t.reports],
            "evidence": t.evidence,
        },
    }
    if t.outcome is not Outcome.NOT_RUN:
        test["duration"] = t.seconds
    return test
