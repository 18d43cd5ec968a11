"""Guest tests beyond plain C reproducers, on a real Debian 6.12 kernel.

* ``@needs: config=...``: Debian's own config file (boot/config-<release> of
  the package) lacks CONFIG_DEBUG_VM, so a test needing it skips naming the
  option, while a test whose options are all there runs.
* shell tests: guest-tests/sh/thp_sysfs.sh runs in the guest's busybox sh
  (KTAP, exit 0), next to a script that skips: same outcome model as C.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.integration.helpers import DEBIAN_612, REPO, write_kernels

pytestmark = pytest.mark.boot

#: fails if it ever runs: the skip must come from the harness, before the test
NEEDS_DEBUG_VM = """/*
 * @needs: config=USERFAULTFD,DEBUG_VM
 */
int main(void) { return 1; }
"""

NEEDS_WHAT_DEBIAN_HAS = """/*
 * @needs: config=USERFAULTFD,TRANSPARENT_HUGEPAGE,ADVISE_SYSCALLS
 */
int main(void) { return 0; }
"""


def _results(project: pytest.Pytester) -> dict[str, dict]:
    (run,) = [p for p in (project.path / "res").iterdir() if p.name != "latest"]
    summary = json.loads((run / "summary.json").read_text())
    return {t["test"]: t for t in summary["tests"]}


def test_a_config_option_the_debian_kernel_lacks_skips_naming_it(
    project: pytest.Pytester,
) -> None:
    cdir = project.path / "guest-tests" / "c"
    (cdir / "needs_debug_vm.c").write_text(NEEDS_DEBUG_VM)
    (cdir / "needs_debian_options.c").write_text(NEEDS_WHAT_DEBIAN_HAS)
    write_kernels(project, f"kernels:\n  - {{name: d612, debian: {DEBIAN_612}}}\n")
    result = project.runpytest_subprocess("guest-tests", "--results-dir=res", "-rA", timeout=300)
    out = result.stdout.str()
    result.assert_outcomes(passed=1, skipped=1)
    assert "SKIPPED [1] guest-tests/c/needs_debug_vm.c" in out
    assert "kernel lacks CONFIG_DEBUG_VM (needed by @needs config=...; read from " in out
    assert "/boot/config-6.12." in out  # Debian's config file, not a guess
    assert "PASSED guest-tests/c/needs_debian_options.c::d612" in out
    by_test = _results(project)
    assert by_test["needs_debug_vm"]["outcome"] == "skip"


SKIPPING_SCRIPT = """#!/bin/sh
# @timeout: 10
echo "TAP version 13"
[ -e /sys/kernel/no_such_knob ] && exit 0
echo "1..0 # SKIP no /sys/kernel/no_such_knob in $(uname -r)"
exit 4
"""


def test_shell_tests_run_in_the_guest_shell(project: pytest.Pytester) -> None:
    sdir = project.path / "guest-tests" / "sh"
    sdir.mkdir()
    shutil.copy(REPO / "guest-tests" / "sh" / "thp_sysfs.sh", sdir)
    (sdir / "skips_here.sh").write_text(SKIPPING_SCRIPT)
    write_kernels(project, f"kernels:\n  - {{name: d612, debian: {DEBIAN_612}}}\n")
    result = project.runpytest_subprocess("guest-tests", "--results-dir=res", "-rA", timeout=300)
    out = result.stdout.str()
    result.assert_outcomes(passed=1, skipped=1)
    assert "PASSED guest-tests/sh/thp_sysfs.sh::d612" in out
    assert "SKIPPED [1] guest-tests/sh/skips_here.sh:1: no /sys/kernel/no_such_knob in 6.12." in out
    by_test = _results(project)
    stdout = (project.path / by_test["thp_sysfs"]["evidence"] / "stdout.txt").read_text()
    assert "ok 6 - hpage_pmd_size is 2 MiB" in stdout
