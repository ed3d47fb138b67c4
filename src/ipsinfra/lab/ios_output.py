"""What a Catalyst switch on IOS 15 prints, line by line, for the lab's in-process switch.

The column widths and labels of ``show interfaces status``, ``show interfaces
description``, ``show mac address-table`` and ``show lldp neighbors detail`` as
in the real captures in ``../shared/fixtures/ntc-templates-port-views/cisco_ios``
and ``../shared/fixtures/ntc-templates-mac-tables/cisco_ios`` (2960/3750 class);
``tests/unit/test_lab_switch_output.py`` renders those captures' ports and
neighbours with these functions and compares the text. Pure: strings in,
strings out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "DESCRIPTION_HEADER",
    "LLDP_SEPARATOR",
    "MAC_TABLE_HEAD",
    "STATUS_HEADER",
    "IosLldpNeighbor",
    "description_row",
    "dotted",
    "lldp_detail",
    "mac_row",
    "status_row",
]

STATUS_HEADER = "Port      Name               Status       Vlan       Duplex  Speed Type"
DESCRIPTION_HEADER = "Interface                      Status         Protocol Description"
MAC_TABLE_HEAD = (
    "          Mac Address Table\n-------------------------------------------\n\n"
    "Vlan    Mac Address       Type        Ports\n"
    "----    -----------       --------    -----\n"
)
LLDP_SEPARATOR = "-" * 48


def status_row(port: str, name: str, status: str, vlan: str, duplex: str, speed: str, media: str) -> str:
    """One line of ``show interfaces status``: the name cut at 18, duplex and speed right-aligned.

    >>> status_row("Gi1/0/2", "AccessPoint", "connected", "8", "a-full", "a-1000", "10/100/1000BaseTX")
    'Gi1/0/2   AccessPoint        connected    8          a-full a-1000 10/100/1000BaseTX'
    """
    return f"{port:<9} {name[:18]:<18} {status:<12} {vlan:<10} {duplex:>6} {speed:>6} {media}".rstrip()


def description_row(port: str, status: str, protocol: str, description: str) -> str:
    """One line of ``show interfaces description`` (the description in full)."""
    return f"{port:<30} {status:<14} {protocol:<8} {description}".rstrip()


def mac_row(vlan: int | str, dotted_mac: str, kind: str, port: str) -> str:
    """One line of ``show mac address-table`` (``dotted_mac`` as printed: ``0010.0de0.e289``)."""
    return f"{vlan:>4}    {dotted_mac}    {kind:<12}{port}"


def _lab_mac(name: str) -> str:
    """A stable, locally administered dotted MAC for a neighbour known by name only."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return dotted("02" + digest[:10])


@dataclass
class IosLldpNeighbor:
    """What one LLDP neighbour advertised, as ``show lldp neighbors detail`` prints it.

    ``capabilities`` are the enabled ones (``"B,R"``); ``""`` means the TLV was
    not sent. Unset ``chassis_id``/``port_id`` are made up from the name: a
    switch's port id looks like ``Te1/0/1``, a server's is its MAC (lldpd's).
    """

    name: str
    capabilities: str = "B,R"
    system_capabilities: str | None = None  # default: the enabled ones
    chassis_id: str | None = None
    port_id: str | None = None
    port_description: str | None = None
    system_description: str | None = "lab"
    time_remaining: int = 101
    mgmt_ip: str | None = "127.0.0.1"
    auto_negotiation: str = "not supported"
    media_capabilities: tuple[str, ...] = ()
    mau_type: int | None = None
    vlan: int | None = None
    peer_mac: str | None = None  # IOS-XE 17 prints the frame's source MAC

    def render(self, local_port: str) -> str:
        """The neighbour's block: dashes, the TLVs, one empty line."""
        switch = bool(set(self.capabilities.split(",")) & {"B", "R"})
        chassis = self.chassis_id or _lab_mac(self.name)
        port_id = self.port_id or ("Te1/0/1" if switch else chassis)

        def line(label: str, value: str | None) -> str:
            return f"{label}: {value}" if value else f"{label} - not advertised"

        caps = self.capabilities
        sys_caps = caps if self.system_capabilities is None else self.system_capabilities
        lines = [
            LLDP_SEPARATOR,
            f"Local Intf: {local_port}",
            f"Chassis id: {chassis}",
            f"Port id: {port_id}",
            line("Port Description", self.port_description),
            line("System Name", self.name),
            "",
        ]
        if self.system_description:
            lines += ["System Description: ", *self.system_description.splitlines(), ""]
        else:
            lines += ["System Description - not advertised", ""]
        lines += [
            f"Time remaining: {self.time_remaining} seconds",
            line("System Capabilities", sys_caps),
            line("Enabled Capabilities", caps),
        ]
        lines += (
            ["Management Addresses:", f"    IP: {self.mgmt_ip}"]
            if self.mgmt_ip
            else ["Management Addresses - not advertised"]
        )
        lines.append(f"Auto Negotiation - {self.auto_negotiation}")
        if self.media_capabilities:
            lines += ["Physical media capabilities:", *(f"    {m}" for m in self.media_capabilities)]
        else:
            lines.append("Physical media capabilities - not advertised")
        lines.append(line("Media Attachment Unit type", str(self.mau_type) if self.mau_type else None))
        lines.append(f"Vlan ID: {self.vlan}" if self.vlan is not None else "Vlan ID: - not advertised")
        if self.peer_mac:
            lines.append(f"Peer Source MAC: {self.peer_mac}")
        return "\n".join(lines) + "\n\n"


def lldp_detail(neighbors: Iterable[tuple[str, IosLldpNeighbor]]) -> str:
    """``show lldp neighbors detail`` for (local port, neighbour) pairs, in that order."""
    blocks = [n.render(port) for port, n in neighbors]
    return "".join(blocks) + f"\nTotal entries displayed: {len(blocks)}\n"


def dotted(mac: str) -> str:
    """``52:54:00:aa:00:01`` -> ``5254.00aa.0001``, as IOS prints a MAC."""
    h = mac.replace(":", "")
    return f"{h[0:4]}.{h[4:8]}.{h[8:12]}"
