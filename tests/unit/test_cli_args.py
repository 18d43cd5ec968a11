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


def test_a_run_refused_for_a_wrong_kernel_leaves_no_results_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "res"
    code = main(["run", "--kernel", "nope", f"--results-dir={base}"])
    assert code != 0
    assert "--kernel nope: not in" in capsys.readouterr().err
    assert not base.exists(), "no results directory, and no latest link, for a refused run"


def test_an_empty_run_dir_is_dropped_and_latest_points_back(tmp_path: Path) -> None:
    from harness.results import drop_if_empty, latest_target, new_run_dir

    earlier = new_run_dir(tmp_path)
    (earlier / "summary.json").write_text("{}")
    previous = latest_target(tmp_path)
    (tmp_path / "later-empty").mkdir()
    (tmp_path / "latest").unlink()
    (tmp_path / "latest").symlink_to("later-empty")
    assert drop_if_empty(tmp_path / "later-empty", previous)
    assert not (tmp_path / "later-empty").exists()
    assert (tmp_path / "latest").resolve() == earlier.resolve()
    assert not drop_if_empty(earlier, None), "a run that wrote something stays"
