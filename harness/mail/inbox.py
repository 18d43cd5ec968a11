"""Reading a public-inbox as the bot does: its git epochs, mirrored, read past a cursor.

A public-inbox stores each list as git repositories ("epochs"), one commit
per message whose blob ``m`` is the raw mail (a deleted message leaves a
``d`` instead).  Mirroring them with ``git clone --mirror`` and ``git
fetch`` is how lore's own mirrors work: nothing is missed when a burst of
mail arrives between two polls (an Atom feed shows only the newest 25), a
poll costs one small fetch, and a cursor (the last commit read, per epoch)
says exactly where to go on.  Epochs are listed by the inbox's
``manifest.js.gz``, so a new epoch is picked up when the list rolls over.

A local v2 inbox directory (``inboxdir/git/N.git``) is read in place.

The caller advances the cursor only after it has stored what a poll
returned: killed between the two, the next poll returns the same messages
again, and the caller, keyed by Message-ID, stores them once.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InboxUnavailable
from harness.gitrun import GitFailed, run_git, run_git_bytes

_TIMEOUT = 120
_GIT_HTTP = ("http.lowSpeedLimit=1000", "http.lowSpeedTime=30")


@dataclass(frozen=True)
class Cursor:
    """Where the last poll stopped: the last commit read in each epoch."""

    epochs: tuple[tuple[int, str], ...] = ()

    def last(self, epoch: int) -> str | None:
        """The last commit read in ``epoch`` (None: never read)."""
        return dict(self.epochs).get(epoch)

    def to_json(self) -> str:
        """As the bot's database keeps it."""
        return json.dumps({str(n): c for n, c in self.epochs}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Cursor:
        """Back from :meth:`to_json`."""
        data = json.loads(text)
        return cls(tuple(sorted((int(n), str(c)) for n, c in data.items())))


@dataclass(frozen=True)
class Poll:
    """What arrived since the cursor, oldest first, and the cursor after it."""

    messages: tuple[bytes, ...]
    cursor: Cursor


@dataclass
class Backoff:
    """Delays between tries while the inbox is away: doubling, capped, reset on success."""

    first: float = 5.0
    cap: float = 600.0
    current: float = 0.0

    @classmethod
    def starting(cls, first: float) -> Backoff:
        """A back-off from ``first`` seconds (``--unreachable-retry``), capped at 10 min
        (or at ``first``, when that is longer)."""
        return cls(first=first, cap=max(cls.cap, first))

    def next(self) -> float:
        """The delay before the next try."""
        self.current = self.first if self.current == 0 else min(self.current * 2, self.cap)
        return self.current

    def reset(self) -> None:
        """The inbox answered: the next failure starts from ``first`` again."""
        self.current = 0.0


class InboxReader:
    """One inbox (an http(s) URL or a local v2 inbox directory) and its mirror."""

    def __init__(self, source: str, mirror: Path) -> None:
        self.source = source.rstrip("/")
        self.local = not re.match(r"https?://", self.source)
        self.mirror = mirror

    def poll(self, cursor: Cursor | None, from_start: bool = False) -> Poll:
        """Messages after ``cursor``; with no cursor, none (or all, ``from_start``)."""
        messages: list[bytes] = []
        positions = dict(cursor.epochs) if cursor else {}
        for epoch in self._epochs():
            repo = self._sync(epoch)
            head = self._git(repo, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
            if not head:
                continue  # an epoch with no message yet
            last = positions.get(epoch)
            if last is None and cursor is None and not from_start:
                positions[epoch] = head  # first start: from now on
                continue
            span = f"{last}..{head}" if last else head
            commits = self._git(repo, "rev-list", "--reverse", span).split()
            messages += self._messages(repo, commits)
            positions[epoch] = head
        return Poll(tuple(messages), Cursor(tuple(sorted(positions.items()))))

    # -- epochs
    def _epochs(self) -> list[int]:
        if self.local:
            found = sorted(
                int(m.group(1))
                for p in (Path(self.source) / "git").glob("*.git")
                if (m := re.fullmatch(r"(\d+)\.git", p.name))
            )
            if not found:
                raise InboxUnavailable(
                    f"{self.source}: no git/N.git epochs; give a public-inbox v2 inbox "
                    "directory or its URL"
                )
            return found
        url = f"{self.source}/manifest.js.gz"
        try:
            with urllib.request.urlopen(url, timeout=_TIMEOUT) as answer:
                raw = answer.read()
            data = json.loads(gzip.decompress(raw))
        except (urllib.error.URLError, OSError, EOFError, ValueError) as exc:
            raise InboxUnavailable(
                f"inbox {self.source}: could not read {url} ({exc}); is it a public-inbox "
                "URL (the one b4 uses, e.g. https://lore.kernel.org/LIST) and is it up?"
            ) from None
        if not isinstance(data, dict):
            raise InboxUnavailable(f"inbox {self.source}: {url} is not a public-inbox manifest")
        found = sorted(
            int(m.group(1)) for key in data if (m := re.search(r"/git/(\d+)\.git$", str(key)))
        )
        if not found:
            raise InboxUnavailable(f"inbox {self.source}: {url} lists no git epochs")
        return found

    def _sync(self, epoch: int) -> Path:
        """The epoch's repository, fetched up to date (a local inbox: itself)."""
        if self.local:
            return Path(self.source) / "git" / f"{epoch}.git"
        repo = self.mirror / f"{epoch}.git"
        url = f"{self.source}/git/{epoch}.git"
        if (repo / "HEAD").is_file():
            self._fetch(url, repo, "fetch", "-q", "--prune")
        else:
            self.mirror.mkdir(parents=True, exist_ok=True)
            scratch = self.mirror / f".{epoch}.git.partial"
            subprocess.run(["rm", "-rf", str(scratch)], check=False)
            self._fetch(url, None, "clone", "-q", "--mirror", url, str(scratch))
            scratch.rename(repo)
        return repo

    @staticmethod
    def _fetch(url: str, repo: Path | None, *args: str) -> None:
        try:
            run_git(repo, *args, timeout=_TIMEOUT, config=_GIT_HTTP)
        except GitFailed as exc:
            said = exc.said.splitlines()
            why = said[-1] if said else "no output"
            raise InboxUnavailable(
                f"inbox {url}: git could not fetch it ({why}); "
                "check the URL and that the server is up"
            ) from None

    # -- messages
    def _messages(self, repo: Path, commits: list[str]) -> list[bytes]:
        """The ``m`` blob of each commit, in order (a deletion's ``d`` is skipped)."""
        if not commits:
            return []
        wanted = "".join(f"{c}:m\n" for c in commits).encode()
        try:
            proc = run_git_bytes(repo, "cat-file", "--batch", data=wanted, timeout=_TIMEOUT)
        except GitFailed as exc:
            raise InboxUnavailable(f"inbox {repo}: {exc}") from None
        out, found, pos = proc.stdout, [], 0
        while pos < len(out):
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) == 3 and header[1] == b"blob":
                size = int(header[2])
                found.append(out[pos : pos + size])
                pos += size + 1  # the blob and its trailing newline
        return found

    @staticmethod
    def _git(repo: Path, *args: str, check: bool = True) -> str:
        try:
            return run_git(repo, *args, check=check, timeout=_TIMEOUT).stdout.strip()
        except GitFailed as exc:
            raise InboxUnavailable(f"inbox {repo}: {exc}") from None
