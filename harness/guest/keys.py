"""SSH keys for one results directory: the guest's host key and our client key.

Both are made fresh for every run and the guest's public host key is pinned in
the client, so a session can only ever talk to the guest this run booted (no
trust-on-first-use, no ~/.ssh/known_hosts touched).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.cache import atomic_dir
from harness.errors import InfraError, ToolMissing


@dataclass(frozen=True)
class GuestKeys:
    """Paths and public halves of the keys a run uses."""

    host_key: Path  # dropbear format, goes into the guest
    host_public: str  # "ssh-ed25519 AAAA..." pinned by the client
    client_key: Path  # OpenSSH private key for paramiko
    client_public: str  # goes into the guest's authorized_keys


def make_keys(directory: Path) -> GuestKeys:
    """Create both key pairs in ``directory`` (reused if already there).

    The pair is made in a scratch directory renamed into place, so parallel
    workers sharing one results directory agree on one pair: whoever renames
    first wins and the others read theirs.
    """
    host_key = directory / "guest_host_ed25519.dropbear"
    client_key = directory / "client_ed25519"
    if directory.is_dir() and not (host_key.exists() and client_key.with_suffix(".pub").exists()):
        _new_keys(host_key, client_key)  # a directory someone else made: fill it
    elif not directory.exists():
        with atomic_dir(directory) as scratch:
            _new_keys(scratch / host_key.name, scratch / client_key.name)
    host_public = _dropbearkey("-y", "-f", str(host_key))
    host_line = next(line for line in host_public.splitlines() if line.startswith("ssh-"))
    client_public = client_key.with_suffix(".pub").read_text().strip()
    return GuestKeys(host_key, " ".join(host_line.split()[:2]), client_key, client_public)


def _new_keys(host_key: Path, client_key: Path) -> None:
    _dropbearkey("-t", "ed25519", "-f", str(host_key))
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    client_key.write_bytes(pem)
    client_key.chmod(0o600)
    pub = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    client_key.with_suffix(".pub").write_text(pub.decode() + " kharness\n")


def _dropbearkey(*args: str) -> str:
    if not shutil.which("dropbearkey"):
        raise ToolMissing("dropbearkey", "dropbear-bin")
    proc = subprocess.run(
        ["dropbearkey", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise InfraError(f"dropbearkey {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout
