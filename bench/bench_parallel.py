"""make bench: the default matrix serial, with -n 2 and with -n auto, in one run.

Each column is ``python -m harness run`` on kernels.yaml and guest-tests (the
default matrix; ``--kernel``/``-k`` narrow it), one after the other, with the
kernels already in the cache (a warm-up resolve fetches them first so no
column pays a download).  Printed: wall-clock seconds, CPU seconds of
everything the run started (pytest, its workers, QEMU: RUSAGE_CHILDREN), the
ratio of each against serial, and whether every result matched serial's.

Under TCG each guest vCPU keeps a host core busy, so on a 2-core machine two
guests side by side mostly share the same cores: the aim is that results do
not change and wall time does not grow, not a 2x speed-up.  ``-n auto`` picks
from cores, memory and the guests' size (harness.plugin.xdist.auto_workers).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.config import load_kernels, select  # noqa: E402
from harness.plugin.xdist import auto_workers  # noqa: E402


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def run_once(jobs: str | None, base: Path, extra: list[str]) -> tuple[float, float, dict]:
    """One ``harness run``: wall seconds, CPU seconds, {(test, kernel): outcome}."""
    argv = [sys.executable, "-m", "harness", "run", f"--results-dir={base}", "--progress=off"]
    argv += [*(["-n", jobs] if jobs else []), *extra]
    cpu, started = _cpu(), time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    wall, cpu = time.monotonic() - started, _cpu() - cpu
    summary = base / "latest" / "summary.json"
    if not summary.is_file():
        raise SystemExit(f"run {jobs or 'serial'} wrote no summary:\n{proc.stdout[-3000:]}")
    tests = json.loads(summary.read_text())["tests"]
    return wall, cpu, {(t["test"], t["kernel"]): t["outcome"] for t in tests}


def main() -> int:
    """Warm the cache, run the three columns, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernel", action="append", default=[], help="narrow the matrix")
    parser.add_argument("-k", dest="keyword", help="pytest -k for the guest tests")
    args = parser.parse_args()
    path = ROOT / "kernels.yaml"
    specs = select(load_kernels(path), args.kernel, path)
    extra = [f"--kernel={k}" for k in args.kernel]
    if args.keyword:
        extra += ["--", "-k", args.keyword]
    kernels = [sys.executable, "-m", "harness", "kernels", "--resolve", *extra[: len(args.kernel)]]
    subprocess.run(kernels, cwd=ROOT, capture_output=True, check=False)  # downloads, not timed
    auto = auto_workers(specs)
    narrowed = f" -k {args.keyword}" if args.keyword else ""
    print(f"matrix: {len(specs)} kernel(s) x guest-tests{narrowed}")
    print(f"machine: {len(os.sched_getaffinity(0))} cores; -n auto -> {auto} worker(s)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="kharness-bench-par-") as tmp:
        for label, jobs in (("serial", None), ("-n 2", "2"), ("-n auto", "auto")):
            wall, cpu, results = run_once(jobs, Path(tmp) / label.replace(" ", ""), extra)
            rows.append((label, wall, cpu, results))
    base_wall, base_cpu, base_results = rows[0][1], rows[0][2], rows[0][3]
    print(f"\n{'run':10} {'wall s':>8} {'ratio':>6} {'cpu s':>8} {'ratio':>6}  results")
    for label, wall, cpu, results in rows:
        same = "same as serial" if results == base_results else f"DIFFER: {results}"
        print(
            f"{label:10} {wall:8.1f} {wall / base_wall:6.2f} {cpu:8.1f} {cpu / base_cpu:6.2f}  "
            f"{same}"
        )
    return 0 if all(r[3] == base_results for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
