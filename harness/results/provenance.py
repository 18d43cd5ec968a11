"""``provenance.json``: what a results directory needs to be run again, here or elsewhere.

Beside summary.json every run records the harness that ran (its commit, and
whether its tree had uncommitted changes), the command line, the kernels file
(copied as ``kernels.yaml`` into the results directory: CI deletes its
temporary one) and what was selected from it.  What each kernel resolved to
exactly (package versions and hashes, tree commits, patch hashes) is in
summary.json's kernel records (:class:`~harness.kernels.base.Exact`);
:mod:`harness.commands.rerun` pins a copy of the kernels file with them.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, UserError
from harness.gitrun import run_git
from harness.paths import REPO_ROOT
from harness.results import layout
from harness.results.schema import check_version

FILENAME = layout.PROVENANCE_JSON
KERNELS_COPY = layout.KERNELS_COPY
#: provenance.json's shape; bump when a field changes meaning or disappears
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class HarnessVersion:
    """The harness that ran: a git commit and whether its work tree was dirty (None: unknown)."""

    commit: str | None
    dirty: bool | None

    def describe(self) -> str:
        """'1a2b3c4d5e6f' or '1a2b3c4d5e6f + uncommitted changes' or 'unknown'."""
        if self.commit is None:
            return "unknown (not a git checkout)"
        return self.commit[:12] + (" + uncommitted changes" if self.dirty else "")


@dataclass(frozen=True)
class Provenance:
    """One run's record of how it was made."""

    harness: HarnessVersion
    command: tuple[str, ...]  # the process's command line (kharness run ..., pytest ...)
    kernels_file: str  # the kernels file as read (its copy: kernels.yaml beside this)
    kernels: tuple[str, ...]  # the kernels selected, in order
    tests: tuple[str, ...]  # the tests selected (guest test names, kselftest/KUnit ids)
    created: str  # local time, ISO 8601

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "schema_version": SCHEMA_VERSION,
            "harness": {"commit": self.harness.commit, "dirty": self.harness.dirty},
            "command": list(self.command),
            "kernels_file": self.kernels_file,
            "kernels": list(self.kernels),
            "tests": list(self.tests),
            "created": self.created,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = FILENAME) -> Provenance:
        """Back from :meth:`to_json` (files written before the version are version 1)."""
        check_version(data, (SCHEMA_VERSION,), where, missing=1)
        version = data.get("harness") or {}
        return cls(
            HarnessVersion(version.get("commit"), version.get("dirty")),
            tuple(data.get("command", ())),
            data.get("kernels_file", ""),
            tuple(data.get("kernels", ())),
            tuple(data.get("tests", ())),
            data.get("created", ""),
        )


def harness_version(root: Path = REPO_ROOT) -> HarnessVersion:
    """The commit of the harness checkout and whether it has uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            proc = run_git(root, *args, check=False, timeout=30)
        except HarnessError:  # git missing, or it hung: the version is unknown
            return None
        return proc.stdout if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return HarnessVersion(None, None)
    status = git("status", "--porcelain", "--untracked-files=no")
    return HarnessVersion(commit.strip(), None if status is None else bool(status.strip()))


def record(run_dir: Path, kernels_file: Path, kernels: list[str], tests: list[str]) -> Provenance:
    """Write provenance.json and the kernels file's copy into ``run_dir``."""
    made = Provenance(
        harness_version(),
        tuple(sys.argv),
        str(kernels_file.resolve()),
        tuple(kernels),
        tuple(dict.fromkeys(tests)),
        time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    if kernels_file.is_file():
        shutil.copyfile(kernels_file, run_dir / KERNELS_COPY)
    (run_dir / FILENAME).write_text(json.dumps(made.to_json(), indent=2) + "\n")
    return made


def load(run_dir: Path) -> Provenance:
    """A results directory's provenance; a UserError naming what is missing."""
    path = run_dir / FILENAME
    try:
        return Provenance.from_json(json.loads(path.read_text()), str(path))
    except OSError:
        raise UserError(
            f"{run_dir} has no {FILENAME}: it was made by a harness that did not record "
            "how it ran; rerun needs a results directory made since"
        ) from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise UserError(f"{path} is not a provenance record: {exc}") from None
