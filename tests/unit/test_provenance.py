"""Reproducible runs: exact versions, provenance.json, pinned kernels files and rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.commands import cli, rerun
from harness.commands.run import RunOutcome, RunRequest
from harness.config import load_kernels
from harness.errors import KernelNotFound, UserError
from harness.kernels.base import Exact, PackagePin
from harness.kernels.debian import DebianSource, newest_match
from harness.kernels.debian_archive import PackageEntry
from harness.outcome import Outcome
from harness.reporters import write_all
from harness.results import provenance
from harness.results.evidence import new_run_dir
from harness.results.records import KernelRecord, TestRecord, load_summary
from harness.results.summarize import build_summary
from tests.unit.fake_kbuild import git, git_tree


def _pkg(name: str, version: str) -> PackageEntry:
    return PackageEntry(name, version, f"pool/{name}.deb", "0" * 64, 1, "", "http://m", "s")


INDEX = [
    _pkg("linux-image-6.12.115+deb12-amd64-unsigned", "6.12.115-1"),
    _pkg("linux-image-6.12.117+deb12-amd64-unsigned", "6.12.117-1~deb12u1"),
    _pkg("linux-image-6.12.118+deb12-amd64-unsigned", "6.12.118-1~deb12u1"),
]
PATTERN = "linux-image-6.12.*-amd64-unsigned"


def test_debian_version_takes_exactly_that_version() -> None:
    assert newest_match(PATTERN, INDEX).version == "6.12.118-1~deb12u1"
    pinned = newest_match(PATTERN, INDEX, version="6.12.117-1~deb12u1")
    assert pinned.name == "linux-image-6.12.117+deb12-amd64-unsigned"


def test_a_version_the_archive_dropped_names_the_ones_it_has() -> None:
    with pytest.raises(KernelNotFound) as err:
        newest_match(PATTERN, INDEX, version="6.12.57-1~deb12u1")
    text = str(err.value)
    assert "version 6.12.57-1~deb12u1 is no longer in s" in text
    assert "versions it has: 6.12.118-1~deb12u1, 6.12.117-1~deb12u1, 6.12.115-1" in text


def test_kernels_yaml_debian_version_and_base(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "kernels.yaml"
    path.write_text(
        f"base: {tmp_path}\nkernels:\n"
        f"  - {{name: d, debian: {{package: '{PATTERN}', version: '6.12.117-1~deb12u1'}}}}\n"
        "  - {name: b, build: {source: linux}}\n"
    )
    (tmp_path / "linux").mkdir()
    git_tree(tmp_path / "linux")
    d, b = load_kernels(path)
    assert isinstance(d.source, DebianSource) and d.source.version == "6.12.117-1~deb12u1"
    assert "= 6.12.117-1~deb12u1" in d.source.describe()
    assert b.source.base == tmp_path  # type: ignore[attr-defined]


def test_a_kernel_record_keeps_what_the_kernel_was_exactly() -> None:
    exact = Exact(version="6.12.117-1", packages=(PackagePin("linux-image-x", "6.12.117-1", "ab"),))
    record = KernelRecord("d", "debian ...", exact=exact)
    assert KernelRecord.from_json("d", record.to_json()) == record
    assert KernelRecord.from_json("d", {"source": "s"}).exact is None  # older summaries


def test_a_built_kernel_records_its_commit_and_patch_hashes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    from tests.unit.fake_kbuild import format_patch

    tree = git_tree(tmp_path / "linux")
    patch = tmp_path / "fix.patch"
    patch.write_text(
        format_patch(
            "mm/filemap.c",
            "int map_pages(void) { return 2; }",
            "int map_pages(void) { return 3; }",
            "fix",
        )
    )
    path = tmp_path / "kernels.yaml"
    path.write_text(
        f"kernels:\n  - {{name: k, build: {{source: {tree}, guest_config: false, "
        f"series: [{patch}]}}}}\n"
    )
    (spec,) = load_kernels(path)
    image = spec.source.resolve(lambda _t: None)
    assert image.exact is not None
    assert image.exact.commit == git(tree, "rev-parse", "HEAD").strip()
    import hashlib

    (digest,) = image.exact.patches
    assert digest == hashlib.sha256(patch.read_text().encode()).hexdigest()
    again = spec.source.resolve(lambda _t: None)  # from the image store: the same record
    assert again.exact == image.exact


def test_provenance_records_the_harness_command_and_kernels_file(tmp_path: Path) -> None:
    kernels = tmp_path / "k.yaml"
    kernels.write_text("kernels: []\n")
    made = provenance.record(tmp_path / "run", kernels, ["a"], ["t1", "t1", "t2"])
    assert (tmp_path / "run" / "kernels.yaml").read_text() == "kernels: []\n"
    loaded = provenance.load(tmp_path / "run")
    assert loaded == made and loaded.tests == ("t1", "t2")
    assert loaded.kernels_file == str(kernels.resolve())
    assert len(made.harness.commit or "") == 40, "the harness is a git checkout here"
    with pytest.raises(UserError, match=r"has no provenance\.json"):
        provenance.load(tmp_path)


def test_harness_version_says_whether_its_tree_is_dirty(tmp_path: Path) -> None:
    repo = git_tree(tmp_path / "h")
    clean = provenance.harness_version(repo)
    assert clean.commit == git(repo, "rev-parse", "HEAD").strip() and clean.dirty is False
    (repo / "Makefile").write_text("changed\n")
    assert provenance.harness_version(repo).dirty is True
    assert provenance.harness_version(tmp_path / "nothing").commit is None


def test_pin_gives_each_kernel_its_exact_version_or_commit(tmp_path: Path) -> None:
    data = {
        "kernels": [
            {"name": "d", "debian": PATTERN},
            {"name": "b", "build": {"source": "../linux", "dirty": "build"}},
            {"name": "unused", "image": "bzImage"},
        ]
    }
    records = {
        "d": KernelRecord("d", "", exact=Exact(version="6.12.117-1")),
        "b": KernelRecord("b", "", exact=Exact(commit="c0ffee", tree="../linux at c0ffee")),
    }
    pinned = rerun.pin(data, ("d", "b"), records, tmp_path / "orig")
    doc = yaml.safe_load(pinned.text)
    assert doc["base"] == str(tmp_path / "orig")
    assert [e["name"] for e in doc["kernels"]] == ["d", "b"]
    assert doc["kernels"][0]["debian"] == {"package": PATTERN, "version": "6.12.117-1"}
    assert doc["kernels"][1]["build"] == {"source": "../linux", "rev": "c0ffee"}
    with pytest.raises(UserError, match="no entry gone"):
        rerun.pin(data, ("gone",), records, tmp_path)


def _old_run(tmp_path: Path) -> Path:
    kernels = tmp_path / "kernels.yaml"
    kernels.write_text(f"kernels:\n  - {{name: d, debian: '{PATTERN}'}}\n")
    run = new_run_dir(tmp_path / "old")
    exact = Exact(version="6.12.117-1~deb12u1")
    record = TestRecord("uffd_api_unknown_feature", "d", Outcome.PASS, "ok")
    write_all(build_summary(run.name, [KernelRecord("d", "debian", exact=exact)], [record]), run)
    provenance.record(run, kernels, ["d"], ["uffd_api_unknown_feature"])
    return run


def test_rerun_runs_the_pinned_kernels_and_compares(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _old_run(tmp_path)
    seen: list[RunRequest] = []

    def fake_run(request: RunRequest) -> RunOutcome:  # what kharness run would leave behind
        seen.append(request)
        pinned = yaml.safe_load(request.kernels_file.read_text())
        assert pinned["kernels"][0]["debian"]["version"] == "6.12.117-1~deb12u1"
        assert request.results_dir is not None
        run = new_run_dir(Path(request.results_dir))
        failed = TestRecord("uffd_api_unknown_feature", "d", Outcome.FAIL, "not ok 1")
        write_all(build_summary(run.name, [KernelRecord("d", "debian")], [failed]), run)
        latest = Path(request.results_dir) / "latest"  # another run started meanwhile
        latest.unlink()
        latest.symlink_to("another-run")
        return RunOutcome(1, run)

    code = rerun.rerun(old, tmp_path / "new", ("-x",), runner=fake_run)
    assert code == 1, "a regression against the recorded run"
    (request,) = seen
    assert request.kernels == ("d",) and request.tests == ("uffd_api_unknown_feature",)
    assert request.pytest_args == ("-x",)
    assert request.results_dir == (tmp_path / "new").resolve()
    out = capsys.readouterr().out
    assert "compared with" in out and "uffd_api_unknown_feature" in out
    assert not list((tmp_path / "new").glob(".rerun-*.yaml")), "the pinned file is not left"
    assert load_summary(old).kernels[0].exact == Exact(version="6.12.117-1~deb12u1")


def test_rerun_without_new_results_returns_the_runs_code(tmp_path: Path) -> None:
    old = _old_run(tmp_path)
    assert rerun.rerun(old, tmp_path / "new", runner=lambda _r: RunOutcome(4, None)) == 4
    assert rerun.rerun(old, tmp_path / "new", runner=lambda _r: RunOutcome(0, None)) == 2


def test_rerun_of_a_directory_without_provenance_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({"schema_version": 3}))
    assert cli.main(["rerun", str(tmp_path)]) == 2
    assert "has no provenance.json" in capsys.readouterr().err
