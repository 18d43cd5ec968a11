"""Guest test headers: metadata read from the C file, typos refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.testkinds.testdef import DEFAULT_TIMEOUT, Needs, discover, read_test

REPO_TESTS = Path(__file__).resolve().parents[2] / "guest-tests" / "c"


def _c(tmp_path: Path, header: str) -> Path:
    path = tmp_path / "t.c"
    path.write_text(f"/*\n{header}\n */\nint main(void) {{ return 0; }}\n")
    return path


def test_defaults_without_tags(tmp_path: Path) -> None:
    t = read_test(_c(tmp_path, " * just prose: no tags"))
    assert (t.name, t.timeout, t.needs, t.expect_report) == ("t", DEFAULT_TIMEOUT, Needs(), None)


def test_all_tags(tmp_path: Path) -> None:
    t = read_test(
        _c(
            tmp_path,
            " * @timeout: 120\n * @needs: numa-nodes=2 memory=2G thp=always\n"
            " * @expect-report: ^kernel BUG in move_pages",
        )
    )
    assert t.timeout == 120
    assert t.needs == Needs(2, 2048, "always")
    assert t.expect_report == "^kernel BUG in move_pages"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (" * @timout: 5", "unknown header tag '@timout'"),
        (" * @timeout: soon", "@timeout must be a positive number"),
        (" * @needs: numa=2", "@needs token 'numa=2' is not understood"),
        (" * @needs: thp=sometimes", "@needs token 'thp=sometimes'"),
        (" * @expect-report: (unclosed", "not a valid regex"),
    ],
)
def test_bad_tags_name_file_and_line(tmp_path: Path, header: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        read_test(_c(tmp_path, header))
    assert message in str(info.value)
    assert f"{tmp_path / 't.c'}:2:" in str(info.value)


def test_repository_tests_declare_valid_headers() -> None:
    tests = {read_test(p).name: read_test(p) for p in discover(REPO_TESTS)}
    assert "uffd_api_unknown_feature" in tests
    move = tests.get("uffd_move_swap_pmd")
    if move is not None:
        assert move.needs.numa_nodes == 2
