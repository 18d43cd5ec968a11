"""A real headless Chromium driven over the DevTools protocol, for tests of HTML pages.

The system's ``chromium`` (Debian's package; ``ci/bootstrap.sh`` installs it)
starts headless with a throwaway profile and a DevTools port of its own
choosing; we speak CDP to its page over a websocket (``websocket-client``):
navigate, wait for the load event, evaluate JavaScript, and collect what a
developer would see in the console: uncaught exceptions, ``console.error``,
and browser log errors (a missing file, a blocked request), plus every URL
the page asked for.  Chromium runs in its own session and its whole process
group is killed at the end, whatever happened.  A missing browser is a test
failure naming the fix, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websocket  # websocket-client, a dev dependency

BROWSERS = ("chromium", "chromium-browser")


def find_chromium() -> str:
    """The browser's path; fails the test (never skips) when it is not installed."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        "chromium is not installed; run ci/bootstrap.sh (as root: apt-get install -y chromium)",
        pytrace=False,
    )


@dataclass
class PageLoad:
    """What loading one page showed: errors a person would see in DevTools, requests made."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class Chromium:
    """One headless browser with one page; use as a context manager."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.profile = Path(tempfile.mkdtemp(prefix="kharness-chromium-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.ws: websocket.WebSocket | None = None
        self._next = 0
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        argv = [
            find_chromium(),
            "--headless",
            "--no-sandbox",  # root in CI containers
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        # its own scratch (org.chromium.Chromium.*) inside the profile: a browser
        # killed with SIGKILL cannot remove it, the profile's rmtree does
        scratch = self.profile / "tmp"
        scratch.mkdir()
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "TMPDIR": str(scratch)},
        )
        try:
            self.ws = websocket.create_connection(self._page_socket(), timeout=self.timeout)
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _page_socket(self) -> str:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited at start with status {self.proc.returncode}")
            if port_file.is_file() and port_file.read_text().count("\n") >= 1:
                port = int(port_file.read_text().split("\n")[0])
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            time.sleep(0.1)
        raise RuntimeError(f"chromium gave no DevTools port within {self.timeout:.0f}s")

    def __exit__(self, *exc: object) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the whole browser
        if self.proc is not None:
            self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        assert self.ws is not None
        self._next += 1
        ident = self._next
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self._events.append(message)

    def _wait_event(self, method: str) -> None:
        assert self.ws is not None
        if any(e.get("method") == method for e in self._events):
            return
        while True:
            message = json.loads(self.ws.recv())
            self._events.append(message)
            if message.get("method") == method:
                return

    def open(self, url: str, settle: float = 0.3) -> PageLoad:
        """Navigate, wait for the load event (and ``settle`` seconds), report what it showed."""
        self._events.clear()
        self.call("Page.navigate", url=url)
        self._wait_event("Page.loadEventFired")
        time.sleep(settle)
        self.evaluate("1")  # drain events that arrived while settling
        load = PageLoad()
        for event in self._events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                load.errors.append(f"exception: {details.get('text')} {details.get('exception')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                load.errors.append(f"console.error: {params.get('args')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                load.errors.append(f"log: {params['entry'].get('text')}")
            elif method == "Network.loadingFailed":
                load.errors.append(f"request failed: {params.get('errorText')}")
            elif method == "Network.requestWillBeSent":
                load.requests.append(params.get("request", {}).get("url", ""))
        return load

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")
