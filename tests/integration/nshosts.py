"""Test hosts made as network namespaces, each with its own sshd (the remote-host tests).

Each host is a network namespace with its own address on a veth pair and an
sshd started inside it with a throwaway host key and an authorized key made
for the test.  The namespaces share this machine's filesystem, so the
project is "installed" on each host at the same path (sshd's SetEnv puts this
checkout on PYTHONPATH, as ``make setup`` in a clone would on a real host).
Everything made is removed at the end, also on failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.errors import run_checked
from tests.integration.helpers import REPO, TEST_TAG


@dataclass
class NsHost:
    """One namespace host: its name, address, alias in the ssh config, its sshd."""

    netns: str
    veth: str
    address: str
    alias: str
    sshd: subprocess.Popen[bytes]
    outer: str = ""  # this machine's address on the host's link: what the host reaches us by

    def pids(self) -> list[int]:
        """Every process inside the namespace."""
        out = subprocess.run(
            ["ip", "netns", "pids", self.netns], capture_output=True, text=True, check=False
        )
        return [int(p) for p in out.stdout.split()]

    def strays(self) -> dict[int, str]:
        """Every process inside the namespace but its sshd listener, by command name: what a
        session left behind (a stopped job must leave nothing, whatever phase it was in)."""
        found = {}
        for pid in self.pids():
            with contextlib.suppress(OSError):
                if pid != self.sshd.pid:
                    found[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
        return found

    def cut_off(self) -> None:
        """The host is gone: everything in it dies at once, as in a power cut."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def missing_tools() -> str | None:
    """Why namespace hosts cannot be made here; None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "ssh", "ssh-keygen", "/usr/sbin/sshd"):
        if not shutil.which(tool):
            return f"{tool} is missing (ci/bootstrap.sh installs openssh-server and iproute2)"
    return None


def _run(*argv: str) -> None:
    run_checked(argv)


def namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def wait_for_ssh(config: Path, host: NsHost) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if host.sshd.poll() is not None:
            pytest.fail(f"sshd in {host.netns} exited with {host.sshd.returncode}")
        proc = subprocess.run(
            ["ssh", "-F", str(config), host.alias, "true"], capture_output=True, check=False
        )
        if proc.returncode == 0:
            return
        time.sleep(0.3)
    pytest.fail(f"ssh to {host.alias} never worked: {proc.stderr.decode()}")


@contextlib.contextmanager
def namespace_hosts(
    tmp_path: Path, session_tag: str, kernel_cache: Path, count: int = 2
) -> Iterator[list[NsHost]]:
    """``count`` namespace hosts reachable as ``kh0``, ``kh1``... through ``tmp_path/ssh_config``.

    Skips the test (saying why) where namespaces or sshd cannot be had.
    """
    why = missing_tools()
    if why:
        pytest.skip(why)
    keys = tmp_path / "keys"
    keys.mkdir()
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "client"))
    authorized = keys / "authorized_keys"
    shutil.copy(keys / "client.pub", authorized)
    scratch_before = remote_scratch()  # a lost host's scratch results stay on its "disk"
    made_run_sshd = not Path("/run/sshd").exists()
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    short = uuid.uuid4().hex[:5]
    subnet = 16 + int(short, 16) % 200  # 10.213.<subnet>.<4n>/30: one /30 per host
    hosts: list[NsHost] = []
    config_lines: list[str] = []
    known: list[str] = []
    try:
        for n in range(count):
            netns, veth = f"kh{short}{n}", f"kh{short}{n}"
            outer, inner = f"10.213.{subnet}.{4 * n + 1}", f"10.213.{subnet}.{4 * n + 2}"
            _run("ip", "netns", "add", netns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
            _run("ip", "addr", "add", f"{outer}/30", "dev", veth)
            _run("ip", "link", "set", veth, "up")
            for cmd in (
                ("ip", "addr", "add", f"{inner}/30", "dev", "eth0"),
                ("ip", "link", "set", "eth0", "up"),
                ("ip", "link", "set", "lo", "up"),
            ):
                _run("ip", "netns", "exec", netns, *cmd)
            host_key = keys / f"host{n}"
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
            public = " ".join((keys / f"host{n}.pub").read_text().split()[:2])
            known.append(f"{inner} {public}")
            cfg = tmp_path / f"sshd{n}.conf"
            env = f"PYTHONPATH={REPO} {TEST_TAG}={session_tag} KHARNESS_CACHE={kernel_cache}"
            cfg.write_text(
                f"ListenAddress {inner}\nPort 22\nHostKey {host_key}\n"
                f"PidFile {tmp_path}/sshd{n}.pid\nAuthorizedKeysFile {authorized}\n"
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                f"SetEnv {env}\n"
            )
            sshd = subprocess.Popen(
                ["ip", "netns", "exec", netns, "/usr/sbin/sshd", "-D", "-e", "-f", str(cfg)],
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / f"sshd{n}.log").open("wb"),
            )
            hosts.append(NsHost(netns, veth, inner, f"kh{n}", sshd, outer))
            config_lines += [
                f"Host kh{n}",
                f"  HostName {inner}",
                "  User root",
                f"  IdentityFile {keys / 'client'}",
                "  IdentitiesOnly yes",
                f"  UserKnownHostsFile {keys / 'known_hosts'}",
                "  StrictHostKeyChecking yes",
                "  BatchMode yes",
                "  ConnectTimeout 10",
                "  ServerAliveInterval 2",
                "  ServerAliveCountMax 3",
            ]
        (keys / "known_hosts").write_text("\n".join(known) + "\n")
        (tmp_path / "ssh_config").write_text("\n".join(config_lines) + "\n")
        for host in hosts:
            wait_for_ssh(tmp_path / "ssh_config", host)
        yield hosts
    finally:
        for host in hosts:
            host.cut_off()
            host.sshd.wait(timeout=10)
        for n in range(count):
            subprocess.run(["ip", "netns", "del", f"kh{short}{n}"], capture_output=True)
            subprocess.run(["ip", "link", "del", f"kh{short}{n}"], capture_output=True)
        if made_run_sshd:
            shutil.rmtree("/run/sshd", ignore_errors=True)
        for scratch in remote_scratch() - scratch_before:
            shutil.rmtree(scratch, ignore_errors=True)
    assert not [ns for ns in namespaces() if ns.startswith(f"kh{short}")]


def remote_scratch() -> set[Path]:
    """The hosts' scratch result directories (one /tmp: the namespaces share it)."""
    return set(Path("/tmp").glob("kharness-remote-*")) | set(Path("/tmp").glob("kharness-watch-*"))
