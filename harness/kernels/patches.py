"""Patch series: reading them (mbox, b4 output, a directory, a plain diff) and applying them.

A series arrives as what a developer or a mailing-list bot has at hand:

* an mbox (``git format-patch --stdout``, ``b4 am`` output): split into
  messages; a cover letter (``[PATCH 0/N]``, or a message without a diff)
  and replies (``Re:``, ``Fwd:``, ...) are set aside; numbered patches are put
  in order and a gap (``2/5`` missing) is an error rather than a silently
  partial series.  Subjects, replies, covers, diffs and gaps are read by
  :mod:`harness.mail.grammar`, the grammar the list bot reads mail with;
* a directory: its quilt ``series`` file if there is one, otherwise every
  ``*.patch``/``*.diff``/``*.mbox``/``*.mbx`` in name order;
* a single ``.patch`` file, with mail headers or as a bare diff.

Applying happens in a workspace, never in the user's tree: ``git am`` (mail)
or ``git apply`` plus a commit (bare diff) on git workspaces, ``patch -p1``
on plain ones, each checked with a dry run first so a patch that does not
apply leaves nothing half-applied.  The error names the patch's subject and
quotes the hunk that was rejected.

A patch is a stranger's text, so it may write only inside the tree: the
files it names come from its file headers alone (:mod:`harness.kernels.diff_files`),
and one that names an absolute path, a ``..``, an empty name or a path
through a symbolic link of the tree is refused before anything is applied
(:class:`PatchRefused`, a :class:`PatchFailed`).  ``patch`` is told the
diff is unified (``-u``: no ed scripts, no context diffs this module cannot
read), and its dry run must not name a file the headers did not.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.display.textsafe import printable
from harness.errors import InfraError, PatchFailed, PatchRefused, SeriesError, ToolMissing
from harness.gitrun import run_git
from harness.kernels.diff_files import FileChange, changed_files, path_problem, tree_problem
from harness.mail.grammar import (
    MAX_PATCHES,
    Role,
    diff_start,
    missing_places,
    parse_subject,
    role,
)

_FROM_LINE = re.compile(r"^From \S+", re.MULTILINE)
_HUNK_FAILED = re.compile(r"Hunk #(\d+) FAILED")
_CHECKING = re.compile(r"^checking file (.+?)(?: \((?:renamed|copied) from (.+)\))?$", re.M)
_PATCH_SUFFIXES = (".patch", ".diff", ".mbox", ".mbx", ".eml")


@dataclass(frozen=True)
class Patch:
    """One patch: its subject, position in the series and full text."""

    subject: str  # without the [PATCH n/m] prefix
    text: str  # the whole message (headers, log, diff) or the bare diff
    origin: str  # file (and message number) it came from
    number: int | None = None
    total: int | None = None
    is_mail: bool = False
    role: Role = Role.PATCH  # a mail's part in its series (harness.mail.grammar.role)

    @property
    def diff(self) -> str:
        """The diff part of the text (from the first diff header on)."""
        start = diff_start(self.text)
        return self.text[start:] if start is not None else ""

    @property
    def label(self) -> str:
        """How reports name it: '[2/3] mm: fix foo'."""
        place = f"[{self.number}/{self.total}] " if self.number and self.total else ""
        return f"{place}{self.subject}"

    @property
    def applied(self) -> str:
        """The text the patch program is given: the whole mail, or the bare diff."""
        return self.text if self.is_mail else self.diff

    def changes(self) -> tuple[FileChange, ...]:
        """The files the diff changes, read from its file headers, never from a hunk."""
        return changed_files(self.applied)

    def files(self) -> tuple[str, ...]:
        """Paths (relative to the tree top, -p1) the diff creates, changes, deletes or
        renames: both sides of a rename or copy.  Not checked: see :func:`refusal`."""
        return tuple(dict.fromkeys(p for c in self.changes() for p in c.paths))


@dataclass(frozen=True)
class Series:
    """The patches to apply, in order, and the cover letter if the mbox had one."""

    patches: tuple[Patch, ...]
    cover: Patch | None = None
    skipped: tuple[str, ...] = ()  # replies and other messages set aside, for the log


def read_series(path: Path, allow_missing: bool = False) -> Series:
    """Read a series from a file or a directory; SeriesError says what is wrong.

    ``allow_missing`` takes a numbered series with holes as it is (a list bot
    that waited long enough for the rest); otherwise a hole is an error,
    because testing 1/3 and 3/3 without 2/3 is rarely what a user meant.
    """
    series = _read(path)
    return Series(_ordered(list(series.patches), path, allow_missing), series.cover, series.skipped)


def _read(path: Path) -> Series:
    """The patches of ``path`` in file order, not yet checked for completeness."""
    if path.is_dir():
        files = _directory_files(path)
        if not files:
            raise SeriesError(
                f"{path}: no *.patch, *.diff or *.mbox files and no quilt "
                "'series' file; nothing to apply"
            )
        parts = [_read(f) for f in files]
        cover = next((p.cover for p in parts if p.cover), None)
        return Series(
            tuple(x for p in parts for x in p.patches),
            cover,
            tuple(x for p in parts for x in p.skipped),
        )
    if not path.is_file():
        raise SeriesError(
            f"series {path} does not exist; give an mbox, a .patch file or a directory of patches"
        )
    text = path.read_text(errors="replace")
    if _looks_like_mail(text):
        return _series_from_mbox(text, path)
    if diff_start(text) is not None and "\n@@ " in text:
        return Series((Patch(path.stem, text, str(path)),))
    raise SeriesError(
        f"{path} is neither an mbox nor a patch (no 'From ' line or mail "
        "headers, no diff); give 'git format-patch' or 'b4 am' output"
    )


def _directory_files(path: Path) -> list[Path]:
    quilt = path / "series"
    if quilt.is_file():
        names = [line.split("#", 1)[0].split() for line in quilt.read_text().splitlines()]
        files = [path / words[0] for words in names if words]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise SeriesError(f"{quilt} names missing files: {', '.join(missing)}")
        return files
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _PATCH_SUFFIXES)


def _looks_like_mail(text: str) -> bool:
    head = text.lstrip()[:2000]
    return bool(re.match(r"From \S+", head)) or bool(
        re.search(r"^Subject: ", head, re.MULTILINE) and re.search(r"^From: ", head, re.MULTILINE)
    )


def split_mbox(text: str) -> list[str]:
    """Split mbox text into messages at 'From ' separator lines (mboxo and mboxrd)."""
    starts = [
        m.start()
        for m in _FROM_LINE.finditer(text)
        if m.start() == 0 or text[m.start() - 1] == "\n"
    ]
    starts = [s for s in starts if _has_headers_after(text, s)]
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    bounds = [*starts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if text[a:b].strip()]


def _has_headers_after(text: str, start: int) -> bool:
    """A real separator is followed by header lines, not by prose that says 'From here'."""
    following = text[start : start + 4000].split("\n", 1)[-1]
    return bool(re.match(r"[A-Za-z-]+: ", following))


def _series_from_mbox(text: str, path: Path) -> Series:
    patches: list[Patch] = []
    cover: Patch | None = None
    skipped: list[str] = []
    for index, raw in enumerate(split_mbox(text), start=1):
        patch = _message_patch(raw, f"{path} message {index}")
        if patch.role is Role.REPLY:
            skipped.append(f"reply: {patch.subject}")
        elif patch.role is not Role.PATCH:
            if cover is not None:
                skipped.append(f"no diff: {patch.subject}")
            else:
                cover = patch
        else:
            patches.append(patch)
    if not patches:
        raise SeriesError(
            f"{path} holds {len(skipped) + (cover is not None)} message(s) but no patch with a diff"
        )
    return Series(tuple(patches), cover, tuple(skipped))


def _message_patch(raw: str, origin: str) -> Patch:
    body = re.sub(r"^>(>*From )", r"\1", raw, flags=re.MULTILINE)  # mboxrd un-escaping
    message = email.message_from_string(
        body.split("\n", 1)[1] if body.startswith("From ") else body, policy=email.policy.compat32
    )
    subject = " ".join(str(message.get("Subject", "")).split())
    tag, title = parse_subject(subject)
    if tag.problem is not None:
        raise SeriesError(f"{origin}: {printable(subject[:80])!r}: {tag.problem}")
    kind = role(subject, tag, diff_start(body) is not None)
    shown = subject if kind is Role.REPLY else title  # a reply is logged as it was sent
    return Patch(shown or "(no subject)", body, origin, tag.number, tag.total, True, kind)


def _ordered(patches: list[Patch], path: Path, allow_missing: bool = False) -> tuple[Patch, ...]:
    """Sort numbered patches and insist the numbering has no holes or duplicates."""
    if not all(p.number for p in patches):
        return tuple(patches)
    ordered = sorted(patches, key=lambda p: p.number or 0)
    numbers = [p.number for p in ordered]
    total = max(p.total or 0 for p in ordered)
    if total > MAX_PATCHES or max(numbers) > MAX_PATCHES:  # type: ignore[type-var]
        raise SeriesError(f"{path}: a series of {total} patches; at most {MAX_PATCHES} are tested")
    if len(set(numbers)) != len(numbers):
        raise SeriesError(
            f"{path}: several messages claim the same place in the series "
            f"({numbers}); is it two versions of the series in one mbox?"
        )
    missing = missing_places(total, numbers)
    if missing and not allow_missing:
        raise SeriesError(
            f"{path}: the series has {total} patches but "
            f"{', '.join(f'{n}/{total}' for n in missing)} is missing; "
            "fetch the whole thread (b4 am <message-id>), or test what is there "
            "with --allow-missing"
        )
    return tuple(ordered)


# -- applying -----------------------------------------------------------------------


def apply_patch(patch: Patch, tree: Path, git: bool, scratch: Path) -> None:
    """Apply one patch to ``tree`` or raise PatchFailed with the rejected hunk."""
    if not shutil.which("patch"):
        raise ToolMissing("patch", "patch")
    refused = refusal(patch, tree)
    if refused is not None:
        raise refused
    scratch.mkdir(parents=True, exist_ok=True)
    diff_file = scratch / "current.patch"
    diff_file.write_text(patch.applied)
    check = _run(["patch", "-p1", "-u", "--dry-run", "-f", "-i", str(diff_file)], tree)
    if check.returncode != 0:
        raise PatchFailed(
            f"patch {patch.label} does not apply",
            details=rejected_hunks(patch, check.stdout + check.stderr),
            log=str(diff_file),
        )
    stray = _unnamed(patch, check.stdout)
    if stray is not None:
        raise PatchRefused(
            f"patch {patch.label} would make the patch program write {_shown(stray)}, "
            "a file none of its file headers names; nothing was applied"
        )
    if git:
        _apply_git(patch, tree, diff_file)
    else:
        break_hardlinks(tree, patch.files())
        _must(
            _run(
                ["patch", "-p1", "-u", "-f", "-s", "--no-backup-if-mismatch", "-i", str(diff_file)],
                tree,
            ),
            f"patch -p1 < {patch.label}",
        )


def refusal(patch: Patch, tree: Path) -> PatchRefused | None:
    """Why ``patch`` may not be applied on ``tree`` (a path it names leaves it), or None.

    Checked against the tree as it is now, so a link an earlier patch of the
    series made counts too: call it right before applying.
    """
    for change in patch.changes():
        for name in change.paths:
            why = path_problem(name) or tree_problem(tree, name, change.symlink)
            if why is not None:
                return PatchRefused(
                    f"patch {patch.label} names {why} ({_shown(name)}); nothing was applied"
                )
    return None


def _shown(name: str) -> str:
    """A stranger's file name fit for a message: escaped, bounded."""
    text = printable(name, newlines=False)
    return text if len(text) <= 200 else f"{text[:200]}..."


def _unnamed(patch: Patch, dry_run: str) -> str | None:
    """A file the dry run of ``patch`` names that the diff's headers do not, if any."""
    named = set(patch.files())
    for m in _CHECKING.finditer(dry_run):
        for name in m.groups():
            if name is None:
                continue
            if len(name) > 1 and name[0] == name[-1] == "'":  # patch quotes odd names
                name = name[1:-1].replace("'\\''", "'")
            if name not in named:
                return name
    return None


def _apply_git(patch: Patch, tree: Path, diff_file: Path) -> None:
    if patch.is_mail:
        proc = run_git(tree, "am", "--keep-cr", str(diff_file), check=False, timeout=300)
        if proc.returncode != 0:
            run_git(tree, "am", "--abort", check=False, timeout=300)
            raise PatchFailed(
                f"git am of {patch.label} failed",
                details=(proc.stdout + proc.stderr).strip(),
                log=str(diff_file),
            )
        return
    run_git(tree, "apply", "--index", str(diff_file), timeout=300)
    run_git(tree, "commit", "-q", "--no-verify", "-m", patch.subject, timeout=300)


def break_hardlinks(tree: Path, files: tuple[str, ...]) -> None:
    """Give each file its own inode before it is changed: the original shares them."""
    for name in files:
        path = tree / name
        if path.is_file() and path.stat().st_nlink > 1:
            copy = path.with_name(f".{path.name}.kharness-copy")
            shutil.copy2(path, copy)
            os.replace(copy, path)


def rejected_hunks(patch: Patch, patch_output: str) -> str:
    """The hunks `patch --dry-run` rejected, quoted from the patch, with its complaint."""
    lines = [f"patch: {patch.label} ({patch.origin})", patch_output.strip()]
    current: str | None = None
    for line in patch_output.splitlines():
        m = re.match(r"(?:checking|patching) file (\S+)", line)
        if m:
            current = m.group(1)
        for number in _HUNK_FAILED.findall(line):
            if current is not None:
                hunk = hunk_text(patch.diff, current, int(number))
                if hunk:
                    lines += [f"rejected hunk #{number} of {current}:", hunk]
    return "\n".join(lines)


def hunk_text(diff: str, file: str, number: int) -> str | None:
    """The ``number``-th hunk (1-based) of ``file`` in ``diff``, header line included."""
    in_file, count, out = False, 0, []
    for line in diff.splitlines():
        if line.startswith("+++ "):
            in_file = line[4:].split("\t")[0].split("/", 1)[-1] == file
            continue
        if line.startswith(("diff --git ", "--- ")):
            if out:
                break
            in_file = in_file and line.startswith("--- ")
            continue
        if in_file and line.startswith("@@"):
            count += 1
            if out:
                break
        if in_file and count == number:
            out.append(line)
    return "\n".join(out) or None


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except FileNotFoundError:
        raise ToolMissing(argv[0], argv[0]) from None


def _must(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        raise InfraError(
            f"{what} failed after its dry run passed: {(proc.stderr or proc.stdout).strip()}"
        )


def first_misfit(
    patches: tuple[Patch, ...], tree: Path, scratch: Path
) -> tuple[int, PatchFailed] | None:
    """The first patch (1-based) of the series that does not apply on ``tree``, if any.

    Checked on a scratch copy of just the files the series touches, so a
    series that does not apply is known in a second, before any build, and
    the tree is not written.  The error names the patch and its rejected hunk;
    a patch naming a path outside the tree is a :class:`PatchRefused`, found
    before anything is copied.
    """
    for index, patch in enumerate(patches, 1):
        refused = refusal(patch, tree)
        if refused is not None:
            return index, refused
    if scratch.exists():
        shutil.rmtree(scratch)
    copy = scratch / "tree"
    copy.mkdir(parents=True)
    for name in {f for p in patches for f in p.files()}:
        original = tree / name  # refusal() passed: inside the tree, through no link
        if original.is_symlink():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(original), copy / name)
        elif original.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(original, copy / name)
    try:
        for index, patch in enumerate(patches, 1):
            try:
                apply_patch(patch, copy, False, scratch / "patches")
            except PatchFailed as exc:
                return index, exc
        return None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
