"""What every kernel's session shares within one run: results, keys, compiled tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.arch import Arch
from harness.config import Isolation
from harness.display.progress import NO_PROGRESS, Progress
from harness.errors import HarnessError
from harness.guest.keys import GuestKeys, make_keys
from harness.machine import accel as accel_mod
from harness.machine.backends import BACKENDS, BackendFactory
from harness.session.policy import Policy
from harness.testkinds.compile import CompileResult, check_script, compile_test
from harness.testkinds.testdef import GuestTest


class ForeignCompiles:
    """Tests compiled for guests of another architecture than the host's, on first need.

    The host's tests are compiled up front (every kernel needs them); a
    cross-compile waits until a kernel of that architecture asks, and is
    done once per (architecture, test) for the whole run.
    """

    def __init__(self) -> None:
        self._done: dict[tuple[str, str], CompileResult] = {}
        self._lock = threading.Lock()

    def get(self, arch: Arch, tests: list[GuestTest]) -> dict[str, CompileResult]:
        """``tests`` compiled for ``arch``, compiling those not compiled yet."""
        with self._lock:
            for t in tests:
                if (arch.name, t.name) not in self._done:
                    self._done[(arch.name, t.name)] = compile_one(t, arch)
            return {t.name: self._done[(arch.name, t.name)] for t in tests}


@dataclass(frozen=True)
class RunContext:
    """What every kernel's session shares within one run (never changed once made)."""

    results: Path
    keys: GuestKeys
    compiled: Mapping[str, CompileResult]
    accel: accel_mod.Accel | None = None  # command-line override of kernels.yaml
    port_range: tuple[int, int] | None = None
    log: Callable[[str], None] = print
    backend: str | None = None  # command-line override of kernels.yaml
    backends: Mapping[str, BackendFactory] = field(default_factory=lambda: BACKENDS)
    policy: Policy = field(default_factory=Policy)
    progress: Progress = NO_PROGRESS  # feedback during downloads, builds, boots and tests
    foreign: ForeignCompiles = field(default_factory=ForeignCompiles)
    isolation: Isolation | None = None  # command-line override of kernels.yaml
    snapshots: bool = True  # False: --no-snapshots, every fresh guest a cold boot
    keep_snapshots: bool = False  # --keep-snapshots: every kernel's ready guest kept in the cache

    def compiled_for(self, arch: Arch, tests: list[GuestTest]) -> Mapping[str, CompileResult]:
        """``tests`` compiled for ``arch``: the host's were compiled up front, others now."""
        if arch.is_host:
            return self.compiled
        return self.foreign.get(arch, tests)


def new_context(
    run_dir: Path,
    tests: list[GuestTest],
    accel: accel_mod.Accel | None = None,
    port_range: tuple[int, int] | None = None,
    log: Callable[[str], None] = print,
    backend: str | None = None,
    progress: Progress = NO_PROGRESS,
    backends: Mapping[str, BackendFactory] | None = None,
    policy: Policy | None = None,
    isolation: Isolation | None = None,
    snapshots: bool = True,
    keep_snapshots: bool = False,
) -> RunContext:
    """Keys and compiled tests for a run whose evidence goes to ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    compiled = {t.name: compile_one(t) for t in tests}
    return RunContext(
        run_dir,
        make_keys(run_dir / "keys"),
        compiled,
        accel,
        port_range,
        log,
        backend,
        BACKENDS if backends is None else backends,
        policy=policy or Policy(),
        progress=progress,
        isolation=isolation,
        snapshots=snapshots,
        keep_snapshots=keep_snapshots,
    )


def compile_one(test: GuestTest, arch: Arch | None = None) -> CompileResult:
    """One guest test made ready to push: compiled (C) or syntax-checked (sh)."""
    try:
        return check_script(test.source) if test.kind == "sh" else compile_test(test.source, arch)
    except HarnessError as exc:
        return CompileResult(test.name, None, str(exc))
