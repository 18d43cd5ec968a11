"""Where the harness finds its own files when the user names none.

The repository root, the default kernels.yaml and results directory were
each spelled out in every command (``Path(__file__).parent.parent /
"kernels.yaml"``); one definition here keeps ``run``, ``boot``, ``series``,
``bisect`` and the pytest plugin pointing at the same files.
"""

from __future__ import annotations

from pathlib import Path

#: the checkout the harness runs from (guest-tests/, kernels.yaml, results/)
REPO_ROOT = Path(__file__).resolve().parent.parent
#: the file name of the kernel list, looked for in a root when none is given
KERNELS_YAML = "kernels.yaml"
#: the base of the results directories when --results-dir is not given
RESULTS_DIR = REPO_ROOT / "results"


def kernels_file(given: str | Path | None, root: Path = REPO_ROOT) -> Path:
    """The kernels.yaml in effect: the one given (resolved), else ``root``'s.

    The commands default to the repository's; the pytest plugin passes its
    rootdir, so a project of its own finds its own kernels.yaml.
    """
    return Path(given).resolve() if given else root / KERNELS_YAML


def results_base(given: str | Path | None) -> Path:
    """The base directory for results directories: the one given, else results/."""
    return Path(given or RESULTS_DIR).resolve()
