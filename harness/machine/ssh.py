"""The SSH channel into a booted guest (paramiko), one connection per boot.

The guest's host key is pinned (generated for this run, see
:mod:`harness.guest.keys`); any other key is refused.  Commands run with a
hard timeout; on timeout the channel is closed and the result says so rather
than raising, because a hung test is a result, not a harness error.  Files are
pushed by streaming them into ``cat`` over an exec channel: the guest has no
SFTP server and needs none.
"""

from __future__ import annotations

import base64
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import paramiko

from harness.errors import GuestUnreachable
from harness.guest.keys import GuestKeys
from harness.machine.base import CommandResult
from harness.machine.capture import Capture, StreamCapture


def _read_rest(chan: paramiko.Channel, out: StreamCapture, deadline: float) -> None:
    """After the exit status: stdout data may still be in flight until EOF."""
    while not chan.eof_received and time.monotonic() < deadline:
        try:
            data = chan.recv(65536)
        except TimeoutError:
            return
        if not data:
            return
        out.feed(data)


class SshChannel:
    """A paramiko connection to one guest, reused for all of its commands (a Channel)."""

    def __init__(
        self, port: int, keys: GuestKeys, connect_timeout: float = 30.0, host: str = "127.0.0.1"
    ) -> None:
        self.port = port
        self.host = host
        self._client = paramiko.SSHClient()
        host_type, host_b64 = keys.host_public.split()[:2]
        pinned = paramiko.PKey.from_type_string(host_type, base64.b64decode(host_b64))
        self._client.get_host_keys().add(f"[{host}]:{port}", host_type, pinned)
        self._client.set_missing_host_key_policy(paramiko.RejectPolicy())
        self._key = paramiko.Ed25519Key.from_private_key_file(str(keys.client_key))
        self._connect(connect_timeout)

    def _connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self._client.connect(
                    self.host,
                    port=self.port,
                    username="root",
                    pkey=self._key,
                    timeout=5,
                    banner_timeout=10,
                    auth_timeout=10,
                    allow_agent=False,
                    look_for_keys=False,
                )
                transport = self._client.get_transport()
                if transport is not None:
                    transport.set_keepalive(5)
                return
            except paramiko.BadHostKeyException as exc:
                raise GuestUnreachable(
                    f"port {self.port} answered with a host key that is not "
                    f"this guest's ({exc}); another service holds the port?"
                ) from None
            except (OSError, paramiko.SSHException, EOFError) as exc:
                last = exc
                time.sleep(0.2)
        raise GuestUnreachable(
            f"SSH to the guest on {self.host}:{self.port} failed for {timeout:.0f}s: {last}"
        )

    def run(
        self,
        command: str,
        timeout: float,
        stdin: bytes | None = None,
        abort: Callable[[], bool] | None = None,
        capture: Capture | None = None,
    ) -> CommandResult:
        """Run ``command`` with a hard ``timeout``; never raises for the command's sake.

        ``abort`` is polled while waiting: when the kernel is known dead there is
        no point waiting for the timeout (the result then has no exit code).
        ``capture`` bounds and files the output (default: bounded, in memory).
        A broken connection raises GuestUnreachable, never a paramiko error.
        """
        try:
            return self._run(command, timeout, stdin, abort, capture or Capture.in_memory())
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise GuestUnreachable(f"SSH session lost: {str(exc) or type(exc).__name__}") from None

    def _run(
        self,
        command: str,
        timeout: float,
        stdin: bytes | None,
        abort: Callable[[], bool] | None,
        cap: Capture,
    ) -> CommandResult:
        started = time.monotonic()
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise GuestUnreachable("the SSH connection to the guest is gone")
        chan = transport.open_session(timeout=10)
        try:
            # Sending may take a while on a slow (TCG) guest: the whole timeout,
            # then short timeouts while the streams are drained.
            chan.settimeout(timeout)
            chan.exec_command(command)
            if stdin is not None:
                chan.sendall(stdin)
                chan.shutdown_write()
            chan.settimeout(0.1)
            finished = self._drain(chan, cap, started + timeout, abort or (lambda: False))
            timed_out = finished is None
            code = chan.recv_exit_status() if finished else None
            if code == -1:  # paramiko's "closed without an exit status": the link died
                raise GuestUnreachable(
                    "SSH session lost: the channel closed without an exit status"
                )
        finally:
            chan.close()
        return CommandResult(
            command,
            code,
            cap.stdout.text(),
            cap.stderr.text(),
            time.monotonic() - started,
            timed_out,
        )

    @staticmethod
    def _drain(
        chan: paramiko.Channel,
        cap: Capture,
        deadline: float,
        abort: Callable[[], bool],
    ) -> bool | None:
        """Read both streams until the command exits.

        True: it exited; False: the channel died or ``abort`` said stop;
        None: the deadline passed.
        """
        while time.monotonic() < deadline:
            got = False
            while chan.recv_ready():
                cap.stdout.feed(chan.recv(65536))
                got = True
            while chan.recv_stderr_ready():
                cap.stderr.feed(chan.recv_stderr(65536))
                got = True
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                _read_rest(chan, cap.stdout, deadline)
                return True
            if chan.closed or abort():
                return False
            if not got:
                chan.status_event.wait(0.02)
        return None

    def push(self, data: bytes, remote: str, mode: int = 0o755, timeout: float = 60) -> None:
        """Write ``data`` to ``remote`` in the guest (streamed through cat)."""
        quoted = shlex.quote(remote)
        result = self.run(f"cat > {quoted} && chmod {mode:o} {quoted}", timeout, stdin=data)
        if result.exit_code != 0:
            raise GuestUnreachable(
                f"pushing {remote} into the guest failed: "
                f"{result.stderr.strip() or result.exit_code}"
            )

    def push_file(self, local: Path, remote: str, timeout: float = 60) -> None:
        """Copy a host file into the guest, keeping it executable."""
        self.push(local.read_bytes(), remote, 0o755, timeout)

    def alive(self, timeout: float = 5.0) -> bool:
        """A short liveness probe: can the guest still run ``true``?"""
        try:
            return self.run("true", timeout).exit_code == 0
        except GuestUnreachable:
            return False

    def close(self) -> None:
        """Close the connection (the guest keeps running)."""
        self._client.close()
