"""``python -m harness`` / ``kharness``: run, boot, kernels (and more subcommands).

``run`` is pytest on guest-tests/ with the results directory and JUnit XML
decided up front; ``boot`` gives a developer a shell in a guest exactly as the
tests see it; ``kernels`` shows what kernels.yaml resolves to.  Harness
errors print as one message with the fix and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness import bisect_cli, compare, mcp, series
from harness.errors import HarnessError, UserError
from harness.interrupts import sigterm_as_interrupt
from harness.machine.accel import Accel
from harness.machine.backends import BACKENDS
from harness.pass_rate import runs_count
from harness.paths import REPO_ROOT, RESULTS_DIR, kernels_file, results_base
from harness.progress import Mode

#: the choices of the options the plugin has too, from the same enums and tables
ACCELS = [a.value for a in Accel]
BACKEND_NAMES = sorted(BACKENDS)
PROGRESS_MODES = [m.value for m in Mode]


def _kernels_file(args: argparse.Namespace) -> Path:
    return kernels_file(args.kernels_file)


def cmd_run(args: argparse.Namespace) -> int:
    """pytest guest-tests with evidence and JUnit XML in a fresh results directory."""
    import pytest

    from harness.config import load_kernels, select
    from harness.evidence import drop_if_empty, latest_target, new_run_dir
    from harness.hosts import load_hosts

    if args.hosts and args.jobs:
        raise UserError("-n and --hosts: give workers per host in the hosts file ('workers:')")
    hosts = load_hosts(Path(args.hosts).resolve()) if args.hosts else []
    kernels = _kernels_file(args)
    select(load_kernels(kernels), args.kernel, kernels)  # a mistake: one error, no results dir
    base = results_base(args.results_dir)
    previous = latest_target(base)
    run_dir = new_run_dir(base)
    # with ssh hosts no path may be named (see harness.plugin.xdist): the guest
    # tests come from testpaths, read in the project directory
    where = (
        ["-o", "testpaths=guest-tests", f"--rootdir={REPO_ROOT}"]
        if hosts
        else [str(REPO_ROOT / "guest-tests")]
    )
    argv = [
        *where,
        *(f"--tx={h.tx()}" for h in hosts),
        *(["-n", args.jobs] if args.jobs else []),
        "-v",
        "-ra",
        f"--run-dir={run_dir}",
        f"--junitxml={run_dir / 'junit.xml'}",
        f"--kernels-file={_kernels_file(args)}",
        *(f"--kernel={k}" for k in args.kernel),
        *args.pytest_args,
    ]
    if args.accel:
        argv.append(f"--accel={args.accel}")
    if args.backend:
        argv.append(f"--backend={args.backend}")
    argv.append(f"--progress={_progress_mode(args.progress)}")
    if args.console:
        argv.append("--console")
    if args.runs != 1:
        argv.append(f"--runs={args.runs}")
    print(f"results: {run_dir}")
    if hosts:
        os.chdir(REPO_ROOT)
    code = int(pytest.main(argv))
    if drop_if_empty(run_dir, previous):  # pytest refused the arguments: nothing ran
        print(f"nothing ran; {run_dir} removed")
        return code
    text = run_dir / "summary.txt"
    if text.is_file():
        print("\n" + text.read_text(), end="")
    return code


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render the reports of a results directory and print one of them."""
    from harness.records import load_summary
    from harness.reporters import write_all

    run_dir = Path(args.run_dir).resolve()
    if not (run_dir / "summary.json").is_file():
        raise UserError(
            f"{run_dir} has no summary.json; pass a results directory such as results/latest"
        )
    write_all(load_summary(run_dir), run_dir)
    print((run_dir / args.format).read_text(), end="")
    return 0


def cmd_kernels(args: argparse.Namespace) -> int:
    """List the kernels of kernels.yaml; with --resolve, fetch and show exact versions."""
    from harness.config import load_kernels, select

    path = _kernels_file(args)
    for spec in select(load_kernels(path), args.kernel, path):
        line = f"{spec.name:20} {spec.source.describe()}"
        if args.resolve:
            image = spec.source.resolve(lambda _text: None)
            line += f"\n{'':20} -> {image.origin}\n{'':20}    {image.vmlinuz}"
        print(line)
    return 0


def cmd_boot(args: argparse.Namespace) -> int:
    """Boot one kernel as the tests would and open a shell (or run --command)."""
    from harness.bootshell import boot_kernel

    with boot_kernel(
        _kernels_file(args), args.name, args.results_dir, args.accel, args.backend
    ) as booted:
        guest, session = booted
        print(
            f"booted {args.name} in {guest.ready.seconds:.1f}s with {guest.backend_name}; "  # type: ignore[union-attr]
            f"console log: {guest.boot_dir() / 'console.log'}",
            file=sys.stderr,
        )
        if args.command:
            result = session.run(args.command, args.timeout)
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            return 124 if result.timed_out else int(result.exit_code or 0)
        return _interactive_ssh(guest)


def _interactive_ssh(guest) -> int:
    ssh = shutil.which("ssh")
    keys = guest.ctx.keys
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


def _progress_mode(given: str | None) -> str:
    """--progress, else $KHARNESS_PROGRESS, else live on a terminal and plain lines in a log.

    (Plain pytest keeps quiet in a log unless asked; ``run`` is what CI calls.)
    """
    if given:
        return given
    return os.environ.get("KHARNESS_PROGRESS") or ("auto" if sys.stdout.isatty() else "plain")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subparser per subcommand."""
    from harness.reporters import DIR_REPORTERS, REPORTERS

    parser = argparse.ArgumentParser(prog="kharness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernels-file", help="kernels.yaml to use (default: the repository's)")
    sub = parser.add_subparsers(dest="command_name", required=True)

    run = sub.add_parser("run", help="run the guest tests on the kernels (pytest)")
    run.add_argument("--kernel", action="append", default=[], help="only this kernel (repeatable)")
    run.add_argument("--results-dir", help="base directory for results (default: results/)")
    run.add_argument("--accel", choices=ACCELS)
    run.add_argument("--backend", choices=BACKEND_NAMES, help="override kernels.yaml backend:")
    run.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        help="feedback while working (default: a live line on a terminal, plain lines in a log)",
    )
    run.add_argument(
        "--console", action="store_true", help="stream the guests' consoles, prefixed by kernel"
    )
    run.add_argument(
        "--runs",
        type=runs_count,
        default=1,
        metavar="N",
        help="run each test N times; report pass rates and flaky tests",
    )
    run.add_argument(
        "-n",
        "--jobs",
        help="kernels side by side: a number or 'auto' (cores, memory, guest sizes); pytest-xdist",
    )
    run.add_argument("--hosts", help="hosts.yaml: run kernels on these machines over ssh")
    run.add_argument(
        "pytest_args", nargs=argparse.REMAINDER, help="more pytest arguments (after --)"
    )
    run.set_defaults(func=cmd_run)

    kernels = sub.add_parser("kernels", help="list what kernels.yaml names")
    kernels.add_argument("--kernel", action="append", default=[])
    kernels.add_argument("--resolve", action="store_true", help="fetch and show exact versions")
    kernels.set_defaults(func=cmd_kernels)

    boot = sub.add_parser("boot", help="boot a kernel and give me a shell over SSH")
    boot.add_argument("name", help="kernel name from kernels.yaml")
    boot.add_argument("--command", help="run this command instead of a shell, then stop")
    boot.add_argument("--timeout", type=float, default=300.0, help="for --command (seconds)")
    boot.add_argument("--results-dir", help="base directory for results (default: results/)")
    boot.add_argument("--accel", choices=ACCELS)
    boot.add_argument("--backend", choices=BACKEND_NAMES, help="override kernels.yaml backend:")
    boot.set_defaults(func=cmd_boot)

    report = sub.add_parser("report", help="re-render a results directory's reports")
    report.add_argument("run_dir", nargs="?", default=str(RESULTS_DIR / "latest"))
    report.add_argument(
        "--format", choices=sorted([*REPORTERS, *DIR_REPORTERS]), default="summary.txt"
    )
    report.set_defaults(func=cmd_report)

    series.add_parser(sub)
    bisect_cli.add_parser(sub)
    compare.add_parser(sub)
    mcp.add_parser(sub)
    # also after the subcommand, where people type it (kharness run --kernels-file k.yaml);
    # SUPPRESS keeps a value given before the subcommand when none is given after it
    for name in ("run", "kernels", "boot", "series", "bisect", "mcp"):
        sub.choices[name].add_argument(
            "--kernels-file",
            default=argparse.SUPPRESS,
            metavar="PATH",
            help="kernels.yaml to use (default: the repository's)",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn harness errors into one clear line."""
    args = build_parser().parse_args(argv)
    if getattr(args, "pytest_args", None) and args.pytest_args[0] == "--":
        args.pytest_args = args.pytest_args[1:]
    sigterm_as_interrupt()  # clean up on SIGTERM exactly as on Ctrl-C
    try:
        return args.func(args)
    except HarnessError as exc:
        print(f"kharness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kharness: interrupted; guests stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
