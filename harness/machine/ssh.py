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
import logging
import shlex
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko

from harness.errors import GuestUnreachable
from harness.guest.keys import GuestKeys
from harness.machine.base import CommandResult
from harness.machine.capture import Capture, StreamCapture


def _left(deadline: float, most: float) -> float:
    """Seconds to wait for one step: at most ``most``, never past ``deadline`` (nor 0)."""
    return max(0.01, min(most, deadline - time.monotonic()))


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


@dataclass(frozen=True)
class ConnectParts:
    """Where one SSH connect's seconds went (a restore's restore.json carries them)."""

    tcp: float = 0.0  # connect() to the forwarded port: QEMU's user-mode net answers on the host
    banner: float = 0.0  # until the guest's first byte: the SYN into the guest, dropbear's accept
    kex: float = 0.0  # banners, key exchange, the pinned host key checked
    auth: float = 0.0  # public key authentication
    attempts: int = 1  # connects tried (a refused or dropped one is retried)


#: the algorithms offered to the guest's dropbear: one of each, the cheapest both sides
#: have (dropbear's curve25519 and ed25519 run in plain C under TCG, every offer costs
#: bytes but every extra kex round trip or host key type would cost signatures)
_KEX = ("curve25519-sha256@libssh.org",)
_CIPHERS = ("aes128-ctr",)
_MACS = ("hmac-sha2-256",)
_HOST_KEYS = ("ssh-ed25519",)

#: paramiko's transport thread logs a reset connection at ERROR, and an unconfigured
#: logging prints that on the terminal when a guest crashes (QEMU gone, the socket reset);
#: the next use of the channel says it (GuestUnreachable), so the transport's log is quiet
_TRANSPORT_LOG = "harness.machine.ssh.transport"
logging.getLogger(_TRANSPORT_LOG).addHandler(logging.NullHandler())
logging.getLogger(_TRANSPORT_LOG).propagate = False

#: a connect that fails fast (refused, closed before the banner: the guest's network or
#: dropbear not scheduled yet) is retried after this, doubling up to _RETRY_MAX
_RETRY_FIRST = 0.01
_RETRY_MAX = 0.2


class SshChannel:
    """A paramiko connection to one guest, reused for all of its commands (a Channel)."""

    def __init__(
        self, port: int, keys: GuestKeys, connect_timeout: float = 30.0, host: str = "127.0.0.1"
    ) -> None:
        self.port = port
        self.host = host
        host_type, host_b64 = keys.host_public.split()[:2]
        self._pinned = paramiko.PKey.from_type_string(host_type, base64.b64decode(host_b64))
        self._key = paramiko.Ed25519Key.from_private_key_file(str(keys.client_key))
        self._transport: paramiko.Transport | None = None
        self.parts = self._connect(connect_timeout)

    def _connect(self, timeout: float) -> ConnectParts:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        pause = _RETRY_FIRST
        attempts = 0
        while time.monotonic() < deadline:
            attempts += 1
            try:
                return replace(self._attempt(deadline), attempts=attempts)
            except GuestUnreachable:
                raise
            except (OSError, paramiko.SSHException, EOFError) as exc:
                last = exc
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, _RETRY_MAX)
        raise GuestUnreachable(
            f"SSH to the guest on {self.host}:{self.port} failed for {timeout:g}s: {last}"
        )

    def _attempt(self, deadline: float) -> ConnectParts:
        """One connect, timed in parts; the transport is kept only if all of it worked."""
        started = time.monotonic()
        sock = socket.create_connection((self.host, self.port), timeout=_left(deadline, 5))
        transport: paramiko.Transport | None = None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connected = time.monotonic()
            # The first byte of the guest's banner, peeked (paramiko reads it again):
            # splits the guest's wake-up from the handshake.
            sock.settimeout(_left(deadline, 10))
            if not sock.recv(1, socket.MSG_PEEK):
                raise EOFError("the port closed before the guest's banner")
            bannered = time.monotonic()
            transport = paramiko.Transport(sock)
            transport.set_log_channel(_TRANSPORT_LOG)
            options = transport.get_security_options()
            options.kex, options.ciphers, options.digests = _KEX, _CIPHERS, _MACS
            options.key_types = _HOST_KEYS
            transport.banner_timeout = _left(deadline, 10)
            transport.start_client(timeout=_left(deadline, 10))
            if transport.get_remote_server_key().asbytes() != self._pinned.asbytes():
                raise GuestUnreachable(
                    f"port {self.port} answered with a host key that is not "
                    "this guest's; another service holds the port?"
                )
            exchanged = time.monotonic()
            transport.auth_timeout = _left(deadline, 10)
            transport.auth_publickey("root", self._key)
            if not transport.is_authenticated():
                raise paramiko.AuthenticationException("the guest refused the client key")
            transport.set_keepalive(5)
        except BaseException:
            if transport is not None:
                transport.close()
            sock.close()
            raise
        self._transport = transport
        done = time.monotonic()
        return ConnectParts(
            connected - started, bannered - connected, exchanged - bannered, done - exchanged
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
        transport = self._transport
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
        if self._transport is not None:
            self._transport.close()
