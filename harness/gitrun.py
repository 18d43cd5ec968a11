"""Running git: the one command line, identity and error every caller uses.

The harness runs git on trees it does not fully trust: worktrees that
patches from a mailing list were applied to, a public-inbox's epochs, the
user's own checkout.  Every call goes through :func:`run_git` (or
:func:`git_command` for the one streamed command, ``git bisect run``), so
each one gets the same three things:

* **No code of the tree's choosing.**  ``core.hooksPath=/dev/null``: no
  hook runs (``git am`` would run ``applypatch-msg``/``pre-applypatch``/
  ``post-applypatch``, ``git commit`` ``pre-commit``/``commit-msg``/
  ``post-commit``, ``git worktree add`` and ``git checkout``
  ``post-checkout``): with a patch's message and files as their input,
  and the harness's result depending on whatever they do.
  ``core.fsmonitor=false``: ``git status`` and ``git add`` would otherwise
  run the command that config names.  ``commit.gpgSign=false``: a snapshot
  or a series commit would run ``gpg.program``, and wait on a pinentry.
  ``GIT_TERMINAL_PROMPT=0``: a fetch that needs credentials fails at once
  instead of waiting on a terminal nobody watches (the bot).  Filter
  drivers (``.gitattributes`` naming ``filter.X``) need config a patch
  cannot write: git and :mod:`harness.kernels.diff_files` both refuse a
  path inside ``.git``, and an untrusted build sees the source read-only.
* **One identity** for the commits the harness makes (a bare diff of a
  series, the snapshot of a dirty tree): :data:`IDENTITY`, so they never
  depend on, or fail for the lack of, the user's ``user.name``.
* **One error**, :class:`GitFailed`: the command, the tree, and git's own
  words (bounded and escaped: they quote a stranger's subjects and paths).
  A timeout is one too; git not installed is :class:`ToolMissing`.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.display.textsafe import printable
from harness.errors import InfraError, ToolMissing
from harness.machine.process import terminate

#: seconds a git command may take unless its caller says otherwise
TIMEOUT = 600
#: git's complaint is cut to its last lines in a GitFailed
_SAID_LINES = 20
_SAID_CHARS = 4000
#: ``-c`` settings on every command: see the module docstring for why
SAFE_CONFIG = ("core.hooksPath=/dev/null", "core.fsmonitor=false", "commit.gpgSign=false")


@dataclass(frozen=True)
class Identity:
    """Who the commits the harness makes are by."""

    name: str
    email: str

    def env(self) -> dict[str, str]:
        """The author and committer variables git reads."""
        return {
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": self.email,
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": self.email,
        }


IDENTITY = Identity("kharness", "kharness@localhost")


class GitFailed(InfraError):
    """A git command failed or timed out; the message names it, the tree and git's words."""

    def __init__(
        self, args: tuple[str, ...], repo: Path | None, returncode: int | None, said: str
    ) -> None:
        self.command = args
        self.repo = repo
        self.returncode = returncode
        self.said = _bounded(said)
        where = f" in {repo}" if repo is not None else ""
        what = printable(" ".join(args), newlines=False)
        why = self.said or (f"exit status {returncode}" if returncode is not None else "")
        super().__init__(f"git {what}{where} failed: {why}")


def _bounded(text: str) -> str:
    lines = printable(text.strip()).splitlines()[-_SAID_LINES:]
    said = "\n".join(lines)
    return said if len(said) <= _SAID_CHARS else "..." + said[-_SAID_CHARS:]


def git_command(repo: Path | None, *args: str, config: tuple[str, ...] = ()) -> list[str]:
    """The argv of ``git args`` in ``repo`` (None: no ``-C``), safe settings, then ``config``."""
    settings = [part for item in (*SAFE_CONFIG, *config) for part in ("-c", item)]
    where = ["-C", str(repo)] if repo is not None else []
    return ["git", *settings, *where, *args]


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment git runs in: this process's, the identity, no prompt, and ``extra``."""
    return {**os.environ, **IDENTITY.env(), "GIT_TERMINAL_PROMPT": "0", **(extra or {})}


def run_git(
    repo: Path | None,
    *args: str,
    check: bool = True,
    timeout: float = TIMEOUT,
    env: dict[str, str] | None = None,
    config: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Run git in ``repo``; :class:`GitFailed` when it fails and ``check``, or when it times out.

    ``env`` adds variables (a temporary index, fixed dates); ``config`` adds
    ``-c`` settings (a fetch's speed limits).  Output is text; bytes that
    are not UTF-8 (a stranger's file name) are replaced, never raised on.
    """
    done = _run(repo, args, None, timeout, env, config)
    proc = subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )
    if check and proc.returncode != 0:
        raise GitFailed(args, repo, proc.returncode, proc.stderr or proc.stdout)
    return proc


def run_git_bytes(
    repo: Path, *args: str, data: bytes, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[bytes]:
    """Run git in ``repo`` with ``data`` on its stdin and bytes out (``cat-file --batch``).

    Checked: :class:`GitFailed` when it fails or times out.
    """
    done = _run(repo, args, data, timeout, None, ())
    if done.returncode != 0:
        raise GitFailed(args, repo, done.returncode, done.stderr.decode(errors="replace"))
    return done


def _run(
    repo: Path | None,
    args: tuple[str, ...],
    data: bytes | None,
    timeout: float,
    env: dict[str, str] | None,
    config: tuple[str, ...],
) -> subprocess.CompletedProcess[bytes]:
    """Run git in a process group of its own: a timeout or an interrupt stops all of it.

    git starts helpers (``git-remote-https`` for a fetch, ``sh`` for an
    alias); killing git alone would leave them running.
    """
    argv = git_command(repo, *args, config=config)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=git_env(env),
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ToolMissing("git", "git") from None
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        terminate(proc)
        proc.communicate()
        raise GitFailed(args, repo, None, f"it did not finish in {timeout:g}s") from None
    except BaseException:  # an interrupt: nothing of git's is left behind
        terminate(proc)
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
