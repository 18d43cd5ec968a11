"""The symbolizer on real ELF objects: gcc -g builds them, objdump and addr2line read them.

A kernel is too big to build in a unit test, so a small C file stands in:
linked (like vmlinux: absolute addresses) and relocatable (like a .ko:
section-relative symbols, main in .text.startup).  Its frames are written as
the kernel prints them, ``func+0xOFF/0xSIZE [module]``, from the offsets of
real instructions (the trap, the call's return address); the symbolizer must
give back the lines the source says, inlined frames included.  The real
kernel path (a built vmlinux, a report from a guest) is in
tests/integration/test_selftest_kernels.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.kernels.base import DebugInfo
from harness.oops import parse
from harness.oops.frames import Frame, render_decoded
from harness.oops.maintainers import parse_maintainers
from harness.oops.symbolize import Symbolizer
from harness.results.records import ReportRecord

SOURCE = """\
static inline __attribute__((always_inline)) int inner(int x)
{
\tif (x > 3)
\t\t__builtin_trap();                      /* line 4: the BUG */
\treturn x * 2;
}

__attribute__((noinline)) int outer(int x)
{
\treturn inner(x) + 1;                     /* line 10: inner inlined here */
}

__attribute__((noinline)) int caller(int x)
{
\treturn outer(x) + 2;                     /* line 15: the call */
}

int main(int argc, char **argv)
{
\treturn caller(argc);
}
"""


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is needed (binutils/gcc: ci/bootstrap.sh installs them)"
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mm/sym.c compiled twice: linked 'vmlinux' and relocatable 'modules/symmod.ko'."""
    root = tmp_path_factory.mktemp("symtree")
    (root / "mm").mkdir()
    (root / "mm" / "sym.c").write_text(SOURCE)
    (root / "modules").mkdir()
    gcc = _tool("gcc")
    flags = ["-g", "-O2", "-fno-omit-frame-pointer"]
    subprocess.run([gcc, *flags, "mm/sym.c", "-o", "vmlinux"], cwd=root, check=True)
    subprocess.run([gcc, *flags, "-c", "mm/sym.c", "-o", "modules/symmod.ko"], cwd=root, check=True)
    return root


def _frame(obj: Path, func: str, want: str, after: bool, module: str | None = None) -> Frame:
    """func+off/size for the first instruction matching ``want`` (or the one after it)."""
    table = subprocess.run(["objdump", "-t", "-w", str(obj)], capture_output=True, text=True)
    name = re.escape(func)
    m = re.search(rf"^([0-9a-f]+) .{{7}} \S+\s+([0-9a-f]+)\s+{name}$", table.stdout, re.M)
    assert m, f"{func} not in {obj}"
    start, size = int(m.group(1), 16), int(m.group(2), 16)
    dis = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", f"--disassemble={func}", str(obj)],
        capture_output=True,
        text=True,
    ).stdout
    insns = [
        (int(a, 16), text)
        for a, text in re.findall(r"^\s*([0-9a-f]+):\s+(.*)$", dis, re.M)
        if int(a, 16) >= start
    ]
    for i, (address, text) in enumerate(insns):
        if re.search(want, text):
            at = insns[i + 1][0] if after else address
            return Frame(func, at - start, size, module)
    raise AssertionError(f"no {want!r} in {func}:\n{dis}")


def _report(ip: Frame, *trace: Frame) -> object:
    """A real parsed report whose frames are replaced by the ones under test."""
    text = (Path(__file__).parents[1] / "data" / "oops" / "6.12-bug.log").read_text()
    (report, *_) = parse(text)
    from dataclasses import replace

    return replace(report, ip=ip, frames=trace, guilty_frame="outer")


def test_linked_object_frames_get_file_line_with_inlined_callers(built: Path) -> None:
    vmlinux = built / "vmlinux"
    ip = _frame(vmlinux, "outer.cold", r"ud2", after=False)  # gcc moved the trap out of line
    ret = _frame(vmlinux, "caller", r"call", after=True)
    decoded = Symbolizer(DebugInfo(vmlinux, None, None)).decode(_report(ip, ret))  # type: ignore[arg-type]
    rip, call = decoded.frames
    assert rip.ip and [(x.function, x.where) for x in rip.lines] == [
        ("inner", "mm/sym.c:4"),
        ("outer", "mm/sym.c:10"),
    ]
    # a return address: the call's line (offset - 1), not the next statement
    assert not call.ip and call.where == "mm/sym.c:15" and call.lines[-1].function == "caller"
    assert decoded.guilty is not None and decoded.guilty.where == "mm/sym.c:10"
    text = "\n".join(render_decoded(decoded))
    assert f"RIP: {ip.text} (mm/sym.c:10)" in text and "inner (mm/sym.c:4) (inlined)" in text


def test_module_frames_are_looked_up_in_their_ko_by_section(built: Path) -> None:
    ko = built / "modules" / "symmod.ko"
    ip = _frame(ko, "outer.cold", r"ud2", after=False, module="symmod")  # .text.unlikely
    ret = _frame(ko, "caller", r"call", after=True, module="symmod")  # .text
    main = _frame(ko, "main", r".", after=False, module="symmod")  # .text.startup
    debug = DebugInfo(built / "vmlinux", built / "modules", None)
    decoded = Symbolizer(debug).decode(_report(ip, ret, main))  # type: ignore[arg-type]
    assert [f.where for f in decoded.frames] == ["mm/sym.c:4", "mm/sym.c:15", "mm/sym.c:20"]
    assert decoded.frames[0].lines[-1].function == "outer"
    assert decoded.note == ""


def test_unknown_module_and_symbol_are_noted_not_raised(built: Path) -> None:
    debug = DebugInfo(built / "vmlinux", built / "modules", None)
    ghost = Frame("nothing_here", 4, 16)
    elsewhere = Frame("f", 1, 2, "not_loaded")
    decoded = Symbolizer(debug).decode(_report(ghost, elsewhere))  # type: ignore[arg-type]
    assert [f.lines for f in decoded.frames] == [(), ()]
    assert "nothing_here not in vmlinux" in decoded.note
    assert "no debug info for module not_loaded" in decoded.note
    assert "(?)" in "\n".join(render_decoded(decoded))


def test_symbolized_record_survives_summary_json(built: Path) -> None:
    vmlinux = built / "vmlinux"
    report = _report(_frame(vmlinux, "outer.cold", r"ud2", after=False))
    decoded = Symbolizer(DebugInfo(vmlinux, None, None)).decode(report)  # type: ignore[arg-type]
    from dataclasses import replace

    record = ReportRecord.of(replace(report, decoded=decoded))  # type: ignore[type-var]
    back = ReportRecord.from_json(record.to_json())
    assert back == record and back.symbolized is not None
    assert back.symbolized.frames[0].lines[0].where == "mm/sym.c:4"


# get_maintainer.pl --rolestats output of linux-source-6.12 for fs/userfaultfd.c mm/userfaultfd.c
ROLESTATS = """\
Andrew Morton <akpm@linux-foundation.org> (maintainer:MEMORY MANAGEMENT)
Alexander Viro <viro@zeniv.linux.org.uk> (maintainer:FILESYSTEMS (VFS and infrastructure))
Jan Kara <jack@suse.cz> (reviewer:FILESYSTEMS (VFS and infrastructure))
linux-mm@kvack.org (open list:MEMORY MANAGEMENT)
linux-kernel@vger.kernel.org (open list)
"""


def test_maintainers_split_into_to_and_cc() -> None:
    found = parse_maintainers(ROLESTATS)
    assert [m.role for m in found] == [
        "maintainer",
        "maintainer",
        "reviewer",
        "open list",
        "open list",
    ]
    from harness.oops.frames import Decoded

    decoded = Decoded(maintainers=found)
    assert decoded.to == (
        "Andrew Morton <akpm@linux-foundation.org>",
        "Alexander Viro <viro@zeniv.linux.org.uk>",
    )
    assert decoded.cc == (
        "Jan Kara <jack@suse.cz>",
        "linux-mm@kvack.org",
        "linux-kernel@vger.kernel.org",
    )


def test_text_summary_shows_the_symbolized_trace_and_to_cc(built: Path) -> None:
    from dataclasses import replace

    from harness.outcome import Outcome
    from harness.reporters import text
    from harness.results.records import RunSummary, TestRecord

    vmlinux = built / "vmlinux"
    report = _report(_frame(vmlinux, "outer.cold", r"ud2", after=False))
    decoded = Symbolizer(DebugInfo(vmlinux, None, None)).decode(report)  # type: ignore[arg-type]
    decoded = replace(decoded, maintainers=parse_maintainers(ROLESTATS))
    record = ReportRecord.of(replace(report, decoded=decoded))  # type: ignore[type-var]
    test = TestRecord("t", "k", Outcome.OOPS, "oops: kernel BUG in outer", reports=(record,))
    again = replace(test, test="u")  # a boot failure errors every test with the same crash
    summary = RunSummary("r", tests=(test, again))
    rendered = text.render(RunSummary.from_json(summary.to_json()))
    assert rendered.count("guilty: outer") == 1 and "(symbolized above)" in rendered
    assert "      guilty: outer (mm/sym.c:10)" in rendered
    assert "RIP: outer.cold+0x0/0x2 (mm/sym.c:10)" in rendered
    assert "inner (mm/sym.c:4) (inlined)" in rendered
    to = "To: Andrew Morton <akpm@linux-foundation.org>, Alexander Viro <viro@zeniv.linux.org.uk>"
    assert to in rendered
    assert (
        "Cc: Jan Kara <jack@suse.cz>, linux-mm@kvack.org, linux-kernel@vger.kernel.org" in rendered
    )
