"""The harness CLI's arguments: where people type them."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.commands.cli import build_parser, main, parse, run_request
from harness.commands.cli_grammar import one_kernel
from harness.commands.run import guest_test_paths
from harness.errors import UserError


@pytest.mark.parametrize("command", ["run", "kernels", "boot", "series", "bisect"])
def test_kernels_file_before_or_after_the_subcommand(command: str) -> None:
    bisect = ["--good", "a", "--bad", "b", "--test", "t", "--tree", "."]
    extra = {"boot": ["--kernel", "k"], "series": ["--kernel", "k"], "bisect": bisect}
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
    from harness.results.evidence import drop_if_empty, latest_target, new_run_dir

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


def _actions(parser: argparse.ArgumentParser, where: str = "kharness"):  # type: ignore[no-untyped-def]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{where} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield where, action


def test_every_option_says_what_it_does() -> None:
    silent = [
        f"{where} {'/'.join(a.option_strings) or a.dest}"
        for where, a in _actions(build_parser())
        if not a.help
    ]
    assert silent == []


def test_the_description_is_one_sentence_about_the_tool() -> None:
    text = build_parser().description or ""
    assert text.count(". ") == 0 and text.endswith(".") and "kernel" in text.lower()
    assert "subcommand" not in text


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["run", "-k", "uffd"], "pytest options go after --"),
        (["run", "uffd_api"], "pytest options go after --"),
        (["boot", "--kernel", "k", "uname", "-r"], "goes after --: kharness boot --kernel NAME"),
        (["kernels", "-x"], "kharness kernels --help"),
    ],
)
def test_an_unknown_option_says_where_it_goes(
    argv: list[str], hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(argv)
    assert exc.value.code == 2
    assert hint in capsys.readouterr().err


def test_what_follows_dashes_goes_to_pytest_or_the_guest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = parse(["run", "--kernel", "a", "--", "-x", "-k", "b or c"])
    assert (run.kernel, run.pytest_args) == (["a"], ["-x", "-k", "b or c"])
    boot = parse(["boot", "--kernel", "a", "--", "uname", "-r"])
    assert (boot.kernel, boot.guest_command) == (["a"], ["uname", "-r"])
    assert parse(["run"]).pytest_args == []
    with pytest.raises(SystemExit):
        parse(["kernels", "--", "-x"])
    assert "takes nothing after --" in capsys.readouterr().err


def test_the_kernel_is_named_with_kernel_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("run", "kernels", "boot", "series"):
        args = parse([command, "--kernel", "a", "--kernel", "b"])
        assert getattr(args, "kernels" if command == "series" else "kernel") == ["a", "b"]
    assert parse(["series", "--kernel", "a"]).kernels == ["a"]
    assert one_kernel("boot", ["a"], None) == "a"
    assert capsys.readouterr().err == ""
    assert one_kernel("boot", [], "old") == "old"  # the old positional form still works
    assert "'boot old' is now 'boot --kernel old'" in capsys.readouterr().err
    with pytest.raises(UserError, match="exactly one kernel: kharness series --kernel NAME"):
        one_kernel("series", [], None)
    with pytest.raises(UserError, match=r"given: a, b"):
        one_kernel("boot", ["a", "b"], None)


def test_bisect_kernel_points_at_settings_from(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bisect", "--good", "a", "--bad", "b", "--test", "t", "--tree", "."]
    assert parse([*argv, "--settings-from", "d"]).settings_from == "d"
    assert main([*argv, "--kernel", "d"]) == 2
    assert "use --settings-from d" in capsys.readouterr().err


def test_run_test_names_guest_test_files(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "sh").mkdir()
    (tmp_path / "c" / "uffd_api.c").write_text("")
    (tmp_path / "sh" / "thp_sysfs.sh").write_text("")
    found = guest_test_paths(["uffd_api", "thp_sysfs.sh", "uffd_api.c"], tmp_path)
    assert found == [tmp_path / "c" / "uffd_api.c", tmp_path / "sh" / "thp_sysfs.sh"]
    with pytest.raises(UserError, match="did you mean 'thp_sysfs'"):
        guest_test_paths(["thp_sysf"], tmp_path)


def test_run_refuses_an_unknown_test_before_making_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kernels.yaml"
    path.write_text('kernels:\n  - {name: mine, debian: {package: "linux-image-6.12.*-amd64"}}\n')
    base = tmp_path / "res"
    argv = [
        "run",
        "--kernels-file",
        str(path),
        "--test",
        "uffd_api_unknwn",
        f"--results-dir={base}",
    ]
    assert main(argv) == 2
    assert "did you mean 'uffd_api_unknown_feature'" in capsys.readouterr().err
    assert not base.exists()


def test_run_hands_keep_snapshots_to_the_plugin() -> None:
    kept = run_request(parse(["run", "--keep-snapshots"])).plugin_options()
    plain = run_request(parse(["run"])).plugin_options()
    assert "--keep-snapshots" in kept and "--keep-snapshots" not in plain


def test_a_series_isolates_every_test_unless_told_otherwise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A series' verdict must not depend on what the test before left: isolation: test."""
    assert parse(["series", "--kernel", "a"]).isolation == "test"
    assert parse(["series", "--kernel", "a", "--isolation", "kernel"]).isolation == "kernel"
    with pytest.raises(SystemExit):
        parse(["series", "--kernel", "a", "--isolation", "none"])
    assert "invalid choice: 'none'" in capsys.readouterr().err


def test_runs_of_one_process_in_one_second_get_directories_of_their_own(tmp_path: Path) -> None:
    from harness.results.evidence import new_run_dir
    from harness.results.layout import RUN_NAME, newest_run

    runs = [new_run_dir(tmp_path) for _ in range(3)]
    assert len({r.name for r in runs}) == 3, runs
    assert all(RUN_NAME.fullmatch(r.name) for r in runs), runs
    names = [r.name for r in runs]
    if names[0].split(".")[0] == names[2].split(".")[0]:  # the same second: numbered
        assert names[1:] == [f"{names[0]}.2", f"{names[0]}.3"], names
    assert (tmp_path / "latest").resolve() == runs[-1].resolve()
    assert newest_run(tmp_path, done=None) == runs[-1]
