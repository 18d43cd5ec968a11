"""The test suite's pytest plugin: ``replay:`` kernels and the ``replay`` backend.

A test project's conftest loads it after the harness's own plugin::

    pytest_plugins = ["harness.plugin.hooks", "tests.support.replay.plugin"]

and its kernels.yaml names a scenario (:mod:`tests.support.replay.scenario`)::

    kernels:
      - {name: d612, replay: {scenario: /path/to/d612.yaml}, backend: replay}

The kernel "resolves" to the scenario file itself (nothing is downloaded or
built) and the backend plays it: the plugin, the runner, the console watcher,
the reports and xdist run for real; only the kernel is replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.arch import Arch
from harness.display.progress import NO_PROGRESS, Progress
from harness.kernels.base import KernelImage, KernelSource
from harness.kernels.registry import ProviderParser
from harness.machine.backends import BackendFactory
from harness.machine.base import Backend, BootFiles, GuestPayload, Machine, MachineConfig
from harness.yamlcheck import Fields
from tests.support.replay import scenario
from tests.support.replay.machine import ReplayBackend

NAME = "replay"


@dataclass(frozen=True)
class ReplaySource:
    """``replay: {scenario: PATH}``: a kernel that is a scenario file."""

    scenario: Path
    release: str
    kind: str = NAME

    def describe(self) -> str:
        """The scenario, as kernels.yaml names it."""
        return f"replay {self.scenario.name}"

    def resolve(self, log: Callable[[str], None], progress: Progress = NO_PROGRESS) -> KernelImage:
        """The scenario itself stands for the kernel's files: nothing to fetch or build."""
        return KernelImage(self.scenario, None, self.release, f"replay of {self.scenario}")


def from_yaml(f: Fields, base: Path, arch: Arch) -> KernelSource | None:
    """kernels.yaml's ``replay:`` mapping; the scenario's own problems join the file's."""
    name = f.get("scenario", str, required=True)
    f.finish()
    if name is None:
        return None
    path = (base / name).resolve()
    read = scenario.parse(path, f.problems)
    return ReplaySource(path, read.release) if read is not None else None


class ScenarioBackend:
    """Plays the scenario its kernel's image names, one replayed machine per boot."""

    name = NAME

    def __init__(self) -> None:
        self._replay: ReplayBackend | None = None

    def prepare(self, payload: GuestPayload, directory: Path) -> BootFiles:
        """Read the scenario (the kernel's 'image'); nothing to build."""
        self._replay = ReplayBackend(scenario.load(payload.kernel.vmlinuz).script)
        return self._replay.prepare(payload, directory)

    def machine(self, cfg: MachineConfig, boot_dir: Path) -> Machine:
        """The next boot of the scenario."""
        assert self._replay is not None, "prepare() first"
        return self._replay.machine(cfg, boot_dir)


def _backend() -> Backend:
    return ScenarioBackend()


def pytest_kharness_providers(config: pytest.Config) -> Mapping[str, ProviderParser]:
    """kernels.yaml's ``replay:`` source key."""
    return {NAME: from_yaml}


def pytest_kharness_backends(config: pytest.Config) -> Mapping[str, BackendFactory]:
    """The ``replay`` backend."""
    return {NAME: _backend}
