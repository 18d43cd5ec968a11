"""The pure parts of parallel and remote runs: shipments, node ids, -n auto, hosts.yaml."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.config import KernelSpec
from harness.errors import ConfigError
from harness.hosts import Host, load_hosts
from harness.outcome import Outcome
from harness.plugin.shipping import EvidenceSync, KernelShipment, Shipment
from harness.plugin.xdist import auto_workers, kernel_scope, pair_of, strip_group
from harness.results.records import KernelRecord, OutsideRecord, ReportRecord, TestRecord


class _Report:
    """Stands in for a pytest report: shipments only ever set and read one attribute."""


def _spec(name: str, cpus: int = 2, memory: int = 2048) -> KernelSpec:
    return KernelSpec(name=name, source=None, memory_mib=memory, cpus=cpus)  # type: ignore[arg-type]


def test_shipment_round_trip_through_plain_values() -> None:
    record = TestRecord("t", "k", Outcome.OOPS, "oops: BUG", 1.5, 2, "/w/run/k/t")
    kernel = KernelShipment(
        KernelRecord("k", "Debian x", release="6.12", boots=2, timings={"boot": 4.0}),
        (OutsideRecord("k", 1, "boot", ReportRecord("warning", "WARNING: at x")),),
    )
    report = _Report()
    Shipment((record,), kernel, {"k/t/console.txt": b"x"}, "/w/run").attach(report)
    plain = report.kharness  # type: ignore[attr-defined]
    assert isinstance(plain, dict) and isinstance(plain["records"][0], dict)
    back = Shipment.of(report)
    assert back is not None
    assert back.records == (record,)
    assert back.kernel == kernel
    assert back.files == {"k/t/console.txt": b"x"} and back.root == "/w/run"
    assert Shipment.of(_Report()) is None


def test_unpack_writes_files_and_points_evidence_here(tmp_path: Path) -> None:
    record = TestRecord("t", "k", Outcome.PASS, "pass", evidence="/scratch/r1/k/t")
    shipment = Shipment((record,), files={"k/t/result.json": b"{}"}, root="/scratch/r1")
    local = shipment.unpack(tmp_path)
    assert (tmp_path / "k" / "t" / "result.json").read_bytes() == b"{}"
    assert local.records[0].evidence == f"{tmp_path}/k/t"
    assert local.rebase("evidence: /scratch/r1/k/t", tmp_path) == f"evidence: {tmp_path}/k/t"


@pytest.mark.parametrize("name", ["../outside", "/etc/passwd", "k/../../x", "."])
def test_unpack_refuses_paths_leaving_the_results(tmp_path: Path, name: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ValueError, match="leaves"):
        Shipment(files={name: b"x"}, root="/r").unpack(run)
    assert not (tmp_path / "outside").exists()


def test_evidence_sync_sends_each_change_once_and_keeps_keys(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "client_ed25519").write_text("secret")
    (tmp_path / "k" / "boot-1").mkdir(parents=True)
    log = tmp_path / "k" / "boot-1" / "console.log"
    log.write_text("one\n")
    sync = EvidenceSync(tmp_path)
    assert sync.changed() == {"k/boot-1/console.log": b"one\n"}
    assert sync.changed() == {}
    log.write_text("one\ntwo\n")
    (tmp_path / "k" / "t").mkdir()
    (tmp_path / "k" / "t" / "result.json").write_text("{}")
    assert sync.changed() == {"k/boot-1/console.log": b"one\ntwo\n", "k/t/result.json": b"{}"}


@pytest.mark.parametrize(
    ("nodeid", "plain", "pair"),
    [
        ("guest-tests/c/uffd_api.c::d612", "guest-tests/c/uffd_api.c::d612", ("uffd_api", "d612")),
        (
            "guest-tests/c/uffd_api.c::d612@d612",
            "guest-tests/c/uffd_api.c::d612",
            ("uffd_api", "d612"),
        ),
        (
            "guest-tests/sh/probe.sh::k@other",
            "guest-tests/sh/probe.sh::k@other",
            ("probe", "k@other"),
        ),
        ("kunit/list-*::d612", "kunit/list-*::d612", ("list-*", "d612")),
    ],
)
def test_node_ids(nodeid: str, plain: str, pair: tuple[str, str]) -> None:
    assert strip_group(nodeid) == plain
    assert pair_of(nodeid) == pair
    assert kernel_scope(nodeid) == pair[1]


def test_auto_workers_from_cores_memory_and_guests() -> None:
    two = [_spec("a"), _spec("b")]
    assert auto_workers(two, cores=2, available_mib=20000) == 1  # 2 vCPUs fill 2 cores
    assert auto_workers(two, cores=8, available_mib=20000) == 2  # no more than kernels
    assert auto_workers([*two, _spec("c")], cores=8, available_mib=5000) == 2  # memory
    assert auto_workers([_spec("a", cpus=1)] * 4, cores=4, available_mib=1000) == 1  # always 1
    assert auto_workers([_spec("a", cpus=1), _spec("b", cpus=4)], cores=8, available_mib=99999) == 2
    assert auto_workers([]) == 1


def test_hosts_file_expands_to_tx(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(
        "hosts:\n"
        "  - {ssh: root@b1, path: /srv/kh}\n"
        "  - {ssh: b2, path: /srv/kh, python: /usr/bin/python3, workers: 2, ssh_config: /c}\n"
    )
    hosts = load_hosts(path)
    assert hosts[0] == Host("root@b1", "/srv/kh", "/srv/kh/.venv/bin/python")
    assert [h.tx() for h in hosts] == [
        "ssh=root@b1//python=/srv/kh/.venv/bin/python//chdir=/srv/kh",
        "2*ssh=b2//python=/usr/bin/python3//chdir=/srv/kh//ssh_config=/c",
    ]


def test_hosts_file_mistakes_name_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text("hosts:\n  - {ssh: b1, path: srv, worker: 2}\n  - {path: /x, workers: 0}\n")
    with pytest.raises(ConfigError) as err:
        load_hosts(path)
    text = str(err.value)
    assert "hosts[1]: unknown key 'worker'; did you mean 'workers'?" in text
    assert "'path' must be absolute" in text
    assert "hosts[2]: missing required key 'ssh'" in text
    assert "'workers' must be 1 or more" in text
    with pytest.raises(ConfigError, match="cannot read"):
        load_hosts(tmp_path / "none.yaml")
    assert os.path.exists(path)
