"""Kernel console report parser: find oopses, warnings, lockups, panics in a log.

Usage from a test::

    from harness.oops import parse, is_panic, title_matches, ReportType

    reports = parse(console_log)
    assert not reports, reports[0].text
    assert any(title_matches(r, r"^WARNING in my_func$") for r in reports)

The formats are a table (`harness.oops.formats.FORMATS`); the walking is in
`harness.oops.parse`, one report per bug in `harness.oops.fold`. Run
``python -m harness.oops LOG...`` to see what
the parser finds in a log.
"""

from harness.oops.fold import fold, times_seen
from harness.oops.formats import FORMATS, Format, ReportType
from harness.oops.parse import (
    KernelReport,
    is_panic,
    normalize_comm,
    parse,
    strip_prefix,
    title_matches,
)

__all__ = [
    "FORMATS",
    "Format",
    "KernelReport",
    "ReportType",
    "fold",
    "is_panic",
    "normalize_comm",
    "parse",
    "strip_prefix",
    "times_seen",
    "title_matches",
]
