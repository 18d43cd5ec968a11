"""Who to tell about a bug in a file: the tree's own ``scripts/get_maintainer.pl``.

The kernel tree knows its maintainers (MAINTAINERS, read by its script); we
ask the script of the very tree the kernel was built from, offline: no git
history (``--no-git --no-git-fallback``: a plain or packaged tree has none),
roles kept (``maintainer:MEMORY MANAGEMENT``, ``open list``) so maintainers
can go on To: and reviewers and lists on Cc:.  The script is the tree's, and
a posted patch may have rewritten it: it runs in the build sandbox
(:mod:`harness.kernels.sandbox`, the tree read-only) whenever bwrap is there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from harness.kernels import sandbox
from harness.oops.frames import Maintainer

_SCRIPT = "scripts/get_maintainer.pl"
# "Andrew Morton <akpm@linux-foundation.org> (maintainer:MEMORY MANAGEMENT)"
_ENTRY = re.compile(r"^(?P<address>[^(]+?) \((?P<role>[^:()]+)(?::.*)?\)$")


def get_maintainers(
    tree: Path, file: str, note: Callable[[str], None] = lambda _: None
) -> tuple[Maintainer, ...]:
    """Maintainers and lists of ``file`` (relative to ``tree``); () with a note if unknown."""
    if not (tree / _SCRIPT).is_file() or not (tree / "MAINTAINERS").is_file():
        note(f"no {_SCRIPT} or MAINTAINERS in {tree}")
        return ()
    if shutil.which("perl") is None:
        note("perl is not installed: no maintainers")
        return ()
    argv = ["perl", _SCRIPT, "--no-git", "--no-git-fallback", "--rolestats", "-f", file]
    env = None
    if sandbox.available():
        argv = sandbox.Sandbox(readable=(tree,)).argv(argv, cwd=tree)
        env = sandbox.Sandbox.env({"LC_ALL": "C"})
    try:
        proc = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        note(f"get_maintainer.pl failed: {exc}")
        return ()
    if proc.returncode != 0:
        note(f"get_maintainer.pl -f {file}: {proc.stderr.strip()[:200]}")
        return ()
    return parse_maintainers(proc.stdout)


def parse_maintainers(text: str) -> tuple[Maintainer, ...]:
    """get_maintainer.pl's --rolestats lines as (address, role); lines without a role: 'other'."""
    found: list[Maintainer] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        m = _ENTRY.match(line)
        found.append(
            Maintainer(m.group("address"), m.group("role").strip())
            if m
            else Maintainer(line, "other")
        )
    return tuple(found)
