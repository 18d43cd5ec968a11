"""The SSH channel against a real SSH server (paramiko's, in a thread): the pinned host
key, the client key, a command's output and status, the connect's parts, and the
short retry when the port is not answering yet (a guest not yet scheduled after a
restore)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.errors import GuestUnreachable
from harness.guest.keys import GuestKeys
from harness.machine.ssh import SshChannel


def _key(path: Path) -> tuple[paramiko.Ed25519Key, str]:
    """A fresh ed25519 key written to ``path``; the paramiko key and its public line."""
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    loaded = paramiko.Ed25519Key.from_private_key_file(str(path))
    return loaded, f"{loaded.get_name()} {loaded.get_base64()}"


class _Server(paramiko.ServerInterface):
    """Root with one public key; ``exec`` echoes the command and exits 3."""

    def __init__(self, client: paramiko.PKey) -> None:
        self.client = client

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = username == "root" and key.asbytes() == self.client.asbytes()
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return (
            paramiko.OPEN_SUCCEEDED
            if kind == "session"
            else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        )

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        def answer() -> None:
            time.sleep(0.2)  # after paramiko has replied to the exec request
            with contextlib.suppress(OSError, EOFError):  # the client may have gone: no answer
                channel.sendall(b"ran " + command + b"\n")
                channel.send_exit_status(3)
            channel.close()

        threading.Thread(target=answer, daemon=True).start()
        return True


class _Guest:
    """A loopback SSH server on ``port``, serving connections until stopped."""

    def __init__(self, host_key: paramiko.PKey, client: paramiko.PKey, port: int = 0) -> None:
        self.host_key, self.client = host_key, client
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.transports: list[paramiko.Transport] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            self.transports.append(transport)
            try:
                transport.start_server(server=_Server(self.client))
            except (paramiko.SSHException, EOFError, OSError):
                # the client left during the handshake (a refused host key does): serve on
                transport.close()

    def stop(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() in the thread
        self.listener.close()
        self.thread.join(5)
        assert not self.thread.is_alive()
        for transport in self.transports:
            transport.close()


@pytest.fixture
def keys(tmp_path: Path) -> tuple[GuestKeys, paramiko.PKey, paramiko.PKey]:
    host, host_public = _key(tmp_path / "host")
    client, client_public = _key(tmp_path / "client")
    pinned = GuestKeys(tmp_path / "host", host_public, tmp_path / "client", client_public)
    return pinned, host, client


@pytest.fixture
def guest(keys: tuple[GuestKeys, paramiko.PKey, paramiko.PKey]) -> Iterator[_Guest]:
    server = _Guest(keys[1], keys[2])
    yield server
    server.stop()


def test_connects_with_the_pinned_key_and_runs_a_command(
    keys: tuple[GuestKeys, paramiko.PKey, paramiko.PKey], guest: _Guest
) -> None:
    channel = SshChannel(guest.port, keys[0], 10)
    try:
        result = channel.run("date -s @1", 10)
        assert (result.exit_code, result.stdout) == (3, "ran date -s @1\n")
        parts = channel.parts
        assert parts.attempts == 1
        assert 0 < parts.banner + parts.kex + parts.auth < 10
        assert min(parts.tcp, parts.banner, parts.kex, parts.auth) >= 0
    finally:
        channel.close()


def test_another_host_key_is_refused_at_once(
    tmp_path: Path, keys: tuple[GuestKeys, paramiko.PKey, paramiko.PKey], guest: _Guest
) -> None:
    """Refused before the deadline; the server (a client leaving mid-handshake, as this
    one does, and one that only knocks) serves the next connection."""
    pinned = keys[0]
    _, other_public = _key(tmp_path / "other")
    client_public = f"{guest.client.get_name()} {guest.client.get_base64()}"
    other = GuestKeys(tmp_path / "other", other_public, tmp_path / "client", client_public)
    started = time.monotonic()
    with pytest.raises(GuestUnreachable, match=f"port {guest.port} answered with a host key"):
        SshChannel(guest.port, other, 10)
    assert time.monotonic() - started < 5  # not retried until the deadline
    socket.create_connection(("127.0.0.1", guest.port)).close()  # gone before the banner
    channel = SshChannel(guest.port, pinned, 10)
    try:
        assert channel.run("true", 10).exit_code == 3
    finally:
        channel.close()


def test_a_port_not_answering_yet_is_retried_soon(
    keys: tuple[GuestKeys, paramiko.PKey, paramiko.PKey],
) -> None:
    """Refused at first (the guest not scheduled yet): the retry comes within tens of ms."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    late: list[_Guest] = []
    opened = threading.Timer(0.15, lambda: late.append(_Guest(keys[1], keys[2], port)))
    opened.start()
    started = time.monotonic()
    try:
        channel = SshChannel(port, keys[0], 10)
        waited = time.monotonic() - started
        channel.close()
    finally:
        opened.join()
        for server in late:
            server.stop()
    assert channel.parts.attempts > 2  # refused, retried, then through
    assert waited < 0.15 + 0.2 + 2.0  # the backoff is capped at 0.2 s (+ the handshake)


def test_nobody_listening_fails_naming_the_port(
    keys: tuple[GuestKeys, paramiko.PKey, paramiko.PKey],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(GuestUnreachable, match=f"127.0.0.1:{port} failed for 0.5s"):
        SshChannel(port, keys[0], 0.5)
