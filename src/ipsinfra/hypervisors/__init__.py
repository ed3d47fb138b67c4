"""Hypervisor drivers behind one interface (:class:`HypervisorDriver`).

``connect(node)`` picks the driver for a node's kind. Drivers are imported
lazily so a script that only uses Proxmox never loads libvirt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from ipsinfra.errors import InvalidInput, NodeNotFound
from ipsinfra.hypervisors.base import HypervisorDriver
from ipsinfra.models import HypervisorKind, Node


def connect(node: Node) -> HypervisorDriver:
    """A driver for ``node``, connected with what the node's inventory entry says."""
    if node.kind is HypervisorKind.LIBVIRT:
        from pathlib import Path

        from ipsinfra.hypervisors.domxml import DirectBoot
        from ipsinfra.hypervisors.libvirt import LibvirtDriver

        boot = None
        if node.direct_boot is not None:
            spec = node.direct_boot
            boot = DirectBoot(
                kernel=Path(spec.kernel),
                initrd=Path(spec.initrd) if spec.initrd else None,
                cmdline=spec.cmdline,
            )
        # A session-mode daemon cannot plug taps into a bridge: user networking there.
        nic_backend: Literal["bridge", "user"] = "user" if "/session" in node.uri else "bridge"
        return LibvirtDriver(
            node, nic_backend=nic_backend, migration_address=node.migration_address, ex_boot=boot
        )
    if node.kind is HypervisorKind.PROXMOX:
        from ipsinfra.hypervisors.proxmox import ProxmoxDriver

        return ProxmoxDriver(node)
    raise InvalidInput(f"node {node.name}: kind: value {node.kind!r}: no driver for it")


class DriverPool:
    """Drivers for a fleet's nodes, connected on first use and reused.

    A registry per instance (never a class attribute shared by everyone):
    the lab hands its own pool with ready drivers for its in-process nodes.
    """

    def __init__(
        self,
        nodes: dict[str, Node],
        factory: Callable[[Node], HypervisorDriver] = connect,
        drivers: dict[str, HypervisorDriver] | None = None,
    ) -> None:
        self._nodes = dict(nodes)
        self._factory = factory
        self._drivers: dict[str, HypervisorDriver] = dict(drivers or {})
        self._given = frozenset(self._drivers)

    def __contains__(self, node: str) -> bool:
        return node in self._nodes

    @property
    def nodes(self) -> dict[str, Node]:
        return dict(self._nodes)

    def get(self, node: str) -> HypervisorDriver:
        """The driver of ``node``; raises NodeNotFound naming it."""
        if node not in self._nodes:
            raise NodeNotFound(
                f"node: value {node!r}: no such node (known: {', '.join(sorted(self._nodes))})"
            )
        driver = self._drivers.get(node)
        if driver is None:
            driver = self._drivers[node] = self._factory(self._nodes[node])
        return driver

    def for_child_process(self) -> DriverPool:
        """The pool a forked child uses: the same nodes and factory, keeping only
        the drivers that share no connection with this process (see
        :attr:`HypervisorDriver.process_local`); the others are opened anew on
        first use. The parent's connections are left alone, never closed."""
        kept = {n: d for n, d in self._drivers.items() if d.process_local}
        return DriverPool(self._nodes, self._factory, kept)

    def close(self) -> None:
        for driver in self._drivers.values():
            driver.close()
        self._drivers.clear()

    def close_opened(self) -> None:
        """Close only the drivers this pool opened itself (not those it was given)."""
        for node in [n for n in self._drivers if n not in self._given]:
            self._drivers.pop(node).close()

    def __enter__(self) -> DriverPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DriverPool", "HypervisorDriver", "connect"]
