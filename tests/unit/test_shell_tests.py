"""Shell guest tests: guest-tests/sh/*.sh with the same header tags and outcome model.

The header is the script's leading ``#`` block; ``sh -n`` (busybox, the QEMU
guest's shell) stands in for compiling; the guest runs ``sh <script>``; the
pytest plugin collects them like the C reproducers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import ConfigError, run_checked
from harness.guest import image as guest_image
from harness.guest.keys import GuestKeys
from harness.kernels.base import KernelImage
from harness.machine.base import GuestPayload
from harness.machine.virtme import VirtmeBackend
from harness.outcome import Outcome
from harness.session import guest_command
from harness.testkinds.compile import check_script
from harness.testkinds.testdef import Needs, discover, read_test
from tests.support.replay.script import Script, Step
from tests.unit.test_runner_policy import BOOT, guest_with, run_all

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """#!/bin/sh
# checks a sysctl
#
# @timeout: 20
# @needs: config=SYSCTL
echo "TAP version 13"
# @timeout: 999   (not the header any more: the body has begun)
echo "1..1"
echo "ok 1 - fine"
"""


def _sh(tmp_path: Path, text: str = SCRIPT, name: str = "t.sh") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_header_is_the_leading_comment_block(tmp_path: Path) -> None:
    t = read_test(_sh(tmp_path))
    assert (t.name, t.kind, t.timeout) == ("t", "sh", 20)
    assert t.needs == Needs(config=("CONFIG_SYSCTL",))


def test_a_bad_tag_names_the_script_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_test(_sh(tmp_path, "#!/bin/sh\n#\n# @timout: 5\nexit 0\n"))
    assert f"{tmp_path / 't.sh'}:3: unknown header tag '@timout'" in str(info.value)


def test_discover_finds_scripts_and_reproducers(tmp_path: Path) -> None:
    for name in ("b.sh", "a.c", "notes.txt"):
        (tmp_path / name).write_text("")
    assert [p.name for p in discover(tmp_path)] == ["a.c", "b.sh"]


def test_syntax_is_checked_on_the_host(tmp_path: Path) -> None:
    good = check_script(_sh(tmp_path))
    assert good.ok and good.binary == tmp_path / "t.sh"
    bad = check_script(_sh(tmp_path, "#!/bin/sh\nif true; then\necho x\n", "bad.sh"))
    assert not bad.ok
    assert "-n" in bad.log and "bad.sh" in bad.log


def test_the_guest_runs_scripts_with_its_shell(tmp_path: Path) -> None:
    sh, c = read_test(_sh(tmp_path)), read_test(_c_file(tmp_path))
    assert guest_command(sh, "/opt/tests") == "sh /opt/tests/t"
    assert guest_command(c, "/opt/tests") == "/opt/tests/c"


def _c_file(tmp_path: Path) -> Path:
    path = tmp_path / "c.c"
    path.write_text("int main(void) { return 0; }\n")
    return path


def test_same_outcome_model_as_the_reproducers(tmp_path: Path) -> None:
    skip_out = "TAP version 13\n1..0 # SKIP kernel lacks transparent hugepages\n"
    fail_out = "TAP version 13\n1..1\n# expected '1', got '2'\nnot ok 1 - one selected mode\n"
    script = Script(
        BOOT,
        steps=(
            Step(r"sh /opt/tests/skips\b", exit_code=4, stdout=skip_out),
            Step(r"sh /opt/tests/fails\b", exit_code=1, stdout=fail_out),
        ),
    )
    skips = read_test(_sh(tmp_path, SCRIPT, "skips.sh"))
    fails = read_test(_sh(tmp_path, SCRIPT, "fails.sh"))
    guest, backend = guest_with(tmp_path, script, skips, fails)
    a, b = run_all(guest, skips, fails)
    assert (a.verdict.outcome, a.verdict.summary) == (
        Outcome.SKIP,
        "kernel lacks transparent hugepages",
    )
    assert (b.verdict.outcome, b.verdict.summary) == (
        Outcome.FAIL,
        "fail: not ok 1 - one selected mode",
    )
    assert any("sh /opt/tests/skips" in c for c in backend.machines[0].commands)


def test_repository_shell_tests_parse_and_pass_sh_n() -> None:
    scripts = discover(REPO / "guest-tests" / "sh")
    assert scripts, "guest-tests/sh holds the shell tests"
    for path in scripts:
        assert read_test(path).kind == "sh"
        assert check_script(path).ok, check_script(path).log


def test_the_plugin_collects_scripts_with_readable_node_ids(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    pytester.makeconftest('pytest_plugins = ["harness.plugin.hooks"]\n')
    (pytester.path / "kernels.yaml").write_text(
        'kernels:\n  - {name: k1, debian: "linux-image-6.12.*-amd64-unsigned"}\n'
    )
    for kind, name, text in (("sh", "thp.sh", SCRIPT), ("c", "thp.c", "int main(void){}\n")):
        (pytester.path / "guest-tests" / kind).mkdir(parents=True, exist_ok=True)
        (pytester.path / "guest-tests" / kind / name).write_text(text)
    (pytester.path / "guest-tests" / "sh" / "sysctl.sh").write_text(SCRIPT)
    result = pytester.runpytest_inprocess("guest-tests", "--collect-only", "-q")
    out = result.stdout.str()
    assert "guest-tests/sh/sysctl.sh::k1" in out
    assert "guest-tests/c/thp.c::k1" in out
    # one directory in the guest: the second 'thp' is refused, naming the first
    assert "guest test name 'thp' is taken by" in out


def test_scripts_reach_both_backends_tests_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    script = check_script(REPO / "guest-tests" / "sh" / "thp_sysfs.sh")
    layer = guest_image.tests_layer([script])
    assert layer is not None
    listing = run_checked(["cpio", "-itv"], stdin=layer.open("rb")).stdout
    assert "-rwxr-xr-x" in listing and "opt/tests/thp_sysfs" in listing
    image = tmp_path / "vmlinuz"
    image.write_bytes(b"MZ")
    keys = GuestKeys(Path("/k/host"), "ssh-ed25519 AAAA", Path("/k/client"), "ssh-ed25519 B")
    payload = GuestPayload(KernelImage(image, None, "6.1", "test"), (script,), keys)
    files = VirtmeBackend().prepare(payload, tmp_path / "kernel")
    copied = Path(files.tests_dir) / "thp_sysfs"
    assert copied.read_bytes() == (REPO / "guest-tests" / "sh" / "thp_sysfs.sh").read_bytes()
