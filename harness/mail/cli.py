"""The mailing-list subcommands: ``kharness watch`` (the bot), ``watch-admin``, ``b4-check``."""

from __future__ import annotations

import argparse
import email.utils
import json
import sys
from pathlib import Path

from harness.commands.cli_grammar import add_kernel_option
from harness.config import check_host_tools, load_kernels, select
from harness.display.textsafe import printable
from harness.errors import UserError
from harness.hosts import load_hosts
from harness.kernels.build import BuildSource
from harness.mail import admin, b4check, explain, intake, reply, smtp
from harness.paths import kernels_file, results_base


def _build_kernels(args: argparse.Namespace, command: str) -> tuple[str, ...]:
    """The named kernels, each a ``build:`` entry (a tree a series can be applied to)."""
    path = kernels_file(args.kernels_file)
    if not args.kernels:
        raise UserError(f"kharness {command}: name the kernel(s) to test on: --kernel NAME")
    specs = check_host_tools(select(load_kernels(path), args.kernels, path))
    wrong = [s.name for s in specs if not isinstance(s.source, BuildSource)]
    if wrong:
        raise UserError(
            f"kharness {command}: {', '.join(wrong)} in {path} is not a 'build:' entry; "
            "a series needs a source tree to be applied to"
        )
    return tuple(s.name for s in specs)


def cmd_watch(args: argparse.Namespace) -> int:
    """Poll the inbox, test each new series once, answer in its thread."""
    from harness.mail.watch import Settings, Watcher  # the bot's modules load only for it

    if args.explain:  # what the inbox holds, decided, and nothing else (harness/mail/explain.py)
        return explain.cmd_explain(args)
    kernels = _build_kernels(args, "watch")
    if args.interval <= 0 or args.wait_missing < 0 or args.jobs < 1:
        raise UserError("--interval must be > 0, --wait-missing >= 0 and -n >= 1")
    if args.max_patches < 1 or args.deadline <= 0:
        raise UserError(
            f"--max-patches {args.max_patches} / --deadline {args.deadline}: "
            "give a patch limit >= 1 and a deadline > 0 seconds"
        )
    relay = smtp.relay_from_args(args)
    moderator = _moderator(args.moderate, relay)
    for name, delay in (("--smtp-retry", args.smtp_retry), ("--unreachable-retry", args.reach)):
        if not 0 < delay < float("inf"):  # also NaN
            raise UserError(f"{name} {delay}: give a delay > 0 seconds")
    if args.evidence_url and not args.evidence_url.startswith(("http://", "https://")):
        raise UserError(f"--evidence-url {args.evidence_url!r}: give an http(s) URL")
    settings = Settings(
        inbox=args.inbox.rstrip("/"),
        kernels=kernels,
        kernels_file=kernels_file(args.kernels_file),
        home=results_base(args.results_dir) / "watch",
        tests=tuple(args.test),
        interval=args.interval,
        wait_missing=args.wait_missing,
        jobs=args.jobs,
        hosts=tuple(load_hosts(Path(args.hosts))) if args.hosts else (),
        smtp=relay,
        sender=args.reply_from or reply.default_sender(),
        from_start=args.from_start,
        once=args.once,
        max_patches=args.max_patches,
        deadline=args.deadline,
        test_all=args.test_all,
        dry_run=args.dry_run,
        moderator=moderator,
        retest_from=tuple(args.retest_from),
        evidence_url=args.evidence_url,
        retry=smtp.RetryPolicy(first=args.smtp_retry, cap=max(3600.0, args.smtp_retry)),
        unreachable_retry=args.reach,
    )

    def log(line: str) -> None:  # subjects and Message-IDs are a stranger's: escaped
        print(f"kharness watch: {printable(line, newlines=False)}", file=sys.stderr, flush=True)

    how = (
        "dry run: replies written, none sent"
        if settings.dry_run
        else (
            f"replies held for {moderator}"
            if moderator
            else f"replies through {relay or 'nothing'}"
        )
    )
    log(f"watching {settings.inbox} for {', '.join(kernels)}; state in {settings.home}; {how}")
    try:
        return Watcher(settings, log).run()
    except KeyboardInterrupt:
        log("stopped; series being tested resume at the next start")
        return 130


def _moderator(text: str | None, relay: smtp.SmtpRelay | None) -> str | None:
    """The --moderate address (it needs a relay to reach the moderator)."""
    if text is None:
        return None
    address = email.utils.parseaddr(text)[1]
    if "@" not in address:
        raise UserError(f"--moderate {text!r}: give the moderator's mail address")
    if relay is None:
        raise UserError("--moderate needs --smtp: held replies are mailed to the moderator")
    return address


def cmd_b4_check(args: argparse.Namespace) -> int:
    """One message on stdin, b4's JSON array on stdout."""
    (kernel,) = _build_kernels(args, "b4-check")[:1]
    raw = sys.stdin.buffer.read()
    if not raw.strip():
        raise UserError("kharness b4-check reads one message on stdin; got nothing")
    result = b4check.check(
        raw,
        kernel,
        kernels_file(args.kernels_file),
        results_base(args.results_dir) / "b4-check",
        args.inbox,
        tuple(args.test),
    )
    sys.stdout.write(json.dumps([result.to_json()], indent=2) + "\n")
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``watch``, ``watch-admin`` and ``b4-check``."""
    w = subparsers.add_parser("watch", help="a bot: test every series posted to a list, reply")
    _add_intake_options(w)
    _add_delivery_options(w)
    _add_bound_options(w)
    w.set_defaults(func=cmd_watch)
    admin.add_parser(subparsers)
    _add_b4_check(subparsers)


def _add_intake_options(w: argparse.ArgumentParser) -> None:
    """What the bot reads, what it tests it on, and how often."""
    w.add_argument("--inbox", required=True, metavar="URL", help="the list's public-inbox URL")
    add_kernel_option(w, "a build: kernel of kernels.yaml to test each series on", "kernels")
    w.add_argument("--test", action="append", default=[], metavar="NAME", help="only this test")
    explain.add_options(w)
    where = w.add_mutually_exclusive_group()
    where.add_argument("-n", dest="jobs", type=int, default=1, metavar="N", help="series at once")
    where.add_argument(
        "--hosts",
        metavar="PATH",
        help="hosts.yaml (as for kharness run --hosts): test series on these machines over ssh",
    )
    w.add_argument("--interval", type=float, default=60.0, metavar="S", help="seconds per poll")
    w.add_argument(
        "--unreachable-retry",
        dest="reach",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds before an unreachable inbox or --hosts host is tried again, "
        "doubling up to 10 min (default 5)",
    )
    w.add_argument(
        "--wait-missing",
        type=float,
        default=1800.0,
        metavar="S",
        help="how long an incomplete series waits for its patches (default 1800)",
    )
    w.add_argument(
        "--test-all-series",
        dest="test_all",
        action="store_true",
        help="test every series (default: only those touching a path a test covers)",
    )
    w.add_argument(
        "--from-start",
        action="store_true",
        help="also test what the inbox already holds (default: only what arrives from now on)",
    )
    w.add_argument("--once", action="store_true", help="stop when nothing is left to test")
    w.add_argument(
        "--retest-from",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="may ask for a retest ('#kharness test') besides the thread's own posters",
    )


def _add_delivery_options(w: argparse.ArgumentParser) -> None:
    """Where replies go: the relay, a moderator or nowhere, and the evidence's address."""
    smtp.add_options(w)
    w.add_argument(
        "--smtp-retry",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds before a refused reply is tried again, doubling up to an hour (default 60)",
    )
    w.add_argument("--reply-from", metavar="ADDRESS", help="the replies' From:")
    held = w.add_mutually_exclusive_group()
    held.add_argument("--dry-run", action="store_true", help="write every reply, send none")
    held.add_argument(
        "--moderate",
        metavar="ADDRESS",
        help="send each reply to this moderator instead; released or dropped with "
        "kharness watch-admin, or by their one-word reply (release / drop)",
    )
    w.add_argument(
        "--evidence-url",
        metavar="URL",
        help="where the results directory is published: replies link each run under it",
    )


def _add_bound_options(w: argparse.ArgumentParser) -> None:
    """What one series may cost: patches, time; and where the bot keeps its results."""
    w.add_argument(
        "--max-patches",
        type=int,
        default=50,
        metavar="N",
        help="a series of more patches is not tested; its thread is told why (default 50)",
    )
    w.add_argument(
        "--deadline",
        type=float,
        default=7200.0,
        metavar="S",
        help="seconds a series' testing may take in all, then it is stopped (default 7200)",
    )
    w.add_argument("--results-dir", metavar="DIR", help="base directory (default: results/)")


def _add_b4_check(subparsers: argparse._SubParsersAction) -> None:
    """Register ``b4-check``: b4 review's per-patch check protocol."""
    c = subparsers.add_parser(
        "b4-check", help="a b4 review check: one message on stdin, b4's JSON on stdout"
    )
    add_kernel_option(c, "the one build: kernel of kernels.yaml to test on", "kernels")
    c.add_argument(
        "--inbox",
        metavar="URL",
        help=f"where the message's thread is fetched (default: {intake.DEFAULT_INBOX})",
    )
    c.add_argument("--test", action="append", default=[], metavar="NAME", help="only this test")
    c.add_argument("--results-dir", metavar="DIR", help="base directory (default: results/)")
    c.set_defaults(func=cmd_b4_check)
