"""The JUnit XML schema the plugin's files must satisfy (xunit2, pytest's default family)."""

from __future__ import annotations

from pathlib import Path

import xmlschema  # a dev dependency: missing, a test using it fails rather than skips

from tests.support.paths import REPO

JUNIT_XSD = REPO / "tests" / "data" / "junit-10.xsd"


def xunit2_problems(junit: Path) -> list[str]:
    """Every way ``junit`` breaks the xunit2 schema (empty when valid)."""
    schema = xmlschema.XMLSchema(JUNIT_XSD)
    return [str(error) for error in schema.iter_errors(str(junit))]
