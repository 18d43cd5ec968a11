"""Symbolized traces: file:line for every frame of a kernel report.

The kernel prints frames as ``func+0x12/0x80 [module]``: a function and an
offset into it, which KASLR and module load addresses do not change.  So
each frame is looked up by name in the object that holds it (vmlinux, or
the module's ``.ko``) with ``objdump -t``, the offset added to the symbol's
value, and the address handed to binutils ``addr2line -f -i``, which knows
DWARF (inlined functions included); we parse no DWARF ourselves.  A symbol
printed more than once (two static functions of one name) is told apart by
its size, the ``/0x80`` of the frame.

Call-trace frames are return addresses: the call that is the frame's line
sits just before them, so ``offset - 1`` is looked up (as syzkaller and
``decode_stacktrace.sh`` users expect); the RIP is the faulting instruction
itself.  In a ``.ko`` (a relocatable object) a symbol's value is relative to
its section, so addr2line is told the section (``-j .text``).

Nothing here raises for a report it cannot decode: a frame it finds nothing
for stays without a line, and :class:`~harness.oops.frames.Decoded` says why.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import HarnessError, run_checked
from harness.kernels.base import DebugInfo
from harness.kernels.debian import extract_module
from harness.oops import KernelReport
from harness.oops.frames import Decoded, Frame, SourceLine, SymbolizedFrame
from harness.oops.maintainers import get_maintainers
from harness.oops.parse import normalize_func

#: seconds a symbolizer tool may take for one object (a distribution vmlinux is big)
TOOL_TIMEOUT = 120.0

# "ffffffff81234560 g     F .text	0000000000000040 move_pages" (objdump -t -w)
_SYMBOL = re.compile(
    r"^(?P<value>[0-9a-f]+) (?P<flags>.{7}) (?P<section>\S+)\s+(?P<size>[0-9a-f]+)"
    r"\s+(?:\.hidden\s+)?(?P<name>\S+)$"
)
# "0xffffffff81234567: move_pages at /src/mm/userfaultfd.c:1734 (discriminator 2)"
# " (inlined by) move_pages_pte at /src/mm/userfaultfd.c:1100"
_LINE = re.compile(
    r"^(?:0x(?P<addr>[0-9a-f]+): | \(inlined by\) )(?P<func>\S+) at (?P<file>.+?):"
    r"(?P<line>\d+|\?)(?: \(discriminator \d+\))?$"
)
_ADDRESS = re.compile(r"^0x[0-9a-f]+: ")
#: top-level directories of a kernel tree: where a compiled-in path becomes tree-relative
_TOP = frozenset(
    [
        "arch",
        "block",
        "certs",
        "crypto",
        "drivers",
        "fs",
        "include",
        "init",
        "io_uring",
        "ipc",
        "kernel",
        "lib",
        "mm",
        "net",
        "rust",
        "samples",
        "security",
        "sound",
        "usr",
        "virt",
    ]
)


@dataclass(frozen=True)
class _Symbol:
    value: int
    size: int
    section: str


@dataclass
class _Object:
    """One ELF file (vmlinux or a .ko) with its function symbols read once."""

    path: Path
    relocatable: bool
    symbols: dict[str, list[_Symbol]] = field(default_factory=dict)


Runner = Callable[[Sequence[str]], str]


def _run(argv: Sequence[str]) -> str:
    return run_checked(argv, timeout=TOOL_TIMEOUT).stdout


@dataclass
class Symbolizer:
    """Decodes the reports of one kernel; symbol tables are read once per object."""

    debug: DebugInfo
    run: Runner = _run
    _objects: dict[str, _Object | None] = field(default_factory=dict)
    _notes: list[str] = field(default_factory=list)

    def decode(self, report: KernelReport) -> Decoded:
        """The report's RIP and call trace with file:line, its guilty line and maintainers."""
        self._notes = []
        wanted = ([report.ip] if report.ip else []) + list(report.frames)
        try:
            lines = self._lookup(wanted, ip_first=report.ip is not None)
        except (OSError, subprocess.SubprocessError) as exc:
            return Decoded(note=f"symbolizer failed: {exc}")
        frames = tuple(
            SymbolizedFrame(
                f.text, lines.get(i, ()), ip=report.ip is not None and i == 0, reliable=f.reliable
            )
            for i, f in enumerate(wanted)
        )
        guilty = _guilty_line(report.guilty_frame, wanted, frames)
        maintainers = ()
        if guilty is not None and self.debug.source is not None:
            maintainers = get_maintainers(self.debug.source, guilty.file, self._notes.append)
        return Decoded(frames, guilty, maintainers, "; ".join(dict.fromkeys(self._notes)))

    # -- lookups -------------------------------------------------------------------
    def _lookup(self, frames: Sequence[Frame], ip_first: bool) -> dict[int, tuple[SourceLine, ...]]:
        """Frame index -> its source lines, one addr2line run per object and section."""
        batches: dict[tuple[str, str | None], list[tuple[int, int]]] = {}
        for i, frame in enumerate(frames):
            obj = self._object(frame.module)
            if obj is None:
                continue
            symbol = _pick(obj.symbols.get(frame.func, []), frame.size)
            if symbol is None:
                self._notes.append(f"{frame.func} not in {obj.path.name}")
                continue
            back = 0 if (ip_first and i == 0) or frame.offset == 0 else 1
            address = symbol.value + frame.offset - back
            section = symbol.section if obj.relocatable else None
            batches.setdefault((str(obj.path), section), []).append((i, address))
        found: dict[int, tuple[SourceLine, ...]] = {}
        for (path, section), items in batches.items():
            decoded = self._addr2line(Path(path), section, [a for _, a in items])
            for (i, address), lines in zip(items, decoded, strict=True):
                if lines:
                    found[i] = lines
                elif frames[i].reliable:  # a "?" frame may well be stale stack
                    self._notes.append(f"no line info at {address:#x} in {Path(path).name}")
        return found

    def _object(self, module: str | None) -> _Object | None:
        key = module or ""
        if key not in self._objects:
            path = self.debug.vmlinux if module is None else self._module_path(module)
            if path is None:
                self._objects[key] = None
            else:
                self._objects[key] = _Object(path, module is not None, self._symbols(path))
        obj = self._objects[key]
        if obj is None and module is not None:
            self._notes.append(f"no debug info for module {module}")
        return obj

    def _module_path(self, module: str) -> Path | None:
        """The module's .ko under the debug modules directory (- and _ are the same).

        A Debian -dbg package's modules are extracted one at a time, when a
        frame first needs them (the whole package is 6 GiB unpacked).
        """
        found = self._find_module(module)
        if found is None and self.debug.archive is not None:
            try:
                extract_module(self.debug, module)
            except HarnessError as exc:
                self._notes.append(str(exc))
            found = self._find_module(module)
        return found

    def _find_module(self, module: str) -> Path | None:
        if self.debug.modules is None or not self.debug.modules.is_dir():
            return None
        want = module.replace("-", "_")
        for path in sorted(self.debug.modules.rglob("*.ko")):
            if path.stem.replace("-", "_") == want:
                return path
        return None

    def _symbols(self, path: Path) -> dict[str, list[_Symbol]]:
        table: dict[str, list[_Symbol]] = {}
        for line in self.run(["objdump", "-t", "-w", str(path)]).splitlines():
            m = _SYMBOL.match(line)
            if not m or m.group("section").startswith("*"):
                continue
            symbol = _Symbol(
                int(m.group("value"), 16), int(m.group("size"), 16), m.group("section")
            )
            table.setdefault(m.group("name"), []).append(symbol)
        return table

    def _addr2line(
        self, path: Path, section: str | None, addresses: Sequence[int]
    ) -> list[tuple[SourceLine, ...]]:
        """addr2line -f -i -p -a: one entry per address, innermost inlined line first."""
        argv = ["addr2line", "-f", "-i", "-p", "-a", "-e", str(path)]
        if section:
            argv += ["-j", section]
        out = self.run([*argv, *(f"{a:#x}" for a in addresses)])
        entries: list[list[SourceLine]] = []
        for text in out.splitlines():
            if _ADDRESS.match(text):  # every address starts an entry, "?? ??:0" ones too
                entries.append([])
            m = _LINE.match(text)
            if m is None or not entries or m.group("line") == "?" or m.group("func") == "??":
                continue
            entries[-1].append(
                SourceLine(m.group("func"), self._relative(m.group("file")), int(m.group("line")))
            )
        entries += [[] for _ in range(len(addresses) - len(entries))]
        return [tuple(e) for e in entries[: len(addresses)]]

    def _relative(self, file: str) -> str:
        """A compiled-in path as a path in the kernel tree: 'mm/huge_memory.c'."""
        source = self.debug.source
        if source is not None and file.startswith(f"{source}/"):
            return file[len(str(source)) + 1 :]
        parts = [p for p in file.split("/") if p not in ("", ".")]
        while parts and parts[0] == "..":
            parts.pop(0)
        for i, part in enumerate(parts):
            if part in _TOP and i + 1 < len(parts):
                return "/".join(parts[i:])
        return "/".join(parts) or file


def _pick(symbols: Sequence[_Symbol], size: int) -> _Symbol | None:
    """The symbol of the printed size (static functions may share a name)."""
    for symbol in symbols:
        if symbol.size == size:
            return symbol
    return symbols[0] if symbols else None


def _guilty_line(
    guilty: str | None, frames: Sequence[Frame], decoded: Sequence[SymbolizedFrame]
) -> SourceLine | None:
    """The line of the guilty function: in its frame, where it is that function's own."""
    if guilty is None:
        return None
    for frame, sym in zip(frames, decoded, strict=True):
        if normalize_func(frame.func) != guilty or not sym.lines:
            continue
        own = [line for line in sym.lines if line.function == guilty]
        return own[0] if own else sym.lines[-1]
    return None


def decode_reports(
    reports: Sequence[KernelReport], symbolizer: Symbolizer | None
) -> tuple[KernelReport, ...]:
    """The reports with ``decoded`` set (unchanged when there is no debug info)."""
    if symbolizer is None:
        return tuple(reports)
    return tuple(replace(r, decoded=symbolizer.decode(r)) for r in reports)
