"""Files made aside and renamed into place, as parallel workers share one directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cache import atomic_dir


def test_a_directory_another_worker_renamed_first_wins_without_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two xdist workers make the run's keys at once: the slower one's rename meets theirs."""
    final = tmp_path / "keys"
    rename = Path.rename

    def other_worker_first(self: Path, target: Path) -> Path:
        if Path(target) == final and not final.exists():
            final.mkdir()  # the other worker's rename lands just before ours
            (final / "key").write_text("theirs")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", other_worker_first)
    with atomic_dir(final) as mine:
        (mine / "key").write_text("mine")
    assert (final / "key").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys"], "no scratch left behind"


def test_a_directory_nobody_else_made_is_ours(tmp_path: Path) -> None:
    final = tmp_path / "keys"
    with atomic_dir(final) as mine:
        (mine / "key").write_text("mine")
    assert (final / "key").read_text() == "mine"
