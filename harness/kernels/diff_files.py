"""Which files a diff names, read only from its file headers, and whether they stay in the tree.

A posted patch is a stranger's text.  The names it gives decide what the
patch program writes and what a plain tree's reset rewrites afterwards, so
they are read the way ``patch`` and ``git apply`` read them, not by a regex
over the whole text: a ``diff --git a/X b/Y`` line with its extended headers
(``rename from``/``to``, ``copy from``/``to``, ``new file mode``, ``deleted
file mode``), and a ``---``/``+++`` pair only where it opens a file's hunks.
Each hunk's body is skipped by the line counts of its ``@@ -a,b +c,d @@``
line, so a hunk line that reads ``+++ b/../../etc/x`` is content, as it is
to ``patch``.  Both sides of a rename or copy are kept: a rename without a
hunk still moves a file, and the reset must move it back.

:func:`path_problem` and :func:`tree_problem` say why a name may not be
written (absolute, ``..``, empty, NUL, inside ``.git``, through a symbolic
link of the tree).  Nothing here raises: any text gives a result.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_GIT_HEADER = re.compile(
    r"^(?:old mode |new mode |deleted file mode |new file mode |similarity index |"
    r"dissimilarity index |index |rename from |rename to |copy from |copy to |"
    r"Binary files |GIT binary patch)"
)
_SYMLINK_MODE = re.compile(r"\b120000\b")
_C_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f"}
_C_ESCAPES.update({"r": "\r", "v": "\v"})
#: far beyond any hunk: a count above it is a lie, and the hunk ends at the next header
_MAX_COUNT = 10_000_000


@dataclass(frozen=True)
class FileChange:
    """One file a diff changes: its path before and after (tree-relative, -p1 applied)."""

    old: str | None  # None: the file is created
    new: str | None  # None: the file is deleted
    symlink: bool = False  # its header gives mode 120000: the change is to a symbolic link
    also: tuple[str, ...] = ()  # other names its headers gave (diff --git beside ---/+++)

    @property
    def paths(self) -> tuple[str, ...]:
        """Every name its headers give, each once: a tool may act on any of them."""
        return tuple(dict.fromkeys(p for p in (self.old, self.new, *self.also) if p is not None))


@dataclass
class _Block:
    """The file being read: names from its headers, refined as more headers come."""

    old: str | None
    new: str | None
    git: bool
    symlink: bool = False
    also: list[str] = field(default_factory=list)


def changed_files(text: str) -> tuple[FileChange, ...]:
    """Every file the diffs in ``text`` change, from their headers only; never raises."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    changes: list[FileChange] = []
    block: _Block | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            _close(block, changes)
            old, new = _git_names(line[len("diff --git ") :])
            block = _Block(old, new, git=True)
            i += 1
            while i < len(lines) and _GIT_HEADER.match(lines[i]):
                _extended(block, lines[i])
                i += 1
            continue
        if (
            line.startswith("--- ")
            and i + 2 < len(lines)
            and lines[i + 1].startswith("+++ ")
            and _HUNK.match(lines[i + 2])
        ):
            old, new = _header_name(line[4:]), _header_name(lines[i + 1][4:])
            if block is not None and block.git:  # the pair of a diff --git block
                block.also += [n for n in (block.old, block.new) if n is not None]
                block.old, block.new = old, new
                block.git = False  # its hunks follow; a later pair is another file
            else:
                _close(block, changes)
                block = _Block(old, new, git=False)
            i += 2
            continue
        m = _HUNK.match(line)
        if m and block is not None:
            i = _skip_hunk(lines, i + 1, _count(m.group(2)), _count(m.group(4)))
            continue
        i += 1
    _close(block, changes)
    return tuple(changes)


def _close(block: _Block | None, changes: list[FileChange]) -> None:
    if block is not None and (block.old is not None or block.new is not None or block.also):
        also = tuple(n for n in dict.fromkeys(block.also) if n not in (block.old, block.new))
        changes.append(FileChange(block.old, block.new, block.symlink, also))


def _extended(block: _Block, line: str) -> None:
    """One extended header line of a ``diff --git`` block."""
    if _SYMLINK_MODE.search(line) and line.startswith(("old mode", "new ", "deleted", "index")):
        block.symlink = True
    for prefix, side in (
        ("rename from ", "old"),
        ("copy from ", "old"),
        ("rename to ", "new"),
        ("copy to ", "new"),
    ):
        if line.startswith(prefix):
            setattr(block, side, _unquote(line[len(prefix) :]))
    if line.startswith("new file mode"):
        block.old = None
    elif line.startswith("deleted file mode"):
        block.new = None


def _count(text: str | None) -> int:
    if text is None:
        return 1
    return int(text) if len(text) < 8 else _MAX_COUNT  # int() of 5,000 digits raises


def _skip_hunk(lines: list[str], i: int, old: int, new: int) -> int:
    """The index after a hunk body of ``old`` and ``new`` lines, read as ``patch`` does."""
    while i < len(lines) and (old > 0 or new > 0):
        line = lines[i]
        first = line[:1]
        if first in (" ", ""):
            old, new = old - 1, new - 1
        elif first == "-":
            old -= 1
        elif first == "+":
            new -= 1
        elif first != "\\":  # anything else ends a short hunk; patch calls it malformed
            return i
        i += 1
    while i < len(lines) and lines[i].startswith("\\"):  # "\ No newline at end of file"
        i += 1
    return i


def _strip(name: str) -> str | None:
    """A header's name with -p1 applied; None for /dev/null."""
    if name == "/dev/null":
        return None
    return name.split("/", 1)[1] if "/" in name else name


def _header_name(field: str) -> str | None:
    """The name of a ``---``/``+++`` line: up to a tab (a timestamp follows), unquoted."""
    name = field.split("\t", 1)[0].rstrip(" ") if not field.startswith('"') else field
    return _strip(_unquote(name))


def _git_names(rest: str) -> tuple[str | None, str | None]:
    """``a/X b/Y`` of a ``diff --git`` line, with -p1 applied (quoted names understood)."""
    if rest.startswith('"'):
        old, tail = _quoted(rest)
        return _strip(old), _strip(_unquote(tail.strip()))
    if rest.endswith('"') and ' "' in rest:
        head, _sep, quoted = rest.rpartition(' "')
        return _strip(head), _strip(_unquote('"' + quoted))
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half] == " " and rest[2:half] == rest[half + 3 :]:
        return _strip(rest[:half]), _strip(rest[half + 1 :])  # a/P b/P: the usual case
    head, sep, tail = rest.rpartition(" b/")
    return (_strip(head), _strip("b/" + tail)) if sep else (_strip(rest), _strip(rest))


def _unquote(name: str) -> str:
    """Git's C-style quoting ("a/t\\303\\251st") undone; other names as they are."""
    return _quoted(name)[0] if name.startswith('"') else name


def _quoted(text: str) -> tuple[str, str]:
    """The C-quoted string at the start of ``text`` and what follows it."""
    out = bytearray()
    i = 1
    while i < len(text) and text[i] != '"':
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if re.match(r"[0-7]{3}", text[i + 1 : i + 4]):
                out.append(int(text[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out += _C_ESCAPES.get(nxt, nxt).encode("utf-8", "surrogatepass")
            i += 2
            continue
        out += c.encode("utf-8", "surrogatepass")
        i += 1
    return out.decode("utf-8", "surrogateescape"), text[i + 1 :]


def path_problem(name: str) -> str | None:
    """Why ``name`` (tree-relative, from a diff) may not be written, or None when it may."""
    if not name:
        return "an empty file name"
    if "\0" in name:
        return "a file name with a NUL byte"
    if name.startswith("/"):
        return "an absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "a path outside the tree"
    if any(p.lower() == ".git" for p in parts):
        return "a path inside .git"
    return None


def tree_problem(tree: Path, name: str, symlink_ok: bool = False) -> str | None:
    """Why ``name`` may not be written in ``tree``: it goes through a symbolic link there.

    ``symlink_ok``: the last component may be a link (the diff changes a link
    itself, mode 120000).  Call after :func:`path_problem` passed.
    """
    parts = [p for p in name.split("/") if p not in ("", ".")]
    at = tree
    for n, part in enumerate(parts, 1):
        at = at / part
        try:
            st = os.lstat(at)
        except (OSError, ValueError):  # ValueError: a name the file system cannot hold
            return None  # not there (yet): patch creates it as a directory or file
        if stat.S_ISLNK(st.st_mode) and not (symlink_ok and n == len(parts)):
            return f"a path through the symbolic link {'/'.join(parts[:n])} in the tree"
    return None
