"""Booting one kernel outside pytest, exactly as the tests would see it.

Used by ``python -m harness boot`` (a developer's debugging shell) and by the
benchmark: the same kernels.yaml entry, the same initrd with every compiled
test in /opt/tests, the same QEMU command line.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from harness import paths
from harness.config import KernelSpec, check_host_tools, load_kernels, select
from harness.display.progress_display import for_stream
from harness.errors import HarnessError
from harness.machine.base import Channel
from harness.paths import REPO_ROOT
from harness.results.evidence import new_run_dir
from harness.session import KernelGuest, new_context
from harness.testkinds.testdef import discover, read_test


def entry(kernels_file: Path, name: str) -> KernelSpec:
    """The kernels.yaml entry ``name``, checked for the host's tools."""
    return check_host_tools(select(load_kernels(kernels_file), [name], kernels_file))[0]


@contextlib.contextmanager
def boot_kernel(
    spec: KernelSpec,
    results_base: str | None = None,
    accel: str | None = None,
    backend: str | None = None,
) -> Iterator[tuple[KernelGuest, Channel]]:
    """Boot ``spec`` and yield (guest, channel); the guest always stops afterwards."""
    from harness.machine.accel import Accel

    check_host_tools([spec])
    tests = [read_test(p) for k in ("c", "sh") for p in discover(REPO_ROOT / "guest-tests" / k)]
    run_dir = new_run_dir(paths.results_base(results_base))
    progress = for_stream(sys.stderr)  # download, build and boot lines
    ctx = new_context(
        run_dir,
        tests,
        Accel(accel) if accel else None,
        log=progress.print,
        backend=backend,
        progress=progress,
        snapshots=False,  # one shell or one command: no second start to restore for
    )
    guest = KernelGuest(spec, ctx, tests)
    try:
        try:
            problem = guest.prepare() or guest.ensure_booted()
        finally:
            progress.close()
        if problem is not None:
            raise HarnessError("\n".join([problem.summary, *problem.details]))
        assert guest.channel is not None
        yield guest, guest.channel
    finally:
        guest.shutdown()


def interactive_ssh(guest: KernelGuest) -> int:
    """A root shell in the booted guest with the system's ssh, the guest's key pinned."""
    ssh = shutil.which("ssh")
    keys = guest.keys
    port = guest.ready.ssh_port
    known = keys.client_key.parent / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {keys.host_public}\n")
    argv = [
        "ssh",
        "-p",
        str(port),
        "-i",
        str(keys.client_key),
        "-o",
        f"UserKnownHostsFile={known}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "IdentitiesOnly=yes",
        "root@127.0.0.1",
    ]
    if ssh is None:
        print(
            "openssh-client is not installed (apt-get install -y openssh-client); "
            f"connect with: {' '.join(argv)}",
            file=sys.stderr,
        )
        return 3
    print("exit the shell to stop the guest", file=sys.stderr)
    return subprocess.call(argv)
