"""Config fragments: reading, merging, and saying which option the final .config lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.kernels.config_fragments import (
    GUEST_FRAGMENT,
    FragmentError,
    check_config,
    index_kconfig,
    merge,
    parse_config,
    read_fragment,
)
from tests.unit.fake_kbuild import make_tree


def _fragment(tmp_path: Path, text: str, name: str = "extra.config") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parse_config_reads_values_and_not_set_lines() -> None:
    text = 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n# a comment\nCONFIG_D=0x10\n'
    assert parse_config(text) == {
        "CONFIG_A": "y",
        "CONFIG_B": "n",
        "CONFIG_C": '"x y"',
        "CONFIG_D": "0x10",
    }


def test_the_shipped_guest_fragment_parses_and_builds_everything_in() -> None:
    values = dict(read_fragment(GUEST_FRAGMENT).values)
    assert values["CONFIG_VIRTIO_NET"] == "y" and values["CONFIG_USERFAULTFD"] == "y"
    assert values["CONFIG_PANIC_ON_OOPS"] == "n"
    assert "m" not in values.values()


def test_missing_fragment_is_named(tmp_path: Path) -> None:
    with pytest.raises(FragmentError, match="does not exist"):
        read_fragment(tmp_path / "nope.config")


def test_a_line_that_is_not_config_names_file_and_line(tmp_path: Path) -> None:
    path = _fragment(tmp_path, "CONFIG_A=y\nUSERFAULTFD=y\n")
    with pytest.raises(FragmentError, match=r"extra.config:2: 'USERFAULTFD=y'"):
        read_fragment(path)


def test_merge_replaces_in_place_appends_new_and_last_fragment_wins(tmp_path: Path) -> None:
    first = read_fragment(_fragment(tmp_path, "CONFIG_A=y\nCONFIG_NEW=y\n", "a.config"))
    second = read_fragment(_fragment(tmp_path, "# CONFIG_NEW is not set\n", "b.config"))
    merged = merge("# CONFIG_A is not set\nCONFIG_B=y\n", [first, second])
    assert merged.splitlines() == ["CONFIG_A=y", "CONFIG_B=y", "# CONFIG_NEW is not set"]


def test_lost_option_names_the_missing_dependency(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    fragment = read_fragment(_fragment(tmp_path, "CONFIG_NUMA=y\nCONFIG_64BIT=y\n"))
    problems = check_config({"CONFIG_64BIT": "y"}, [fragment], index_kconfig(tree))
    assert len(problems) == 1
    message = problems[0].message()
    assert "CONFIG_NUMA=y (from extra.config) was lost" in message
    assert "likely missing dependency: CONFIG_SMP" in message


def test_unknown_option_is_reported_with_a_suggestion(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    fragment = read_fragment(_fragment(tmp_path, "CONFIG_USERFAULTDF=y\n"))
    problems = check_config({}, [fragment], index_kconfig(tree))
    assert problems[0].unknown
    assert "unknown to this kernel" in problems[0].message()
    assert "did you mean CONFIG_USERFAULTFD" in problems[0].message()


def test_help_text_is_not_read_as_kconfig(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")  # NUMA's help text has a line starting with "if"
    index = index_kconfig(tree)
    assert index.depends["USERFAULTFD"] == ()
    assert index.depends["NUMA"] == ("SMP",)


def test_not_set_in_fragment_is_honoured_by_absence(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    fragment = read_fragment(_fragment(tmp_path, "# CONFIG_SMP is not set\n"))
    assert check_config({}, [fragment], index_kconfig(tree)) == []
