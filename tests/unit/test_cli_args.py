"""The harness CLI's arguments: where people type them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import build_parser, main


@pytest.mark.parametrize("command", ["run", "kernels", "boot", "series", "bisect"])
def test_kernels_file_before_or_after_the_subcommand(command: str) -> None:
    bisect = ["--good", "a", "--bad", "b", "--test", "t", "--tree", "."]
    extra = {"boot": ["k"], "series": ["k"], "bisect": bisect}
    rest = extra.get(command, [])
    parser = build_parser()
    before = parser.parse_args(["--kernels-file", "a.yaml", command, *rest])
    after = parser.parse_args([command, "--kernels-file", "b.yaml", *rest])
    neither = parser.parse_args([command, *rest])
    assert (before.kernels_file, after.kernels_file, neither.kernels_file) == (
        "a.yaml",
        "b.yaml",
        None,
    )


def test_kernels_lists_the_file_given_after_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kernels.yaml"
    path.write_text('kernels:\n  - {name: mine, debian: {package: "linux-image-6.12.*-amd64"}}\n')
    assert main(["kernels", "--kernels-file", str(path)]) == 0
    assert capsys.readouterr().out.split()[0] == "mine"
