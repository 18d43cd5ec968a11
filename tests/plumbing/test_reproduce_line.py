"""The reply's one reproduce line, run as a maintainer would paste it.

``kharness series`` tests a series fetched by its Message-ID from a real
public-inbox on 127.0.0.1 and writes its reply; the test takes the line under
"To reproduce locally:", splits it as a shell would (:func:`shlex.split`) and
runs exactly those words (``kharness`` being this checkout's ``python -m
harness``) against the same inbox.  The series does not apply on the base, so
neither run builds anything, and the second must reach the same verdict.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from harness.mail.message import parse
from harness.results import layout, series_record
from tests.support.mailinglist import (
    PublicInbox,
    fake_git_tree,
    kernels_yaml,
    misfit_series,
)
from tests.support.paths import REPO


def _series(kernels: Path, results: Path, words: list[str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "harness", "--kernels-file", str(kernels), *words]
    argv += ["--results-dir", str(results)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_the_reproduce_line_of_a_reply_runs_and_gives_the_same_verdict(
    inbox: PublicInbox, tmp_path: Path
) -> None:
    tree = fake_git_tree(tmp_path)
    (patch,) = misfit_series(tree, tmp_path / "series")
    inbox.deliver(patch)
    anchor = parse(patch)
    kernels = kernels_yaml(tmp_path, tree)
    words = ["series", "--kernel", "fake", "--series", f"<{anchor.message_id}>"]
    first = _series(kernels, tmp_path / "bot", [*words, "--inbox", inbox.url])
    assert first.returncode == 1, first.stderr[-3000:]  # a patch that does not apply fails it
    bot_run = layout.newest_run(tmp_path / "bot", done=layout.SERIES_JSON)
    assert bot_run is not None
    text = parse((bot_run / layout.REPLY_EML).read_bytes()).body
    lines = text.splitlines()
    line = lines[lines.index("To reproduce locally:") + 1].strip()
    pasted = shlex.split(line)
    assert pasted[0] == "kharness" and "--series" in pasted and "--sandbox" in pasted, line
    again = _series(kernels, tmp_path / "maintainer", pasted[1:])
    assert again.returncode == 1, again.stderr[-3000:]
    mine = layout.newest_run(tmp_path / "maintainer", done=layout.SERIES_JSON)
    assert mine is not None
    theirs, ours = series_record.load(bot_run), series_record.load(mine)
    assert ours.not_applied is not None and theirs.not_applied is not None
    assert (ours.not_applied.index, ours.not_applied.patch) == (1, "mm: fault returns six")
    assert (theirs.not_applied.index, theirs.not_applied.patch) == (1, "mm: fault returns six")
    assert "Hunk #1 FAILED" in ours.not_applied.error and ours.tests == theirs.tests
