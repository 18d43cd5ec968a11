"""From what a user names (a Message-ID, a lore-style URL, an mbox, a maildir) to a series on disk.

``kharness series --series '<id@host>'`` and the watch bot both come here.
A series on a list is fetched with b4, exactly as a maintainer would: ``b4
mbox`` brings the whole thread from the public-inbox (the messages as they
were sent, which the reply needs for its threading and its Cc), then ``b4
am`` on that local copy picks the newest revision, puts the patches in order
and writes them as one mbox.  b4 is asked to look for newer revisions posted
in another thread (``-c``); an inbox without search just answers no.

A local mbox or maildir goes through the same ``b4 am`` (a maildir is first
written out as an mbox), so every form ends as a :class:`Fetched`: the
patches' mbox, the thread, the message a reply answers and the cover
letter's ``base-commit:``.
"""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SeriesError, ToolMissing
from harness.kernels.patches import split_mbox
from harness.mail.grammar import missing_places
from harness.mail.message import NOT_A_MSGID, Mail, parse, valid_message_id

# Where a bare Message-ID is looked up when neither --inbox nor a URL says otherwise.
DEFAULT_INBOX = "https://lore.kernel.org/all"
INBOX_ENV = "KHARNESS_INBOX"
_B4_TIMEOUT = 600
_URL = re.compile(r"^(https?://[^/]+(?:/[^/]+)*?)/([^/]+@[^/]+?)(?:/.*)?$")


@dataclass(frozen=True)
class SeriesRef:
    """A series as the user named it: a message on an inbox, or a local file."""

    message_id: str | None = None
    inbox: str | None = None
    path: Path | None = None

    def describe(self) -> str:
        """'<id@host> on https://lore.kernel.org/all' or the path."""
        if self.path is not None:
            return str(self.path)
        return f"<{self.message_id}> on {self.inbox}"


@dataclass(frozen=True)
class Fetched:
    """A series fetched and put in order: what ``kharness series`` tests and replies to."""

    mbox: Path  # the patches of the chosen revision, in order
    thread: tuple[Mail, ...]  # every message of the thread, as sent
    anchor: Mail | None  # the cover letter, else the first patch: what a reply answers
    version: int
    base_commit: str | None
    link: str | None  # the thread's address on the inbox
    b4_log: str  # b4's own words, kept with the evidence
    missing: tuple[int, ...] = ()  # places of the series no patch in the mbox holds

    @property
    def subject(self) -> str:
        """The series' subject as the list saw it."""
        return self.anchor.subject if self.anchor else self.mbox.name


def parse_ref(text: str, inbox: str | None = None) -> SeriesRef:
    """What ``--series TEXT`` names; SeriesError with the accepted forms if nothing.

    Decided by syntax, so a Message-ID is never read as a host path: ``<...>``
    (what the bot, b4-check and every reply write) and an inbox URL are always a
    message, whose id must be a valid msg-id; only text without angle brackets,
    as an operator types it, may name a file, and a valid msg-id otherwise."""
    stripped = text.strip()
    bracketed = stripped.removeprefix("id:").strip()
    if bracketed.startswith("<") and bracketed.endswith(">"):
        return _message_ref(bracketed[1:-1], text, inbox)
    m = _URL.match(stripped)
    if m and "://" in stripped:
        return _message_ref(urllib.parse.unquote(m.group(2)), text, m.group(1).rstrip("/"))
    path = _existing(text)
    if path is not None:
        return SeriesRef(path=path, inbox=inbox)
    if "@" in bracketed and "/" not in bracketed:
        return _message_ref(bracketed, text, inbox)
    raise SeriesError(
        f"--series {text!r}: not a file, a Message-ID or an inbox URL; give a path "
        "(mbox, maildir, .patch, directory), '<id@host>', or "
        "'https://lore.kernel.org/LIST/ID@HOST/'"
    )


def _existing(text: str) -> Path | None:
    """The file or directory ``text`` names (``~`` expanded), or None."""
    try:
        path = Path(text).expanduser()
        return path.resolve() if path.exists() else None
    except (OSError, ValueError, RuntimeError):  # a NUL byte, ~nosuchuser, a loop
        return None


def _message_ref(message_id: str, text: str, inbox: str | None) -> SeriesRef:
    """A message on an inbox; SeriesError naming the id if it is not a valid msg-id."""
    if not valid_message_id(message_id):
        raise SeriesError(f"--series {text[:300]!r}: the Message-ID {NOT_A_MSGID}")
    chosen = inbox or os.environ.get(INBOX_ENV) or DEFAULT_INBOX
    return SeriesRef(message_id, chosen.rstrip("/"))


def fetch(ref: SeriesRef, workdir: Path, log: Callable[[str], None]) -> Fetched:
    """Bring the series into ``workdir`` (thread.mbx, series.mbx, series.cover, b4.log)."""
    workdir.mkdir(parents=True, exist_ok=True)
    b4 = shutil.which("b4") or _venv_b4()
    if b4 is None:
        raise ToolMissing("b4", "b4 (pip install b4; make setup installs it)")
    if ref.path is not None:
        thread = _local_mbox(ref.path, workdir)
        am = ["am", "-C", "-n", "series", "-m", str(thread), "-o", str(workdir)]
        words = _run_b4(b4, ref.inbox, am, workdir)
    else:
        assert ref.message_id and ref.inbox
        log(f"fetching <{ref.message_id}> from {ref.inbox} with b4")
        thread = workdir / "thread.mbx"
        words = _run_b4(
            b4,
            ref.inbox,
            ["mbox", "-C", "-o", str(workdir), "-n", thread.name, ref.message_id],
            workdir,
        )
        words += _run_b4(
            b4,
            ref.inbox,
            [
                "am",
                "-C",
                "-c",
                "-n",
                "series",
                "-m",
                str(thread),
                "-o",
                str(workdir),
                ref.message_id,
            ],
            workdir,
        )
    (workdir / "b4.log").write_text(words)
    return _read(workdir, thread, words, ref)


def _venv_b4() -> str | None:
    """b4 beside the interpreter (a venv's bin/) when the venv is not on PATH."""
    import sys

    candidate = Path(sys.executable).with_name("b4")
    return str(candidate) if candidate.is_file() else None


def _run_b4(
    b4: str,
    inbox: str | None,
    args: list[str],
    workdir: Path,
) -> str:
    """Run b4 with the inbox as its lookup host; SeriesError with b4's words when it fails."""
    config: list[str] = []
    if inbox:
        config = ["-c", f"b4.midmask={inbox}/%s", "-c", f"b4.linkmask={inbox}/%s"]
    env = {**os.environ, "XDG_CACHE_HOME": str(workdir / ".b4-cache")}
    try:
        proc = subprocess.run(
            [b4, *config, *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_B4_TIMEOUT,
            cwd=workdir,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SeriesError(
            f"b4 {args[0]} did not finish in {_B4_TIMEOUT}s (inbox {inbox}); "
            "check that the inbox answers, or give the series as an mbox file"
        ) from exc
    words = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        last = _last_line(words)
        where = f" from {inbox}" if inbox else ""
        (workdir / "b4.log").write_text(words + "\n")
        raise SeriesError(
            f"b4 could not fetch the series{where}: {last}; check the Message-ID and "
            f"the inbox (--inbox URL), or give the series as an mbox file (b4's output: "
            f"{workdir / 'b4.log'})"
        )
    return words + "\n"


def _last_line(words: str) -> str:
    lines = [line for line in words.splitlines() if line.strip()]
    chosen = [line for line in lines if "Traceback" not in line and not line.startswith(" ")]
    return (chosen or lines or ["(no output)"])[-1].strip()


def _local_mbox(path: Path, workdir: Path) -> Path:
    """An mbox of ``path``: itself, or a maildir's messages written out in date order."""
    if path.is_file():
        return path
    if (path / "cur").is_dir() or (path / "new").is_dir():
        box = mailbox.Maildir(path, factory=None, create=False)
        out = workdir / "thread.mbx"
        with out.open("wb") as fh:
            for key in sorted(box.keys()):
                raw = box.get_bytes(key)
                fh.write(b"From kharness@localhost Thu Jan  1 00:00:00 1970\n")
                fh.write(re.sub(rb"(?m)^(>*From )", rb">\1", raw).rstrip(b"\n") + b"\n\n")
        return out
    raise SeriesError(
        f"--series {path}: a directory that is not a maildir (no cur/ or new/); "
        "for a directory of .patch files give it without a Message-ID lookup"
    )


def _read(workdir: Path, thread_file: Path, words: str, ref: SeriesRef) -> Fetched:
    mbox = workdir / "series.mbx"
    if not mbox.is_file():
        raise SeriesError(
            f"b4 found no patches in {ref.describe()}: {_last_line(words)} "
            f"(b4's output: {workdir / 'b4.log'})"
        )
    thread = tuple(parse(m.encode()) for m in split_mbox(thread_file.read_text(errors="replace")))
    patches = tuple(parse(m.encode()) for m in split_mbox(mbox.read_text(errors="replace")))
    version = max((p.tag.version for p in patches), default=1)
    chosen = [m for m in thread if m.tag.version == version and not m.is_reply and not m.refused]
    cover = next((m for m in chosen if m.is_cover), None)
    firsts = sorted((m for m in chosen if m.is_patch), key=lambda m: m.tag.number or 0)
    anchor = cover or (firsts[0] if firsts else None)
    cover_file = workdir / "series.cover"
    base = None
    if cover_file.is_file():
        base = parse(cover_file.read_bytes()).base_commit
    base = base or (cover.base_commit if cover else None)
    base = base or next((p.base_commit for p in reversed(patches) if p.base_commit), None)
    link = f"{ref.inbox}/{anchor.message_id}/" if ref.inbox and anchor else None
    total = max((p.tag.total or 0 for p in patches), default=0)
    missing = missing_places(total, (p.tag.number for p in patches))
    return Fetched(mbox, thread, anchor, version, base, link, words, missing)
