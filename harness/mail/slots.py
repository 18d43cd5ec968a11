"""Where the bot's ``kharness series`` children run: here (``-n N``) or on hosts (``--hosts``).

A slot runs one child at a time.  Local slots start it as a process group
of its own that dies with the bot.  A host slot (hosts.yaml, the file
``kharness run --hosts`` reads) starts it over ssh in the project checkout
on that host, with its results in a scratch directory there; once the child
has ended, the results come back as a tar stream into the same place a
local child would have written them, and the scratch directory goes.  The
remote child runs on a pseudo-terminal (``ssh -tt``): when the bot stops it,
or dies, the connection closes and the child gets SIGHUP, which the harness
handles like Ctrl-C (guests stopped); the stop then also ends whatever of
that child is still running there and removes its directory.

As with ``kharness run --hosts``, nothing is copied to a host: it has the
project at the bot's commit, the kernels file at the same path (or the same
path inside the project), the kernels' trees, and can reach the inbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from harness.hosts import Host
from harness.machine.process import on_parent_death, terminate
from harness.mail.commandline import harness_argv
from harness.mail.inbox import Backoff
from harness.paths import REPO_ROOT
from harness.results import layout

#: the scratch directory on a host; the pattern ``pkill -f`` looks for when stopping
REMOTE_PREFIX = "/tmp/kharness-watch-"
#: ssh's exit status when it could not reach the host or lost the connection
SSH_FAILED = 255


#: how the bot gets its slots: (jobs, hosts, kernels file, owner, first delay before an
#: unreachable host is tried again) -> slots; :func:`make_slots`, or a test's fake
SlotFactory = Callable[[int, tuple[Host, ...], Path, str, float], list["Slot"]]

#: in each child: SIGTERM when the bot dies, even by SIGKILL (the harness then cleans up)
_DIE_WITH_BOT = on_parent_death(signal.SIGTERM)


class Child(Protocol):
    """One ``kharness series`` child wherever it runs."""

    def poll(self) -> int | None:
        """Its exit status once it ended; None while it runs."""
        ...

    def collect(self) -> None:
        """After it ended: bring its results to the local directory (a no-op when local)."""
        ...

    def lost(self) -> bool:
        """Whether it ended because its place could not be reached (not a verdict at all)."""
        ...

    def stop(self) -> None:
        """End it and everything it started (idempotent)."""
        ...


class Slot(Protocol):
    """A place a child can run."""

    name: str

    def ready(self, now: float) -> bool:
        """Whether a child may start here now (a host that was unreachable waits)."""
        ...

    def reached(self, ok: bool, now: float) -> float:
        """Say whether the last child reached its place; seconds until it is tried again."""
        ...

    def start(self, argv: list[str], out: Path) -> Child:
        """Run ``python -m harness --kernels-file K ARGV --results-dir OUT`` there (K: the
        kernels file as seen there); its output goes to OUT/series.log."""
        ...


@dataclass
class LocalChild:
    """A child process of the bot, in a process group of its own."""

    proc: subprocess.Popen[bytes]

    def poll(self) -> int | None:
        """Its exit status, or None."""
        return self.proc.poll()

    def collect(self) -> None:
        """Its results are already where they belong."""

    def lost(self) -> bool:
        """A local child always reached its place."""
        return False

    def stop(self) -> None:
        """SIGTERM to its group (it stops its guests), SIGKILL after a minute."""
        terminate(self.proc, grace=60.0)


@dataclass
class LocalSlot:
    """A child on this machine."""

    kernels_file: Path
    name: str = "local"

    def ready(self, now: float) -> bool:
        """Always."""
        return True

    def reached(self, ok: bool, now: float) -> float:
        """This machine is always there."""
        return 0.0

    def start(self, argv: list[str], out: Path) -> Child:
        """Start the child here."""
        command = harness_argv(
            sys.executable, self.kernels_file, [*argv, "--results-dir", str(out)]
        )
        with (out / layout.SERIES_LOG).open("ab") as log:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                start_new_session=True,
                preexec_fn=_DIE_WITH_BOT,
            )
        return LocalChild(proc)


def ssh_command(host: Host, *extra: str) -> list[str]:
    """``ssh`` to ``host`` with its config file, never asking for a password."""
    argv = ["ssh", "-o", "BatchMode=yes"]
    if host.ssh_config:
        argv += ["-F", os.path.expanduser(host.ssh_config)]
    return [*argv, *extra, host.ssh]


@dataclass
class HostChild:
    """A child running on a host over ssh, its results in a scratch directory there."""

    host: Host
    proc: subprocess.Popen[bytes]
    remote: str  # the scratch directory on the host
    out: Path
    _done: bool = field(default=False, init=False)

    def poll(self) -> int | None:
        """ssh's exit status: the child's, or 255 when the host could not be reached."""
        return self.proc.poll()

    def lost(self) -> bool:
        """ssh says 255 for a host it could not reach or lost (the harness never exits 255)."""
        return self.proc.poll() == SSH_FAILED

    def collect(self) -> None:
        """The host's results into ``out`` (a tar stream), then its scratch directory goes."""
        if self._done:
            return
        self._done = True
        quoted = shlex.quote(self.remote)
        script = f"tar -C {quoted}/out -cf - . && rm -rf {quoted}"
        ssh = [*ssh_command(self.host), script]
        tar = ["tar", "-C", str(self.out), "-xf", "-"]
        with (self.out / layout.SERIES_LOG).open("ab") as log:
            source = subprocess.Popen(ssh, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=log)  # fmt: skip
            assert source.stdout is not None
            unpack = subprocess.run(tar, stdin=source.stdout, stderr=log, check=False)
            source.stdout.close()
            code = source.wait()
            if code != 0 or unpack.returncode != 0:
                where = f"{self.host.ssh}:{self.remote}"
                log.write(
                    f"\nkharness: error: the results could not be fetched from {where} "
                    f"(ssh {code}, tar {unpack.returncode})\n".encode()
                )

    def stop(self) -> None:
        """Close the connection (the child gets SIGHUP), end what is left, remove the scratch."""
        if self.proc.poll() is None:
            terminate(self.proc, grace=30.0)  # ssh, in a group of its own
        self._done = True
        # The path never appears whole in this script's own command line ("[/]" in the
        # pattern, the directory put together in $d), so pkill spares the shell running it.
        prefix, token = self.remote[: len(REMOTE_PREFIX)], self.remote[len(REMOTE_PREFIX) :]
        pattern = shlex.quote("[/]" + self.remote[1:])
        script = (
            f'd={shlex.quote(prefix)}; d="$d"{shlex.quote(token)}; '
            f"pkill -TERM -f -- {pattern}; i=0; "
            f"while pgrep -f -- {pattern} >/dev/null && [ $i -lt 120 ]; "
            "do sleep 0.5; i=$((i+1)); done; "
            f'pkill -KILL -f -- {pattern}; rm -rf "$d"'
        )
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                [*ssh_command(self.host), script], capture_output=True, timeout=90, check=False
            )


@dataclass
class HostSlot:
    """A child on a host of hosts.yaml (one slot per worker the host offers).

    A host that could not be reached is tried again after a delay that
    doubles (5 s up to 10 min, like the inbox; ``--unreachable-retry`` sets
    the first) and starts over once it answers.
    """

    host: Host
    kernels_file: Path
    name: str = ""
    owner: str = "bot"  # which bot's scratch directories these are (several may share a host)
    swept: set[str] = field(default_factory=set)  # hosts swept already, shared by their slots
    backoff: Backoff = field(default_factory=Backoff)
    down_until: float = 0.0

    def ready(self, now: float) -> bool:
        """Unless the host was unreachable and its delay has not passed."""
        return now >= self.down_until

    def reached(self, ok: bool, now: float) -> float:
        """Reset the delay when the host answered; else wait longer before the next try."""
        if ok:
            self.backoff.reset()
            self.down_until = 0.0
            return 0.0
        delay = self.backoff.next()
        self.down_until = now + delay
        return delay

    def start(self, argv: list[str], out: Path) -> Child:
        """Start the child on the host, in the project there, results in a scratch dir."""
        remote = f"{REMOTE_PREFIX}{self.owner}-{uuid.uuid4().hex[:12]}"
        child = harness_argv(
            self.host.python, self._kernels_path(), [*argv, "--results-dir", f"{remote}/out"]
        )
        script = (
            f"mkdir -p {shlex.quote(remote)}/out && cd {shlex.quote(self.host.path)} && "
            f"export KHARNESS_PROGRESS=plain && exec {shlex.join(child)}"
        )
        if self.host.ssh not in self.swept:
            self.swept.add(self.host.ssh)
            script = self._sweep() + script
        with (out / layout.SERIES_LOG).open("ab") as log:
            log.write(f"kharness watch: on {self.host.ssh}: {script}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [*ssh_command(self.host, "-tt"), script],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_DIE_WITH_BOT,
            )
        return HostChild(self.host, proc, remote, out)

    def _sweep(self) -> str:
        """Shell that removes this bot's scratch directories no process uses any more.

        A bot killed outright (``kill -9``) leaves its children's directories on
        the host: their connection closed, the children stopped on SIGHUP, but
        nobody fetched or removed what they wrote.  The first start on a host
        removes them; it runs before any child of this bot runs there.
        """
        glob = f"{REMOTE_PREFIX}{self.owner}-*"
        return (
            f'for d in {glob}; do [ -d "$d" ] || continue; '
            'pgrep -f "[/]${d#/}" >/dev/null || rm -rf "$d"; done; '
        )

    def _kernels_path(self) -> str:
        """The kernels file as the host sees it: the same path inside the project, else as is."""
        try:
            return str(self.kernels_file.resolve().relative_to(REPO_ROOT))
        except ValueError:
            return str(self.kernels_file)


def make_slots(
    jobs: int, hosts: tuple[Host, ...], kernels_file: Path, owner: str = "bot", retry: float = 5.0
) -> list[Slot]:
    """``jobs`` local slots, or one per worker of every host (``owner``: which bot;
    ``retry``: the first delay before an unreachable host is tried again)."""
    if not hosts:
        return [LocalSlot(kernels_file, f"local-{n}") for n in range(jobs)]
    swept: set[str] = set()
    return [
        HostSlot(h, kernels_file, f"{h.ssh}#{n}", owner, swept, Backoff.starting(retry))
        for h in hosts
        for n in range(h.workers)
    ]


def owner_of(home: Path) -> str:
    """A short name for the bot keeping its state in ``home`` on this machine."""
    where = f"{socket.gethostname()}:{home.resolve()}"
    return hashlib.sha256(where.encode()).hexdigest()[:8]
