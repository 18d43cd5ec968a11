"""A Debian kernel's panic symbolized with its -dbg package (opt-in: a 985 MiB download).

Boots Debian's 6.12 with ``debug_info: true`` (the provider fetches and
verifies linux-image-<release>-dbg, extracts its vmlinux), crashes it on
purpose (sysrq c), and checks that the panic comes back with file:line from
the package's DWARF, KASLR on, in the failure text and the text summary.
The default suite does not download the package: set KHARNESS_DEBIAN_DBG=1
(or have it in the cache already) to run this.
"""

from __future__ import annotations

import os

import pytest

from harness.cache import cache_root
from harness.kernels.debian import DebianSource
from harness.outcome import Outcome
from harness.reporters import text
from harness.results.records import KernelRecord
from harness.results.summarize import failure_text, summarize
from harness.testkinds.testdef import read_test
from harness.testkinds.trial import Trial
from tests.integration.helpers import GUEST_DATA

pytestmark = [pytest.mark.boot]


def _cached() -> bool:
    return any((cache_root() / "debian" / "debug").glob("linux-image-6.12.*-amd64-dbg_*"))


@pytest.mark.skipif(
    not os.environ.get("KHARNESS_DEBIAN_DBG") and not _cached(),
    reason="downloads linux-image-6.12.*-amd64-dbg (985 MiB): set KHARNESS_DEBIAN_DBG=1",
)
def test_debian_panic_is_symbolized_with_the_dbg_package(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    source = DebianSource(
        "linux-image-6.12.*-amd64-unsigned", suite="bookworm-security", debug_info=True
    )
    image = source.resolve(print)
    assert image.debug is not None and image.debug.vmlinux.is_file()
    crash = read_test(GUEST_DATA / "sysrq_crash.sh")
    trial = Trial(tmp_path_factory.mktemp("dbg"), [crash])
    (run,) = trial.run("d612dbg", image)
    assert run.verdict.outcome is Outcome.PANIC, run.verdict.summary
    (report,) = run.reports
    decoded = report.decoded
    assert decoded is not None and decoded.guilty is not None, report
    assert (decoded.guilty.function, decoded.guilty.file) == (
        "sysrq_handle_crash",
        "drivers/tty/sysrq.c",
    )
    assert any(f.where and f.where.startswith("fs/read_write.c:") for f in decoded.frames)
    assert "sysrq_handle_crash+" in failure_text(run) and "drivers/tty/sysrq.c:" in failure_text(
        run
    )
    if image.debug.source is not None:  # linux-source of this version was in the cache
        assert decoded.to and "linux-kernel@vger.kernel.org" in decoded.cc, decoded.maintainers
    kernel = KernelRecord("d612dbg", source.describe(), image.origin, image.release)
    rendered = text.render(summarize("dbg", [run], [kernel], [], {}))
    assert f"guilty: sysrq_handle_crash ({decoded.guilty.where})" in rendered
    print(rendered)
