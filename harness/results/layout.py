"""Every name in a results directory, and how to find a run among several.

A results directory is a contract between the modules that write it (the
pytest plugin, the series and bisect drivers, the reporters) and those that
read it (``report``, ``compare``, ``rerun``, the MCP server, the list bot,
``b4-check``), so each name is spelled here once and imported everywhere::

    <base>/                        the results base (--results-dir, default results/)
        latest                     a link to the newest run started (not a proof it finished)
        mcp-jobs/                  the MCP server's job logs and saved patches
        <YYYYmmdd-HHMMSS>-<pid>/   one run (RUN_NAME): the stamp of its start, its process
                                   (.<n> after it: the process's n-th run of that second)
            summary.json summary.txt junit.xml kcidb.json patchwork.json index.html
            provenance.json kernels.yaml
            series.json series-origin.json series.txt series.log reply.eml   (kharness series)
            <kernel>/kernel.json
            <kernel>/boot-<n>/         console.log, boot.json, restore.json, <program>-stderr.txt
            <kernel>/<test>/           stdout.txt, stderr.txt, console.txt, result.json

A run is *finished* when the file its driver writes last exists: summary.json
for a test run (written once, at the end of the session), series.json for a
series.  :func:`newest_run` is the one way to find a run in a base; the
``latest`` link is not it (two runs started into one base move it under each
other, and it names a run before it has finished).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

# -- the run's own files ------------------------------------------------------------------------
SUMMARY_JSON = "summary.json"
SUMMARY_TXT = "summary.txt"
JUNIT_XML = "junit.xml"
KCIDB_JSON = "kcidb.json"
PATCHWORK_JSON = "patchwork.json"
INDEX_HTML = "index.html"
PROVENANCE_JSON = "provenance.json"
KERNELS_COPY = "kernels.yaml"  # the kernels file the run read, copied
KEYS = "keys"  # the run's SSH keys

# -- a series run (kharness series) -------------------------------------------------------------
SERIES_JSON = "series.json"
SERIES_ORIGIN_JSON = "series-origin.json"
SERIES_TXT = "series.txt"
SERIES_LOG = "series.log"  # the bot's child's output, beside its runs
SERIES_CONFIG = "config-{kernel}.txt"  # the kernel .config a series was built with
REPLY_EML = "reply.eml"

# -- per kernel, per boot, per test -------------------------------------------------------------
KERNEL_JSON = "kernel.json"
BOOT_PREFIX = "boot-"
BOOT_JSON = "boot.json"
RESTORE_JSON = "restore.json"
CONSOLE_LOG = "console.log"  # a boot's whole console (bounded)
RESULT_JSON = "result.json"
STDOUT_TXT = "stdout.txt"
STDERR_TXT = "stderr.txt"
CONSOLE_TXT = "console.txt"  # the console during one test's window

# -- in the base, beside the runs ---------------------------------------------------------------
LATEST = "latest"
MCP_JOBS = "mcp-jobs"

#: what a reader may ask of one test, and the file each one is (in the order pages list them)
TEST_EVIDENCE: Mapping[str, str] = MappingProxyType(
    {"stdout": STDOUT_TXT, "stderr": STDERR_TXT, "console": CONSOLE_TXT, "result": RESULT_JSON}
)

#: a run's directory name: the local time it started, and the process that made it
RUN_NAME = re.compile(r"(?P<stamp>\d{8}-\d{6})-(?P<pid>\d+)(?:\.(?P<again>\d+))?")


def run_name(pid: int | None = None, when: float | None = None) -> str:
    """``<YYYYmmdd-HHMMSS>-<pid>``: sorts by start time, and says which process made it."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    return f"{stamp}-{os.getpid() if pid is None else pid}"


def boot_dir(kernel_dir: Path, boot: int) -> Path:
    """``<kernel>/boot-<n>``: one boot's console and facts."""
    return kernel_dir / f"{BOOT_PREFIX}{boot}"


def finished(run: Path, done: str = SUMMARY_JSON) -> bool:
    """Whether ``run`` wrote ``done``, the file its driver writes last (see :func:`newest_run`)."""
    return (run / done).is_file()


def newest_run(base: Path, done: str | None = SUMMARY_JSON, pid: int | None = None) -> Path | None:
    """The newest run directory directly under ``base`` that holds ``done``; None: no such run.

    ``done`` is the file that marks the run finished (:data:`SUMMARY_JSON`, or
    :data:`SERIES_JSON` for a series); None takes a run still going too.
    ``pid``: only a run that process made (its name says so), e.g. a job's own
    run while others write to the same base.

    Newest is by the start stamp in the name, then by when ``done`` was
    written (two runs of one second), never by a directory's mtime (a reply
    or a report written into an old run later would make it "newest") nor by
    ``latest`` (moved by whichever run started last).  Links are not runs
    (``latest`` is one); a directory of another name sorts before every run.
    """
    try:
        entries = list(base.iterdir())
    except OSError:
        return None
    found = []
    for path in entries:
        if path.is_symlink() or not path.is_dir():
            continue
        match = RUN_NAME.fullmatch(path.name)
        if pid is not None and (match is None or int(match["pid"]) != pid):
            continue
        if done is not None and not finished(path, done):
            continue
        found.append(((match["stamp"] if match else ""), _written(path, done), path.name, path))
    return max(found)[-1] if found else None


def _written(run: Path, done: str | None) -> int:
    """When the run's marker (or, without one, the run) was last written, in ns."""
    try:
        return (run / done if done else run).stat().st_mtime_ns
    except OSError:
        return 0
