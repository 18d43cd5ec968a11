"""Whether a pytest run is about guest tests, read off its command line.

The project's own tests load the same plugin (conftest.py); only a run that
names guest tests (or whose testpaths do) reads kernels.yaml and groups
items by kernel.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.plugin.kinds import is_test_dir, is_test_file


def targets_guest_tests(path: Path) -> bool:
    """A guest test file, the guest-tests directory, a folder holding it, or one of its folders."""
    if path.is_file():
        return is_test_file(path)
    return path.is_dir() and (
        path.name == "guest-tests" or (path / "guest-tests").is_dir() or is_test_dir(path)
    )


def guest_run(config: pytest.Config) -> bool:
    """Whether guest tests are in scope (an argument, or testpaths when none is given)."""
    args = config.args or config.getini("testpaths")
    here = config.invocation_params.dir
    return any(targets_guest_tests(here / str(arg).split("::")[0]) for arg in args)


def whole_directory(config: pytest.Config) -> bool:
    """Whether a command-line argument is guest-tests (or a directory holding it)."""
    here = config.invocation_params.dir
    paths = [here / a.split("::")[0] for a in config.args]
    return any(p.is_dir() and targets_guest_tests(p) for p in paths)
