"""make bench: the same work through virtme-ng directly and through the harness.

The work: every C reproducer of guest-tests/c on one kernel (default Debian
6.12 amd64, resolved by the harness's own kernel provider, its modules
included), statically linked by the harness's compile step, in the same guest
shape (memory, CPUs, NUMA nodes, THP mode: the harness's, grown to what the
tests need).  Three columns, interleaved round by round so that load from
elsewhere hits every column alike:

* vng: ``vng --run K --exec 'sh run.sh'`` on the host's root, the binaries
  copied into a temporary directory; each exit code and KTAP stream read
  with the harness's own classifier (0 pass, 1 fail, 4 skip) and each
  test's ``dmesg`` window with its report parser;
* harness cold: ``kharness run --backend qemu --kernel K --test ...``
  (its initramfs, a cold boot);
* harness kept: the same with ``--keep-snapshots`` and a snapshot cache that
  an untimed first run filled (the guest starts from a restore).

Wall time of the whole command, each; medians, and the ratios harness / vng
within the run.  The verdicts must agree: the bench fails loudly when vng
and the harness disagree on any test.  Where the harness's time goes comes
from its own kernel.json timings and restore.json parts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.cache import cache_root  # noqa: E402
from harness.config import load_kernels, select  # noqa: E402
from harness.display.textsafe import printable  # noqa: E402
from harness.machine import process  # noqa: E402
from harness.machine.accel import Accel  # noqa: E402
from harness.machine.base import GuestShape  # noqa: E402
from harness.machine.snapshot_cache import DIR_ENV  # noqa: E402
from harness.machine.virtme import shape_args, stage_kernel  # noqa: E402
from harness.oops import parse as parse_reports  # noqa: E402
from harness.outcome import RunFacts, classify  # noqa: E402
from harness.results import layout  # noqa: E402
from harness.results.evidence import new_run_dir  # noqa: E402
from harness.results.starts import GuestStarts  # noqa: E402
from harness.session import KernelGuest, new_context  # noqa: E402
from harness.testkinds.ktap import parse_ktap  # noqa: E402
from harness.testkinds.testdef import GuestTest, read_test  # noqa: E402

MARK = "@@KBENCH"
#: the guest's ``timeout`` exit status when the limit hit (the harness's hang)
TIMEOUT_STATUS = 124


@dataclass(frozen=True)
class Run:
    """One timed run of the work: wall seconds, a verdict per test, what to show."""

    seconds: float
    outcomes: dict[str, str]
    parts: dict[str, float]
    starts: str = ""  # how the harness's guests started: "1 cold boot", "1 restore"


def guest_script(tests: list[GuestTest], where: Path) -> str:
    """The shell script vng runs: each test under its timeout, its exit status and dmesg."""
    lines = ["#!/bin/sh", f"cd {shlex.quote(str(where))} || exit 99", "dmesg -C"]
    for t in tests:
        name = shlex.quote(t.name)
        lines += [
            f"echo; echo {MARK}-START {name}",
            "s=$(date +%s.%N)",
            f"timeout {int(t.timeout)} ./{name}; rc=$?",
            f'echo; echo {MARK}-END {name} "$rc" "$s" "$(date +%s.%N)"',
            f"echo {MARK}-DMESG {name}; dmesg -c",
        ]
    lines.append(f"echo {MARK}-DONE")
    return "\n".join(lines) + "\n"


def read_vng_output(text: str, names: list[str]) -> tuple[dict[str, str], float]:
    """Each test's verdict from vng's stdout, as the harness would give it; test seconds.

    Guest output is data: a test missing its markers is an error verdict,
    never an exception here.
    """
    outs: dict[str, list[str]] = {n: [] for n in names}
    dmesg: dict[str, list[str]] = {n: [] for n in names}
    codes: dict[str, int] = {}
    seconds = 0.0
    into: list[str] | None = None
    for line in text.splitlines():
        words = line.split()
        if not words or not words[0].startswith(f"{MARK}-"):
            if into is not None:
                into.append(line)
            continue
        kind, rest = words[0].removeprefix(f"{MARK}-"), [*words[1:], "", "", "", ""]
        name, code, begun, ended = rest[:4]
        into = None
        if kind == "START" and name in outs:
            into = outs[name]
        elif kind == "END" and name in outs and code.isdigit():
            codes[name] = int(code)
            with contextlib.suppress(ValueError):
                seconds += float(ended) - float(begun)
        elif kind == "DMESG" and name in dmesg:
            into = dmesg[name]
    verdicts = {}
    for name in names:
        code = codes.get(name)
        reports = tuple(r.title for r in parse_reports("\n".join(dmesg[name])))
        facts = RunFacts(
            exit_code=None if code == TIMEOUT_STATUS else code,
            timed_out=code == TIMEOUT_STATUS,
            reports=reports,
            ktap=parse_ktap("\n".join(outs[name])),
            lost=None if code is not None else "vng printed no exit status",
        )
        verdicts[name] = classify(facts).outcome.value
    return verdicts, seconds


def run_group(argv: list[str], env: dict[str, str], timeout: float) -> tuple[float, str]:
    """Run ``argv`` in its own process group; wall seconds and stdout.

    The group is stopped whatever happens (Ctrl-C, a timeout): vng's QEMU is
    a descendant that outlives a killed vng otherwise.
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):
            os.killpg(proc.pid, signal.SIGINT)  # the harness cleans up on SIGINT
            time.sleep(2)
        process.terminate(proc)
        raise
    finally:
        process.terminate(proc, grace=0)  # anything the leader left behind in its group
    return time.monotonic() - started, out.decode(errors="replace")


def vng_run(vmlinuz: Path, shape: GuestShape, kvm: bool, work: Path, tests: list[GuestTest]) -> Run:
    """The work through ``vng --exec``: one boot on the host's root, every test in it."""
    venv_bin = Path(sys.executable).parent
    flags, smp = shape_args(shape)
    argv = [str(venv_bin / "vng"), "--run", str(vmlinuz), "--force-9p", *flags]
    if shape.thp:
        argv += ["--append", f"transparent_hugepage={shape.thp}"]
    if not kvm:
        argv.append("--disable-kvm")
    argv += ["--qemu-opts", " ".join(smp), "--exec", f"sh {shlex.quote(str(work / 'run.sh'))}"]
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
    seconds, out = run_group(argv, env, timeout=900)
    if f"{MARK}-DONE" not in out:
        raise SystemExit(f"vng did not finish the work:\n{printable(out[-3000:])}")
    names = [t.name for t in tests]
    verdicts, in_tests = read_vng_output(out, names)
    return Run(seconds, verdicts, {"tests": in_tests, "boot and rest": seconds - in_tests})


def harness_run(kernel: str, tests: list[GuestTest], base: Path, cache: Path, keep: bool) -> Run:
    """The work through ``kharness run``: wall seconds, verdicts, its own timings."""
    argv = [sys.executable, "-m", "harness", "run", "--kernel", kernel, "--backend", "qemu"]
    for t in tests:
        argv += ["--test", t.name]
    argv += [f"--results-dir={base}", "--progress=off"]
    argv += ["--keep-snapshots"] if keep else []
    seconds, out = run_group(argv, {**os.environ, DIR_ENV: str(cache)}, timeout=900)
    run_dir = layout.newest_run(base)
    summary = run_dir / layout.SUMMARY_JSON if run_dir else base / layout.SUMMARY_JSON
    if run_dir is None or not summary.is_file():
        raise SystemExit(f"the harness wrote no summary:\n{printable(out[-3000:])}")
    data = json.loads(summary.read_text())
    outcomes = {t["test"]: t["outcome"] for t in data["tests"] if t["kernel"] == kernel}
    record = data["kernels"][kernel]
    starts = GuestStarts.from_json(record.get("starts") or {})
    started = f"{len(starts.cold_boots)} cold boot(s), {len(starts.restores)} restore(s)"
    timings = dict(record.get("timings", {}))
    parts = {k: float(timings.get(k, 0.0)) for k in ("fetch", "image", "boot", "ssh", "restore")}
    parts["tests"] = sum(t["seconds"] for t in data["tests"] if t["kernel"] == kernel)
    for found in sorted((run_dir / kernel).glob(f"boot-*/{layout.RESTORE_JSON}")):
        restore = json.loads(found.read_text())
        for name, value in restore.get("parts", {}).items():
            parts[f"restore: {name}"] = parts.get(f"restore: {name}", 0.0) + value
    parts["rest (startup, compile check, pytest)"] = seconds - sum(
        v for k, v in parts.items() if not k.startswith("restore: ")
    )
    shutil.rmtree(base)  # only the medians stay; the next run writes afresh
    return Run(seconds, outcomes, parts, started)


def _loads() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    """Run the benchmark and print the table; 1 if vng and the harness disagree."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernel", default="debian-6.12")
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()
    path = ROOT / "kernels.yaml"
    spec = select(load_kernels(path), [args.kernel], path)[0]
    tests = [read_test(p) for p in sorted((ROOT / "guest-tests/c").glob("*.c"))]
    cache_root().mkdir(parents=True, exist_ok=True)
    # not under /tmp: vng's guest mounts a tmpfs there; the cache root it sees
    with tempfile.TemporaryDirectory(prefix="bench-peers-", dir=cache_root()) as tmp_name:
        tmp = Path(tmp_name)
        ctx = new_context(new_run_dir(tmp / "prep"), tests, log=lambda _t: None, snapshots=False)
        guest = KernelGuest(spec, ctx, tests)
        if guest.prepare() is not None:
            print(f"cannot prepare {args.kernel}: {guest.setup_error}")
            return 1
        cfg = guest.machine_config()
        assert guest.image is not None
        work = tmp / "vng"
        work.mkdir()
        for compiled in guest.compiled().values():
            if compiled.binary is None:
                print(f"{compiled.name} does not compile:\n{compiled.log}")
                return 1
            shutil.copy2(compiled.binary, work / compiled.name)
        (work / "run.sh").write_text(guest_script(tests, work))
        staged = stage_kernel(guest.image)
        kvm = cfg.accel.accel is Accel.KVM
        shape = cfg.shape
        print(f"kernel {args.kernel}: {guest.image.origin} (modules: {guest.image.modules_dir})")
        print(f"accelerator: {cfg.accel.accel.value} ({cfg.accel.reason})")
        if not kvm:
            print("this machine has no usable KVM: every guest runs under TCG (vng --disable-kvm)")
        print(
            f"shape: {shape.memory_mib} MiB, {shape.cpus} CPUs, {shape.numa_nodes} NUMA node(s), "
            f"THP {shape.thp or 'default'}; tests: {', '.join(t.name for t in tests)}"
        )
        print(f"{os.cpu_count()} host CPUs; load average at start {_loads()}")
        cold_cache, kept_cache = tmp / "cold-cache", tmp / "kept-cache"
        # untimed: vng's first boot runs depmod on the stage; the first kept run stores the guest
        vng_run(staged, shape, kvm, work, tests)
        harness_run(args.kernel, tests, tmp / "results", kept_cache, keep=True)
        columns: dict[str, list[Run]] = {"vng": [], "harness cold": [], "harness kept": []}
        for round_ in range(args.runs):
            columns["vng"].append(vng_run(staged, shape, kvm, work, tests))
            columns["harness cold"].append(
                harness_run(args.kernel, tests, tmp / "results", cold_cache, keep=False)
            )
            columns["harness kept"].append(
                harness_run(args.kernel, tests, tmp / "results", kept_cache, keep=True)
            )
            _check_same(columns, round_)
            if not columns["harness kept"][-1].starts.startswith("0 cold"):
                raise SystemExit(
                    "the kept run did not start from its snapshot: "
                    f"{columns['harness kept'][-1].starts}"
                )
            print(
                f"round {round_ + 1}: "
                + ", ".join(f"{n} {c[-1].seconds:.1f}s" for n, c in columns.items())
                + f"; load {_loads()}",
                flush=True,
            )
    _report(columns, args.runs)
    return 0


def _check_same(columns: dict[str, list[Run]], round_: int) -> None:
    """Fail loudly when any column's verdicts differ from vng's in this round."""
    want = columns["vng"][-1].outcomes
    for name, runs in columns.items():
        got = runs[-1].outcomes
        if got != want:
            diff = {
                t: (want.get(t), got.get(t))
                for t in sorted({*want, *got})
                if want.get(t) != got.get(t)
            }
            raise SystemExit(
                f"VERDICTS DIFFER in round {round_ + 1}: vng against {name}: "
                + ", ".join(f"{t}: vng {a}, {name} {b}" for t, (a, b) in diff.items())
            )


def _report(columns: dict[str, list[Run]], runs: int) -> None:
    med = {n: statistics.median(r.seconds for r in c) for n, c in columns.items()}
    base = med["vng"]
    print(f"\n{'the work (median of ' + str(runs) + ')':34} {'wall s':>8} {'x vng':>6}  runs")
    for name, found in columns.items():
        each = " ".join(f"{r.seconds:.1f}" for r in found)
        aim = "  (aim <= 0.80)" if name == "harness kept" else ""
        print(f"{name:34} {med[name]:8.1f} {med[name] / base:6.2f}  {each}{aim}")
    verdicts = columns["vng"][0].outcomes
    print(
        "verdicts (the same in every column and round): "
        + ", ".join(f"{t} {o}" for t, o in sorted(verdicts.items()))
    )
    print("\nwhere the time goes (medians, seconds)")
    for name, found in columns.items():
        keys = [k for k in found[0].parts]
        meds = {k: statistics.median(r.parts.get(k, 0.0) for r in found) for k in keys}
        row = ", ".join(f"{k} {m:.2f}" for k, m in meds.items() if m)
        starts = f" ({found[-1].starts})" if found[-1].starts else ""
        print(f"  {name}{starts}: {row}")
    print(f"load average at end {_loads()}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the guests are stopped and the temporary directory removed")
        sys.exit(130)
