"""The one small interface every hypervisor backend implements.

Libcloud's ``NodeDriver`` / NAPALM's ``NetworkDriver`` shape: the operations
both kinds share, typed in and out (models, never raw dicts or XML). A feature
only one backend has gets an ``ex_`` name on that driver, not a stub here.
Drivers take a ready transport (a ``virConnect``, a ``ProxmoxAPI``) so tests
hand them a real test backend without patching.
"""

from __future__ import annotations

import abc
import ipaddress
from typing import ClassVar

from ipsinfra.errors import InvalidInput
from ipsinfra.models import IPAddress, Node, NodeFacts, Vds, VdsSpec, parse_cpuset


class HypervisorDriver(abc.ABC):
    """Operations on one hypervisor node. Errors are ``ipsinfra.errors`` types.

    Every method that changes something raises rather than half-succeeding
    silently; a timeout raises :class:`ipsinfra.errors.OperationTimeout`.
    """

    node: Node
    #: True where a guest password can only be set in a running guest (libvirt's
    #: guest agent); False where it is configuration applied at boot (cloud-init).
    password_when_running: ClassVar[bool] = False

    @property
    def process_local(self) -> bool:
        """True when a forked child may keep using this driver: it shares no
        connection (socket, session) with the parent. Only libvirt's in-process
        test driver is; every other driver is opened anew in a child process."""
        return False

    # --- reading -------------------------------------------------------
    @abc.abstractmethod
    def list_vds(self) -> list[Vds]:
        """Every VDS on the node with state, vCPUs, cpuset, memory, autostart,
        VNC and MACs, in a bounded number of backend calls whatever the count."""

    @abc.abstractmethod
    def get_vds(self, name: str) -> Vds:
        """One VDS by house name. Raises VdsNotFound."""

    @abc.abstractmethod
    def node_facts(self) -> NodeFacts:
        """Hostname, CPU count, memory and boot identity where the backend has them."""

    # --- changing ------------------------------------------------------
    @abc.abstractmethod
    def define(self, spec: VdsSpec, *, start: bool = False) -> Vds:
        """Create a VDS from a spec. Raises AlreadyExists, InvalidInput."""

    @abc.abstractmethod
    def start(self, name: str) -> Vds: ...

    @abc.abstractmethod
    def stop(self, name: str, *, timeout: float = 60.0, force: bool = True) -> Vds:
        """Graceful shutdown; after ``timeout`` seconds a forced one when ``force``
        (else OperationTimeout)."""

    @abc.abstractmethod
    def set_autostart(self, name: str, enabled: bool) -> Vds: ...

    @abc.abstractmethod
    def set_vcpus(self, name: str, vcpus: int, *, cpuset: str | None = None) -> Vds:
        """Set the configured vCPU count (and affinity); takes effect at next boot
        where the backend cannot hot-plug."""

    @abc.abstractmethod
    def set_memory(self, name: str, memory_mib: int) -> Vds:
        """Set the configured memory (§6); takes effect at next boot where the
        backend cannot hot-plug. Returns the configuration as the hypervisor now
        holds it (what the next boot gets)."""

    @abc.abstractmethod
    def grow_disk(self, name: str, disk: str, size_gib: int) -> Vds:
        """Grow disk ``disk`` (its name as :class:`~ipsinfra.models.Disk` reports it)
        to ``size_gib``. Growth only: a smaller size raises InvalidInput before
        anything changes; the same size changes nothing."""

    @abc.abstractmethod
    def rename(self, name: str, new_name: str) -> Vds: ...

    @abc.abstractmethod
    def set_vnc_listen(self, name: str, address: IPAddress) -> Vds: ...

    @abc.abstractmethod
    def set_bridge(self, name: str, bridge: str) -> Vds:
        """Move every NIC of the VDS to ``bridge`` (§9.10: the target node's network)."""

    @abc.abstractmethod
    def set_description(self, name: str, description: str) -> Vds:
        """Replace the VDS's free-text description (ipsinfra keeps its
        ``ipsinfra-*`` facts there, see :mod:`ipsinfra.metadata`)."""

    @abc.abstractmethod
    def set_password(self, name: str, user: str, password: str) -> None:
        """Set a guest user's password (guest agent or cloud-init). The password
        never appears in a log, journal or exception."""

    @abc.abstractmethod
    def migrate(
        self,
        name: str,
        target: HypervisorDriver,
        *,
        live: bool = True,
        new_name: str | None = None,
        keep_source: bool = False,
    ) -> Vds:
        """Move the VDS to ``target``'s node; returns it as the target reports it.

        ``keep_source``: where the backend can, leave the source's (shut-off)
        definition in place so the caller releases it only after verifying the
        target (libvirt). A Proxmox cluster moves the config atomically instead.
        """

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Remove a (stopped) VDS and its definition."""

    def _check_vcpus(self, vcpus: int, cpuset: str | None) -> None:
        """Refuse a vCPU count or cpuset this node cannot hold (shared by every backend)."""
        if vcpus < 1:
            raise InvalidInput(f"vcpus: value {vcpus!r}: a VDS needs at least 1 vCPU")
        if vcpus > self.node.cpus:
            raise InvalidInput(
                f"vcpus: value {vcpus!r}: node {self.node.name} has only {self.node.cpus} CPUs"
            )
        if cpuset is not None:
            try:
                cpus = parse_cpuset(cpuset)
            except ValueError as exc:
                raise InvalidInput(f"cpuset: value {cpuset!r}: {exc}") from None
            if max(cpus) >= self.node.cpus:
                raise InvalidInput(
                    f"cpuset: value {cpuset!r}: node {self.node.name} has CPUs 0-{self.node.cpus - 1}"
                )

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the transport."""


def parse_ip(value: str) -> IPAddress:
    return ipaddress.ip_address(value)
