"""The build provider on a fake kbuild tree: workspaces, incremental rebuilds, failures."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from harness.commands.cli import main
from harness.config import KernelSpec, load_kernels
from harness.errors import BuildFailed, ConfigError
from harness.kernels.build import BuildSource
from harness.kernels.dirty import DirtyTree
from harness.kernels.patches import PatchFailed
from harness.kernels.srctree import NotAKernelTree, locate
from harness.outcome import Outcome
from harness.session import KernelGuest, RunContext
from tests.unit.fake_kbuild import format_patch, git, git_tree, make_tree

MEMORY = "int fault(void) { return 1; }"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))


def _patch(tmp_path: Path, name: str, new: str, old: str = MEMORY) -> Path:
    path = tmp_path / f"{name}.patch"
    path.write_text(format_patch("mm/memory.c", old, new, f"mm: {name}"))
    return path


def _kernels(tmp_path: Path, entries: str) -> list[KernelSpec]:
    path = tmp_path / "kernels.yaml"
    path.write_text("kernels:\n" + textwrap.indent(textwrap.dedent(entries), "  "))
    return load_kernels(path)


def _source(
    tmp_path: Path, tree: Path, series: list[Path] = (), fragments: str = "", dirty: str = "refuse"
) -> BuildSource:
    entry = f"""\
        - name: k
          build:
            source: {tree}
            dirty: {dirty}
            guest_config: false
            series: [{", ".join(str(s) for s in series)}]
            fragments: [{fragments}]
        """
    source = _kernels(tmp_path, entry)[0].source
    assert isinstance(source, BuildSource)
    return source


def _compiled(lines: list[str]) -> list[str]:
    return [line.split()[1] for line in lines if line.startswith("  CC ")]


def _resolve(source: BuildSource) -> tuple[object, list[str]]:
    lines: list[str] = []
    image = source.resolve(lines.append)
    logs = sorted(
        (Path(image.vmlinuz).parents[2] / "logs").glob("*.log"), key=lambda p: p.stat().st_mtime_ns
    )
    return image, logs[-1].read_text().splitlines()


def test_build_then_one_patch_rebuilds_only_the_patched_file(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux")
    image, log = _resolve(_source(tmp_path, tree))
    assert sorted(_compiled(log)) == ["kernel/fork.o", "mm/filemap.o", "mm/memory.o"]
    assert image.modules_dir is None and image.release == "6.12.0-fake"
    assert image.vmlinuz.read_bytes()[0x202:0x206] == b"HdrS"

    patched, log = _resolve(
        _source(tmp_path, tree, [_patch(tmp_path, "two", "int fault(void) { return 22; }")])
    )
    assert _compiled(log) == ["mm/memory.o"]
    assert b"return 22" in patched.vmlinuz.read_bytes()
    assert "1 patch(es) up to 'mm: two'" in patched.origin
    assert (tree / "mm/memory.c").read_text().strip() == MEMORY  # the user's tree untouched
    assert b"return 1" in image.vmlinuz.read_bytes()  # the first kernel is still itself


def test_next_kernel_gets_the_pristine_file_back(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux")
    _resolve(_source(tmp_path, tree, [_patch(tmp_path, "two", "int fault(void) { return 22; }")]))
    image, log = _resolve(
        _source(tmp_path, tree, [_patch(tmp_path, "three", "int fault(void) { return 33; }")])
    )
    assert _compiled(log) == ["mm/memory.o"]
    assert (
        b"return 33" in image.vmlinuz.read_bytes()
        and b"return 22" not in image.vmlinuz.read_bytes()
    )


def test_compiler_error_becomes_build_failed_with_the_error_and_the_log(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux", {"mm/bad.c": "int x;\n#error the fault path is broken\n"})
    with pytest.raises(BuildFailed) as info:
        _source(tmp_path, tree).resolve(lambda _line: None)
    assert "mm/bad.c:2:2: error: the fault path is broken" in info.value.details
    assert info.value.log and Path(info.value.log).is_file()
    assert f"full log: {info.value.log}" in str(info.value)


def test_build_failure_is_the_build_fail_outcome_of_the_kernel(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux")
    stale = _patch(
        tmp_path, "stale", "int fault(void) { return 5; }", old="int fault(void) { return 9; }"
    )
    spec = KernelSpec("k", _source(tmp_path, tree, [stale]))
    ctx = RunContext(tmp_path / "results", keys=None, compiled={}, log=lambda _l: None)  # type: ignore[arg-type]
    verdict = KernelGuest(spec, ctx, []).prepare()
    assert verdict is not None and verdict.outcome is Outcome.BUILD_FAIL
    assert "mm: stale does not apply" in verdict.summary
    assert "rejected hunk #1 of mm/memory.c" in verdict.details[0]


def test_a_patch_naming_an_outside_path_is_a_build_fail_that_says_refused(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux")
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    evil = tmp_path / "evil.patch"
    evil.write_text(format_patch("../victim", "keep me", "gone", "mm: evil"))
    spec = KernelSpec("k", _source(tmp_path, tree, [evil]))
    ctx = RunContext(tmp_path / "results", keys=None, compiled={}, log=lambda _l: None)  # type: ignore[arg-type]
    verdict = KernelGuest(spec, ctx, []).prepare()
    assert verdict is not None and verdict.outcome is Outcome.BUILD_FAIL
    assert "mm: evil names a path outside the tree (../victim); nothing was applied" in (
        verdict.summary
    )
    assert victim.read_text() == "keep me\n"


def test_a_rename_of_one_kernel_is_gone_for_the_next(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux")
    _resolve(_source(tmp_path, tree))
    rename = tmp_path / "rename.patch"
    rename.write_text(
        format_patch("mm/filemap.c", "x", "y", "mm: rename").replace(
            "diff --git a/mm/filemap.c b/mm/filemap.c\n--- a/mm/filemap.c\n+++ b/mm/filemap.c\n"
            "@@ -1 +1 @@\n-x\n+y\n",
            "diff --git a/mm/filemap.c b/mm/pages.c\nsimilarity index 100%\n"
            "rename from mm/filemap.c\nrename to mm/pages.c\n",
        )
    )
    _image, log = _resolve(_source(tmp_path, tree, [rename]))
    assert _compiled(log) == ["mm/pages.o"]
    _image, log = _resolve(_source(tmp_path, tree))  # the base again: pages.c gone
    assert _compiled(log) == ["mm/filemap.o"]


def test_patch_that_does_not_apply_raises_patch_failed(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux")
    stale = _patch(tmp_path, "stale", "x", old="int fault(void) { return 9; }")
    with pytest.raises(PatchFailed, match="mm: stale does not apply"):
        _source(tmp_path, tree, [stale]).resolve(lambda _line: None)


def test_git_tree_builds_in_a_worktree_and_leaves_the_checkout_alone(tmp_path: Path) -> None:
    repo = git_tree(tmp_path / "linux")
    source = _source(tmp_path, repo, [_patch(tmp_path, "two", "int fault(void) { return 22; }")])
    image, _ = _resolve(source)
    assert b"return 22" in image.vmlinuz.read_bytes()
    assert git(repo, "log", "--format=%s").split("\n")[0] == "base"
    assert git(repo, "status", "--porcelain") == ""
    lines: list[str] = []
    again = source.resolve(lines.append)
    assert again.vmlinuz == image.vmlinuz and any("reusing" in line for line in lines)


def test_uncommitted_edits_are_refused_or_built_with_dirty_build(tmp_path: Path) -> None:
    repo = git_tree(tmp_path / "linux")
    (repo / "kernel/fork.c").write_text("int fork(void) { return 42; } /* uncommitted */\n")
    with pytest.raises(DirtyTree, match=r"kernel/fork\.c"):
        _source(tmp_path, repo).resolve(print)
    image, _ = _resolve(_source(tmp_path, repo, dirty="build"))
    assert b"uncommitted" in image.vmlinuz.read_bytes()  # the work tree as it is
    assert git(repo, "log", "--format=%s").split("\n")[0] == "base"
    assert "uncommitted" in (repo / "kernel/fork.c").read_text()


def test_lost_config_option_is_logged_with_its_dependency(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux")
    fragment = tmp_path / "numa.config"
    fragment.write_text("CONFIG_NUMA=y\n")
    lines: list[str] = []
    _source(tmp_path, tree, fragments=str(fragment)).resolve(lines.append)
    lost = [line for line in lines if line.startswith("config: ")]
    assert lost == [
        "config: CONFIG_NUMA=y (from numa.config) was lost: the final .config has n; "
        "likely missing dependency: CONFIG_SMP (depends on SMP)"
    ]


def test_a_directory_that_is_not_a_kernel_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notlinux").mkdir()
    with pytest.raises(NotAKernelTree, match="not a Linux source tree"):
        locate(str(tmp_path / "notlinux"), tmp_path, tmp_path / "cache", None, print)
    with pytest.raises(ConfigError, match="not a Linux source tree"):
        _kernels(tmp_path, f"- name: k\n  build: {tmp_path / 'notlinux'}\n")


def test_kernels_yaml_names_every_bad_build_value(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a patch\n")
    with pytest.raises(ConfigError) as info:
        _kernels(
            tmp_path,
            f"""\
            - name: k
              build:
                source: {tree}
                config: biggestconfig
                fragments: [missing.config]
                series: {notes}
                jobs: 4
            """,
        )
    text = str(info.value)
    assert "config 'biggestconfig' is not one of tinyconfig, defconfig" in text
    assert "missing.config does not exist" in text
    assert "notes.txt is neither an mbox nor a patch" in text
    assert "unknown key 'jobs'" in text


def test_cli_names_bad_build_entries_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notlinux").mkdir()
    kernels = tmp_path / "kernels.yaml"
    kernels.write_text(
        f"kernels:\n  - name: k\n    build: {{source: {tmp_path / 'notlinux'}, "
        f"fragments: [gone.config]}}\n"
    )
    assert main(["--kernels-file", str(kernels), "kernels"]) == 2
    err = capsys.readouterr().err
    assert "not a Linux source tree" in err and "gone.config does not exist" in err


def test_cli_resolve_reports_a_patch_that_does_not_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_tree(tmp_path / "linux")
    stale = _patch(tmp_path, "stale", "x", old="int fault(void) { return 9; }")
    kernels = tmp_path / "kernels.yaml"
    kernels.write_text(
        f"kernels:\n  - name: k\n    build: {{source: {tree}, series: [{stale}], "
        "guest_config: false}\n"
    )
    assert main(["--kernels-file", str(kernels), "kernels", "--resolve"]) == 2
    assert "patch mm: stale does not apply" in capsys.readouterr().err


def test_an_interrupted_make_leaves_no_sub_make_or_compiler_behind(tmp_path: Path) -> None:
    """Ctrl-C (or SIGTERM) during a build kills make's whole process group, not make alone."""

    from harness.kernels import kbuild

    marker = f"{os.getpid() % 1000}.{len(str(tmp_path))}17"  # a sleep nobody else runs
    src = tmp_path / "src"
    src.mkdir()
    (src / "Makefile").write_text(f"all:\n\t@echo started; sleep {marker} & sleep {marker}\n")

    def interrupt(line: str) -> None:
        if "started" in line:
            raise KeyboardInterrupt

    tools = kbuild.Toolchain(1, None)
    with pytest.raises(KeyboardInterrupt):
        kbuild.run_make(
            tools, src, tmp_path / "out", ("all",), tmp_path / "make.log", None, interrupt
        )
    # SIGKILL is queued at once but a loaded machine may not have run the
    # victims' exit yet: give them a bounded moment (a survivor never goes).
    deadline = time.monotonic() + 10
    while (left := _sleepers(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []


def _sleepers(marker: str) -> list[str]:
    return [
        p.name
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and f"sleep\0{marker}".encode() in _cmdline(p)
    ]


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def test_arm64_cross_build_makes_an_arm64_image(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux")
    (spec,) = _kernels(
        tmp_path, f"- {{name: a, arch: arm64, build: {{source: {tree}, guest_config: false}}}}\n"
    )
    assert isinstance(spec.source, BuildSource)
    image, log = _resolve(spec.source)
    assert image.vmlinuz.name == "Image"
    assert image.vmlinuz.read_bytes()[0x38:0x3C] == b"ARM\x64"
    make = [line for line in log if line.startswith("$ ") and line.endswith(" Image")]
    assert make and "ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-" in make[0]
    assert "arm64 tinyconfig" in image.origin
