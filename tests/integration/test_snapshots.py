"""Snapshots on a real guest: a test's leftovers, a crash, and nothing left behind.

One Debian 6.12 guest per isolation: its ready state is saved after the
cold boot, and a fresh guest is a restore of it.  A test that writes a
sysctl, leaves a file in /tmp and a process running is seen by the next
test when tests share the guest (``isolation: kernel``) and not under
``isolation: test``; a kernel crash is followed by a restore, not a cold
boot, and the next test passes; no QEMU (the module's leak check) and no
saved state is left once the guest is shut down.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from harness.config import Isolation, load_kernels, select
from harness.machine.guest_ram import disk_bytes
from harness.machine.snapshot_cache import DIR_ENV
from harness.outcome import Outcome
from harness.results.evidence import new_run_dir
from harness.results.records import TestRun
from harness.session import KernelGuest, new_context
from harness.testkinds.testdef import read_test
from tests.integration.helpers import REPO

pytestmark = pytest.mark.boot
MakeGuest = Callable[..., KernelGuest]

#: leaves a sysctl changed, a file in /tmp and a process behind
DIRTY = """#!/bin/sh
echo 4242 > /proc/sys/kernel/msgmni
touch /tmp/leftover
setsid sleep 4242 >/dev/null 2>&1 < /dev/null &
"""
#: passes on a pristine guest; fails, saying what it saw, on a dirty one
CLEAN = """#!/bin/sh
seen=
[ "$(cat /proc/sys/kernel/msgmni)" = 4242 ] && seen="$seen sysctl"
[ -e /tmp/leftover ] && seen="$seen file"
ps | grep -q '[s]leep 4242' && seen="$seen process"
[ -z "$seen" ] || { echo "left by an earlier test:$seen"; exit 1; }
"""
CRASH = "#!/bin/sh\necho c > /proc/sysrq-trigger\nsleep 30\n"


@pytest.fixture
def make_guest(tmp_path: Path) -> Iterator[MakeGuest]:
    """Guests of debian-6.12 with the three shell tests, shut down at the end."""
    for name, text in (("dirty", DIRTY), ("clean", CLEAN), ("crash", CRASH)):
        (tmp_path / f"{name}.sh").write_text(text)
    tests = [read_test(tmp_path / f"{n}.sh") for n in ("dirty", "clean", "crash")]
    spec = select(load_kernels(REPO / "kernels.yaml"), ["debian-6.12"], REPO)[0]
    made: list[KernelGuest] = []

    def make(isolation: Isolation, **changes: object) -> KernelGuest:
        results = new_run_dir(tmp_path / f"results-{isolation.value}")
        ctx = new_context(results, tests, log=lambda _t: None)
        guest = KernelGuest(replace(spec, isolation=isolation, **changes), ctx, tests)
        made.append(guest)
        assert guest.prepare() is None, guest.setup_error
        return guest

    yield make
    for guest in made:
        guest.shutdown()


def _run(guest: KernelGuest, name: str) -> TestRun:
    return guest.run(next(t for t in guest.tests if t.name == name))


def _restored(guest: KernelGuest, boot: int) -> bool:
    restore = guest.directory / f"boot-{boot}" / "restore.json"
    return restore.is_file() and json.loads(restore.read_text())["problem"] is None


def test_shared_guest_sees_leftovers_and_a_crash_is_restored(make_guest: MakeGuest) -> None:
    guest = make_guest(Isolation.KERNEL)
    assert _run(guest, "dirty").verdict.outcome is Outcome.PASS
    seen = _run(guest, "clean")
    assert seen.verdict.outcome is Outcome.FAIL, "without isolation the next test sees it all"
    assert seen.result is not None and "sysctl file process" in seen.result.stdout
    crash = _run(guest, "crash")
    assert crash.verdict.outcome is Outcome.PANIC, crash.verdict
    assert crash.reports and "sysrq triggered crash" in crash.reports[0].title
    after = _run(guest, "clean")
    assert after.verdict.outcome is Outcome.PASS, after.verdict
    assert after.boot == crash.boot + 1 and _restored(guest, after.boot), "restored, not booted"
    starts = guest.record().starts
    assert starts is not None and len(starts.cold_boots) == 1 and len(starts.restores) == 1
    state = guest._life.snaps.state  # the file on disk, to check it goes
    assert state is not None and state.path.is_file()
    guest.shutdown()
    assert not state.path.parent.exists(), "the saved state must go with the guest"


def _between_tests(guest: KernelGuest, boot: int) -> bool:
    return (
        _restored(guest, boot)
        and json.loads((guest.directory / f"boot-{boot}" / "restore.json").read_text())[
            "between_tests"
        ]
    )


def test_isolation_test_hides_leftovers_with_a_restore_per_test(make_guest: MakeGuest) -> None:
    """Each test's guest is a new QEMU over the saved RAM (copy-on-write), the done one let go
    in the background; after a panic (QEMU gone) the same, and the evidence tells them apart."""
    guest = make_guest(Isolation.TEST)
    dirty = _run(guest, "dirty")
    assert dirty.verdict.outcome is Outcome.PASS
    qemu = guest._life.machine
    assert qemu is None, "the done guest is let go at once"
    clean = _run(guest, "clean")
    assert clean.verdict.outcome is Outcome.PASS, clean.result
    assert clean.boot == dirty.boot + 1 and _between_tests(guest, clean.boot)
    crash = _run(guest, "crash")
    assert crash.verdict.outcome is Outcome.PANIC, crash.verdict
    _run(guest, "dirty")
    assert _restored(guest, crash.boot + 1) and not _between_tests(guest, crash.boot + 1)
    after = _run(guest, "clean")
    assert after.verdict.outcome is Outcome.PASS, after.result
    assert _between_tests(guest, after.boot)
    starts = guest.record().starts
    assert starts is not None and len(starts.cold_boots) == 1 and len(starts.restores) == 4
    assert (guest.directory / "boot-1" / "console.log").is_file()
    cmdline = (guest.directory / f"boot-{after.boot}" / "qemu-cmdline.txt").read_text()
    assert "share=off" in cmdline and "-incoming defer" in cmdline, "the saved RAM, mapped"
    spare = guest._life.snaps.spares.spare
    assert spare is not None and spare.machine.running, "the next test's QEMU is up already"
    guest.shutdown()
    assert not guest._life.retiring, "closing waits for every QEMU let go"
    assert not spare.machine.running and not spare.directory.exists(), "the spare goes too"
    assert not list(guest.directory.glob(".spare*"))


def _kept_bytes(entry: Path) -> int:
    """The devices' stream and the RAM file beside it, in bytes on disk (the RAM is sparse)."""
    assert (entry / "guest.state.ram0").is_file(), sorted(p.name for p in entry.iterdir())
    return sum(disk_bytes(p) for p in entry.iterdir())


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if p.name != "keys")


def test_kept_snapshot_serves_the_next_run_and_goes_when_its_key_changes(
    make_guest: MakeGuest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "kept"
    monkeypatch.setenv(DIR_ENV, str(cache))
    first = make_guest(Isolation.KERNEL, keep_snapshot=True)
    assert _run(first, "clean").verdict.outcome is Outcome.PASS
    starts = first.record().starts
    assert starts is not None and starts.kept == "stored" and len(starts.cold_boots) == 1
    first.shutdown()
    (entry,) = _entries(cache)
    assert _kept_bytes(entry) > 10_000_000, "the state and its RAM outlive their run"

    second = make_guest(Isolation.KERNEL, keep_snapshot=True)  # a new run: new results, keys
    clean = _run(second, "clean")
    assert clean.verdict.outcome is Outcome.PASS, clean.result
    assert _restored(second, clean.boot), "the first guest of the next run is a restore"
    starts = second.record().starts
    assert starts is not None and starts.kept == "restored"
    assert starts.cold_boots == () and len(starts.restores) == 1
    second.shutdown()
    assert _entries(cache) == [entry], "the kept state stays for the run after"

    (entry / "guest.state").write_bytes(b"not a migration stream")  # a damaged entry
    third = make_guest(Isolation.KERNEL, keep_snapshot=True)
    assert _run(third, "clean").verdict.outcome is Outcome.PASS
    starts = third.record().starts
    assert starts is not None and len(starts.cold_boots) == 1 and starts.kept == "stored"
    assert any("dropped from the cache" in note for note in starts.notes), starts.notes
    third.shutdown()
    assert _entries(cache) == [entry] and _kept_bytes(entry) > 10_000_000

    fourth = make_guest(Isolation.KERNEL, keep_snapshot=True, cmdline="kharness_key_change=1")
    assert _run(fourth, "clean").verdict.outcome is Outcome.PASS
    starts = fourth.record().starts
    assert starts is not None and starts.kept == "stored" and len(starts.cold_boots) == 1
    fourth.shutdown()
    (changed,) = _entries(cache)
    assert changed != entry, "a changed command line is a new entry; the old one is dropped"
