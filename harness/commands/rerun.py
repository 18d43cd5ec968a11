"""``kharness rerun RESULTS_DIR``: the same kernels and tests again, compared with that run.

A results directory holds how it was made (:mod:`harness.results.provenance`): the
kernels file (its copy ``kernels.yaml``), the kernels and tests selected, and
in summary.json what each kernel was exactly.  The copy is pinned with those
facts (a Debian kernel gets ``version:``, a kernel built from a git tree
``rev:``; relative paths keep starting where the original file was, through
``base:``), run through ``kharness run``, and the new run compared with the
old one as ``kharness compare`` does: exit 1 when something regressed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.commands.run import RunOutcome, RunRequest, run_tests
from harness.errors import UserError
from harness.paths import results_base
from harness.results import layout, provenance
from harness.results.compare import compare
from harness.results.records import KernelRecord, load_summary


@dataclass(frozen=True)
class Pinned:
    """The kernels file to run again, as YAML text, and what could not be pinned."""

    text: str
    notes: tuple[str, ...]


def pin(
    data: Any, kernels: tuple[str, ...], records: Mapping[str, KernelRecord], origin: Path
) -> Pinned:
    """The recorded kernels file narrowed to ``kernels``, each pinned to what it was exactly.

    ``origin`` is the directory of the file the run read: relative paths start there.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("kernels"), list):
        raise UserError("the recorded kernels.yaml has no 'kernels:' list; it cannot be rerun")
    entries = [dict(e) for e in data["kernels"] if isinstance(e, Mapping)]
    by_name = {e.get("name"): e for e in entries}
    missing = [k for k in kernels if k not in by_name]
    if missing:
        raise UserError(f"the recorded kernels.yaml has no entry {', '.join(missing)}")
    notes = []
    chosen = []
    for name in kernels:
        entry = by_name[name]
        exact = records[name].exact if name in records else None
        if exact is None:
            notes.append(f"{name}: the run recorded no exact origin; resolved afresh")
        elif "debian" in entry and exact.version:
            entry["debian"] = {**_mapping(entry["debian"], "package"), "version": exact.version}
        elif "build" in entry and exact.commit:
            build = _mapping(entry["build"], "source")
            build.pop("dirty", None)  # a snapshot is a commit too: rev: names it
            entry["build"] = {**build, "rev": exact.commit}
        elif "build" in entry:
            notes.append(f"{name}: built from {exact.tree} (no commit to pin); built as it is now")
        chosen.append(entry)
    base = (origin / str(data.get("base", "."))).resolve()
    text = yaml.safe_dump({"base": str(base), "kernels": chosen}, sort_keys=False)
    return Pinned(text, tuple(notes))


def _mapping(value: Any, short_key: str) -> dict[str, Any]:
    """A source key's value as a mapping (``debian: PATTERN`` is short for a mapping)."""
    return dict(value) if isinstance(value, Mapping) else {short_key: value}


def run_request(
    kernels_file: Path, made: provenance.Provenance, results: Path, pytest_args: tuple[str, ...]
) -> RunRequest:
    """``kharness run`` for the same kernels and tests.

    Guest tests are named with ``--test``; a run that also had KUnit or
    kselftest items (names with a dot) reran the whole directory, so this does.
    """
    tests = () if any("." in t for t in made.tests) else made.tests
    return RunRequest(
        kernels_file=kernels_file,
        kernels=made.kernels,
        tests=tests,
        results_dir=results,
        pytest_args=pytest_args,
    )


def cmd_rerun(args: argparse.Namespace) -> int:
    """The ``rerun`` subcommand: 1 when the new run regressed against the recorded one."""
    return rerun(Path(args.run_dir), results_base(args.results_dir), tuple(args.pytest_args))


def rerun(
    run_dir: Path,
    base: Path,
    pytest_args: tuple[str, ...] = (),
    runner: Callable[[RunRequest], RunOutcome] = run_tests,
) -> int:
    """Run ``run_dir``'s kernels and tests again into ``base`` with ``runner``, and compare.

    1 when the new run regressed against the recorded one; pytest's code
    (or 2) when the new run left no summary to compare.
    """
    old_dir = run_dir.resolve()
    made = provenance.load(old_dir)
    old = load_summary(old_dir)
    copy = old_dir / provenance.KERNELS_COPY
    if not copy.is_file():
        raise UserError(f"{old_dir} has no {provenance.KERNELS_COPY} (the kernels file it ran)")
    records = {k.name: k for k in old.kernels}
    pinned = pin(
        yaml.safe_load(copy.read_text()), made.kernels, records, Path(made.kernels_file).parent
    )
    now = provenance.harness_version()
    if now != made.harness:
        print(f"note: that run's harness was {made.harness.describe()}, this is {now.describe()}")
    for note in pinned.notes:
        print(f"note: {note}")
    base.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".rerun-", suffix=".yaml", dir=base)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(pinned.text)
        outcome = runner(run_request(Path(name), made, base, pytest_args))
    finally:
        Path(name).unlink(missing_ok=True)
    if outcome.run_dir is None or not layout.finished(outcome.run_dir):
        return outcome.code or 2
    comparison = compare(old, load_summary(outcome.run_dir))
    print(f"\ncompared with {old_dir}:\n{comparison.render()}", end="")
    return 1 if comparison.regressions else 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``rerun`` on the harness CLI."""
    p = subparsers.add_parser(
        "rerun",
        help="run a results directory's kernels and tests again, pinned, and compare",
        description="Run the kernels and tests a results directory records again, each kernel "
        "pinned to the exact version or commit it had, and compare with that run.",
    )
    p.add_argument("run_dir", metavar="RESULTS_DIR", help="a results directory (results/<run>)")
    p.add_argument(
        "--results-dir", metavar="DIR", help="base directory for results (default: results/)"
    )
    p.set_defaults(func=cmd_rerun, after_dashes="pytest_args")
