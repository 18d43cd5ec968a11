"""The one git runner: no hook or config-named command runs, one identity, one error."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from harness.gitrun import IDENTITY, GitFailed, git_command, run_git, run_git_bytes

PLAIN = ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.org"]


def _hostile_repo(root: Path) -> tuple[Path, Path]:
    """A repository whose hooks and fsmonitor each leave a file in ``marks`` when run."""
    repo, marks = root / "repo", root / "marks"
    marks.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in ("pre-commit", "commit-msg", "post-commit", "post-checkout"):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\ntouch {marks}/{name}\n")
        hook.chmod(0o755)
    monitor = root / "fsmonitor.sh"
    monitor.write_text(f"#!/bin/sh\ntouch {marks}/fsmonitor\nexit 1\n")
    monitor.chmod(0o755)
    subprocess.run(["git", "-C", str(repo), "config", "core.fsmonitor", str(monitor)], check=True)
    (repo / "a").write_text("a\n")
    return repo, marks


def test_no_hook_and_no_fsmonitor_runs_through_the_runner(tmp_path: Path) -> None:
    repo, marks = _hostile_repo(tmp_path)
    run_git(repo, "add", "a")
    run_git(repo, "status", "--porcelain")
    run_git(repo, "commit", "-q", "-m", "one")
    run_git(repo, "checkout", "-q", "-b", "other")
    assert sorted(p.name for p in marks.iterdir()) == []
    # the same repository through plain git does run them: the test above can fail
    (repo / "b").write_text("b\n")
    subprocess.run([*PLAIN, "-C", str(repo), "add", "b"], check=True)
    subprocess.run([*PLAIN, "-C", str(repo), "commit", "-q", "-m", "two"], check=True)
    assert {"fsmonitor", "pre-commit", "post-commit"} <= {p.name for p in marks.iterdir()}


def test_commits_are_made_as_the_one_identity(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a").write_text("a\n")
    run_git(repo, "add", "a")
    run_git(repo, "commit", "-q", "-m", "one", env={"HOME": str(tmp_path)})
    who = run_git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>").stdout.strip()
    assert who == f"{IDENTITY.name} <{IDENTITY.email}>|{IDENTITY.name} <{IDENTITY.email}>"


def test_a_failure_names_the_command_the_tree_and_gits_words(tmp_path: Path) -> None:
    with pytest.raises(GitFailed) as caught:
        run_git(tmp_path, "rev-parse", "--verify", "no-such-rev\x1b[2J")
    text = str(caught.value)
    assert text.startswith(f"git rev-parse --verify no-such-rev\\x1b[2J in {tmp_path} failed: ")
    assert "not a git repository" in text
    assert "\x1b" not in text
    assert caught.value.returncode == 128
    unchecked = run_git(tmp_path, "rev-parse", "HEAD", check=False)
    assert unchecked.returncode == 128 and "not a git repository" in unchecked.stderr


def test_gits_words_are_bounded(tmp_path: Path) -> None:
    said = "\n".join(f"line {n} " + "x" * 300 for n in range(100))
    error = GitFailed(("am",), tmp_path, 1, said)
    assert len(str(error)) < 5000
    assert "line 99" in str(error) and "line 0 " not in str(error)


def test_a_timeout_stops_git_and_what_it_started(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    alias = f"alias.slow=!echo $$ > {pidfile}; exec sleep 30"
    started = time.monotonic()
    with pytest.raises(GitFailed, match=r"git slow in .* failed: it did not finish in 0\.5s"):
        run_git(tmp_path, "slow", timeout=0.5, config=(alias,))
    assert time.monotonic() - started < 10
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_bytes_in_and_out(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    blob = run_git_bytes(repo, "hash-object", "-w", "--stdin", data=b"\xff\x00raw\n")
    oid = blob.stdout.decode().strip()
    shown = run_git_bytes(repo, "cat-file", "--batch", data=f"{oid}\n".encode())
    assert shown.stdout.endswith(b"\xff\x00raw\n\n")
    with pytest.raises(GitFailed, match="hash-object"):
        run_git_bytes(tmp_path / "nothing", "hash-object", "--stdin", data=b"x")


def test_the_command_line_puts_the_safe_settings_first(tmp_path: Path) -> None:
    argv = git_command(tmp_path, "status", config=("http.lowSpeedTime=30",))
    assert argv[:2] == ["git", "-c"]
    settings = argv[1 : argv.index("-C")]
    assert "core.hooksPath=/dev/null" in settings and "core.fsmonitor=false" in settings
    assert settings[-1] == "http.lowSpeedTime=30"
    assert argv[-3:] == ["-C", str(tmp_path), "status"]
