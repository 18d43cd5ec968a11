"""ccache's environment for kbuild: no base directory, whoever sets one."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.kernels.kbuild import Toolchain


@pytest.mark.parametrize("sandbox", [False, True])
def test_a_callers_ccache_basedir_never_reaches_make(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: bool
) -> None:
    monkeypatch.setenv("CCACHE_BASEDIR", str(tmp_path))
    env = Toolchain(2, tmp_path / "ccache", sandbox=sandbox).env()
    assert "CCACHE_BASEDIR" not in env
    assert env["CCACHE_DIR"] == str(tmp_path / "ccache")


@pytest.mark.skipif(not shutil.which("ccache"), reason="needs ccache")
def test_why_a_base_dir_is_refused_it_would_rename_file_in_reports(tmp_path: Path) -> None:
    """The failure Toolchain.env keeps out, shown on ccache itself: with a base directory
    an O= compile's __FILE__ stops being the source-relative path kbuild's prefix map makes."""
    src, out = tmp_path / "slot" / "src", tmp_path / "slot" / "out"
    (src / "mm").mkdir(parents=True)
    out.mkdir()
    (src / "mm" / "x.c").write_text("const char *where = __FILE__;\n")
    argv = ["ccache", "gcc", f"-fmacro-prefix-map={src}/=", "-c", str(src / "mm" / "x.c")]
    base = {**os.environ, "CCACHE_DIR": str(tmp_path / "cache")}
    base.pop("CCACHE_BASEDIR", None)
    subprocess.run([*argv, "-o", "plain.o"], cwd=out, env=base, check=True)
    moved = {**base, "CCACHE_BASEDIR": str(tmp_path)}
    subprocess.run([*argv, "-o", "moved.o"], cwd=out, env=moved, check=True)
    assert b"mm/x.c\0" in (out / "plain.o").read_bytes()
    assert b"../src/" not in (out / "plain.o").read_bytes()
    assert b"\0../src/mm/x.c\0" in (out / "moved.o").read_bytes()
