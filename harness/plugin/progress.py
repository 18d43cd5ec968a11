"""What the user sees while a run works: --progress, --console and the ``[kharness]`` lines.

A serial run or an xdist controller writes through pytest's terminal
reporter; a local xdist worker has no terminal and relays to the controller
(:mod:`harness.plugin.relay`); a worker on another host shows nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.display import progress as progress_mod
from harness.display import progress_display
from harness.plugin.relay import RelayProgress, RelayServer
from harness.plugin.xdist import CONSOLE_KEY, RELAY_KEY, is_worker, worker_input


class RunProgress:
    """This session's progress display, its relay for workers, and its log lines."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.progress: progress_mod.Progress = progress_mod.NO_PROGRESS
        self._stream: progress_display.ReporterStream | None = None  # set when progress is shown
        self._relay: RelayServer | None = None  # an xdist controller showing workers' progress

    def start(self) -> progress_mod.Progress:
        """The feedback --progress and --console ask for, written through pytest's reporter.

        An xdist worker has no terminal: it relays its progress to the
        controller when the controller offered a relay (local workers).
        """
        if is_worker(self.config):
            given = worker_input(self.config)
            if given.get(RELAY_KEY) and self.progress is progress_mod.NO_PROGRESS:
                self.progress = RelayProgress(
                    given[RELAY_KEY],
                    str(given.get("workerid", "?")),
                    bool(given.get(CONSOLE_KEY)),
                )
            return self.progress
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return self.progress
        return self._through_reporter(reporter, *self._mode(reporter))

    def _through_reporter(
        self, reporter: Any, mode: progress_mod.Mode, console: bool
    ) -> progress_mod.Progress:
        """This run's progress in ``mode``, written through pytest's terminal reporter."""
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        width = self.config.get_terminal_writer().fullwidth
        self.progress, self._stream = progress_display.for_reporter(
            mode, reporter, capman, console, width
        )
        return self.progress

    def _mode(self, reporter: Any) -> tuple[progress_mod.Mode, bool]:
        """The progress mode in effect, and whether the guest console is streamed."""
        verbose = self.config.option.verbose
        console = self.config.getoption("console") or verbose >= 2
        mode = progress_mod.choose(
            progress_mod.Mode(self.config.getoption("progress")),
            bool(reporter.isatty),
            verbose < 0,
            console,
        )
        return mode, console

    def relay(self) -> tuple[str, bool] | None:
        """An xdist controller: the relay workers send progress to (address, console).

        None when progress is off.  The workers' lines are plain, timestamped
        and marked with the worker, even on a terminal: xdist writes its
        reports from the controller's main thread while workers run, and a
        live line redrawn beside those writes would garble both.
        """
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return None
        mode, console = self._mode(reporter)
        if mode is progress_mod.Mode.OFF:
            return None
        if self._relay is None:
            plain = self._through_reporter(reporter, progress_mod.Mode.PLAIN, console)
            self._relay = RelayServer(plain, self.log).start()
        return self._relay.address, console

    def log(self, text: str) -> None:
        """A line for the user (a worker relays it, or has nowhere to write it)."""
        if is_worker(self.config):
            if isinstance(self.progress, RelayProgress):
                self.progress.log(text)
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if isinstance(self.progress, progress_display.LiveProgress):
            self.progress.print(f"[kharness] {text}")  # above the live line, which stays
        elif self._stream is not None:  # plain progress: shown as it happens, not captured
            self._stream.write_line(f"[kharness] {text}")
        elif reporter is not None and self.config.option.verbose >= 0:
            reporter.write_line(f"[kharness] {text}")

    def close(self) -> None:
        """Stop the relay and end the progress display (the live line goes away)."""
        if self._relay is not None:
            self._relay.close()
        closing = progress_display.LiveProgress | progress_display.PlainProgress | RelayProgress
        if isinstance(self.progress, closing):
            self.progress.close()
