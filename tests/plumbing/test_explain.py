"""``kharness watch --explain``: a week of a list, read from a real public-inbox over http.

The list is of this test's making: series touching networking, DRM, ext4
and the docs (nothing the guest tests cover), one touching mm/userfaultfd.c
in two versions, one posted ten days ago, and some chatter.  Only the newest
userfaultfd series is to be tested, with the tests that cover what it
touches plus the always-run one; nothing may be written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.mail.explain import explain, parse_since, read_mails, render
from harness.mail.relevance import catalog
from harness.testkinds.testdef import discover, read_test
from tests.support.mailinglist import ADDRESS, PublicInbox, format_series
from tests.support.paths import REPO

UFFD_TESTS = {"uffd_move_swap_pmd", "uffd_wp_punch_faultaround", "uffd_api_unknown_feature"}


def _git(repo: Path, *args: str, date: str | None = None) -> None:
    env = {**os.environ, **({"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else {})}
    base = ["git", "-C", str(repo), "-c", "user.name=Dev", "-c", "user.email=dev@example.org"]
    subprocess.run([*base, *args], check=True, capture_output=True, env=env)


def _branch(repo: Path, name: str, changes: list[tuple[str, str]], date: str | None = None) -> str:
    """A branch off ``base`` with one commit per (path, subject); its span for format-patch."""
    _git(repo, "checkout", "-q", "-B", name, "base")
    for path, subject in changes:
        file = repo / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(file.read_text() + f"{subject}\n" if file.exists() else f"{subject}\n")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", subject, date=date)
    return f"base..{name}"


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublicInbox]:
    """A list holding a week (and a bit) of mail, served on 127.0.0.1: made once for the
    module (15 deliveries), read and never written by its tests."""
    tmp_path = tmp_path_factory.mktemp("week")
    repo = tmp_path / "linux"
    repo.mkdir()
    for path in (
        "net/core/dev.c",
        "drivers/gpu/drm/drm_drv.c",
        "fs/ext4/inode.c",
        "mm/userfaultfd.c",
        "sound/core/pcm.c",
        "Documentation/filesystems/ext4.rst",
    ):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text("base\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    _git(repo, "branch", "base")
    ten_days_ago = f"@{int(time.time()) - 10 * 86400} +0000"
    posts = [
        (
            _branch(repo, "net", [("net/core/dev.c", "net: a"), ("net/core/dev.c", "net: b")]),
            {"title": "net: tidy dev", "sender": "Net Dev <net@example.org>"},
        ),
        (
            _branch(repo, "drm", [("drivers/gpu/drm/drm_drv.c", "drm: fix a leak")]),
            {"cover": False, "sender": "Drm Dev <drm@example.org>"},
        ),
        (
            _branch(
                repo,
                "ext4",
                [
                    ("fs/ext4/inode.c", "ext4: x"),
                    ("Documentation/filesystems/ext4.rst", "ext4: doc"),
                ],
            ),
            {"title": "ext4: inode \x1b[2Jtweaks", "sender": "Fs Dev <fs@example.org>"},
        ),
        (
            _branch(repo, "sound", [("sound/core/pcm.c", "sound: an old fix")], date=ten_days_ago),
            {"cover": False, "sender": "Snd Dev <snd@example.org>"},
        ),
        (
            _branch(
                repo,
                "uffd",
                [
                    ("mm/userfaultfd.c", "mm/userfaultfd: fix move"),
                    ("include/linux/userfaultfd_k.h", "userfaultfd: header"),
                ],
            ),
            {"title": "mm/userfaultfd: fix UFFDIO_MOVE", "sender": "Mm Dev <mm@example.org>"},
        ),
    ]
    inbox = PublicInbox(tmp_path / "list")
    for n, (span, options) in enumerate(posts):
        for raw in format_series(repo, span, tmp_path / f"out{n}", **options):  # type: ignore[arg-type]
            inbox.deliver(raw)
    for raw in format_series(
        repo,
        "base..uffd",
        tmp_path / "v2",
        version=2,
        title="mm/userfaultfd: fix UFFDIO_MOVE",
        sender="Mm Dev <mm@example.org>",
    ):
        inbox.deliver(raw)
    inbox.deliver(
        f"From: r@example.org\nTo: {ADDRESS}\nSubject: Re: [PATCH 0/2] net: tidy dev\n"
        "Message-ID: <chat@x>\nIn-Reply-To: <nothing@x>\n\nlooks fine\n".encode()
    )
    inbox.start()
    try:
        yield inbox
    finally:
        inbox.stop()


def _guest_tests() -> list:
    return [read_test(p) for d in ("c", "sh") for p in discover(REPO / "guest-tests" / d)]


def test_explain_says_what_a_week_would_cost(week: PublicInbox) -> None:
    scratch_before = set(Path(tempfile.gettempdir()).glob("kharness-explain-*"))
    mails = read_mails(week.url)
    assert set(Path(tempfile.gettempdir()).glob("kharness-explain-*")) == scratch_before
    e = explain(mails, catalog(_guest_tests(), []), parse_since("7d"), source=week.url)
    by_title = {(s.title, s.key.version): s for s in e.series}
    assert len(e.series) == 5, sorted(by_title)  # the ten-day-old series is outside
    assert not any("sound" in t for t, _v in by_title)
    (tested,) = e.would_test
    assert (tested.title, tested.key.version) == ("mm/userfaultfd: fix UFFDIO_MOVE", 2)
    assert set(tested.relevance.tests) == UFFD_TESTS | {"thp_sysfs"}
    assert tested.relevance.touched == ("mm/userfaultfd.c", "include/linux/userfaultfd_k.h")
    v1 = by_title[("mm/userfaultfd: fix UFFDIO_MOVE", 1)]
    assert v1.superseded_by == tested.key and not v1.would_test
    assert by_title[("net: tidy dev", 1)].relevance.touched == ("net/core/dev.c",)
    assert not by_title[("net: tidy dev", 1)].relevance.relevant
    assert e.test_runs == 4

    text = render(e)
    print(text)  # the operator's view, for -s
    assert "[would test] v2 mm/userfaultfd: fix UFFDIO_MOVE" in text
    both = "touches mm/userfaultfd.c, include/linux/userfaultfd_k.h"
    assert f"uffd_move_swap_pmd ({both})" in text
    assert f"uffd_wp_punch_faultaround ({both})" in text
    assert "tests: none; v2 replaces it" in text
    assert "uffd_api_unknown_feature (touches include/linux/userfaultfd_k.h)" in text
    assert "thp_sysfs (always run)" in text
    assert "[superseded by v2] v1 mm/userfaultfd: fix UFFDIO_MOVE" in text
    assert "[not relevant] v1 drm: fix a leak" in text
    assert "touches: fs/ext4/inode.c, Documentation/filesystems/ext4.rst" in text
    assert "\x1b" not in text and "inode \\x1b[2Jtweaks" in text
    assert "5 series seen, 1 would be tested, 4 test runs (1 kernel)" in text

    longer = explain(mails, catalog(_guest_tests(), []), parse_since("2w"))
    assert len(longer.series) == 6 and len(longer.would_test) == 1
    every = explain(mails, catalog(_guest_tests(), []), parse_since("7d"), test_all=True)
    assert len(every.would_test) == 4  # all but the superseded v1


def test_the_command_line_explains_and_writes_nothing(week: PublicInbox, tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    argv = [sys.executable, "-m", "harness", "watch", "--explain", "--since", "7d"]
    argv += ["--inbox", week.url, "--results-dir", str(work / "results")]
    proc = subprocess.run(
        argv,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "5 series seen, 1 would be tested, 4 test runs" in proc.stdout
    assert list(work.iterdir()) == []  # no results, no database, no mirror
    wrong = [*argv[:6], "a week", *argv[7:]]
    bad = subprocess.run(
        wrong,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert bad.returncode != 0 and "--since 'a week': give a positive span" in bad.stderr
