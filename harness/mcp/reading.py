"""Reading a results directory for a client: the summary in brief, evidence a page at a time.

Evidence can be large (a console log, a capped but still 1 MiB stdout), and a
client's context is small: every read is paged by character offset and says
where the next page starts.  Paths are resolved inside the results base only
(links followed first), so a tool argument cannot read an arbitrary file of
the host: not by an absolute path, a ``..`` or a symbolic link.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.results import layout
from harness.results.layout import SUMMARY_JSON
from harness.results.records import RunSummary, TestRecord, load_summary

#: what ``read_results`` can show of one test, and the file each one is
EVIDENCE = layout.TEST_EVIDENCE


@dataclass(frozen=True)
class Page:
    """One page of a text: where it came from, the text, and where the next page starts."""

    source: str
    offset: int
    text: str
    total: int

    def to_json(self) -> dict[str, Any]:
        """The page as the tool returns it (``next_offset`` None: that was the end)."""
        end = self.offset + len(self.text)
        return {
            "source": self.source,
            "offset": self.offset,
            "next_offset": end if end < self.total else None,
            "total_chars": self.total,
            "text": self.text,
        }


def run_dir(base: Path, results: str | None) -> Path:
    """``results`` (a run's name under ``base``, or a job's 'results' path; None: the latest).

    Whatever it says, the run it resolves to (symbolic links followed) must be
    inside ``base``: a client's argument is no way to read the host's files, so
    an absolute path elsewhere, a ``..`` or a link out of the results directory
    is refused with a UserError that says so.
    """
    path = base / layout.LATEST if not results else Path(results)
    if not path.is_absolute():
        path = base / path
    inside = base.resolve()
    resolved = path.resolve()
    if inside not in (resolved / SUMMARY_JSON).resolve().parents:
        raise UserError(
            f"{results or 'latest'!r} is outside the results directory {base}; name a run under it "
            "(a job's status gives its 'results'), or leave it out for the latest run"
        )
    if not layout.finished(resolved):
        raise UserError(
            f"{path}: no {SUMMARY_JSON}; name a results directory under {base} "
            "(a job's status gives its 'results'), or leave it out for the latest run"
        )
    return resolved


def brief(run: Path, summary: RunSummary) -> dict[str, Any]:
    """The run in brief: counts, kernels, every test's record, and what a reader must look at.

    Each test is its summary.json record (:meth:`TestRecord.to_json`), the one
    JSON form of a test: a client that knows summary.json knows this.
    """
    return {
        "results": str(run),
        "interrupted": summary.interrupted,
        "counts": summary.counts,
        "kernels": [
            {"name": k.name, "release": k.release, "origin": k.origin} for k in summary.kernels
        ],
        "tests": [t.to_json() for t in summary.tests],
        "unexpected": [f"{t.test} on {t.kernel}: {t.summary}" for t in summary.unexpected],
    }


def find_test(summary: RunSummary, test: str, kernel: str | None) -> TestRecord:
    """The record of ``test`` (on ``kernel``, which may be left out when only one ran it)."""
    found = [t for t in summary.tests if t.test == test and kernel in (None, t.kernel)]
    if len(found) == 1:
        return found[0]
    if not found:
        names = sorted({f"{t.test} on {t.kernel}" for t in summary.tests})
        raise UserError(f"no test {test!r}{_on(kernel)} in this run; it has: {', '.join(names)}")
    kernels = ", ".join(t.kernel for t in found)
    raise UserError(f"{test!r} ran on several kernels ({kernels}); name one with 'kernel'")


def _on(kernel: str | None) -> str:
    return f" on {kernel!r}" if kernel else ""


def report_text(record: TestRecord) -> str:
    """The test's kernel reports: title, where, the trace, symbolized frames if any."""
    if not record.reports:
        return f"{record.test} on {record.kernel}: no kernel report ({record.summary})"
    parts = []
    for r in record.reports:
        lines = [f"{r.type}: {r.title}{r.times_printed()}"]
        if r.rip:
            lines.append(f"RIP: {r.rip}")
        if r.symbolized is not None:
            lines += [f"  {f.frame}  {f.where or '?'}" for f in r.symbolized.frames]
            lines += [f"  {m.role}: {m.address}" for m in r.symbolized.maintainers]
        else:
            lines += [f"  {frame}" for frame in r.call_trace]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def evidence_page(run: Path, record: TestRecord, what: str, offset: int, limit: int) -> Page:
    """One page of ``what`` (stdout, stderr, console, result or report) of a test."""
    if offset < 0 or limit <= 0:
        raise UserError("offset must be 0 or more and limit more than 0")
    if what == "report":
        text = report_text(record)
        return Page(
            f"{record.test} on {record.kernel}: reports",
            offset,
            text[offset : offset + limit],
            len(text),
        )
    if what not in EVIDENCE:
        raise UserError(f"unknown evidence {what!r}; one of: report, {', '.join(EVIDENCE)}")
    directory = Path(record.evidence)
    directory = directory if directory.is_absolute() else run / directory
    path = (directory / EVIDENCE[what]).resolve()
    if run.resolve() not in path.parents:
        raise UserError(f"{path} is outside the results directory {run}")
    if not path.is_file():
        raise UserError(
            f"{record.test} on {record.kernel} has no {EVIDENCE[what]} ({record.summary})"
        )
    text = path.read_text(errors="replace")
    return Page(str(path), offset, text[offset : offset + limit], len(text))


def load(base: Path, results: str | None) -> tuple[Path, RunSummary]:
    """The run directory and its summary."""
    run = run_dir(base, results)
    return run, load_summary(run)
