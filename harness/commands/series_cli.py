"""``kharness series``: a kernel entry, a series from a file or a list, the per-patch matrix.

The series is named by ``--series``: a local mbox, ``.patch`` file or
directory (read as it is), or a Message-ID, a lore-style URL or a maildir
(fetched and ordered by b4, :mod:`harness.mail.intake`).  When the series
comes from ``--series``, the kernel entry's own ``series:`` is part of the
base (patches carried on the tree), not steps of the matrix.

A series from a list is tested on its cover letter's ``base-commit:`` when
the kernel's tree has that commit, else on the entry's own base, and the
report says which and why.  Its results directory then also holds
``reply.eml``, the answer to the thread (sent with ``--smtp HOST:PORT``).

A test a patch turns from pass to fail runs ``--confirm N`` more times on
that step and the one before before the patch is blamed (:mod:`harness.commands.confirm`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from harness.commands import confirm
from harness.commands.cli_grammar import add_kernel_option, add_old_positional, one_kernel
from harness.commands.series import run_series, write_reports
from harness.config import (
    Isolation,
    KernelSpec,
    check_host_tools,
    load_kernels,
    select,
    untrusted,
)
from harness.display.progress_display import for_stream
from harness.display.textsafe import printable
from harness.errors import UserError
from harness.gitrun import run_git
from harness.kernels.build import BuildSource
from harness.kernels.patches import Patch, read_series
from harness.kernels.srctree import is_git_tree, is_package_name
from harness.mail import intake, reply, smtp
from harness.paths import kernels_file, results_base
from harness.results import pass_rate, provenance
from harness.results.evidence import new_run_dir, write_json
from harness.results.series_record import SeriesOrigin
from harness.testkinds.trial import DEFAULT_TESTS_DIR, Trial, select_tests


@dataclasses.dataclass(frozen=True)
class Intake:
    """What ``--series`` brought: the patches, the base they go on, the list thread."""

    patches: tuple[Patch, ...]
    base_patches: tuple[Patch, ...]
    source: BuildSource
    base: str  # which base and why, for the report
    fetched: intake.Fetched | None = None


def _kernel(args: argparse.Namespace) -> KernelSpec:
    """The kernels.yaml entry named on the command line: a ``build:`` kernel."""
    path = kernels_file(args.kernels_file)
    name = one_kernel("series", args.kernels, args.name)
    spec = check_host_tools(select(load_kernels(path), [name], path))[0]
    if not isinstance(spec.source, BuildSource):
        raise UserError(
            f"kernel '{name}' in {path} is a {spec.source.kind} kernel; "
            "series mode needs a 'build:' entry (a source tree to patch)"
        )
    return spec


def take_series(args: argparse.Namespace, spec: KernelSpec, run_dir: Path, log) -> Intake:  # type: ignore[no-untyped-def]
    """Read or fetch every ``--series``; choose the base."""
    source = spec.source
    assert isinstance(source, BuildSource)
    refs = [intake.parse_ref(s, args.inbox or source.inbox) for s in args.series]
    remote = [r for r in refs if r.message_id is not None or _is_maildir(r.path)]
    if len(remote) > 1:
        raise UserError(
            "--series: give one series from a list per run (each gets its own reply); "
            f"got {len(remote)}: {', '.join(r.describe() for r in remote)}"
        )
    if not refs:
        patches = source.patches()
        if not patches:
            raise UserError(
                f"kernel '{spec.name}' has no series; give 'series:' in kernels.yaml "
                "or --series PATH|MESSAGE-ID"
            )
        return Intake(patches, (), source, _entry_base(source))
    fetched = None
    patches: list[Patch] = []
    for ref in refs:
        if ref in remote:
            fetched = intake.fetch(ref, run_dir / "series", log)
            patches += read_series(fetched.mbox, args.allow_missing).patches
        else:
            assert ref.path is not None
            patches += read_series(ref.path, args.allow_missing).patches
    source, base = _choose_base(source, fetched)
    return Intake(tuple(patches), source.patches(), source, base, fetched)


def _is_maildir(path: Path | None) -> bool:
    return (
        path is not None and path.is_dir() and ((path / "cur").is_dir() or (path / "new").is_dir())
    )


def _entry_base(source: BuildSource) -> str:
    own = f" with its {len(source.series)} series file(s)" if source.series else ""
    return f"{source.source}@{source.rev or 'HEAD'}{own} (the kernel entry's base)"


def _choose_base(source: BuildSource, fetched: intake.Fetched | None) -> tuple[BuildSource, str]:
    """The series' base-commit when the tree has it, else the entry's base, with the reason."""
    if fetched is None:
        return source, _entry_base(source)
    wanted = fetched.base_commit
    if wanted is None:
        return source, f"{_entry_base(source)}; the series names no base-commit"
    tree = None
    if not is_package_name(source.source):
        tree = (source.base / source.source).expanduser()
    if tree is not None and is_git_tree(tree):
        found = run_git(tree, "rev-parse", "--verify", "-q", f"{wanted}^{{commit}}", check=False)
        if found.returncode == 0:
            full = found.stdout.strip()
            chosen = dataclasses.replace(source, rev=full)
            return chosen, f"{full[:12]} (the series' base-commit)"
    return source, (
        f"{_entry_base(source)}; the series' base-commit {wanted[:12]} is not in {source.source}"
    )


def cmd_series(args: argparse.Namespace) -> int:
    """The ``series`` subcommand: matrix on stdout and in the results directory."""
    spec = untrusted(_kernel(args)) if args.sandbox else _kernel(args)
    tests = select_tests(args.test, Path(args.tests_dir))
    run_dir = new_run_dir(results_base(args.results_dir))
    kernels = kernels_file(args.kernels_file)
    provenance.record(run_dir, kernels, [spec.name], [t.name for t in tests])
    # every step boots with the entry's cmdline, memory, CPUs, timeouts, ...
    why_tests = read_why(args.why_tests)
    progress = for_stream(sys.stderr)  # with the build's and the trial's lines
    try:
        taken = take_series(args, spec, run_dir, progress.print)
        if taken.fetched is not None:
            _record_origin(run_dir, taken)
        isolation = Isolation(args.isolation)
        trial = Trial(run_dir, tests, progress.print, spec, progress, isolation)
        report = run_series(
            taken.source,
            taken.patches,
            trial,
            progress.print,
            args.runs,
            base_patches=taken.base_patches,
            base=taken.base,
            confirm_runs=args.confirm,
        )
    finally:
        progress.close()
    regressed = write_reports(report, run_dir, why_tests)
    # series.txt quotes the patches' subjects: mail, so escaped before a terminal
    print(f"\n{printable((run_dir / 'series.txt').read_text())}\nresults: {run_dir}")
    if taken.fetched is not None and taken.fetched.anchor is not None:
        _answer(args, spec.name, taken.fetched, run_dir)
    return 1 if regressed else 0


def _record_origin(run_dir: Path, taken: Intake) -> None:
    """series-origin.json: where the series came from and which base it went on."""
    fetched = taken.fetched
    assert fetched is not None
    anchor = fetched.anchor
    if anchor is not None:
        (run_dir / "series" / "anchor.eml").write_bytes(anchor.raw)
    origin = SeriesOrigin(
        anchor.message_id if anchor else None,
        fetched.subject,
        fetched.version,
        fetched.link,
        fetched.base_commit,
        taken.base,
        tuple(p.label for p in taken.patches),
        tuple(fetched.missing),
    )
    write_json(run_dir / "series-origin.json", origin.to_json())


MAX_WHY = 4096  # characters of --why-tests kept


def read_why(text: str | None) -> str:
    """``--why-tests TEXT`` or ``@FILE`` (text, or the bot's JSON: a string, a list of lines,
    or an object of test -> reason), as lines for the reply; UserError names a bad file."""
    if not text:
        return ""
    if not text.startswith("@"):
        return text[:MAX_WHY]
    path = Path(text[1:])
    try:
        raw = path.read_text(errors="replace")
    except OSError as exc:
        raise UserError(f"--why-tests {text}: cannot read {path} ({exc.strerror})") from None
    try:
        data = json.loads(raw)
    except ValueError:
        return raw.strip()[:MAX_WHY]
    if isinstance(data, dict):
        lines = [f"{k}: {v}" for k, v in data.items()]
    elif isinstance(data, list):
        lines = [str(x) for x in data]
    else:
        lines = [str(data)]
    return "\n".join(lines)[:MAX_WHY]


def _answer(args: argparse.Namespace, kernel: str, fetched: intake.Fetched, run_dir: Path) -> None:
    """reply.eml in the results directory; sent when --smtp names a server."""
    assert fetched.anchor is not None
    settings = reply.Settings(sender=args.reply_from or reply.default_sender())
    message = reply.compose(
        fetched.anchor,
        (reply.KernelResult(kernel, run_dir),),
        settings,
        reproduce=reply.reproduce_command(kernel, fetched),
        notes=reply.origin_notes(run_dir),
    )
    path = reply.save(message, run_dir)
    print(f"reply: {path}")
    if args.smtp:
        try:
            smtp.send(message, smtp.parse_server(args.smtp))
        except smtp.SendFailed as exc:
            # the relay's words, and the thread's addresses below, are not ours: escaped
            print(f"reply not sent: {printable(str(exc))}; it is kept in {path}", file=sys.stderr)
            return
        to = printable(", ".join(reply.recipients(message)), newlines=False)
        print(f"reply sent through {args.smtp} to {to}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``series`` on the harness CLI."""
    p = subparsers.add_parser("series", help="build and test after each patch of a series")
    add_kernel_option(p, "the build: kernel of kernels.yaml whose tree is patched", "kernels")
    add_old_positional(p)
    p.add_argument(
        "--series",
        action="append",
        default=[],
        metavar="SERIES",
        help="the series: an mbox, .patch file or directory, a maildir, a Message-ID or a "
        "lore-style URL (fetched with b4); the kernel's own series: then goes in the base",
    )
    p.add_argument(
        "--inbox",
        metavar="URL",
        help="the public-inbox a Message-ID is looked up on (default: the kernel's build: "
        f"inbox:, else ${intake.INBOX_ENV}, else {intake.DEFAULT_INBOX})",
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="test a numbered series with patches missing (what arrived, in order); "
        "without it a hole in the numbering is an error",
    )
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="the series is untrusted: build it (and its kselftests) in bubblewrap, boot it on "
        "QEMU only (always on for watch, b4-check and the MCP server)",
    )
    p.add_argument(
        "--smtp",
        metavar="HOST:PORT",
        help="send the reply (reply.eml) to the series' thread through this SMTP server",
    )
    p.add_argument(
        "--reply-from",
        metavar="ADDRESS",
        help="the reply's From: (default: kharness <kharness@HOSTNAME>)",
    )
    _add_test_options(p)
    p.add_argument(
        "--why-tests",
        metavar="TEXT|@FILE",
        help="why these tests were chosen (the bot's relevance reason), shown in the reply; "
        "@FILE reads it from a text or JSON file",
    )
    p.add_argument("--tests-dir", default=str(DEFAULT_TESTS_DIR), help=argparse.SUPPRESS)
    p.add_argument(
        "--results-dir", metavar="DIR", help="base directory for results (default: results/)"
    )
    p.set_defaults(func=cmd_series)


def _add_test_options(p: argparse.ArgumentParser) -> None:
    """What runs on each step's kernel, how often, and in which guest."""
    p.add_argument(
        "--test",
        action="append",
        default=[],
        metavar="NAME",
        help="only this guest test (repeatable; default: all)",
    )
    p.add_argument(
        "--runs",
        type=pass_rate.runs_count,
        default=1,
        metavar="N",
        help="run each test N times per step; a test that passes and fails is flaky",
    )
    p.add_argument(
        "--confirm",
        type=confirm.confirm_count,
        default=confirm.DEFAULT_RUNS,
        metavar="N",
        help="a test a patch turns from pass to fail runs N more times on that step and the "
        f"one before before the patch is blamed (default {confirm.DEFAULT_RUNS}; 0: never)",
    )
    p.add_argument(
        "--isolation",
        choices=[i.value for i in Isolation],
        default=Isolation.TEST.value,
        help="test (default): every test starts from the step's pristine guest (a restore, "
        "about a tenth of a boot), so a verdict never depends on what the test before left; "
        "kernel: the tests of a step share one guest",
    )
