"""Reading a results file back: its JSON, its schema version, errors that say what to do.

Every record of a results directory carries ``schema_version``; a reader
takes the versions it knows (fields an older one lacks take their defaults)
and refuses any other with a UserError that names the file, never with a
KeyError from deep inside a reporter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import UserError

T = TypeVar("T")


def check_version(data: Any, readable: tuple[int, ...], where: str, missing: int | None) -> None:
    """A UserError unless ``data`` is a mapping of one of the ``readable`` schema versions.

    ``missing``: the version a file without the key is (written before it had
    one), or None when such a file cannot be read.
    """
    if not isinstance(data, Mapping):
        raise UserError(f"{where}: not a JSON object; was it written by kharness, and completely?")
    version = data.get("schema_version", missing)
    if version not in readable:
        raise UserError(
            f"{where}: schema version {version!r}, this harness reads "
            f"{', '.join(map(str, readable))}; "
            "re-run the tests or use the harness version that wrote it"
        )


def read_record(
    path: Path, parse: Callable[[Mapping[str, Any], str], T], noun: str, hint: str
) -> T:
    """``parse(the JSON of path, str(path))``; a UserError for a file missing, cut or foreign.

    ``noun`` says what the file holds ("summary"); ``hint`` what a missing
    file means ("is this a results directory?").
    """
    if not path.is_file():
        raise UserError(f"{path.parent}: no {path.name}; {hint}")
    try:
        data = json.loads(path.read_text(errors="replace"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); the run may have been killed") from None
    try:
        return parse(data, str(path))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(
            f"{path}: not a {noun} this harness can read ({type(exc).__name__}: {exc}); "
            "was it written by kharness, and completely?"
        ) from None
