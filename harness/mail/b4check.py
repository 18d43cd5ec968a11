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

The status blames a patch only for what the run proved
(:class:`Status`): ``fail`` for a confirmed regression, a patch that does
not apply or does not build; ``warn`` for a run that could not test at all
(the harness failed, the base did not build or boot: the cause is named)
and for a test found unstable when run again; ``pass`` for a failure the
base has too (with a note saying so).
"""

from __future__ import annotations

import enum
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.mail import grouping
from harness.mail.commandline import SeriesCommand, harness_argv
from harness.mail.message import Mail, parse
from harness.paths import REPO_ROOT
from harness.results import layout, series_record
from harness.results.series_record import ConfirmKind, SeriesRecord, StepRecord

TOOL = "kharness"


class Status(enum.StrEnum):
    """b4's three words for a check."""

    PASS = "pass"
    WARN = "warn"  # a look is needed; no patch is blamed
    FAIL = "fail"  # the patch (or the series) is blamed


@dataclass(frozen=True)
class CheckResult:
    """One entry of b4's JSON array."""

    status: Status
    summary: str
    url: str = ""
    details: str = ""

    def to_json(self) -> dict[str, str]:
        """As b4 reads it."""
        return {
            "tool": TOOL,
            "status": self.status.value,
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
        return CheckResult(Status.WARN, f"not tested: {why}", details=mail.subject)
    key = grouping.series_key(mail)
    base = home / re.sub(r"[^A-Za-z0-9.@-]+", "_", str(key))[:120] / kernel
    run = _finished(base)
    if run is None:
        run = _run(mail, raw, kernel, kernels_file, base, inbox, tests)
    if run is None:  # the harness's failure, not the patch's: a warning naming the cause
        tail = _tail(base / "check.log")
        said = [x for x in tail.splitlines() if x.startswith("kharness:")]
        cause = said[-1].removeprefix("kharness:").strip() if said else "no results were written"
        return CheckResult(Status.WARN, f"could not test the series: {cause[:200]}", details=tail)
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
    page = run / layout.INDEX_HTML
    url = page.as_uri() if page.is_file() else run.as_uri()
    text = run / layout.SERIES_TXT
    details = text.read_text(errors="replace") if text.is_file() else ""
    try:
        series = series_record.load(run)
    except UserError as exc:
        return CheckResult(Status.WARN, f"could not read the run: {exc}", url, details)
    na = series.not_applied
    index = None if mail.is_cover else (mail.tag.number or 1)
    if na is not None:
        if index is None or index >= na.index:
            verb = "was refused (a path outside the tree)" if na.refused else "does not apply"
            return CheckResult(Status.FAIL, f"patch {na.index} {verb}: {na.patch}", url, details)
        return CheckResult(Status.PASS, "applies (a later patch does not)", url, details)
    if series.untested:
        return CheckResult(Status.WARN, f"could not test: {series.untested}", url, details)
    breaks = series.breaks()
    if index is None:
        if breaks or series.regressions:
            names = ", ".join(sorted(breaks) or series.regressions)
            return CheckResult(Status.FAIL, f"the series breaks {names}", url, details)
        return _clean(series, series.steps, url, details)
    mine = sorted(t for t, i in breaks.items() if i == index)
    if mine:
        return CheckResult(Status.FAIL, f"this patch breaks {', '.join(mine)}", url, details)
    step = series.step(index)
    if step is None:
        return CheckResult(Status.WARN, f"patch {index} was not tested", url, details)
    if step.error:
        first = step.error.splitlines()[0] if step.error.strip() else "no output"
        return CheckResult(Status.FAIL, f"does not build: {first}", url, details)
    earlier = sorted(t for t, i in breaks.items() if i < index)
    if earlier:
        summary = f"still broken by an earlier patch: {', '.join(earlier)}"
        return CheckResult(Status.WARN, summary, url, details)
    return _clean(series, (step,), url, details, index)


def _clean(
    series: SeriesRecord,
    steps: tuple[StepRecord, ...],
    url: str,
    details: str,
    index: int | None = None,
) -> CheckResult:
    """No confirmed break: warn for what is unstable or flaky, pass (with notes) otherwise."""
    mine = [c for c in series.confirmations if index is None or c.after == index]
    unstable = sorted({c.test for c in mine if c.kind is ConfirmKind.UNSTABLE})
    if unstable:
        summary = f"unstable when run again (no patch blamed): {', '.join(unstable)}"
        return CheckResult(Status.WARN, summary, url, details)
    flaky = sorted({t for s in steps for t in s.flaky})
    if flaky:
        return CheckResult(Status.WARN, f"flaky: {', '.join(flaky)}", url, details)
    summary = f"{len(series.tests)} test(s), no regressions"
    known = sorted({c.test for c in mine if c.kind is ConfirmKind.PRE_EXISTING})
    if known:
        summary += f"; {', '.join(known)} fails without this patch too (pre-existing, not blamed)"
    return CheckResult(Status.PASS, summary, url, details)
