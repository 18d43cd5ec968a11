"""kselftests of the candidate tree: which tests a target has, its timeout, its KTAP subtests.

A kernel built from source may list kselftest targets (``selftests: [mincore,
mm]`` in kernels.yaml).  The pieces here are pure or read-only:

* :func:`list_tests` asks the target's own Makefile which tests it runs
  (lib.mk's ``emit_tests``: TEST_GEN_PROGS, TEST_CUSTOM_PROGS, TEST_PROGS),
  in a throwaway copy so the source tree is never written;
* :func:`settings_timeout` reads the target's ``settings`` file as the
  kselftest runner does (``timeout=N``; 45 s without one; 0 means none);
* :func:`subtests` turns a test's KTAP output into one record per subtest.

Building (against the tree's own headers, static) is
:mod:`harness.kernels.kselftest_build`; running is :mod:`harness.testkinds.kselftest_run`.
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.outcome import Outcome

#: the kselftest runner's timeout when a target has no settings file (kselftest/runner.sh)
DEFAULT_TIMEOUT = 45.0
#: ``timeout=0`` means "no limit" to the runner; the harness still bounds every wait
UNLIMITED_TIMEOUT = 3600.0
#: where a target's installed files go in the guest (writable under both backends)
GUEST_DIR = "/tmp/kselftest"
SELFTESTS = Path("tools/testing/selftests")
_TARGET = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*$")
_RESULT = re.compile(r"^(not ok|ok)\s+(\d+)\s*-?\s*(.*?)\s*(?:#\s*(SKIP|XFAIL|TODO)\b\s*(.*))?$")


def target_problem(target: object) -> str | None:
    """Why ``target`` cannot name a kselftest target, or None."""
    if not isinstance(target, str) or not _TARGET.match(target):
        return f"'{target}' is not a kselftest target name (a directory under {SELFTESTS})"
    return None


@dataclass(frozen=True)
class KselftestTest:
    """One test of a target, as the kselftest runner would start it (``./name`` in its dir)."""

    target: str
    name: str

    @property
    def record_name(self) -> str:
        """How summaries and kernels.yaml ``expect:`` name it: ``kselftest.<target>.<test>``."""
        return f"kselftest.{self.target}.{self.name}"

    @property
    def node_name(self) -> str:
        """The pytest item's name: ``kselftest/<target>/<test>`` (``-k`` matches each part)."""
        return f"kselftest/{self.target}/{self.name}"


def known_targets(selftests: Path) -> list[str]:
    """Directories under tools/testing/selftests that have a Makefile (one level)."""
    return sorted(p.parent.name for p in selftests.glob("*/Makefile"))


def unknown_target(target: str, selftests: Path, kernel: str) -> ConfigError:
    """The error for a target the tree does not have, with the closest names."""
    close = difflib.get_close_matches(target, known_targets(selftests), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ConfigError(
        f"kernel '{kernel}': selftests: '{target}' is not a kselftest target of its tree "
        f"(no {SELFTESTS}/{target}/Makefile){hint}; list directories of {SELFTESTS} "
        "such as mm, mincore or timers"
    )


def list_tests(tree: Path, target: str, kernel: str) -> tuple[str, ...]:
    """The tests ``target`` runs, from its Makefile; ``tree`` holds tools/ (never written).

    make runs in a hard-link copy of ``tools/`` (some Makefiles generate files
    when read, as mm's local_config.mk), so the user's tree stays untouched.
    """
    selftests = tree / SELFTESTS
    if not (selftests / target / "Makefile").is_file():
        raise unknown_target(target, selftests, kernel)
    with tempfile.TemporaryDirectory(prefix="kharness-emit-") as tmp:
        copy = Path(tmp) / "tools"
        proc = subprocess.run(["cp", "-al", str(tree / "tools"), str(copy)], capture_output=True)
        if proc.returncode != 0:
            shutil.copytree(tree / "tools", copy, symlinks=True)
        (Path(tmp) / "scripts").mkdir()
        if (tree / "scripts/subarch.include").is_file():
            shutil.copy(tree / "scripts/subarch.include", Path(tmp) / "scripts")
        argv = ["make", "-s", "--no-print-directory", "-C", str(Path(tmp) / SELFTESTS / target)]
        argv += [f"COLLECTION={target}", f"OUTPUT={tmp}/out", "emit_tests"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    names = [
        line.partition(":")[2].strip()
        for line in proc.stdout.splitlines()
        if line.startswith(f"{target}:")
    ]
    if proc.returncode != 0 or not names:
        raise ConfigError(
            f"kernel '{kernel}': selftests: '{target}' lists no tests "
            f"(make emit_tests exit {proc.returncode}: {proc.stderr.strip()[-300:]}); "
            "pick a target whose Makefile sets TEST_GEN_PROGS or TEST_PROGS"
        )
    return tuple(dict.fromkeys(names))


def settings_timeout(target_dir: Path) -> float:
    """The target's ``settings`` timeout as the kselftest runner reads it (45 s without)."""
    settings = target_dir / "settings"
    if not settings.is_file():
        return DEFAULT_TIMEOUT
    m = re.search(r"^timeout=(\d+)\s*$", settings.read_text(errors="replace"), re.MULTILINE)
    if not m:
        return DEFAULT_TIMEOUT
    return float(m.group(1)) or UNLIMITED_TIMEOUT


def interpreter(script: Path) -> str | None:
    """The program a script's ``#!`` line names (``bash`` for ``/usr/bin/env bash``)."""
    try:
        with script.open("rb") as f:
            first = f.readline(200).decode(errors="replace")
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    words = first[2:].split()
    if not words:
        return None
    if Path(words[0]).name == "env" and len(words) > 1:
        return words[1]
    return words[0]


@dataclass(frozen=True)
class Subtest:
    """One top-level KTAP result line of a kselftest test."""

    name: str
    outcome: Outcome  # PASS, FAIL or SKIP
    summary: str
    details: tuple[str, ...] = ()  # the diagnostics printed just before a failure


def subtests(stdout: str, stderr: str = "") -> list[Subtest]:
    """Every top-level ``ok``/``not ok`` line of ``stdout`` (nested KTAP is its parent's).

    A failure's details are the diagnostics just before it, then the
    ``stderr`` lines naming it: kselftest_harness writes its assertions there
    (``# mincore_selftest.c:260:check_file_mmap:Expected ra_pages (0) > 0``).
    """
    return [_with_stderr(sub, stderr) for sub in _results(stdout)]


def _with_stderr(sub: Subtest, stderr: str) -> Subtest:
    if sub.outcome is not Outcome.FAIL or not stderr:
        return sub
    short = re.escape(sub.name.rsplit(".", 1)[-1])
    named = re.compile(rf"^#.*(?:^|[\s:]){short}:")
    lines = tuple(line for line in stderr.splitlines() if named.search(line))
    return Subtest(sub.name, sub.outcome, sub.summary, sub.details + lines)


def _results(stdout: str) -> list[Subtest]:
    found: list[Subtest] = []
    recent: list[str] = []
    for raw in stdout.splitlines():
        line = raw.rstrip()
        if line.startswith("#"):
            recent = [*recent, line][-4:]
            continue
        m = _RESULT.match(line)
        if not m:
            continue
        ok, number, desc = m.group(1) == "ok", m.group(2), m.group(3) or f"test-{m.group(2)}"
        directive, reason = (m.group(4) or "").upper(), (m.group(5) or "").strip()
        if directive == "SKIP":
            found.append(Subtest(desc, Outcome.SKIP, reason or "skipped"))
        elif ok or directive in ("XFAIL", "TODO"):
            found.append(Subtest(desc, Outcome.PASS, "pass"))
        else:
            found.append(
                Subtest(desc, Outcome.FAIL, f"fail: not ok {number} {desc}", tuple(recent))
            )
        recent = []
    return found


def safe_name(text: str) -> str:
    """A subtest description as a record name and directory: ``global.basic_interface``."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_")[:80] or "unnamed"
