"""Replay scenarios as kernels.yaml kernels: extra sources and backends, problems named.

The plumbing tests rely on ``replay:`` kernels (tests/support/replay/plugin.py);
here, that kernels.yaml accepts them only when given the plugin's rows, and
that a scenario's mistakes are kernels.yaml problems naming the key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_kernels
from harness.errors import ConfigError
from tests.plumbing.helpers import replay_kernel
from tests.support.replay import scenario
from tests.support.replay.plugin import ReplaySource, from_yaml

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "replay"


def _kernels(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "kernels.yaml"
    path.write_text(body)
    return path


def test_replay_kernels_need_the_plugins_rows(tmp_path: Path) -> None:
    path = _kernels(tmp_path, f"kernels:\n  - {replay_kernel('r')}\n")
    with pytest.raises(ConfigError, match=r"backend 'replay' is not one of qemu, virtme"):
        load_kernels(path)
    (spec,) = load_kernels(path, {"replay": from_yaml}, ("replay",))
    assert spec.backend == "replay"
    assert isinstance(spec.source, ReplaySource)
    image = spec.source.resolve(lambda _text: None)
    assert image.vmlinuz == SCENARIOS / "d612.yaml" and image.release == "6.12.118+deb12-amd64"


def test_a_scenario_mistake_is_a_kernels_yaml_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("release: x\nboot: {ends: crash}\ntests: {a: {exti: 1}}\n")
    path = _kernels(
        tmp_path, f"kernels:\n  - {{name: r, replay: {{scenario: {bad}}}, backend: replay}}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_kernels(path, {"replay": from_yaml}, ("replay",))
    assert "ends 'crash' is not one of ready, panic, silent" in str(error.value)
    assert "tests: a: unknown key 'exti'; did you mean 'exit'?" in str(error.value)


def test_every_stored_scenario_reads(tmp_path: Path) -> None:
    """Each reads, and boots the kernel it says it is: its console names its release."""
    paths = sorted(SCENARIOS.glob("*.yaml"))
    assert paths, f"no scenario in {SCENARIOS}"
    for path in paths:
        read = scenario.load(path)
        console = b"".join(chunk.data for chunk in read.script.boot).decode(errors="replace")
        assert f"Linux version {read.release} " in console, f"{path.name}: not its release's boot"
        assert read.script.release == read.release


def test_a_cut_that_matches_nothing_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    log = SCENARIOS / "6.12-boot.log"
    bad.write_text(f"release: x\nboot: {{console: {{file: {log}, from: 'no such line'}}}}\n")
    with pytest.raises(ConfigError, match="no line matches 'no such line'"):
        scenario.load(bad)
