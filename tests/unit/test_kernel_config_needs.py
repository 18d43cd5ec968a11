"""@needs config=...: the header, finding a kernel's config, and the runner's skip.

The runner part is driven by the replay backend (no boot): a kernel whose
config lacks an option skips the test naming it; a kernel with no config
anywhere runs the test and says the needs went unchecked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.kernels import config_needs
from harness.kernels.base import KernelImage
from harness.outcome import Outcome, RunFacts, classify
from harness.testkinds.ktap import parse_ktap
from harness.testkinds.testdef import Needs, read_test
from tests.support.replay.script import Script, Step
from tests.unit.test_runner_policy import BOOT, guest_with, run_all, test_

CONFIG = "CONFIG_USERFAULTFD=y\n# CONFIG_ADVISE_SYSCALLS is not set\nCONFIG_ZRAM=m\n"


def _c(tmp_path: Path, header: str) -> Path:
    path = tmp_path / "t.c"
    path.write_text(f"/*\n{header}\n */\nint main(void) {{ return 0; }}\n")
    return path


def test_config_needs_are_parsed_with_or_without_prefix_and_add_up(tmp_path: Path) -> None:
    t = read_test(
        _c(
            tmp_path,
            " * @needs: numa-nodes=2 config=USERFAULTFD,CONFIG_MIGRATION\n"
            " * @needs: config=NUMA,USERFAULTFD thp=always",
        )
    )
    assert t.needs == Needs(
        2, 0, "always", ("CONFIG_USERFAULTFD", "CONFIG_MIGRATION", "CONFIG_NUMA")
    )


@pytest.mark.parametrize("value", ["config=userfaultfd", "config=A,,B", "config=A-B"])
def test_bad_config_names_are_refused_with_file_and_line(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        read_test(_c(tmp_path, f" * @needs: {value}"))
    assert "is not a kernel config name" in str(info.value)
    assert f"{tmp_path / 't.c'}:2:" in str(info.value)


def test_missing_means_neither_y_nor_m() -> None:
    config = config_needs.KernelConfig(
        {"CONFIG_USERFAULTFD": "y", "CONFIG_ZRAM": "m", "CONFIG_ADVISE_SYSCALLS": "n"}, "x"
    )
    wanted = ("CONFIG_USERFAULTFD", "CONFIG_ZRAM", "CONFIG_ADVISE_SYSCALLS", "CONFIG_KASAN")
    assert config.missing(wanted) == ("CONFIG_ADVISE_SYSCALLS", "CONFIG_KASAN")
    assert config_needs.KernelConfig(None, "none").missing(wanted) == ()


def test_built_kernel_config_beside_its_bzimage(tmp_path: Path) -> None:
    (tmp_path / "bzImage").write_bytes(b"k")
    (tmp_path / ".config").write_text(CONFIG)
    image = KernelImage(tmp_path / "bzImage", None, "6.12.0", "built")
    found = config_needs.from_host(image)
    assert found is not None and found.source == str(tmp_path / ".config")
    assert found.values == {
        "CONFIG_USERFAULTFD": "y",
        "CONFIG_ADVISE_SYSCALLS": "n",
        "CONFIG_ZRAM": "m",
    }


def test_debian_package_config_beside_its_vmlinuz(tmp_path: Path) -> None:
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "vmlinuz-6.12.1-amd64").write_bytes(b"k")
    (boot / "config-6.12.1-amd64").write_text(CONFIG)
    image = KernelImage(boot / "vmlinuz-6.12.1-amd64", None, "6.12.1-amd64", "debian")
    found = config_needs.from_host(image)
    assert found is not None and found.source.endswith("config-6.12.1-amd64")


def test_no_config_on_the_host_or_in_the_guest(tmp_path: Path) -> None:
    (tmp_path / "vmlinuz").write_bytes(b"k")
    assert config_needs.from_host(KernelImage(tmp_path / "vmlinuz", None, None, "x")) is None
    assert config_needs.from_guest("").values is None
    assert config_needs.from_guest(CONFIG).source == "/proc/config.gz in the guest"


# -- the runner ---------------------------------------------------------------------


def _with_host_config(tmp_path: Path, text: str) -> None:
    """guest_with's kernel image is tmp_path/vmlinuz: put a .config beside it."""
    (tmp_path / ".config").write_text(text)


def test_an_option_the_kernel_lacks_is_a_skip_naming_it(tmp_path: Path) -> None:
    _with_host_config(tmp_path, CONFIG)
    t = test_("a", needs=Needs(config=("CONFIG_USERFAULTFD", "CONFIG_ADVISE_SYSCALLS")))
    guest, backend = guest_with(tmp_path, Script(BOOT, steps=(Step("/opt/tests/a"),)), t)
    (a,) = run_all(guest, t)
    assert a.verdict.outcome is Outcome.SKIP
    assert a.verdict.summary.startswith(
        "kernel lacks CONFIG_ADVISE_SYSCALLS (needed by @needs config=...;"
    )
    assert str(tmp_path / ".config") in a.verdict.summary
    assert not any("/opt/tests/a" in c for c in backend.machines[0].commands)  # never ran


def test_options_the_kernel_has_let_the_test_run(tmp_path: Path) -> None:
    _with_host_config(tmp_path, CONFIG)
    t = test_("a", needs=Needs(config=("CONFIG_USERFAULTFD", "CONFIG_ZRAM")))
    guest, _ = guest_with(tmp_path, Script(BOOT, steps=(Step("/opt/tests/a"),)), t)
    (a,) = run_all(guest, t)
    assert a.verdict.outcome is Outcome.PASS
    assert a.verdict.details == ()


def test_proc_config_gz_is_read_when_the_host_has_no_config(tmp_path: Path) -> None:
    proc = Step("config.gz", stdout=CONFIG)
    t = test_("a", needs=Needs(config=("CONFIG_ADVISE_SYSCALLS",)))
    guest, _ = guest_with(tmp_path, Script(BOOT, steps=(proc, Step("/opt/tests/a"))), t)
    (a,) = run_all(guest, t)
    assert a.verdict.outcome is Outcome.SKIP
    assert "CONFIG_ADVISE_SYSCALLS" in a.verdict.summary
    assert "/proc/config.gz in the guest" in a.verdict.summary


def test_no_config_anywhere_runs_the_test_and_says_so(tmp_path: Path) -> None:
    proc = Step("config.gz", exit_code=1)
    t = test_("a", needs=Needs(config=("CONFIG_ADVISE_SYSCALLS",)))
    t2 = test_("b", needs=Needs(config=("CONFIG_NUMA",)))
    script = Script(BOOT, steps=(proc, Step("/opt/tests/a"), Step("/opt/tests/b")))
    guest, backend = guest_with(tmp_path, script, t, t2)
    a, b = run_all(guest, t, t2)
    assert (a.verdict.outcome, b.verdict.outcome) == (Outcome.PASS, Outcome.PASS)
    assert "config needs CONFIG_ADVISE_SYSCALLS not checked: no config" in a.verdict.details[0]
    assert "the test ran anyway" in b.verdict.details[0]
    asked = [c for c in backend.machines[0].commands if "config.gz" in c]
    assert len(asked) == 1  # looked up once per kernel


# -- reproducers that skip after their plan ---------------------------------------


def test_a_skip_after_the_plan_gives_its_reason() -> None:
    out = (
        "TAP version 13\n1..8\nok 1 - first\nok 2 - madvise(MADV_DONTNEED) of pages 1..2 "
        "# SKIP kernel lacks madvise(2) (CONFIG_ADVISE_SYSCALLS) (errno 38: ENOSYS)\n"
    )
    verdict = classify(RunFacts(exit_code=4, ktap=parse_ktap(out)))
    assert verdict.outcome is Outcome.SKIP
    assert verdict.summary == "kernel lacks madvise(2) (CONFIG_ADVISE_SYSCALLS) (errno 38: ENOSYS)"
