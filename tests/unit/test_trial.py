"""series and bisect boot with the kernels.yaml entry's settings, not bare defaults.

Nothing boots here: the spec of the guest a Trial would boot is inspected
(the guest's machine is made from that spec: session.KernelGuest.machine_config).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.commands import series, series_cli
from harness.commands.bisect import BisectPlan, kernel_spec
from harness.commands.bisect_cli import recipe_from_args
from harness.commands.cli import main
from harness.config import Expectation, KernelSpec, Timeouts, load_kernels
from harness.errors import ConfigError
from harness.kernels.base import KernelImage
from harness.machine.accel import Accel
from harness.outcome import Outcome
from harness.session import RunContext
from harness.testkinds.trial import PreparedImage, Trial, trial_spec
from tests.unit.fake_kbuild import format_patch, make_tree

SETTINGS = """\
    cmdline: "nokaslr numa=off"
    memory: 3G
    cpus: 3
    accel: tcg
    timeouts: {boot: 77, test: 33}
    reboot_after_oops: false
    expect:
      uffd_api_unknown_feature: {outcome: fail, reason: "known here"}
"""


def _bzimage(path: Path) -> Path:
    data = bytearray(0x400)
    data[0x202:0x206] = b"HdrS"
    path.write_bytes(bytes(data))
    return path


def _kernels(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "kernels.yaml"
    path.write_text(f"kernels:\n  - name: mine\n    {source}\n" + SETTINGS)
    return path


def _image(tmp_path: Path) -> KernelImage:
    return KernelImage(_bzimage(tmp_path / "built-bzImage"), None, None, "built here")


def _assert_settings_kept(spec: KernelSpec) -> None:
    assert spec.cmdline == "nokaslr numa=off"
    assert spec.memory_mib == 3072
    assert spec.cpus == 3
    assert spec.accel is Accel.TCG
    assert spec.timeouts == Timeouts(boot=77.0, test=33.0)
    assert spec.reboot_after_oops is False
    assert spec.expect == {"uffd_api_unknown_feature": Expectation(Outcome.FAIL, "known here")}


def test_trial_guest_keeps_the_kernels_yaml_settings(tmp_path: Path) -> None:
    kernels = _kernels(tmp_path, f"image: {_bzimage(tmp_path / 'yaml-bzImage')}")
    (spec,) = load_kernels(kernels)
    image = _image(tmp_path)
    ctx = RunContext(tmp_path / "results", None, {})  # type: ignore[arg-type]
    trial = Trial(tmp_path / "results", [], spec=spec, _ctx=ctx)

    guest = trial.guest("03", image)

    assert guest.spec.name == "03"  # the step's name: its results directory
    assert guest.spec.source == PreparedImage(image)  # the built image, not the yaml's
    _assert_settings_kept(guest.spec)


def test_without_a_kernels_yaml_entry_the_defaults() -> None:
    image = KernelImage(Path("/nowhere/bzImage"), None, None, "x")
    spec = trial_spec("00", image)
    assert spec == KernelSpec(name="00", source=PreparedImage(image))


def test_series_cli_hands_the_entry_to_its_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path / "linux")
    patch = tmp_path / "fix.patch"
    patch.write_text(format_patch("mm/filemap.c", "return 2;", "return 3;", "fix"))
    kernels = _kernels(tmp_path, f"build: {{source: {tree}, series: [{patch}]}}")
    seen: list[Trial] = []

    def fake_run_series(source, patches, trial, log, runs, **_kw):  # type: ignore[no-untyped-def]
        seen.append(trial)
        return series.SeriesReport(tuple(t.name for t in trial.tests), ())

    monkeypatch.setattr(series_cli, "run_series", fake_run_series)
    argv = ["--kernels-file", str(kernels), "series", "--kernel", "mine"]
    argv += ["--results-dir", str(tmp_path / "r")]
    assert main([*argv, "--test", "uffd_api_unknown_feature"]) == 0
    (trial,) = seen
    assert trial.spec is not None and trial.spec.name == "mine"
    _assert_settings_kept(trial.spec)
    _assert_settings_kept(trial_spec("01", _image(tmp_path), trial.spec))


def test_bisect_plan_carries_the_kernel_entry_to_its_steps(tmp_path: Path) -> None:
    kernels = _kernels(tmp_path, f"image: {_bzimage(tmp_path / 'yaml-bzImage')}")
    plan = BisectPlan(
        tmp_path, "t", recipe_from_args([]), tmp_path / "r", None, 1, tmp_path, "mine", kernels
    )
    plan.save(tmp_path / "plan.json")
    loaded = BisectPlan.load(tmp_path / "plan.json")
    assert loaded == plan
    spec = loaded.spec()
    assert spec is not None
    _assert_settings_kept(trial_spec("abcdef123456", _image(tmp_path), spec))
    assert kernel_spec(None, kernels) is None
    with pytest.raises(ConfigError, match="nosuch"):
        kernel_spec("nosuch", kernels)


def test_bisect_cli_refuses_an_unknown_kernel_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kernels = _kernels(tmp_path, f"image: {_bzimage(tmp_path / 'yaml-bzImage')}")
    argv = ["bisect", "--good", "a", "--bad", "b", "--tree", str(tmp_path)]
    argv += ["--test", "uffd_api_unknown_feature", "--results-dir", str(tmp_path / "r")]
    assert main([*argv, "--settings-from", "nosuch", "--kernels-file", str(kernels)]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert main(["--kernels-file", str(kernels), *argv, "--settings-from", "nosuch"]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
