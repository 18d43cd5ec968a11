"""Boot one kernel and run one command in it: output, exit status and any kernel report.

The guest is booted exactly as the tests see it (:func:`harness.commands.bootshell.boot_kernel`:
same kernels.yaml entry, initrd and QEMU command line) and stopped afterwards,
whatever happens; its evidence (console, boot.json) stays in a results
directory.  The command's output is bounded like a test's, and whatever the
kernel reported while it ran is parsed from the console window around it: a
command that crashes the kernel answers with the crash (and no exit status).
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.commands.bootshell import boot_kernel, entry
from harness.display.progress import NoProgress
from harness.machine.capture import Capture, OutputLimit
from harness.results import layout
from harness.session.window import TestWindow
from harness.testkinds.testdef import GuestTest

#: how the command is named in its window's markers
COMMAND_NAME = "mcp-command"


@dataclass(frozen=True)
class CommandOutcome:
    """What one command in a fresh guest gave."""

    kernel: str
    release: str | None
    exit_code: int | None
    timed_out: bool
    stdout: str
    stderr: str
    reports: tuple[str, ...]  # kernel report titles seen while it ran
    report_text: str  # the console window of the reports (empty without one)
    console_log: str

    def to_json(self) -> dict[str, Any]:
        """The tool's answer."""
        return {
            "kernel": self.kernel,
            "release": self.release,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "kernel_reports": list(self.reports),
            "report_text": self.report_text,
            "console_log": self.console_log,
        }


def run_in_guest(
    kernels_file: Path,
    kernel: str,
    command: str,
    timeout: float,
    results_base: str | None = None,
    limit: OutputLimit | None = None,
) -> CommandOutcome:
    """Boot ``kernel``, run ``command`` in ``timeout`` s, stop it (HarnessError: no boot)."""
    with boot_kernel(entry(kernels_file, kernel), results_base) as (guest, channel):
        assert guest.machine is not None
        test = GuestTest(COMMAND_NAME, Path(f"{COMMAND_NAME}.sh"), timeout=timeout)
        window = TestWindow(guest.machine, channel, guest.policy, NoProgress(), guest.reports_in)
        tag = f"{COMMAND_NAME}-{int(time.time() * 1000) % 100000}"
        capture = Capture.in_memory(limit or OutputLimit.total(256 << 10))
        start = guest.machine.console.offset()
        seen = window.observe(test, f"sh -c {shlex.quote(command)}", timeout, tag, start, capture)
        result = seen.command()  # the exit status and stderr without the trailer
        return CommandOutcome(
            kernel,
            guest.image.release if guest.image else None,
            result.exit_code,
            result.timed_out,
            result.stdout,
            result.stderr,
            tuple(r.title for r in seen.reports),
            seen.window if seen.reports else "",
            str(guest.boot_dir() / layout.CONSOLE_LOG),
        )
