"""What a test report carries from the process that ran it to the one that writes results.

Under pytest-xdist only the controller writes the results directory, and all
it hears from a worker are the worker's test reports.  So every report of a
guest test carries, in one plain attribute (xdist serializes a report's
``__dict__``, so plain values travel without further work):

* the :class:`~harness.results.records.TestRecord` values the item produced (one for a
  guest test, one per case for a KUnit item);
* on the teardown of a kernel's last item, the kernel's record and the kernel
  reports no test's window held;
* from a worker on another host, the evidence files written since its last
  report (relative to its own scratch results directory, whose path comes
  along so the controller can point evidence paths at its own copy).

A serial run goes through the same attribute (the controller ran the item
itself), so a parallel run's reports are built exactly as a serial run's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.results.records import KernelRecord, OutsideRecord, TestRecord

#: the report attribute the shipment travels in
ATTRIBUTE = "kharness"
#: files that stay on the worker: the run's private SSH keys
_PRIVATE = ("keys",)


@dataclass(frozen=True)
class KernelShipment:
    """A kernel's record and its reports outside tests, sent after its last test."""

    record: KernelRecord
    outside: tuple[OutsideRecord, ...] = ()


@dataclass(frozen=True)
class Shipment:
    """Everything one report carries for the results directory."""

    records: tuple[TestRecord, ...] = ()
    kernel: KernelShipment | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)
    root: str | None = None  # the sender's results directory, when it is not ours

    def attach(self, report: Any) -> None:
        """Put this shipment on ``report`` as plain values."""
        data: dict[str, Any] = {"records": [r.to_json() for r in self.records]}
        if self.kernel is not None:
            data["kernel"] = {
                "name": self.kernel.record.name,
                "record": self.kernel.record.to_json(),
                "outside": [o.to_json() for o in self.kernel.outside],
            }
        if self.files:
            data["files"] = dict(self.files)
        if self.root is not None:
            data["root"] = self.root
        setattr(report, ATTRIBUTE, data)

    @classmethod
    def of(cls, report: Any) -> Shipment | None:
        """The shipment on ``report``, or None for reports that carry none."""
        data = getattr(report, ATTRIBUTE, None)
        if not isinstance(data, dict):
            return None
        kernel = data.get("kernel")
        return cls(
            tuple(TestRecord.from_json(r) for r in data.get("records", ())),
            KernelShipment(
                KernelRecord.from_json(kernel["name"], kernel["record"]),
                tuple(OutsideRecord.from_json(o) for o in kernel.get("outside", ())),
            )
            if kernel
            else None,
            dict(data.get("files", {})),
            data.get("root"),
        )

    def unpack(self, run_dir: Path) -> Shipment:
        """Write the shipped files under ``run_dir``; records pointing there.

        A path that would leave ``run_dir`` is refused: the sender is another
        machine and its report is input like any other.
        """
        base = run_dir.resolve()
        for name, data in self.files.items():
            target = (base / name).resolve()
            if not target.is_relative_to(base) or target == base:
                raise ValueError(f"shipped evidence path '{name}' leaves {base}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if self.root is None:
            return self
        return replace(
            self,
            records=tuple(
                replace(r, evidence=self.rebase(r.evidence, run_dir)) for r in self.records
            ),
        )

    def rebase(self, text: str, run_dir: Path) -> str:
        """``text`` with the sender's results directory replaced by ``run_dir``."""
        return text.replace(self.root, str(run_dir)) if self.root else text


class EvidenceSync:
    """The files of a results directory that changed since the last look."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._seen: dict[str, tuple[int, int]] = {}

    def changed(self) -> dict[str, bytes]:
        """Relative path -> content of every file new or changed since the last call."""
        out: dict[str, bytes] = {}
        for folder, dirs, files in os.walk(self.root):
            here = Path(folder)
            if here == self.root:
                dirs[:] = [d for d in dirs if d not in _PRIVATE]
            for name in files:
                path = here / name
                try:
                    st = path.stat()
                    stamp = (st.st_size, st.st_mtime_ns)
                    rel = str(path.relative_to(self.root))
                    if self._seen.get(rel) == stamp:
                        continue
                    out[rel] = path.read_bytes()
                except OSError:  # a file being replaced right now: the next look takes it
                    continue
                self._seen[rel] = stamp
        return out
