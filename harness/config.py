"""kernels.yaml: the candidate kernels, read and validated in full up front.

Nothing boots until the whole file is known to be right: every problem in it
comes back in one :class:`~harness.errors.ConfigError` that names the file,
the entry, the key and the fix.  The result is plain frozen data
(:class:`KernelSpec`), the only shape of a kernel the rest of the harness sees.

Schema (``base: DIR`` at the top, optional: where relative paths start, by
default the file's directory; one entry under ``kernels:``)::

    - name: debian-6.12               # unique; used in test ids (file.c::name)
      debian: {package: "linux-image-6.12.*+deb12-amd64-unsigned", suite: bookworm-security}
      # version: "6.12.57-1~deb12u1" in debian: pins the exact package version
      # or  image: {path: ../bzImage, modules: ../mods/lib/modules/6.12.0}
      arch: x86_64                    # x86_64 | arm64 (harness/arch.py); default: the host's
      cmdline: "nokaslr"              # appended to the harness's own
      memory: 2G                      # default 2G
      cpus: 2                         # default 2 (one per NUMA node)
      accel: auto                     # auto | kvm | tcg
      backend: qemu                   # qemu | virtme (harness/machine/backends.py)
      timeouts: {boot: 120, test: 300}
      reboot_after_oops: true
      kunit: [list-kunit-test]        # KUnit suites run at boot (build: kernels)
      selftests: [mincore]            # kselftest targets built from the tree (build: kernels)
      covers: {kselftest.mincore: [mm/mincore.c]}  # paths a test exercises (testkinds/covers.py)
      expect:
        uffd_move_swap_pmd: {outcome: fail, reason: "spurious ENOENT ..."}
"""

from __future__ import annotations

import difflib
import re
import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from harness.arch import ARCHES, Arch, by_name, host
from harness.errors import ConfigError
from harness.kernels import sandbox
from harness.kernels.base import KernelSource
from harness.kernels.build import BuildSource
from harness.kernels.config_fragments import KUNIT_FRAGMENT
from harness.kernels.registry import PROVIDERS, SHORTHAND, ProviderParser
from harness.machine.accel import Accel
from harness.machine.backends import BACKENDS, DEFAULT_BACKEND
from harness.outcome import EXPECTABLE, Outcome
from harness.testkinds.covers import Coverage, parse_covers
from harness.testkinds.kselftest import target_problem
from harness.yamlcheck import Fields, parse_size_mib

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class Expectation:
    """A known failure of one test on one kernel: becomes pytest xfail."""

    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class Timeouts:
    """Upper bounds, in seconds; a test's own @timeout wins over ``test``."""

    boot: float = 180.0
    test: float | None = None


class Isolation(Enum):
    """What a test may see of the tests before it on the same kernel.

    ``kernel``: one guest for the kernel's tests, a fresh one (a restored
    snapshot where the backend can, else a cold boot) only after a test left
    it untrusted; ``test``: every test starts from the restored snapshot.
    """

    KERNEL = "kernel"
    TEST = "test"


@dataclass(frozen=True)
class KernelSpec:
    """One candidate kernel as kernels.yaml describes it."""

    name: str
    source: KernelSource
    arch: Arch = field(default_factory=host)
    cmdline: str = ""
    memory_mib: int = 2048
    cpus: int = 2
    accel: Accel = Accel.AUTO
    backend: str = DEFAULT_BACKEND
    timeouts: Timeouts = field(default_factory=Timeouts)
    reboot_after_oops: bool = True
    isolation: Isolation = Isolation.KERNEL
    snapshot: bool = True  # save the ready guest once and restore it instead of booting
    keep_snapshot: bool = False  # snapshot: keep: the ready guest kept in the cache across runs
    expect: Mapping[str, Expectation] = field(default_factory=dict)
    kunit: tuple[str, ...] = ()  # KUnit suite globs whose boot-time results are reported
    selftests: tuple[str, ...] = ()  # kselftest targets built from the kernel's own tree
    covers: Mapping[str, Coverage] = field(default_factory=dict)  # test -> paths it exercises
    untrusted: bool = False  # built in the sandbox: boots only where the host's files are unseen


@dataclass(frozen=True)
class Known:
    """The kernel sources and backends kernels.yaml may name.

    The built-in rows, plus what a pytest plugin adds
    (:mod:`harness.plugin.hookspecs`; the test suite's replayed guest).
    """

    providers: Mapping[str, ProviderParser] = field(default_factory=lambda: PROVIDERS)
    backends: tuple[str, ...] = tuple(BACKENDS)


def load_kernels(
    path: Path,
    providers: Mapping[str, ProviderParser] | None = None,
    backends: Collection[str] = (),
) -> list[KernelSpec]:
    """Read and validate ``path``; raise one ConfigError listing every problem.

    ``providers`` and ``backends`` are extra source keys and backend names
    (a plugin's, see :mod:`harness.plugin.hookspecs`); none by default.
    """
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such file; pass --kernels-file PATH or create it "
            "(see docs/kernels-yaml.md)"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    problems: list[str] = []
    rows = Known({**PROVIDERS, **(providers or {})}, (*BACKENDS, *backends))
    specs = parse_kernels(data, path, problems, rows)
    if problems:
        raise ConfigError(f"{path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return specs


def parse_kernels(
    data: Any, path: Path, problems: list[str], rows: Known | None = None
) -> list[KernelSpec]:
    """Validate the document; append problems instead of raising."""
    rows = rows or Known()
    top = Fields(data, str(path), problems)
    entries = top.get("kernels", list, default=[], required=True)
    # where relative paths start: the file's directory, or base: (a rerun's pinned copy)
    base = path.parent / top.get("base", str, default=".")
    top.finish()
    if not entries and not problems:
        problems.append(f"{path}: 'kernels' is empty; add at least one kernel entry")
    specs: list[KernelSpec] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        label = entry.get("name") if isinstance(entry, Mapping) else None
        where = f"{path}: kernel #{index}" + (f" ({label})" if label else "")
        if isinstance(label, str) and label in seen:
            problems.append(
                f"{where}: duplicate name '{label}' (also kernel #{seen[label]});"
                " names must be unique"
            )
        elif isinstance(label, str):
            seen[label] = index
        keys = ("kernels", label if isinstance(label, str) else f"#{index}")
        spec = _parse_entry(Fields(entry, where, problems, keys), base, rows)
        if spec is not None:
            specs.append(spec)
    return specs


def _parse_entry(f: Fields, base: Path, rows: Known) -> KernelSpec | None:
    before = len(f.problems)
    name = f.get("name", str, required=True)
    if name is not None and not _NAME.match(name):
        f.problem(f"name '{name}' may hold only letters, digits and . _ + -")
    arch = _parse_arch(f)
    source = _parse_source(f, base, arch, rows.providers)
    memory = parse_size_mib(f.get("memory", (str, int), default=2048), f.where, f.problems)
    cpus = f.get("cpus", int, default=2)
    accel = f.choice("accel", Accel, Accel.AUTO)
    backend = f.get("backend", str, default=DEFAULT_BACKEND)
    if backend is not None and backend not in rows.backends:
        f.problem(f"backend '{backend}' is not one of {', '.join(rows.backends)}")
    elif backend is not None and backend != "qemu" and not arch.is_host:
        f.problem(
            f"backend '{backend}' boots only the host's architecture ({host().name}), "
            f"not {arch.name}; use 'backend: qemu' for arch {arch.name}"
        )
    f.declare("timeouts", "expect")  # read only when present; still keys an entry may have
    timeouts = _parse_timeouts(f.sub("timeouts")) if "timeouts" in f.data else Timeouts()
    expect = _parse_expect(f.sub("expect")) if "expect" in f.data else {}
    if backend in rows.backends:
        source = backend_needs(backend, source)
    kunit = _parse_kunit(f)
    if kunit:
        source = kunit_needs(source)
    selftests = _parse_selftests(f, source)
    snapshot = _parse_snapshot(f)
    untrusted = isinstance(source, BuildSource) and source.recipe.sandbox
    if untrusted and backend is not None and (problem := sandbox.backend_problem(backend)):
        f.problem(problem)
    spec = KernelSpec(
        name=name or "?",
        source=source,
        arch=arch,
        cmdline=f.get("cmdline", str, default=""),
        memory_mib=memory or 2048,
        cpus=cpus,
        accel=accel,
        backend=backend or DEFAULT_BACKEND,
        timeouts=timeouts,
        reboot_after_oops=f.get("reboot_after_oops", bool, default=True),
        isolation=f.choice("isolation", Isolation, Isolation.KERNEL),  # kernel|test
        snapshot=snapshot != "false",
        keep_snapshot=snapshot == "keep",
        expect=expect,
        kunit=kunit,
        selftests=selftests,
        untrusted=untrusted,
        covers=parse_covers(f, kunit, selftests),
    )
    if cpus is not None and not 1 <= cpus <= 64:
        f.problem(f"cpus must be between 1 and 64, got {cpus}")
    f.finish()
    return spec if len(f.problems) == before else None


def untrusted(spec: KernelSpec) -> KernelSpec:
    """``spec`` for a tree patched by strangers: built in the sandbox, booted on QEMU only.

    UserError (naming the reason and the fix) when its backend shows the
    host's files to the guest.
    """
    sandbox.refuse_backend(spec.backend, spec.name)
    source = spec.source
    if isinstance(source, BuildSource):
        source = replace(source, recipe=replace(source.recipe, sandbox=True))
    return replace(spec, source=source, untrusted=True)


def backend_needs(backend: str, source: Any) -> Any:
    """A kernel built from source for the virtme backend gets virtme's config fragment.

    virtme boots the host's root over 9p with overlayfs and talks to its init
    over virtio-serial; a tinyconfig build has none of that unless told.  The
    fragment joins the recipe, so such a kernel gets its own build slot.
    """
    from harness.machine.virtme import VIRTME_FRAGMENT  # lazily: only a virtme kernel loads it

    if backend != "virtme" or not isinstance(source, BuildSource):
        return source
    if VIRTME_FRAGMENT in source.recipe.fragments:
        return source
    recipe = replace(source.recipe, fragments=(*source.recipe.fragments, VIRTME_FRAGMENT))
    return replace(source, recipe=recipe)


def _parse_kunit(f: Fields) -> tuple[str, ...]:
    """``kunit: [list-kunit-test, "mm*"]``: suite globs, as kunit.filter_glob reads them."""
    globs = f.get("kunit", list, default=[])
    if not all(isinstance(g, str) and g.strip() for g in globs):
        f.problem("kunit must be a list of suite names or globs, e.g. [list-kunit-test, 'mm*']")
        return ()
    return tuple(globs)


def _parse_selftests(f: Fields, source: Any) -> tuple[str, ...]:
    """``selftests: [mincore, mm]``: kselftest targets, only for a kernel built from source."""

    targets = f.get("selftests", list, default=[])
    if not targets:
        return ()
    problems = [p for t in targets if (p := target_problem(t))]
    if problems:
        f.problem(f"selftests: {problems[0]}; write e.g. selftests: [mincore, timers]")
        return ()
    if source is not None and not isinstance(source, BuildSource):
        f.problem(
            f"selftests: {list(targets)} needs a kernel built from source (build:), whose "
            f"tree the kselftests are built from; this kernel comes from '{source.kind}': "
            "remove selftests: here, or add a build: entry for the same tree"
        )
        return ()
    return tuple(dict.fromkeys(targets))


def kunit_needs(source: Any) -> Any:
    """A kernel built from source that lists ``kunit:`` suites gets CONFIG_KUNIT=y.

    The suites' own options (CONFIG_LIST_KUNIT_TEST=y, ...) come from the
    entry's fragments; built in, they run at boot and print KTAP on the console.
    """

    if not isinstance(source, BuildSource) or KUNIT_FRAGMENT in source.recipe.fragments:
        return source
    recipe = replace(source.recipe, fragments=(*source.recipe.fragments, KUNIT_FRAGMENT))
    return replace(source, recipe=recipe)


def _parse_arch(f: Fields) -> Arch:
    """``arch: arm64`` (or an alias such as aarch64); the host's when absent."""
    text = f.get("arch", str, default=host().name)
    arch = by_name(text)
    if arch is None:
        f.problem(f"arch '{text}' is not one of {', '.join(ARCHES)}")
        return host()
    return arch


def _parse_source(
    f: Fields, base: Path, arch: Arch, providers: Mapping[str, ProviderParser]
) -> Any:
    kinds = [k for k in providers if k in f.data]
    for kind in providers:
        f.get(kind, (dict, str))  # marks the key as known
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        f.problem(f"needs exactly one kernel source out of {', '.join(providers)} (found: {found})")
        return None
    kind = kinds[0]
    value = f.data[kind]
    if isinstance(value, str) and kind in SHORTHAND:  # a plugin's source may have none
        value = {SHORTHAND[kind]: value}
    return providers[kind](f.sub(kind, value), base, arch)


def _parse_snapshot(f: Fields) -> str:
    """``snapshot: true|false|keep`` (default true), as one of those three words."""
    value = f.get("snapshot", (bool, str), default=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value != "keep":
        f.problem(f"snapshot '{value}' is not one of true, false, keep")
        return "true"
    return value


def _parse_timeouts(f: Fields) -> Timeouts:
    boot = f.get("boot", (int, float), default=Timeouts.boot)
    test = f.get("test", (int, float))
    for key, value in (("boot", boot), ("test", test)):
        if value is not None and value <= 0:
            f.problem(f"timeout '{key}' must be a positive number of seconds")
    f.finish()
    return Timeouts(boot=float(boot), test=float(test) if test else None)


def _parse_expect(f: Fields) -> dict[str, Expectation]:
    result: dict[str, Expectation] = {}
    for test in list(f.data):
        e = f.sub(str(test))
        text = e.get("outcome", str, required=True)
        reason = e.get("reason", str, required=True)
        e.finish()
        allowed = ", ".join(sorted(o.value for o in EXPECTABLE))
        try:
            outcome = Outcome(text) if text else None
        except ValueError:
            outcome = None
        if text and outcome not in EXPECTABLE:
            e.problem(f"outcome '{text}' cannot be expected; use one of {allowed}")
        elif outcome and reason:
            result[str(test).removesuffix(".c")] = Expectation(outcome, reason)
    return result


def check_host_tools(specs: list[KernelSpec]) -> list[KernelSpec]:
    """``specs`` unchanged, or one ConfigError naming what this host lacks to run them.

    Only the kernels a run selected are checked: an arm64 entry nobody asked
    for must not stop an x86 run on a machine without the cross compiler.
    """
    problems = [
        f"kernel {s.name}: arch {s.arch.name} needs the compiler {s.arch.cc} (the reproducers,"
        f" and kernels built from source, are compiled for it); apt-get install"
        f" {s.arch.cc_packages} (ci/bootstrap.sh lists them), or leave the kernel out"
        for s in specs
        if not s.arch.is_host and not shutil.which(s.arch.cc)
    ]
    if problems:
        raise ConfigError("\n".join(problems))
    return specs


def unknown_expectations(specs: list[KernelSpec], tests: Collection[str]) -> list[str]:
    """One problem per ``expect:`` key of ``specs`` that names none of ``tests``.

    ``tests`` are the guest test names (files of guest-tests/c and sh) the run
    knows.  Keys with a dot name a kselftest (``kselftest.<target>.<test>``)
    or a KUnit case: those lists come from the kernel's tree or its boot,
    unknown until it is built, so only plain guest test names are checked.
    """
    problems = []
    for spec in specs:
        for key in spec.expect:
            if "." in key or key in tests:
                continue
            close = difflib.get_close_matches(key, list(tests), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(sorted(tests))}"
            problems.append(f"kernel {spec.name}: expect: '{key}' names no guest test; {hint}")
    return problems


def select(specs: list[KernelSpec], names: list[str], path: Path) -> list[KernelSpec]:
    """The kernels named with --kernel (all when none), or a ConfigError."""
    if not names:
        return specs
    known = {s.name: s for s in specs}
    missing = [n for n in names if n not in known]
    if missing:
        raise ConfigError(
            f"--kernel {', '.join(missing)}: not in {path}; "
            f"known kernels: {', '.join(known) or 'none'}"
        )
    return [known[n] for n in dict.fromkeys(names)]
