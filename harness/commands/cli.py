"""Boot Linux kernels under QEMU, run tests in them, and report each outcome as a pytest result.

``kharness`` (``python -m harness``) names a kernel the same way in every
subcommand, ``--kernel NAME`` (an entry of kernels.yaml), and takes what it
hands on after ``--``: pytest options for ``run``, a guest command for
``boot``.  ``run`` is pytest on guest-tests/ with the results directory and
JUnit XML decided up front; ``boot`` gives a developer a shell in a guest
exactly as the tests see it; ``kernels`` shows what kernels.yaml resolves to.
Harness errors print as one message with the fix and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from harness import mcp
from harness.commands import bisect_cli, series_cli
from harness.commands.adhoc import AdHocKernels
from harness.commands.adhoc import add_options as add_adhoc_options
from harness.commands.cli_grammar import add_kernel_option, add_old_positional, one_kernel
from harness.commands.run import RunRequest, run_tests
from harness.display.progress import Mode
from harness.display.textsafe import printable
from harness.errors import HarnessError, UserError
from harness.interrupts import hangup_as_interrupt, sigterm_as_interrupt
from harness.machine.accel import Accel
from harness.machine.backends import BACKENDS
from harness.mail import cli as mail_cli
from harness.paths import RESULTS_DIR, kernels_file
from harness.results import compare, layout
from harness.results.pass_rate import runs_count

#: the choices of the options the plugin has too, from the same enums and tables
ACCELS = [a.value for a in Accel]
BACKEND_NAMES = sorted(BACKENDS)
PROGRESS_MODES = [m.value for m in Mode]


def _kernels_file(args: argparse.Namespace) -> Path:
    return kernels_file(args.kernels_file)


def _adhoc(args: argparse.Namespace) -> AdHocKernels:
    """The ad-hoc kernel options of ``run`` and ``boot`` (:mod:`harness.commands.adhoc`)."""
    return AdHocKernels.read(lambda dest: getattr(args, dest))


def run_request(args: argparse.Namespace) -> RunRequest:
    """What ``kharness run``'s options ask for (:mod:`harness.commands.run`)."""
    return RunRequest(
        kernels_file=_kernels_file(args),
        kernels=tuple(args.kernel),
        tests=tuple(args.test),
        results_dir=args.results_dir,
        adhoc=_adhoc(args),
        accel=args.accel,
        backend=args.backend,
        progress=args.progress,
        console=args.console,
        runs=args.runs,
        keep_snapshots=args.keep_snapshots,
        jobs=args.jobs,
        hosts=args.hosts,
        pytest_args=tuple(args.pytest_args),
    )


def cmd_run(args: argparse.Namespace) -> int:
    """pytest guest-tests with evidence and JUnit XML in a fresh results directory."""
    return run_tests(run_request(args)).code


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render the reports of a results directory and print one of them."""
    from harness.reporters import write_all
    from harness.results.records import load_summary

    run_dir = Path(args.run_dir).resolve()
    if not layout.finished(run_dir):
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
    """Boot one kernel as the tests would and open a shell (or run the command after --)."""
    from harness.commands.bootshell import boot_kernel, entry, interactive_ssh

    if args.command and args.guest_command:
        raise UserError("give the guest command once: --command 'CMD' or -- CMD ARGS")
    command = shlex.join(args.guest_command) if args.guest_command else args.command
    adhoc = _adhoc(args).specs(Path.cwd())
    if adhoc and (args.kernel or args.name or len(adhoc) > 1):
        raise UserError("boot needs exactly one kernel: --kernel NAME, --image PATH or --tree PATH")
    spec = (
        adhoc[0]
        if adhoc
        else entry(_kernels_file(args), one_kernel("boot", args.kernel, args.name))
    )
    name = spec.name
    with boot_kernel(spec, args.results_dir, args.accel, args.backend) as booted:
        guest, session = booted
        print(
            f"booted {name} in {guest.ready.seconds:.1f}s with {guest.backend_name}; "  # type: ignore[union-attr]
            f"console log: {guest.boot_dir() / 'console.log'}",
            file=sys.stderr,
        )
        if command:
            result = session.run(command, args.timeout)
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            return 124 if result.timed_out else int(result.exit_code or 0)
        return interactive_ssh(guest)


def add_guest_options(parser: argparse.ArgumentParser, kernel_help: str) -> None:
    """What ``run`` and ``boot`` share: which kernel, where results go, how guests boot.

    One place, so an option both take (a kernel given ad hoc, say) is added once.
    """
    add_kernel_option(parser, kernel_help)
    adhoc = parser.add_argument_group(
        "a kernel without a kernels.yaml entry (harness.commands.adhoc)"
    )
    add_adhoc_options(adhoc.add_argument)
    parser.add_argument(
        "--results-dir", metavar="DIR", help="base directory for results (default: results/)"
    )
    parser.add_argument(
        "--accel",
        choices=ACCELS,
        help="accelerator for every kernel: auto uses KVM only where it works (default: each "
        "kernel's accel:, auto)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        help="boot every kernel with this backend (default: each kernel's backend:, qemu)",
    )


def _add_run(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="run the guest tests on the kernels (pytest; pytest options after --)",
        description="Run the guest tests on the kernels of kernels.yaml through pytest. "
        "pytest options go after --: kharness run --kernel NAME -- -x -k uffd",
    )
    add_guest_options(run, "run on this kernel of kernels.yaml (default: all)")
    run.add_argument(
        "--test",
        action="append",
        default=[],
        metavar="NAME",
        help="only this guest test, a file of guest-tests/c or sh without suffix (repeatable)",
    )
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
        "--keep-snapshots",
        action="store_true",
        help="keep each kernel's ready guest in the cache: the next run restores it, no boot",
    )
    run.add_argument(
        "-n",
        "--jobs",
        metavar="N",
        help="kernels side by side: a number or 'auto' (cores, memory, guest sizes); pytest-xdist",
    )
    run.add_argument(
        "--hosts", metavar="PATH", help="hosts.yaml: run kernels on these machines over ssh"
    )
    run.set_defaults(func=cmd_run, after_dashes="pytest_args")


def _add_boot(sub: argparse._SubParsersAction) -> None:
    boot = sub.add_parser(
        "boot",
        help="boot a kernel and give me a shell over SSH, or run the command after --",
        description="Boot one kernel as the tests see it. With a command after -- "
        "(kharness boot --kernel NAME -- uname -r) run it and exit with its status; "
        "without, open a root shell.",
    )
    add_guest_options(boot, "the kernel of kernels.yaml to boot (exactly one)")
    add_old_positional(boot)
    boot.add_argument(
        "--command", help="run this shell command line instead of a shell (or give it after --)"
    )
    boot.add_argument(
        "--timeout", type=float, default=300.0, help="for the command, in seconds (default: 300)"
    )
    boot.set_defaults(func=cmd_boot, after_dashes="guest_command")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subparser per subcommand."""
    from harness.commands import rerun
    from harness.reporters import DIR_REPORTERS, REPORTERS

    parser = argparse.ArgumentParser(prog="kharness", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kernels-file", metavar="PATH", help="kernels.yaml to use (default: the repository's)"
    )
    sub = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND")
    _add_run(sub)
    kernels = sub.add_parser("kernels", help="list what kernels.yaml names")
    add_kernel_option(kernels, "only this kernel")
    kernels.add_argument("--resolve", action="store_true", help="fetch and show exact versions")
    kernels.set_defaults(func=cmd_kernels)
    _add_boot(sub)
    report = sub.add_parser("report", help="re-render a results directory's reports")
    report.add_argument(
        "run_dir",
        nargs="?",
        default=str(RESULTS_DIR / "latest"),
        help="the results directory (default: results/latest)",
    )
    report.add_argument(
        "--format",
        choices=sorted([*REPORTERS, *DIR_REPORTERS]),
        default="summary.txt",
        help="which report to print (default: summary.txt)",
    )
    report.set_defaults(func=cmd_report)

    series_cli.add_parser(sub)
    mail_cli.add_parsers(sub)
    bisect_cli.add_parser(sub)
    compare.add_parser(sub)
    rerun.add_parser(sub)
    mcp.add_parser(sub)
    # also after the subcommand, where people type it (kharness run --kernels-file k.yaml);
    # SUPPRESS keeps a value given before the subcommand when none is given after it
    for name in ("run", "kernels", "boot", "series", "bisect", "mcp", "watch", "b4-check"):
        sub.choices[name].add_argument(
            "--kernels-file",
            default=argparse.SUPPRESS,
            metavar="PATH",
            help="kernels.yaml to use (default: the repository's)",
        )
    return parser


#: what an unknown option most likely was, per subcommand
_HINTS = {
    "run": "pytest options go after --: kharness run [OPTIONS] -- -k NAME",
    "boot": "a command for the guest goes after --: kharness boot --kernel NAME -- uname -r",
}


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; what follows the first ``--`` is handed on (pytest's, the guest's).

    An unknown option is a usage error saying where such options go.
    """
    parser = build_parser()
    rest: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, rest = argv[:at], argv[at + 1 :]
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        hint = _HINTS.get(args.command_name, f"see kharness {args.command_name} --help")
        parser.error(f"unrecognized arguments: {' '.join(unknown)}; {hint}")
    after = getattr(args, "after_dashes", None)
    if rest and after is None:
        parser.error(f"kharness {args.command_name} takes nothing after --: {' '.join(rest)}")
    if after is not None:
        setattr(args, after, rest)
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn harness errors into one clear line."""
    args = parse(sys.argv[1:] if argv is None else argv)
    sigterm_as_interrupt()  # clean up on SIGTERM exactly as on Ctrl-C
    hangup_as_interrupt()  # and on SIGHUP: a closed terminal or ssh connection
    try:
        return args.func(args)
    except HarnessError as exc:
        print(f"kharness: error: {printable(str(exc))}", file=sys.stderr)  # may quote mail
        return exc.exit_code
    except KeyboardInterrupt:
        print("kharness: interrupted; guests stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
