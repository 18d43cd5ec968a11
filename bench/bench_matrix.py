"""make bench: the default matrix with and without its arm64 kernels, in one run.

arm64 guests run under TCG on an x86 host (never KVM), so they cost more
than their x86 neighbours; this measures how much they add to ``make run``.
Both columns are ``python -m harness run`` serially on kernels.yaml and
guest-tests, with the kernels already cached (a warm-up resolve first): the
whole matrix, then the same kernels without those whose ``arch:`` is not the
host's.  Printed: wall and CPU seconds (RUSAGE_CHILDREN: pytest and QEMU),
the ratio of the whole matrix against the native-only one, and each foreign
kernel's boot and test seconds from the run's own timings.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_parallel import run_once  # noqa: E402
from harness.arch import host  # noqa: E402
from harness.config import load_kernels  # noqa: E402


def main() -> int:
    """Warm the cache, run both columns, print the table."""
    specs = load_kernels(ROOT / "kernels.yaml")
    native = [s.name for s in specs if s.arch == host()]
    foreign = [s.name for s in specs if s.arch != host()]
    if not foreign:
        print("kernels.yaml has no foreign-architecture kernel: nothing to compare")
        return 0
    warm = [sys.executable, "-m", "harness", "kernels", "--resolve"]
    subprocess.run(warm, cwd=ROOT, capture_output=True, check=False)  # downloads, not timed
    print(f"matrix: {len(specs)} kernels x guest-tests; foreign: {', '.join(foreign)}")
    with tempfile.TemporaryDirectory(prefix="kharness-bench-matrix-") as tmp:
        only = [f"--kernel={k}" for k in native]
        n_wall, n_cpu, n_results = run_once(None, Path(tmp) / "native", only)
        a_wall, a_cpu, a_results = run_once(None, Path(tmp) / "all", [])
        summary = json.loads((Path(tmp) / "all" / "latest" / "summary.json").read_text())
    label = "without " + ", ".join(foreign)
    width = max(len(label), 14)
    print(f"\n{'matrix':{width}} {'wall s':>8} {'ratio':>6} {'cpu s':>8} {'ratio':>6}")
    print(f"{label:{width}} {n_wall:8.1f} {1:6.2f} {n_cpu:8.1f} {1:6.2f}")
    print(
        f"{'whole default':{width}} {a_wall:8.1f} {a_wall / n_wall:6.2f} "
        f"{a_cpu:8.1f} {a_cpu / n_cpu:6.2f}"
    )
    for name in foreign:
        timings = summary["kernels"][name]["timings"]
        tests = sum(t["seconds"] for t in summary["tests"] if t["kernel"] == name)
        print(f"  {name}: boot {timings.get('boot', 0):.1f} s, tests {tests:.1f} s")
    same = all(a_results.get(k) == v for k, v in n_results.items())
    print("native kernels' results: " + ("same in both columns" if same else "DIFFER"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
