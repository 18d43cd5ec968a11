"""Untrusted text made safe to show: control characters become visible escapes.

A subject from a list, a Message-ID, a guest's console line are written by
strangers.  Printed raw, their bytes are instructions to the terminal (an
``ESC ] 52`` sequence writes the reader's clipboard, ``ESC [ 2 J`` clears the
screen, a lone ``\\r`` overwrites what the line said) or hide what a log says
(a right-to-left override reorders the text after it, ``\\u2028`` splits a log
line for some readers).  :func:`printable` is the one place that turns them
into text: every C0 control but ``\\n`` and ``\\t``, DEL, every C1 control
(``\\x9b`` is a one-byte CSI for some terminals), the bidi controls, the
Unicode line separators and lone surrogates (left by ``surrogateescape``)
become ``\\x1b``, ``\\x9b``, ``\\u202e``... With their introducer escaped, the
rest of an escape sequence is plain, harmless text.

Files of a results directory keep the raw bytes (they are the evidence); what
reaches a terminal or a log goes through here.  JSON answers need nothing
(JSON escapes control characters itself) and HTML escapes its own.
"""

from __future__ import annotations

import re

#: what is escaped; ``\n`` and ``\t`` are kept unless ``newlines=False``
_UNSAFE = (
    "\x00-\x08\x0b-\x1f"  # C0 controls but \t and \n (ESC, BEL, \r, ...)
    "\x7f-\x9f"  # DEL and the C1 controls (\x9b: CSI, \x9d: OSC)
    "\u061c\u200e\u200f"  # bidi marks (Arabic letter mark, LRM, RLM)
    "\u202a-\u202e\u2066-\u2069"  # bidi embeddings, overrides and isolates
    "\u2028\u2029"  # line and paragraph separators
    "\ud800-\udfff"  # lone surrogates: unencodable, from surrogateescape
)
_IN_TEXT = re.compile(f"[{_UNSAFE}]")
_IN_LINE = re.compile(f"[{_UNSAFE}\n\t]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, newlines: bool = True) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``).

    ``newlines=False`` escapes ``\\n`` and ``\\t`` too, for a value that must
    stay on one line of a log (a subject, a Message-ID).  Never raises;
    text without such characters comes back unchanged.
    """
    pattern = _IN_TEXT if newlines else _IN_LINE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)
