"""KCIDB (kernelci.org's common reporting database) I/O data, schema v5.3.

One checkout for the run, one build per kernel (a Debian package or an image
counts as a build we were given), one test per guest test on that kernel.
Kernel reports travel in ``misc`` and the verdict line in ``log_excerpt``;
the status of each outcome comes from the one outcome table
(:data:`harness.outcome.RULES`).

Each distinct crash title is an ``issue`` whose id is the title itself (so
the same bug seen by another run, on another kernel, is the same issue), and
each sighting an ``incident`` linking the issue to the test (or, for a report
outside any test, to the build) that showed it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from harness.arch import ARCHES
from harness.outcome import Outcome
from harness.results.records import ReportRecord, RunSummary, TestRecord
from harness.results.series_record import ConfirmKind

FILENAME = "kcidb.json"
ORIGIN = "kharness"
SCHEMA_VERSION = {"major": 5, "minor": 3}  # issues and incidents came with v5


def _id(*parts: str) -> str:
    return ORIGIN + ":" + ":".join(re.sub(r"[^A-Za-z0-9_.+-]", "_", p) for p in parts)


#: (test, kernel) -> what a series' confirmation runs said of that test turning bad there
Verdicts = Mapping[tuple[str, str], ConfirmKind]


def render(summary: RunSummary, verdicts: Verdicts | None = None) -> str:
    """The KCIDB JSON document of one run; a series run passes its confirmations' verdicts
    (the test's ``misc.series_verdict``; an incident not blamed on the series says so)."""
    verdicts = verdicts or {}
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
    doc: dict[str, Any] = {
        "version": SCHEMA_VERSION,
        "checkouts": [{"id": checkout, "origin": ORIGIN}],
        "builds": builds,
        "tests": [_test(run, t, verdicts.get((t.test, t.kernel))) for t in summary.tests],
    }
    issues, incidents = _issues(run, summary, verdicts)
    if issues:
        doc["issues"] = issues
        doc["incidents"] = incidents
    return json.dumps(doc, indent=2) + "\n"


ISSUE_VERSION = 1


def issue_id(title: str) -> str:
    """The issue of a crash title: the same id for the same bug in every run."""
    return f"{ORIGIN}:{title}"


def _issues(
    run: str, summary: RunSummary, verdicts: Verdicts
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One issue per crash title, one incident per test (or boot) that showed it."""
    issues: dict[str, dict[str, Any]] = {}
    incidents: list[dict[str, Any]] = []

    def sighting(report: ReportRecord, where: dict[str, str], ident: str, note: str) -> None:
        iid = issue_id(report.title)
        issues.setdefault(
            iid,
            {
                "id": iid,
                "version": ISSUE_VERSION,
                "origin": ORIGIN,
                "report_subject": report.title,
                "comment": report.title,
                "culprit": {"code": True, "tool": False, "harness": False},
                "categories": [f"runtime.{_category(report.type)}"],
                "misc": {
                    "type": report.type,
                    "guilty_frame": report.guilty_frame,
                    # syzbot's type and group, and its other titles for the same bug
                    "crash_type": report.crash_type.value,
                    "crash_category": report.crash_type.category.value,
                    "alt_titles": list(report.alt_titles),
                },
            },
        )
        incidents.append(
            {
                "id": ident,
                "origin": ORIGIN,
                "issue_id": iid,
                "issue_version": ISSUE_VERSION,
                **where,
                "present": True,
                "comment": note + report.times_printed("printed {n} times"),
            }
        )

    for t in summary.tests:
        titles = list(dict.fromkeys(r.title for r in t.reports))
        for n, title in enumerate(titles):
            report = next(r for r in t.reports if r.title == title)
            where = {"test_id": _id(run, t.kernel, t.test), "build_id": _id(run, t.kernel)}
            ident = _id(run, t.kernel, t.test, f"incident{n}")
            note = f"{t.test} on {t.kernel}: {t.outcome.value}"
            verdict = verdicts.get((t.test, t.kernel))
            if verdict is not None and verdict is not ConfirmKind.REGRESSION:
                note += f" ({verdict.value} when run again: not blamed on the series)"
            sighting(report, where, ident, note)
    for n, o in enumerate(summary.outside):
        ident = _id(run, o.kernel, f"boot-{o.boot}", f"incident{n}")
        note = f"{o.kernel} boot-{o.boot}, during {o.when} (no test)"
        sighting(o.report, {"build_id": _id(run, o.kernel)}, ident, note)
    return list(issues.values()), incidents


def _category(report_type: str) -> str:
    """A KCIDB path component from a report type ("general protection fault" -> ...)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", report_type).strip("_").lower() or "report"


def _test(run: str, t: TestRecord, verdict: ConfirmKind | None = None) -> dict[str, Any]:
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
    if t.runs:  # --runs N: the pass rate, and whether it was flaky
        test["misc"] |= {"runs": t.attempts, "passes": t.passes, "flaky": t.flaky}
    if verdict is not None:  # a series' confirmation runs: regression, unstable, pre-existing
        test["misc"]["series_verdict"] = verdict.value
    if t.outcome is not Outcome.NOT_RUN:
        test["duration"] = t.seconds
    return test
