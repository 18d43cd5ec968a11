"""Kernel builds: first build, incremental rebuild after a one-file patch, a per-patch series.

All three are measured in one run, in a private cache (empty ccache, new
build slot; only the downloaded linux-source is shared) so the first build
is really cold and the ratios compare like with like on a shared machine:

* first build: tinyconfig + guest.config from linux-source-6.12;
* incremental: the same slot after a one-file patch (fs/userfaultfd.c), with
  the number of objects recompiled: a one-file change must not rebuild the world;
* series: ``kharness series`` logic on the self-test fix + three bug patches,
  one guest test after each step (base + 4 patches = 5 builds and 5 boots).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.cache import cache_root  # noqa: E402
from harness.commands.series import run_series  # noqa: E402
from harness.kernels.build import (  # noqa: E402
    BuildSource,
    TreeBuild,
    build_cache,
    make_recipe,
)
from harness.kernels.patches import read_series  # noqa: E402
from harness.kernels.srctree import fetch_source_package  # noqa: E402
from harness.testkinds.trial import Trial, select_tests  # noqa: E402

SERIES = [
    ROOT / "guest-tests/fixes/uffd-move-devmap-migration-entry.patch",
    *sorted((ROOT / "guest-tests/bugs").glob("*.patch")),
]
ONE_FILE = ROOT / "guest-tests/bugs/uffd_api_unknown_feature.patch"


def compiled_objects(log: Path) -> int:
    """How many objects make compiled, from kbuild's '  CC      x.o' lines."""
    return sum(
        1
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("  CC ") and line.rstrip().endswith(".o")
    )


def private_cache(real: Path) -> Path:
    """A cache dir sharing only the downloaded sources and archive index with ``real``."""
    root = Path(tempfile.mkdtemp(prefix="kharness-bench-"))
    (root / "build").mkdir()
    for shared in ("build/sources", "build/debian"):
        if (real / shared).exists():
            (root / shared).symlink_to(real / shared)
    return root


def bench_builds(log) -> tuple[float, float, int, int]:
    """(first seconds, incremental seconds, objects first, objects incremental)."""
    tree = fetch_source_package("linux-source-6.12", build_cache(), log)
    with TreeBuild(make_recipe(), log, build_cache()) as build:
        build.checkout(tree)
        first = build.make("bench-first")
        build.apply(read_series(ONE_FILE).patches[0])
        again = build.make("bench-incremental")
    return first.seconds, again.seconds, compiled_objects(first.log), compiled_objects(again.log)


def bench_series(log, results: Path) -> float:
    """Seconds for base + one build and one test run per patch."""
    source = BuildSource("linux-source-6.12", ROOT, None, make_recipe(), tuple(SERIES))
    trial = Trial(results, select_tests(["uffd_api_unknown_feature"]), log)
    started = time.monotonic()
    report = run_series(source, source.patches(), trial, log)
    seconds = time.monotonic() - started
    print(report.render())
    return seconds


def main() -> int:
    """Run the three measurements and print them with their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quiet", action="store_true", help="only the results")
    args = parser.parse_args()
    log = (lambda _line: None) if args.quiet else (lambda line: print(f"  {line}", flush=True))
    real = cache_root()
    private = private_cache(real)
    os.environ["KHARNESS_CACHE"] = str(private)
    try:
        first, incremental, n_first, n_incr = bench_builds(log)
        series = bench_series(log, private / "results")
    finally:
        shutil.rmtree(private, ignore_errors=True)
    steps = len(SERIES) + 1
    print(f"first build (cold ccache):          {first:7.1f} s  ({n_first} objects compiled)")
    print(
        f"rebuild after a one-file patch:     {incremental:7.1f} s  ({n_incr} objects compiled)"
        f"  = {incremental / first:.1%} of the first build"
    )
    print(
        f"per-patch series, {steps} steps + tests: {series:7.1f} s  "
        f"= {series / steps:.1f} s a step, {series / first:.2f}x the first build"
    )
    return 0 if n_incr < max(50, n_first // 20) else 1  # a one-file change rebuilt the world


if __name__ == "__main__":
    sys.exit(main())
