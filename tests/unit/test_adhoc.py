"""Kernels given on the command line: the entries they stand for, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.commands.adhoc import IMAGE_NAME, TREE_NAME, AdHocKernels, add_options, combine
from harness.config import KernelSpec, parse_kernels
from harness.errors import ConfigError, UserError
from harness.kernels.build import BuildSource
from harness.kernels.image import ImageSource
from harness.session.boot import no_network_hint


def _bzimage(path: Path) -> Path:
    head = bytearray(0x240)
    head[0x202:0x206] = b"HdrS"
    path.write_bytes(bytes(head) + b"\0" * 4096)
    return path


def _arm64_image(path: Path) -> Path:
    head = bytearray(0x240)
    head[0x38:0x3C] = b"ARM\x64"
    path.write_bytes(bytes(head) + b"\0" * 4096)
    return path


def _tree(path: Path) -> Path:
    for name in ("Makefile", "Kconfig", "arch/Kconfig", "scripts/kconfig/Makefile"):
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text("")
    return path


def test_an_image_is_the_kernel_named_image_with_its_arch_read_off_it(tmp_path: Path) -> None:
    _arm64_image(tmp_path / "Image")
    (spec,) = AdHocKernels(image="Image").specs(tmp_path)
    assert spec.name == IMAGE_NAME and spec.arch.name == "arm64"
    assert isinstance(spec.source, ImageSource) and spec.source.path == tmp_path / "Image"


def test_a_tree_builds_as_it_is_with_its_fragments_and_patches(tmp_path: Path) -> None:
    _tree(tmp_path / "linux")
    (tmp_path / "extra.config").write_text("CONFIG_USERFAULTFD=y\n")
    (spec,) = AdHocKernels(tree="linux", configs=("extra.config",)).specs(tmp_path)
    assert spec.name == TREE_NAME
    assert isinstance(spec.source, BuildSource)
    assert spec.source.source == str(tmp_path / "linux")
    assert spec.source.dirty.value == "build"  # uncommitted edits are the point
    assert tmp_path / "extra.config" in spec.source.recipe.fragments


def test_both_at_once_and_beside_kernels_yaml(tmp_path: Path) -> None:
    _bzimage(tmp_path / "bzImage")
    _tree(tmp_path / "linux")
    specs = AdHocKernels(image="bzImage", tree="linux").specs(tmp_path)
    assert [s.name for s in specs] == [IMAGE_NAME, TREE_NAME]
    other = KernelSpec("debian-6.12", specs[0].source)
    assert [s.name for s in combine([other], specs)] == ["debian-6.12", IMAGE_NAME, TREE_NAME]
    with pytest.raises(UserError, match=r"kernels\.yaml has an entry named image"):
        combine([KernelSpec(IMAGE_NAME, specs[0].source)], specs)


def test_mistakes_name_the_option_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--image: .*nope does not exist; fix the path$"):
        AdHocKernels(image="nope").specs(tmp_path)
    with pytest.raises(ConfigError, match=r"^--tree: .* is not a Linux source tree"):
        AdHocKernels(tree=".").specs(tmp_path)
    with pytest.raises(UserError, match="--modules goes with --image PATH"):
        AdHocKernels(modules="m").specs(tmp_path)
    with pytest.raises(UserError, match="--config and --patch go with --tree PATH"):
        AdHocKernels(patches=("p",)).specs(tmp_path)
    assert AdHocKernels().specs(tmp_path) == []
    _bzimage(tmp_path / "bzImage")
    with pytest.raises(ConfigError, match=r"^--modules: modules directory .* no kernel/"):
        AdHocKernels(image="bzImage", modules="mods").specs(tmp_path)
    _tree(tmp_path / "linux")
    with pytest.raises(ConfigError, match=r"^--config: config fragment .*nope.config"):
        AdHocKernels(tree="linux", configs=("nope.config",)).specs(tmp_path)


def test_a_problem_knows_its_key_path_and_reads_as_before(tmp_path: Path) -> None:
    """The options are named from the key path, so kernels.yaml's wording may change freely."""
    problems: list[str] = []
    data = {"kernels": [{"name": "k", "image": {"path": "gone"}}, {"build": {"source": 3}}]}
    parse_kernels(data, tmp_path / "kernels.yaml", problems)
    keys = [getattr(p, "keys", None) for p in problems]
    assert ("kernels", "k", "image", "path") in keys
    assert ("kernels", "#2", "build", "source") in keys
    assert any(
        p.startswith(f"{tmp_path / 'kernels.yaml'}: kernel #1 (k): image: path: ")
        and p.endswith("(relative paths are relative to kernels.yaml)")
        for p in problems
    )


def test_both_parsers_declare_and_read_the_same_options() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_options(parser.add_argument)
    args = parser.parse_args(["--tree", "t", "--patch", "a", "--patch", "b", "--sandbox"])
    read = AdHocKernels.read(lambda dest: getattr(args, dest))
    assert read == AdHocKernels(tree="t", patches=("a", "b"), sandbox=True)
    with pytest.raises(SystemExit):
        parser.parse_args(["--arch", "sparc"])


def test_the_plugin_gets_the_same_options_with_absolute_paths(tmp_path: Path) -> None:
    argv = AdHocKernels(image="bzImage", arch="x86_64", configs=("a.config",)).argv()
    assert argv[0] == f"--image={Path('bzImage').resolve()}" and "--arch=x86_64" in argv
    assert argv[-1] == f"--config={Path('a.config').resolve()}"


def test_a_guest_without_eth0_says_why_ssh_never_answers() -> None:
    console = "Run /init as init process\nip: can't find device 'eth0'\nHARNESS-READY x\n"
    hint = no_network_hint(console)
    assert "no virtio-net built in" in hint and "--modules DIR" in hint
    assert no_network_hint("Run /init as init process\n") == ""
