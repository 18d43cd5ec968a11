"""Untrusted text before a terminal or a log: every control character a visible escape.

The display (plain lines, the live line, ``--console``), the bot's log, the
CLI's error line and summary.txt all go through :func:`printable`; these
tests feed it what a hostile subject or guest would send and check what
comes out, and then check the real writers with the same bytes.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from harness.display.progress import Kind
from harness.display.progress_display import LiveProgress, PlainProgress
from harness.display.textsafe import printable
from harness.outcome import Outcome
from harness.reporters import text as text_report
from harness.results.records import ReportRecord, RunSummary, TestRecord

OSC52 = "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07"  # writes the reader's clipboard
#: what no escaped text may hold: C0 but \t \n, DEL, C1, bidi controls, separators, surrogates
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_osc52_clipboard_write_is_shown_not_sent() -> None:
    out = printable(f"[PATCH] fix{OSC52} the thing")
    assert "\x1b" not in out and "\x07" not in out
    assert out == "[PATCH] fix\\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\\x07 the thing"


def test_csi_and_the_one_byte_c1_csi() -> None:
    assert printable("a\x1b[2J\x1b[1;31mred") == "a\\x1b[2J\\x1b[1;31mred"
    assert printable("a\x9b2Jb\x9d0;title\x9c") == "a\\x9b2Jb\\x9d0;title\\x9c"
    assert printable("del\x7f nul\x00 cr\r bel\x07") == "del\\x7f nul\\x00 cr\\x0d bel\\x07"


def test_bidi_overrides_and_line_separators() -> None:
    # Trojan-source style: the override would show "fix" where the bytes say otherwise
    assert printable("ok\u202etxt.exe\u202c") == "ok\\u202etxt.exe\\u202c"
    assert printable("\u2066a\u2069\u200f\u061c") == "\\u2066a\\u2069\\u200f\\u061c"
    assert printable("one\u2028two\x85") == "one\\u2028two\\x85"


def test_newlines_and_tabs_kept_unless_one_line_is_asked() -> None:
    assert printable("a\n\tb") == "a\n\tb"
    assert printable("a\n\tb", newlines=False) == "a\\x0a\\x09b"


def test_plain_text_and_unicode_unchanged() -> None:
    text = "[    9.1] BUG: KASAN: use-after-free in ext4_fill_super — Ünïcode ✓ 漢字"
    assert printable(text) is text


def test_lone_surrogates_become_escapes_that_encode() -> None:
    raw = b"subject \xff\xfe".decode("utf-8", "surrogateescape")
    out = printable(raw)
    assert out == "subject \\udcff\\udcfe"
    out.encode("utf-8")  # would raise with the surrogates left in


@given(st.text())
def test_any_text_comes_out_safe(text: str) -> None:
    out = printable(text)
    assert not UNSAFE.search(out)
    assert not re.search("[\ud800-\udfff\u2028\u2029]", out)
    assert not UNSAFE.search(printable(text, newlines=False)) and "\n" not in printable(
        text, newlines=False
    )


# -- the writers -------------------------------------------------------------------------------
def test_plain_progress_escapes_labels_and_console_lines() -> None:
    out: list[str] = []
    plain = PlainProgress(out.append, console=True, stamp=lambda: "12:00:00")
    act = plain.activity(Kind.TEST, f"series {OSC52}")
    plain.console("d612", f"[    2.0] guest says {OSC52}\x9b2J", False)
    plain.end(act)
    plain.close()
    assert out and all("\x1b" not in line and "\x9b" not in line for line in out)
    assert "d612: [    2.0] guest says \\x1b]52;c;" in "\n".join(out)


def test_live_progress_escapes_console_lines_and_its_live_line() -> None:
    out = io.StringIO()
    live = LiveProgress(out, console=True, width=200)
    boot = live.activity(Kind.BOOT, "d612: boot-1")
    boot.update(detail=f"last line {OSC52}")
    live._render()  # the live line is drawn from the detail
    live.console("d612", f"[    2.0] BUG: x{OSC52}", True)
    live.end(boot)
    live.close()
    drawn = out.getvalue()
    assert "]52;c;" in drawn  # it was shown ...
    assert "\x1b]52" not in drawn  # ... but never as an escape sequence
    assert "BUG: x\\x1b]52;c;" in drawn


def test_summary_txt_escapes_report_titles() -> None:
    report = ReportRecord(type="BUG", title=f"BUG: title{OSC52}")
    record = TestRecord(
        test="t.c",
        kernel="k",
        outcome=Outcome.OOPS,
        summary=f"oops: BUG: title{OSC52}",
        seconds=1.0,
        reports=(report,),
        evidence="k/t.c",
    )
    rendered = text_report.render(RunSummary(run="r", tests=(record,), kernels=()))
    assert "\x1b" not in rendered and "\x07" not in rendered
    assert "kernel report: BUG: title\\x1b]52;c;" in rendered


def test_cli_error_line_is_escaped() -> None:
    """An error quoting a hostile value (here an unknown kernel's name) prints it escaped."""
    done = subprocess.run(
        [sys.executable, "-m", "harness", "series", "--kernel", f"x{OSC52}", "--series", "s"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert "kharness: error: --kernel x\\x1b]52;c;" in done.stderr
