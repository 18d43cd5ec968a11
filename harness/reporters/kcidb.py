"""KCIDB (kernelci.org's common reporting database) I/O data, schema v5.

One checkout for the run, one build per kernel (a Debian package or an image
counts as a build we were given), one test per guest test on that kernel.
Kernel reports travel in ``misc`` and the verdict line in ``log_excerpt``.
"""

from __future__ import annotations

import json
import re
from typing import Any

ORIGIN = "kharness"
SCHEMA_VERSION = {"major": 5, "minor": 3}

#: our outcome -> KCIDB test status (FAIL > ERROR > MISS > PASS > DONE > SKIP)
STATUS = {
    "pass": "PASS",
    "fail": "FAIL",
    "oops": "FAIL",
    "panic": "FAIL",
    "hang": "FAIL",
    "skip": "SKIP",
    "boot-fail": "MISS",
    "build-fail": "MISS",
    "error": "ERROR",
}


def _id(*parts: str) -> str:
    return ORIGIN + ":" + ":".join(re.sub(r"[^A-Za-z0-9_.+-]", "_", p) for p in parts)


def render(summary: dict[str, Any]) -> str:
    """The KCIDB JSON document of one run."""
    run = summary.get("run") or "run"
    checkout = _id(run)
    builds = []
    for name, k in summary["kernels"].items():
        failed = any(t["kernel"] == name and t["outcome"] == "build-fail" for t in summary["tests"])
        builds.append(
            {
                "id": _id(run, name),
                "checkout_id": checkout,
                "origin": ORIGIN,
                "architecture": "x86_64",
                "config_name": name,
                "status": "FAIL" if failed else "PASS",
                "misc": {
                    "source": k.get("source"),
                    "origin": k.get("origin"),
                    "release": k.get("release"),
                },
            }
        )
    tests = [_test(run, t) for t in summary["tests"]]
    doc = {
        "version": SCHEMA_VERSION,
        "checkouts": [{"id": checkout, "origin": ORIGIN}],
        "builds": builds,
        "tests": tests,
    }
    return json.dumps(doc, indent=2) + "\n"


def _test(run: str, t: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _id(run, t["kernel"], t["test"]),
        "build_id": _id(run, t["kernel"]),
        "origin": ORIGIN,
        "path": f"kharness.{re.sub(r'[^A-Za-z0-9_-]', '_', t['test'])}",
        "status": STATUS.get(t["outcome"], "ERROR"),
        "duration": t["seconds"],
        "log_excerpt": t["summary"][:16384],
        "misc": {
            "outcome": t["outcome"],
            "expected": t.get("expected"),
            "reports": t["reports"],
            "evidence": t["evidence"],
        },
    }
