"""``kharness b4-check``: the harness as a check command of ``b4 review``.

b4 runs a check command with one message on stdin (a patch for
``b4.review-perpatch-check-cmd``, the cover letter for
``b4.review-series-check-cmd``) and reads a JSON array of results from
stdout: ``tool``, ``status`` (pass, warn or fail), ``summary``, ``url`` and
``details``.  So stdout carries that JSON and nothing else: the harness's
own output goes to a log beside the results.

b4 calls a per-patch check once per patch of a series, but the harness tests
a series as a whole (every patch on top of the ones before it).  The first
call runs ``kharness series`` on the message's thread, fetched from the
inbox by its Message-ID; later calls for the same series version read that
run's ``series.json``.  A message the inbox does not have (a series being
prepared with ``b4 prep``, not yet sent) is tested as it is: one patch.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.mail import grouping
from harness.mail.commandline import SeriesCommand, harness_argv
from harness.mail.message import Mail, parse
from harness.paths import REPO_ROOT
from harness.results import layout

TOOL = "kharness"


@dataclass(frozen=True)
class CheckResult:
    """One entry of b4's JSON array."""

    status: str  # pass | warn | fail
    summary: str
    url: str = ""
    details: str = ""

    def to_json(self) -> dict[str, str]:
        """As b4 reads it."""
        return {
            "tool": TOOL,
            "status": self.status,
            "summary": self.summary,
            "url": self.url,
            "details": self.details,
        }


def check(
    raw: bytes,
    kernel: str,
    kernels_file: Path,
    home: Path,
    inbox: str | None,
    tests: tuple[str, ...] = (),
) -> CheckResult:
    """The result for one message: runs the series once, then reads that run."""
    mail = parse(raw)
    why = grouping.why_ignored(mail)
    if why is not None:
        return CheckResult("warn", f"not tested: {why}", details=mail.subject)
    key = grouping.series_key(mail)
    base = home / re.sub(r"[^A-Za-z0-9.@-]+", "_", str(key))[:120] / kernel
    run = _finished(base)
    if run is None:
        run = _run(mail, raw, kernel, kernels_file, base, inbox, tests)
    if run is None:
        log = base / "check.log"
        return CheckResult("fail", "the harness could not test the series", details=_tail(log))
    return judge(mail, run)


def _run(
    mail: Mail,
    raw: bytes,
    kernel: str,
    kernels_file: Path,
    base: Path,
    inbox: str | None,
    tests: tuple[str, ...],
) -> Path | None:
    base.mkdir(parents=True, exist_ok=True)
    alone = base / "message.eml"
    fetched = SeriesCommand.for_message(
        mail.message_id, kernel, inbox, tests=tests, results_dir=str(base)
    )
    from_file = SeriesCommand(kernel, str(alone), tests=tuple(tests), results_dir=str(base))
    log = base / "check.log"
    with log.open("ab") as out:
        argv = harness_argv(sys.executable, kernels_file, fetched.argv())
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        if _finished(base) is None and "b4 could not fetch" in _tail(log):
            alone.write_bytes(raw)
            argv = harness_argv(sys.executable, kernels_file, from_file.argv())
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    del proc
    return _finished(base)


def _finished(base: Path) -> Path | None:
    """The newest series run under ``base`` that finished (the one lookup of a newest run)."""
    return layout.newest_run(base, done=layout.SERIES_JSON)


def _tail(log: Path, lines: int = 20) -> str:
    if not log.is_file():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def judge(mail: Mail, run: Path) -> CheckResult:
    """pass, warn or fail for ``mail`` (its own step, or the whole series for a cover letter)."""
    series = json.loads((run / "series.json").read_text())
    page = run / layout.INDEX_HTML
    url = page.as_uri() if page.is_file() else run.as_uri()
    details = (run / "series.txt").read_text(errors="replace")
    not_applied = series.get("not_applied")
    index = None if mail.is_cover else (mail.tag.number or 1)
    if not_applied:
        if index is None or index >= not_applied["index"]:
            verb = (
                "was refused (a path outside the tree)"
                if not_applied.get("refused")
                else "does not apply"
            )
            what = f"patch {not_applied['index']} {verb}: {not_applied['patch']}"
            return CheckResult("fail", what, url, details)
        return CheckResult("pass", "applies (a later patch does not)", url, details)
    steps = {s["index"]: s for s in series.get("steps", [])}
    breaks = {t: i for t, i in series.get("first_break", {}).items() if i is not None}
    regressions = int(series.get("comparison", {}).get("regressions", 0))
    if index is None:
        if breaks or regressions:
            names = ", ".join(sorted(breaks)) or f"{regressions} test(s)"
            return CheckResult("fail", f"the series breaks {names}", url, details)
        return _clean(steps, series.get("tests", []), url, details)
    mine = sorted(t for t, i in breaks.items() if i == index)
    if mine:
        return CheckResult("fail", f"this patch breaks {', '.join(mine)}", url, details)
    step = steps.get(index)
    if step is None:
        return CheckResult("warn", f"patch {index} was not tested", url, details)
    if step.get("error"):
        return CheckResult("fail", f"does not build: {step['error'].splitlines()[0]}", url, details)
    earlier = sorted(t for t, i in breaks.items() if i < index)
    if earlier:
        return CheckResult(
            "warn", f"still broken by an earlier patch: {', '.join(earlier)}", url, details
        )
    return _clean({index: step}, series.get("tests", []), url, details)


def _clean(steps: dict[int, dict], tests: list[str], url: str, details: str) -> CheckResult:  # type: ignore[type-arg]
    flaky = sorted({t for s in steps.values() for t in s.get("flaky", [])})
    if flaky:
        return CheckResult("warn", f"flaky: {', '.join(flaky)}", url, details)
    return CheckResult("pass", f"{len(tests)} test(s), no regressions", url, details)
