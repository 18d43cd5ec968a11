"""``kharness watch-admin list|release ID|drop ID``: the bot's queue, seen and moderated.

It opens the bot's database beside its results (``<results>/watch``), also
while the bot runs (SQLite's WAL lets both work; every change is one short
transaction), and never takes the bot's lock.  ``release`` makes a held
reply ``pending``: the running bot (or its next start) sends it to the
recipients it was meant for, through its relay; ``drop`` makes it
``dropped``, never sent.  Everything shown that came from the list is
escaped (:func:`harness.display.textsafe.printable`).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from harness.display.textsafe import printable
from harness.errors import UserError
from harness.mail.outbox import Outbox, Reply, ReplyState
from harness.mail.retest import Retests
from harness.mail.state import FILENAME, State
from harness.paths import results_base

_LAST = 10  # errors and set-aside messages shown


def render(state: State, outbox: Outbox, retests: Retests, now: float | None = None) -> str:
    """The queue, the series per state, the last errors: what an operator checks."""
    now = time.time() if now is None else now
    series = state.series()
    replies = outbox.all()
    counts = Counter(r.state.value for r in series)
    lines = ["series: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none")]
    for row in series:
        if row.state.value in ("queued", "running", "waiting"):
            lines.append(f"  {row.state.value:9} {row.key}  {row.title[:80]}")
    lines += ["", "replies:"]
    waiting = [r for r in replies if r.state not in (ReplyState.SENT, ReplyState.DROPPED)]
    lines += [_reply_line(r, now) for r in waiting] or ["  none waiting"]
    done = Counter(r.state.value for r in replies if r not in waiting)
    if done:
        lines.append("  and " + ", ".join(f"{n} {s}" for s, n in sorted(done.items())))
    asked = retests.all()
    if asked:
        by_state = Counter(r.state.value for r in asked)
        lines += ["", "retests: " + ", ".join(f"{n} {s}" for s, n in sorted(by_state.items()))]
    errors = [r for r in replies if r.last_error][-_LAST:]
    if errors:
        lines += ["", "last errors:"]
        lines += [f"  #{r.id} ({r.state.value}, {r.attempts}x): {r.last_error}" for r in errors]
    aside = state.set_aside_recent(_LAST)
    if aside:
        lines += ["", "last set aside:"]
        lines += [f"  <{a.message_id[:80]}> {a.subject[:60]}: {a.reason}" for a in aside]
    return printable("\n".join(lines), newlines=True) + "\n"


def _reply_line(r: Reply, now: float) -> str:
    line = f"  #{r.id:<4} {r.state.value:8} {r.what:8} {r.series}"
    if r.state in (ReplyState.PENDING, ReplyState.MODERATE) and r.attempts:
        line += f"  (tried {r.attempts}x, next in {max(0.0, r.next_try - now):.0f}s)"
    if r.state is ReplyState.HELD:
        line += f"  (with {r.moderator}: release {r.id} | drop {r.id})"
    return f"{line}\n         {r.path}"


def cmd_watch_admin(args: argparse.Namespace) -> int:
    """List the bot's queue, or release or drop a held reply."""
    home = results_base(args.results_dir) / "watch"
    if not (home / FILENAME).is_file():
        raise UserError(f"no bot state in {home}; give the --results-dir the bot was run with")
    state = State(home)
    try:
        outbox, retests = Outbox(state.db), Retests(state.db)
        if args.action == "list":
            print(render(state, outbox, retests), end="")
            return 0
        if args.id is None:
            raise UserError(f"kharness watch-admin {args.action} ID: name the reply (see list)")
        try:
            done = outbox.release(args.id) if args.action == "release" else outbox.drop(args.id)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        verb = "released: the bot sends it" if args.action == "release" else "dropped"
        print(f"reply #{done.id} for {printable(done.series, newlines=False)} {verb}")
        return 0
    finally:
        state.close()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``watch-admin``."""
    a = subparsers.add_parser(
        "watch-admin", help="the watch bot's queue: list, release or drop a held reply"
    )
    a.add_argument(
        "action",
        choices=["list", "release", "drop"],
        help="list: the queue, series per state, last errors; release/drop: a held reply",
    )
    a.add_argument("id", nargs="?", type=int, metavar="ID", help="the reply's number (list)")
    a.add_argument("--results-dir", metavar="DIR", help="the bot's base directory (results/)")
    a.set_defaults(func=cmd_watch_admin)
