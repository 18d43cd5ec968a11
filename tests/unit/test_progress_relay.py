"""The progress relay: a worker's activities shown by the controller, over a real socket."""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from harness.display.progress import Kind, track
from harness.display.progress_display import PlainProgress
from harness.plugin.relay import RelayProgress, RelayServer


class Screen:
    """What the controller shows: its progress lines and its log lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for(self, wanted: Callable[[str], bool], timeout: float = 10.0) -> str:
        """The screen once ``wanted`` holds for it (the relay thread runs on its own)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if wanted(self.text()):
                return self.text()
            time.sleep(0.02)
        raise AssertionError(f"never shown; the screen:\n{self.text()}")


@pytest.fixture
def screen() -> Screen:
    return Screen()


@pytest.fixture
def server(screen: Screen) -> Iterator[RelayServer]:
    progress = PlainProgress(screen.write, interval=3600, console=True, stamp=lambda: "T")
    relay = RelayServer(progress, lambda text: screen.write(f"LOG {text}")).start()
    yield relay
    relay.close()
    assert not any(t.name == "progress-relay" for t in threading.enumerate())


def test_a_workers_activities_are_shown_marked_with_the_worker(
    server: RelayServer, screen: Screen
) -> None:
    worker = RelayProgress(server.address, "gw1", console=True)
    with track(worker, Kind.BOOT, "debian-6.12: boot-1") as boot:
        boot.update(detail="[    0.5] Linux version 6.12")
        worker.console("debian-6.12", "[    2.0] BUG: kernel NULL pointer dereference", True)
    worker.log("debian-6.12: boot-1 failed; booting once more")
    text = screen.wait_for(lambda s: "booting once more" in s)
    assert "T [kharness] boot [gw1] debian-6.12: boot-1: 0:00 (started)" in text
    assert "T [kharness] boot [gw1] debian-6.12: boot-1: done in" in text
    assert "[gw1] debian-6.12! [    2.0] BUG: kernel NULL pointer dereference" in text
    assert "LOG [gw1] debian-6.12: boot-1 failed; booting once more" in text
    worker.close()


def test_updates_are_thinned_but_the_last_figures_arrive(
    server: RelayServer, screen: Screen
) -> None:
    worker = RelayProgress(server.address, "gw0")
    sent: list[bytes] = []
    before = time.monotonic()
    act = worker.activity(Kind.BUILD, "selftest: bzImage")
    assert worker._sock is not None
    real = worker._sock

    class Counting:
        def sendall(self, data: bytes) -> None:
            sent.append(data)
            real.sendall(data)

        def close(self) -> None:
            real.close()

    worker._sock = Counting()  # type: ignore[assignment]
    for n in range(1, 2001):
        act.update(done=n, step="compile")
    seconds = worker.end(act)
    assert 0 < seconds <= time.monotonic() - before, "the time from its start to its end"
    text = screen.wait_for(lambda s: "done in" in s)
    assert "2000 objects compiled" in text, "the last count must reach the controller"
    assert len(sent) < 20, f"{len(sent)} messages for 2000 updates"
    worker.close()


def test_a_worker_that_hangs_up_mid_activity_has_it_stopped(
    server: RelayServer, screen: Screen
) -> None:
    worker = RelayProgress(server.address, "gw0")
    worker.activity(Kind.TEST, "k: uffd_api", timeout=60)
    screen.wait_for(lambda s: "(started)" in s)
    worker.close()  # as when the worker process dies
    text = screen.wait_for(lambda s: "stopped" in s)
    assert "test [gw0] k: uffd_api: stopped in" in text


def test_an_unreadable_line_is_reported_and_the_relay_goes_on(
    server: RelayServer, screen: Screen
) -> None:
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect("\0" + server.address)
    raw.sendall(
        b'{"op": "hello", "worker": "gw3"}\nnot json\n{"op": "log", "text": "still here"}\n'
    )
    text = screen.wait_for(lambda s: "still here" in s)
    assert "LOG progress relay: unreadable message from gw3" in text
    raw.close()


def test_no_controller_means_silence_not_failure() -> None:
    """Every call returns (none raises), and a relay that failed once never tries again."""
    address = f"kharness-progress-nobody-listens-{os.getpid()}"
    worker = RelayProgress(address, "gw0", timeout=0.5)
    with track(worker, Kind.TEST, "k: t") as act:
        act.update(detail="x")
    worker.log("lost")
    late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    late.bind("\0" + address)  # a controller turns up after the worker gave up
    late.listen()
    late.settimeout(0.5)
    worker.log("too late")
    worker.console("k", "line", False)
    with pytest.raises(TimeoutError):
        late.accept()
    late.close()


def test_close_frees_the_address(screen: Screen) -> None:
    progress = PlainProgress(screen.write, interval=3600)
    relay = RelayServer(progress, screen.write).start()
    worker = RelayProgress(relay.address, "gw0")
    worker.log("hi")
    screen.wait_for(lambda s: "hi" in s)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    assert probe.connect_ex("\0" + relay.address) == 0  # listening while open
    probe.close()
    relay.close()
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    assert probe.connect_ex("\0" + relay.address) == errno.ECONNREFUSED  # nobody listens
    probe.bind("\0" + relay.address)  # and nothing holds the name: it can be taken again
    assert probe.getsockname() == b"\0" + relay.address.encode()
    probe.close()
    worker.close()
