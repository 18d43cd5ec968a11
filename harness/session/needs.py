"""A test's ``@needs`` checked against the running guest: NUMA nodes, kernel config.

The guest's shape (memory, CPUs, nodes, THP) is grown from the tests' needs
before boot (:meth:`KernelGuest.machine_config`); what can only be known
from the running kernel is checked here, once per boot or once per kernel,
and an unmet need becomes a skip naming what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import GuestUnreachable
from harness.kernels import config_needs
from harness.kernels.base import KernelImage
from harness.machine.base import Channel
from harness.testkinds.testdef import GuestTest


@dataclass
class NeedsChecker:
    """One kernel's answers to its tests' needs; NUMA per boot, the config per kernel."""

    kernel: str
    log: Callable[[str], None]
    _nodes_online: str | None = None  # /sys/devices/system/node/online of this boot
    _config: config_needs.KernelConfig | None = None  # for @needs config=, found once

    def new_boot(self) -> None:
        """A fresh boot: its node list is read again when a test needs it."""
        self._nodes_online = None

    def unmet(self, test: GuestTest, image: KernelImage, channel: Channel) -> str | None:
        """The skip reason when the guest cannot give ``test`` what it needs, else None."""
        return self._unmet_numa(test, channel) or self._unmet_config(test, image, channel)

    def notes(self, test: GuestTest, image: KernelImage, channel: Channel) -> tuple[str, ...]:
        """For the result's details and the log: config needs that could not be checked."""
        if not test.needs.config or self.config(image, channel).values is not None:
            return ()
        note = config_needs.unknown_note(test.needs.config, self.config(image, channel))
        self.log(f"{self.kernel} {test.name}: {note}")
        return (note,)

    def config(self, image: KernelImage, channel: Channel) -> config_needs.KernelConfig:
        """This kernel's config: beside its image on the host, else /proc/config.gz."""
        if self._config is None:
            self._config = config_needs.from_host(image)
            if self._config is None:
                try:
                    proc = channel.run(config_needs.PROC_CONFIG_COMMAND, 30)
                except GuestUnreachable:  # the test's own run will say what broke
                    return config_needs.from_guest(None)
                self._config = config_needs.from_guest(proc.stdout if proc.exit_code == 0 else "")
        return self._config

    def _unmet_config(self, test: GuestTest, image: KernelImage, channel: Channel) -> str | None:
        """The skip reason naming the options the kernel lacks; unknown config: say so, run."""
        if not test.needs.config:
            return None
        config = self.config(image, channel)
        missing = config.missing(test.needs.config)
        if missing:
            return config_needs.unmet_message(missing, config.source)
        return None

    def _unmet_numa(self, test: GuestTest, channel: Channel) -> str | None:
        if test.needs.numa_nodes <= 1:
            return None
        if self._nodes_online is None:
            node_list = channel.run("cat /sys/devices/system/node/online", 10)
            self._nodes_online = node_list.stdout.strip()
        online = self._nodes_online
        count = count_ranges(online)
        if count < test.needs.numa_nodes:
            return (
                f"needs {test.needs.numa_nodes} NUMA nodes, the guest has {count} "
                f"(node/online '{online or 'missing'}': kernel without CONFIG_NUMA?)"
            )
        return None


def count_ranges(text: str) -> int:
    """Count the members of a kernel cpu/node list such as '0-1,3'."""
    count = 0
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        if low.isdigit():
            count += int(high) - int(low) + 1 if high.isdigit() else 1
    return count
