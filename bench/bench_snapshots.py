"""make bench: what snapshots save in whole runs, each pair measured in the same run.

* The crash run: every report class of tests/integration/helpers.REPORT_CASES
  (WARN, BUG, NULL, soft lockup, hung task, sysrq panic) provoked through
  harness_oops.ko on Debian 6.12, each followed by a plain test, with
  snapshot restores and with ``--no-snapshots``: wall seconds side by side,
  and the cold boots and restores each took.
* A second ``make run``: the default matrix run three times with the
  snapshot cache in a temporary directory: once with ``--keep-snapshots``
  (it stores each kernel's ready guest), once more with it (the first test
  of each kernel should start from a restore), once without: wall seconds
  and, per kernel, how its first guest started and how long that took.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.config import load_kernels, select  # noqa: E402
from harness.errors import run_checked  # noqa: E402
from harness.machine.snapshot_cache import DIR_ENV  # noqa: E402
from harness.outcome import Outcome  # noqa: E402
from harness.results.evidence import new_run_dir  # noqa: E402
from harness.results.starts import GuestStarts  # noqa: E402
from harness.session import KernelGuest, new_context  # noqa: E402
from harness.testkinds.testdef import read_test  # noqa: E402
from tests.integration.helpers import (  # noqa: E402
    GUEST_DATA,
    REPORT_CASES,
    TRIGGER_MODULE,
    run_with_module,
    write_trigger,
)

CAPTURE = ROOT / "tests" / "data" / "oops" / "capture"


def crash_run(work: Path, snapshots: bool) -> tuple[float, list[str], GuestStarts | None]:
    """Every crash class then a plain test: wall seconds, outcomes, the guest starts."""
    tests = [read_test(p) for p in sorted(work.glob("*.c"))]
    spec = select(load_kernels(ROOT / "kernels.yaml"), ["debian-6.12"], ROOT)[0]
    ctx = new_context(
        new_run_dir(work / f"results-{snapshots}"), tests, log=lambda _t: None, snapshots=snapshots
    )
    guest = KernelGuest(replace(spec, snapshot=snapshots), ctx, tests)
    assert guest.prepare() is None, guest.setup_error
    assert guest.image is not None and guest.image.release
    module = work / "module" / "harness_oops.ko"
    if not module.is_file():
        shutil.copytree(CAPTURE, module.parent, ignore=shutil.ignore_patterns("*.sh", "*.txt"))
        headers = Path(f"/usr/src/linux-headers-{guest.image.release}")
        if not headers.is_dir():
            raise SystemExit(f"needs linux-headers-{guest.image.release} (apt-get install it)")
        run_checked(["make", "-s", "-C", str(headers), f"M={module.parent}", "modules"])
    guest.extras.get(TRIGGER_MODULE).path = module
    outcomes = []
    started = time.monotonic()
    try:
        for case in REPORT_CASES:
            outcomes.append(run_with_module(guest, f"trig_{case}").verdict.outcome.value)
            after = guest.run(next(t for t in guest.tests if t.name == "pass_after_hang"))
            outcomes.append(after.verdict.outcome.value)
        wall = time.monotonic() - started
        return wall, outcomes, guest.record().starts
    finally:
        guest.shutdown()


def matrix_run(base: Path, cache: Path, keep: bool) -> tuple[float, dict[str, str], dict]:
    """One ``harness run`` of the default matrix: wall seconds, outcomes, kernels' records."""
    argv = [sys.executable, "-m", "harness", "run", f"--results-dir={base}", "--progress=off"]
    argv += ["--keep-snapshots"] if keep else []
    env = {**os.environ, DIR_ENV: str(cache)}
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - started
    summary = base / "latest" / "summary.json"
    if not summary.is_file():
        raise SystemExit(f"the run wrote no summary:\n{proc.stdout[-3000:]}")
    data = json.loads(summary.read_text())
    outcomes = {f"{t['kernel']}/{t['test']}": t["outcome"] for t in data["tests"]}
    return wall, outcomes, data["kernels"]


def _first_start(kernel: dict) -> str:
    starts = GuestStarts.from_json(kernel.get("starts") or {})
    if starts.kept == "restored" and starts.restores:
        return f"restore {starts.restores[0]:.2f}s"
    if starts.cold_boots:
        return f"cold boot {starts.cold_boots[0]:.2f}s"
    return "no guest"


def _crash_table(work: Path) -> bool:
    shutil.copy(GUEST_DATA / "oops_trigger.h", work)
    for case in REPORT_CASES:
        write_trigger(work, case)
    shutil.copy(GUEST_DATA / "pass_after_hang.c", work)
    rows = [(label, *crash_run(work, flag)) for label, flag in (("cold", False), ("snap", True))]
    print(f"\ncrash run: {len(REPORT_CASES)} report classes, each then a plain test (debian-6.12)")
    print(f"{'':22} {'wall s':>8} {'ratio':>6}  guest starts")
    cold_wall = rows[0][1]
    for label, wall, _outcomes, starts in rows:
        name = "--no-snapshots" if label == "cold" else "snapshot restores"
        assert starts is not None
        boots = f"{len(starts.cold_boots)} cold boots ({sum(starts.cold_boots):.1f}s)"
        restores = f", {len(starts.restores)} restores ({sum(starts.restores):.1f}s)"
        print(f"{name:22} {wall:8.1f} {wall / cold_wall:6.2f}  {boots}{restores}")
    same = rows[0][2] == rows[1][2]
    print("outcomes: " + ("the same both ways" if same else f"DIFFER {rows[0][2]} {rows[1][2]}"))
    fine = {Outcome.PASS.value, Outcome.OOPS.value, Outcome.PANIC.value}
    bad = [o for o in rows[1][2] if o not in fine]
    return same and not bad


def _matrix_table(work: Path) -> bool:
    cache = work / "kept"
    rows = []
    for label, keep in (("keep, storing", True), ("keep, second run", True), ("no keep", False)):
        base = work / label.replace(" ", "").replace(",", "")
        rows.append((label, *matrix_run(base, cache, keep)))
    print("\nthe default matrix, run after run (the snapshot cache in a temporary directory)")
    base_wall = rows[2][1]
    print(f"{'':18} {'wall s':>8} {'ratio':>6}  first guest per kernel")
    for label, wall, _outcomes, kernels in rows:
        firsts = ", ".join(f"{k}: {_first_start(v)}" for k, v in sorted(kernels.items()))
        print(f"{label:18} {wall:8.1f} {wall / base_wall:6.2f}  {firsts}")
    same = rows[0][2] == rows[1][2] == rows[2][2]
    print("verdicts: " + ("the same in all three runs" if same else "DIFFER"))
    return same


def main() -> int:
    """Both tables (``--only crash|matrix`` for one)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["crash", "matrix"])
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="kharness-bench-snap-") as tmp:
        if args.only in (None, "crash"):
            (Path(tmp) / "crash").mkdir()
            ok &= _crash_table(Path(tmp) / "crash")
        if args.only in (None, "matrix"):
            (Path(tmp) / "matrix").mkdir()
            ok &= _matrix_table(Path(tmp) / "matrix")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
