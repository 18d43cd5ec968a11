"""Guest tests beyond plain C reproducers, on a real Debian 6.12 kernel.

* ``@needs: config=...``: Debian's own config file (boot/config-<release> of
  the package) lacks CONFIG_DEBUG_VM, so a test needing it skips naming the
  option, while a test whose options are all there runs.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import DEBIAN_612, write_kernels

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
