"""A candidate kernel's configuration, found where it can be, for ``@needs: config=...``.

Three places, in order of trust: the ``.config`` a built kernel keeps beside
its bzImage (:mod:`harness.kernels.build`), the ``config-<release>`` file a
Debian package ships next to its vmlinuz, and ``/proc/config.gz`` inside the
guest when the kernel was built with ``CONFIG_IKCONFIG_PROC``.  When none is
there the harness cannot tell, says so and runs the test anyway: a skip must
name a missing option, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.kernels.base import KernelImage
from harness.kernels.config_fragments import parse_config

#: the guest command that prints the running kernel's config, if it has one
PROC_CONFIG_COMMAND = "zcat /proc/config.gz 2>/dev/null || gzip -dc /proc/config.gz"


@dataclass(frozen=True)
class KernelConfig:
    """The values of one kernel's config (None: not available) and where they came from."""

    values: dict[str, str] | None
    source: str  # "built .config /path", "Debian config-6.12.. ", "/proc/config.gz", or why none

    def missing(self, wanted: tuple[str, ...]) -> tuple[str, ...]:
        """The options of ``wanted`` this config leaves off (empty if it is unknown)."""
        if self.values is None:
            return ()
        return tuple(o for o in wanted if self.values.get(o, "n") not in ("y", "m"))


def host_config_file(image: KernelImage) -> Path | None:
    """The config file that came with ``image`` on the host, if any."""
    here = image.vmlinuz.parent
    candidates = [here / ".config"]
    if image.vmlinuz.name.startswith("vmlinuz-"):
        candidates.append(here / ("config-" + image.vmlinuz.name[len("vmlinuz-") :]))
    if image.release:
        candidates.append(here / f"config-{image.release}")
    candidates.append(here / "config")  # usr/lib/modules/<release>/config layouts
    if image.modules_dir is not None:
        candidates.append(image.modules_dir / "config")
    return next((p for p in candidates if p.is_file()), None)


def from_host(image: KernelImage) -> KernelConfig | None:
    """The config shipped or built with ``image``, or None to ask the guest."""
    path = host_config_file(image)
    if path is None:
        return None
    values = parse_config(path.read_text(errors="replace"))
    return KernelConfig(values, f"{path}") if values else None


def from_guest(proc_config: str | None) -> KernelConfig:
    """The guest's /proc/config.gz text (None or empty when the kernel has none)."""
    values = parse_config(proc_config or "")
    if values:
        return KernelConfig(values, "/proc/config.gz in the guest")
    return KernelConfig(
        None,
        "no config for this kernel (no .config or config-<release> file beside its "
        "image, no /proc/config.gz in the guest)",
    )


def unmet_message(missing: tuple[str, ...], source: str) -> str:
    """The skip reason: which options the kernel lacks, and where that was read."""
    names = ", ".join(missing)
    return f"kernel lacks {names} (needed by @needs config=...; read from {source})"


def unknown_note(wanted: tuple[str, ...], config: KernelConfig) -> str:
    """What a test's log says when its config needs could not be checked."""
    return f"config needs {', '.join(wanted)} not checked: {config.source}; the test ran anyway"
