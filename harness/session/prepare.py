"""Before a kernel's first boot: resolve it, choose its backend, build what the guest carries.

Done once per kernel (a download, a build, an initramfs), whatever number
of boots follow; a failure here is the kernel's setup error for every test.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.config import KernelSpec
from harness.display.progress import Progress
from harness.errors import BuildFailed, HarnessError
from harness.kernels import sandbox
from harness.kernels.base import KernelImage
from harness.machine import accel as accel_mod
from harness.machine.backends import DEFAULT_BACKEND
from harness.machine.base import Backend, BootFiles, GuestPayload, GuestShape, MachineConfig
from harness.machine.snapshot_cache import SnapshotCache
from harness.outcome import SetupFacts, Verdict, classify_setup
from harness.results.evidence import Timings
from harness.session.context import RunContext
from harness.testkinds.compile import CompileResult
from harness.testkinds.testdef import GuestTest


@dataclass
class Preparation:
    """One kernel made bootable: its image, its backend, the files its guest boots with."""

    spec: KernelSpec
    ctx: RunContext
    tests: list[GuestTest]
    timings: Timings
    image: KernelImage | None = None
    files: BootFiles | None = None
    payload: GuestPayload | None = None
    kept: SnapshotCache | None = None  # snapshot: keep / --keep-snapshots, once prepared
    _backend: Backend | None = None

    @property
    def directory(self) -> Path:
        """This kernel's part of the results directory."""
        return self.ctx.results / self.spec.name

    @property
    def backend_name(self) -> str:
        """The backend booting this kernel: --backend, else kernels.yaml's."""
        return self.ctx.backend or self.spec.backend

    def backend(self) -> Backend:
        """This kernel's backend, made on first use."""
        if self._backend is None:
            name = self.backend_name
            if name not in self.ctx.backends:
                known = ", ".join(sorted(self.ctx.backends))
                raise HarnessError(f"unknown backend '{name}'; known backends: {known}")
            if name != DEFAULT_BACKEND and not self.spec.arch.is_host:
                raise HarnessError(
                    f"backend '{name}' boots only the host's architecture; kernel "
                    f"'{self.spec.name}' is {self.spec.arch.name}: use --backend {DEFAULT_BACKEND}"
                )
            if self.spec.untrusted:  # --backend may name one kernels.yaml did not
                sandbox.refuse_backend(name, self.spec.name)
            self._backend = self.ctx.backends[name]()
        return self._backend

    def compiled(self) -> Mapping[str, CompileResult]:
        """This kernel's tests compiled for its architecture."""
        return self.ctx.compiled_for(self.spec.arch, self.tests)

    def compile_failure(self, test: GuestTest) -> Verdict | None:
        """Why ``test`` cannot run here: it did not compile for this kernel's arch."""
        compiled = self.compiled().get(test.name)
        if compiled is None or compiled.ok:
            return None
        return classify_setup(SetupFacts("compile", "", (compiled.log,)))

    def prepare(self, progress: Progress) -> Verdict | None:
        """Resolve the kernel and let the backend prepare; a Verdict if that failed."""
        try:
            started = time.monotonic()
            self.image = self.spec.source.resolve(self.ctx.log, progress)
            self.timings.add("fetch", time.monotonic() - started)
            for phase, seconds in self.image.phases.items():
                self.timings.add(phase, seconds)
            started = time.monotonic()
            backend = self.backend()  # a backend that cannot boot this arch says so first
            built = self.compiled()
            compiled = tuple(built[t.name] for t in self.tests if t.name in built)
            spec, ctx = self.spec, self.ctx
            if spec.snapshot and ctx.snapshots and (spec.keep_snapshot or ctx.keep_snapshots):
                self.kept = SnapshotCache()  # a bad $KHARNESS_SNAPSHOT_CACHE_MIB: setup error
            # a kept guest holds the cache's keys: the same initrd, the same key, run after run
            keys = self.kept.keys() if self.kept is not None else self.ctx.keys
            self.payload = GuestPayload(self.image, compiled, keys, self.spec.arch)
            self.files = backend.prepare(self.payload, self.directory)
            self.timings.add("image", time.monotonic() - started)
        except BuildFailed as exc:
            details = (exc.details,) + ((f"full log: {exc.log}",) if exc.log else ())
            return classify_setup(SetupFacts("build", str(exc), details))
        except HarnessError as exc:
            message = f"kernel '{self.spec.name}': {exc}"
            return classify_setup(SetupFacts("fetch", message))
        return None

    def machine_config(self) -> MachineConfig:
        """The guest shape: the kernel's settings, grown to what its tests need."""
        assert self.payload is not None and self.files is not None
        nodes = max([t.needs.numa_nodes for t in self.tests] or [1])
        memory = max([self.spec.memory_mib, *(t.needs.memory_mib for t in self.tests)])
        thp = next((t.needs.thp for t in self.tests if t.needs.thp), None)
        shape = GuestShape(memory, max(self.spec.cpus, nodes), nodes, self.spec.cmdline, thp)
        choice = accel_mod.choose(self.ctx.accel or self.spec.accel, self.spec.arch)
        return MachineConfig(self.payload, self.files, choice, shape, self.ctx.port_range)
