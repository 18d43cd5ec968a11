"""The plugin's JUnit XML is valid xunit2 (pytest's default junit_family), facts included.

A real pytest run of the plugin, without booting: the kernel image exists when
kernels.yaml is validated and is gone when the tests set up (as when a build
directory is cleaned mid-run), so every test errors with "kernel unavailable".
"""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.junit import xunit2_problems
from tests.support.paths import REPO


def test_the_schema_rejects_properties_inside_a_testcase(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite name="s" tests="1" failures="0" errors="0">'
        '<testcase name="t"><properties><property name="k" value="v"/></properties>'
        "</testcase></testsuite></testsuites>"
    )
    assert xunit2_problems(junit)


def test_junit_of_a_run_whose_kernel_is_missing_is_valid_xunit2(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the subprocess runs this checkout's plugin, whichever one is installed
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    image = pytester.path / "bzImage"
    header = bytearray(0x400)
    header[0x202:0x206] = b"HdrS"
    image.write_bytes(bytes(header))
    pytester.makeconftest(
        f"""
        from pathlib import Path

        pytest_plugins = ["harness.plugin.hooks"]

        def pytest_collection_finish(session):
            Path({str(image)!r}).unlink()  # validated by now; gone before any boot
        """
    )
    pytester.makeini("[pytest]\njunit_logging = all\n")
    (pytester.path / "kernels.yaml").write_text(
        f"kernels:\n  - name: gone\n    image: {image}\n    cmdline: nokaslr\n"
    )
    cdir = pytester.path / "guest-tests" / "c"
    cdir.mkdir(parents=True)
    for header_file in (REPO / "guest-tests" / "c").glob("*.h"):
        shutil.copy(header_file, cdir)
    for name in ("fails", "skips"):
        shutil.copy(REPO / "tests" / "data" / "guest" / f"{name}.c", cdir)

    result = pytester.runpytest_subprocess(
        "guest-tests", "--results-dir=res", "--junitxml=junit.xml", timeout=120
    )

    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "unavailable" in out and "bzImage does not exist" in out
    junit = pytester.path / "junit.xml"
    assert xunit2_problems(junit) == []
    root = ET.parse(junit).getroot()
    suite_props = {p.get("name"): p.get("value") for p in root.iter("property")}
    cases = {c.get("classname"): c for c in root.iter("testcase")}
    assert sorted(cases) == ["guest-tests.c.fails.c", "guest-tests.c.skips.c"]
    for name in ("fails", "skips"):
        case = cases[f"guest-tests.c.{name}.c"]
        assert case.get("name") == "gone" and case.find("error") is not None
        node = f"guest-tests/c/{name}.c::gone"
        assert suite_props[f"{node} kernel"] == "gone"
        assert suite_props[f"{node} outcome"] == "error"
        evidence = suite_props[f"{node} evidence"]
        assert evidence.endswith(f"/gone/{name}")
        out = case.findtext("system-out") or ""
        assert f"kernel: gone\noutcome: error\nevidence: {evidence}\n" in out
