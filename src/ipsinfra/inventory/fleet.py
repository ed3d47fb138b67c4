"""The Fleet model: everything an inventory describes, keyed by name."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra.errors import InventoryError
from ipsinfra.models import Client, DedicatedServer, IPAddress, Node, Site, Switch, Vds


class InventoryGroup(BaseModel):
    """One Ansible group: its direct hosts and child groups."""

    model_config = ConfigDict(frozen=True)

    name: str
    hosts: list[str] = Field(default_factory=list)
    children: list[str] = Field(default_factory=list)


class Fleet(BaseModel):
    """Everything the inventory describes, keyed by name (VDS by house name)."""

    model_config = ConfigDict(frozen=True)

    path: Path | None = None
    sites: dict[str, Site] = Field(default_factory=dict)
    nodes: dict[str, Node] = Field(default_factory=dict)
    vds: dict[str, Vds] = Field(default_factory=dict)
    clients: dict[str, Client] = Field(default_factory=dict)
    switches: dict[str, Switch] = Field(default_factory=dict)
    dedicated: dict[str, DedicatedServer] = Field(default_factory=dict)
    groups: dict[str, InventoryGroup] = Field(default_factory=dict, description="Ansible groups, as loaded")
    hostnames: dict[str, str] = Field(
        default_factory=dict, description="inventory_hostname -> record name (a VDS's house name)"
    )

    def node_of(self, vds_name: str) -> Node:
        """The node a VDS runs on. Raises VdsNotFound / NodeNotFound."""
        from ipsinfra.errors import NodeNotFound, VdsNotFound

        vds = self.vds.get(vds_name)
        if vds is None:
            raise VdsNotFound(f"vds: value {vds_name!r}: not in the inventory")
        node = self.nodes.get(vds.node)
        if node is None:  # load() refuses this; only a hand-built Fleet gets here
            raise NodeNotFound(f"vds.{vds_name}.node: value {vds.node!r}: no such node")
        return node

    def vds_on(self, node: Node | str) -> list[Vds]:
        """Every VDS the inventory puts on ``node``, by house name."""
        name = node.name if isinstance(node, Node) else node
        return sorted((v for v in self.vds.values() if v.node == name), key=lambda v: v.name)

    def owners_of_ip(self, ip: str | IPAddress) -> list[str]:
        """Names of every VDS and dedicated server holding ``ip`` (abuse wants exactly one)."""
        try:
            wanted = ipaddress.ip_address(str(ip).strip())
        except ValueError:
            raise InventoryError(f"ip: value {str(ip)!r}: not an IP address") from None
        owners = [v.name for v in self.vds.values() if wanted in v.ips]
        owners += [d.name for d in self.dedicated.values() if wanted in d.ips]
        return sorted(owners)

    def inventory_hostname(self, name: str) -> str:
        """The Ansible host name of a record (a VDS's DNS-safe twin)."""
        for host, record in self.hostnames.items():
            if record == name:
                return host
        raise InventoryError(f"name: value {name!r}: not a host in the inventory")
