"""kernels.yaml validation: every mistake is named with its place and fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.config import load_kernels, select, unknown_expectations
from harness.errors import ConfigError
from harness.kernels.debian import DebianSource
from harness.kernels.image import ImageSource
from harness.machine.accel import Accel
from harness.outcome import Outcome
from harness.testkinds.testdef import GuestTest, known_names


def _bzimage(path: Path) -> Path:
    data = bytearray(0x400)
    data[0x202:0x206] = b"HdrS"
    path.write_bytes(bytes(data))
    return path


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kernels.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_kernels(_write(tmp_path, text))
    return str(info.value)


def test_full_entry_is_read(tmp_path: Path) -> None:
    _bzimage(tmp_path / "bzImage")
    specs = load_kernels(
        _write(
            tmp_path,
            """
        kernels:
          - name: mine
            image: bzImage
            cmdline: nokaslr
            memory: 3G
            cpus: 4
            accel: tcg
            timeouts: {boot: 30, test: 10}
            reboot_after_oops: false
            expect:
              uffd_move_swap_pmd.c: {outcome: oops, reason: known BUG}
          - name: deb
            debian: {package: "linux-image-6.12.*-amd64-unsigned", suite: bookworm-security}
    """,
        )
    )
    mine, deb = specs
    assert mine.source == ImageSource(tmp_path / "bzImage")
    assert (mine.memory_mib, mine.cpus, mine.accel) == (3072, 4, Accel.TCG)
    assert (mine.timeouts.boot, mine.timeouts.test, mine.reboot_after_oops) == (30, 10, False)
    assert mine.expect["uffd_move_swap_pmd"].outcome is Outcome.OOPS
    assert deb.source == DebianSource(
        "linux-image-6.12.*-amd64-unsigned", suite="bookworm-security"
    )
    assert deb.memory_mib == 2048


def test_shorthand_debian(tmp_path: Path) -> None:
    (spec,) = load_kernels(
        _write(
            tmp_path,
            """
        kernels:
          - {name: d, debian: "linux-image-6.1.0-*-amd64-unsigned"}
    """,
        )
    )
    assert spec.source == DebianSource("linux-image-6.1.0-*-amd64-unsigned")


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    text = _problems(
        tmp_path,
        """
        kernels:
          - name: a
            image: missing-bzImage
            memroy: 2G
            cpus: two
          - name: a
            debian: {package: "linux-image-6.12.*"}
          - name: b
            accel: warp
    """,
    )
    assert "kernel #1 (a): image: " in text and "missing-bzImage does not exist" in text
    assert "unknown key 'memroy'; did you mean 'memory'?" in text
    assert "'cpus' must be an integer, got str 'two'" in text
    assert "duplicate name 'a'" in text
    assert "kernel #3 (b): needs exactly one kernel source" in text
    assert "accel 'warp' is not one of auto, kvm, tcg" in text
    assert text.startswith(str(tmp_path / "kernels.yaml"))


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("kernels: [", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("kernels: []\n", "'kernels' is empty"),
        ("kernel: []\n", "missing required key 'kernels'"),
        ("kernels:\n  - name: 'bad name'\n    debian: linux-image-x\n", "may hold only letters"),
        ("kernels:\n  - name: x\n    debian: {package: vim}\n", "is not a kernel package"),
        ("kernels:\n  - name: x\n    debian: linux-image-x\n    memory: lots\n", "size 'lots'"),
        (
            "kernels:\n  - name: x\n    debian: linux-image-x\n    timeouts: {boot: -1}\n",
            "must be a positive number",
        ),
        (
            "kernels:\n  - name: x\n    debian: linux-image-x\n"
            "    expect: {t: {outcome: pass, reason: r}}\n",
            "outcome 'pass' cannot be expected",
        ),
        (
            "kernels:\n  - name: x\n    debian: linux-image-x\n    expect: {t: {outcome: fail}}\n",
            "missing required key 'reason'",
        ),
    ],
)
def test_single_mistakes(tmp_path: Path, yaml_text: str, message: str) -> None:
    assert message in _problems(tmp_path, yaml_text)


def test_image_that_is_not_a_kernel(tmp_path: Path) -> None:
    (tmp_path / "vmlinux").write_bytes(b"\x7fELF" + b"\0" * 600)
    (tmp_path / "notes.txt").write_text("hello" * 200)
    text = _problems(
        tmp_path,
        """
        kernels:
          - {name: elf, image: vmlinux}
          - {name: txt, image: {path: notes.txt, modules: nowhere}}
    """,
    )
    assert "is an ELF vmlinux, not a bootable image; use arch/x86/boot/bzImage" in text
    assert "is not a kernel image for x86_64" in text
    assert "modules directory" in text and "has no kernel/ subdirectory" in text


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--kernels-file"):
        load_kernels(tmp_path / "nope.yaml")


def test_select_unknown_kernel_lists_known(tmp_path: Path) -> None:
    specs = load_kernels(_write(tmp_path, "kernels:\n  - {name: d, debian: linux-image-x}\n"))
    assert select(specs, [], tmp_path) == specs
    with pytest.raises(ConfigError, match="known kernels: d"):
        select(specs, ["e"], tmp_path)


def test_backend_is_read_and_checked(tmp_path: Path) -> None:
    image = _bzimage(tmp_path / "bzImage")
    specs = load_kernels(
        _write(
            tmp_path,
            f"""
            kernels:
              - {{name: a, image: {image}}}
              - {{name: b, image: {image}, backend: virtme}}
            """,
        )
    )
    assert [s.backend for s in specs] == ["qemu", "virtme"]
    text = _problems(tmp_path, f"kernels:\n  - {{name: a, image: {image}, backend: vmware}}\n")
    assert "backend 'vmware' is not one of qemu, virtme" in text


def test_a_kernel_built_for_virtme_gets_virtme_s_fragment(tmp_path: Path) -> None:
    from harness.machine.virtme import VIRTME_FRAGMENT

    src = tmp_path / "linux"
    for name in ("Makefile", "Kconfig", "arch/Kconfig", "scripts/kconfig/Makefile"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text("")
    text = f"""
    kernels:
      - {{name: q, build: {{source: {src}}}}}
      - {{name: v, build: {{source: {src}}}, backend: virtme}}
    """
    try:
        q, v = load_kernels(_write(tmp_path, text))
    except ConfigError as exc:
        pytest.fail(f"a plain tree should be accepted: {exc}")
    assert VIRTME_FRAGMENT not in q.source.recipe.fragments  # type: ignore[attr-defined]
    assert v.source.recipe.fragments[-1] == VIRTME_FRAGMENT  # type: ignore[attr-defined]


def test_an_unknown_key_lists_every_key_an_entry_may_have(tmp_path: Path) -> None:
    path = tmp_path / "kernels.yaml"
    path.write_text('kernels:\n  - {name: a, debian: "linux-image-6.12.*", zzz: 1}\n')
    with pytest.raises(ConfigError) as err:
        load_kernels(path)
    listed = str(err.value).split("known keys: ", 1)[1].split(", ")
    for key in ("name", "debian", "build", "image", "memory", "timeouts", "expect", "kunit"):
        assert key in listed, key


def test_expect_naming_no_guest_test_is_a_problem_with_a_guess(tmp_path: Path) -> None:
    path = tmp_path / "kernels.yaml"
    path.write_text(
        "kernels:\n  - name: a\n    debian: 'linux-image-6.12.*'\n    expect:\n"
        "      uffd_api_unknwn: {outcome: fail, reason: r}\n"
        "      thp_sysfs: {outcome: fail, reason: r}\n"
        "      kselftest.mincore.mincore_selftest: {outcome: fail, reason: r}\n"
    )
    specs = load_kernels(path)
    known = {"uffd_api_unknown_feature", "thp_sysfs"}
    (problem,) = unknown_expectations(specs, known)
    assert "kernel a: expect: 'uffd_api_unknwn' names no guest test" in problem
    assert "did you mean 'uffd_api_unknown_feature'?" in problem


def test_known_guest_test_names_include_the_neighbours(tmp_path: Path) -> None:
    for name in ("c/a.c", "c/b.c", "sh/s.sh"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("/* t */\n")
    test = GuestTest("a", tmp_path / "c" / "a.c")
    assert known_names([test]) == {"a", "b", "s"}


@pytest.mark.parametrize(
    ("value", "snapshot", "keep"),
    [("true", True, False), ("false", False, False), ("keep", True, True)],
)
def test_snapshot_setting(tmp_path: Path, value: str, snapshot: bool, keep: bool) -> None:
    path = tmp_path / "kernels.yaml"
    _bzimage(tmp_path / "bzImage")
    path.write_text(f"kernels:\n  - name: k\n    image: bzImage\n    snapshot: {value}\n")
    (spec,) = load_kernels(path)
    assert (spec.snapshot, spec.keep_snapshot) == (snapshot, keep)


def test_snapshot_setting_rejects_other_words(tmp_path: Path) -> None:
    path = tmp_path / "kernels.yaml"
    _bzimage(tmp_path / "bzImage")
    path.write_text("kernels:\n  - name: k\n    image: bzImage\n    snapshot: always\n")
    with pytest.raises(ConfigError, match="snapshot 'always' is not one of true, false, keep"):
        load_kernels(path)


def test_a_build_names_the_inbox_its_series_come_from(tmp_path: Path) -> None:
    src = tmp_path / "linux"
    for name in ("Makefile", "Kconfig", "arch/Kconfig", "scripts/kconfig/Makefile"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text("")
    (tmp_path / "list").mkdir()
    text = f"""
    kernels:
      - {{name: a, build: {{source: {src}, inbox: "https://lore.kernel.org/linux-mm"}}}}
      - {{name: b, build: {{source: {src}, inbox: list}}}}
      - {{name: c, build: {{source: {src}}}}}
    """
    a, b, c = load_kernels(_write(tmp_path, text))
    assert a.source.inbox == "https://lore.kernel.org/linux-mm"  # type: ignore[attr-defined]
    assert b.source.inbox == str(tmp_path / "list")  # type: ignore[attr-defined]
    assert c.source.inbox is None  # type: ignore[attr-defined]
    bad = f"kernels:\n  - {{name: d, build: {{source: {src}, inbox: lore-mm}}}}\n"
    with pytest.raises(ConfigError, match="inbox: 'lore-mm' is neither an http"):
        load_kernels(_write(tmp_path, bad))
