"""What an Arista EOS switch prints, text and ``| json``, for the lab's in-process EOS switch.

The JSON answers have the keys and nesting of real EOS answers, as public
captures show them (cited, not stored in the project):

- ``show mac address-table | json``: napalm-automation/napalm
  ``test/eos/mocked_data/test_get_mac_address_table/normal/show_mac_address_table.json``;
- ``show lldp neighbors detail | json``: napalm-automation/napalm
  ``test/eos/mocked_data/test_get_lldp_neighbors_detail/normal/show_lldp_neighbors__detail.json``
  (both @ ee70e634555f6d1f9d32369f2151dde526ad6dfd);
- ``show interfaces status | json``: networktocode/pyntc
  ``tests/unit/test_devices/device_mocks/eos/enable_json/show_interfaces_status``
  @ 2d710b8c8015d6ba0315061dae50566f47952013 (the eAPI ``result`` member: what ``| json`` prints);

all Apache-2.0. ``tests/unit/test_switch_json.py`` writes those key sets out
and compares these answers' keys with them. The text answers follow the
columns of the real captures in ``../shared/fixtures`` (ntc-templates'
``arista_eos`` test data) and are parsed by the same templates. Pure: values
in, strings out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "EOS_CAPABILITY_NAMES",
    "EosMac",
    "EosNeighbor",
    "EosPort",
    "interface_status_json",
    "interface_status_text",
    "interfaces_description_text",
    "lldp_detail_json",
    "lldp_detail_text",
    "mac_table_json",
    "mac_table_text",
    "short_name",
]

# IOS-style capability codes (the lab's neighbours say "B,R") -> EOS's JSON names.
EOS_CAPABILITY_NAMES = {
    "O": "other",
    "P": "repeater",
    "B": "bridge",
    "W": "wlanAccessPoint",
    "R": "router",
    "T": "telephone",
    "C": "docsisCableDevice",
    "S": "stationOnly",
}
_TEXT_CAPS = {"bridge": "Bridge", "router": "Router", "wlanAccessPoint": "WLAN", "other": "Other"}
# What the lab's MAC-table entries carry as their last move (a fixed instant: the
# answers stay byte-for-byte the same between polls, as the lab's IOS tables do).
_LAST_MOVE = 1700000000.0


@dataclass(frozen=True)
class EosPort:
    name: str  # the long name: Ethernet5
    description: str
    admin_up: bool
    linked: bool
    vlan: int


@dataclass(frozen=True)
class EosMac:
    mac: str  # aa:bb:cc:dd:ee:ff
    port: str
    vlan: int


@dataclass(frozen=True)
class EosNeighbor:
    local_port: str
    name: str
    capabilities: str  # "B,R" codes; "" for a server
    chassis_id: str  # dotted, as EOS prints it: 2c60.0cad.30de
    port_id: str


def short_name(port: str) -> str:
    """``Ethernet5`` -> ``Et5``, ``Port-Channel1`` -> ``Po1``: how EOS's tables print a port."""
    for long, short in (("Ethernet", "Et"), ("Port-Channel", "Po"), ("Management", "Ma")):
        if port.startswith(long):
            return short + port[len(long) :]
    return port


def _dotted(mac: str) -> str:
    h = mac.replace(":", "")
    return f"{h[0:4]}.{h[4:8]}.{h[8:12]}"


def _caps(codes: str) -> list[str]:
    return [EOS_CAPABILITY_NAMES[c.strip()] for c in codes.split(",") if c.strip() in EOS_CAPABILITY_NAMES]


# --- | json -------------------------------------------------------------------------


def mac_table_json(macs: Iterable[EosMac]) -> str:
    """``show mac address-table | json``: the keys of NAPALM's capture (above), unicast entries only."""
    entries = [
        {
            "macAddress": m.mac,
            "lastMove": _LAST_MOVE,
            "interface": m.port,
            "moves": 1,
            "entryType": "dynamic",
            "vlanId": m.vlan,
        }
        for m in macs
    ]
    return json.dumps(
        {"multicastTable": {"tableEntries": []}, "unicastTable": {"tableEntries": entries}}, indent=4
    )


def interface_status_json(ports: Iterable[EosPort]) -> str:
    """``show interfaces status | json``: pyntc's capture's keys (``autoNegotigateActive`` is EOS's own)."""
    statuses = {
        p.name: {
            "description": p.description,
            "duplex": "duplexFull" if p.linked else "duplexUnknown",
            "vlanInformation": {
                "interfaceMode": "bridged",
                "vlanId": p.vlan,
                "interfaceForwardingModel": "bridged",
            },
            "bandwidth": 1000000000 if p.linked else 0,
            "interfaceType": "10/100/1000",
            "autoNegotiateActive": True,
            "autoNegotigateActive": True,
            "linkStatus": "disabled" if not p.admin_up else ("connected" if p.linked else "notconnect"),
        }
        for p in ports
    }
    return json.dumps({"interfaceStatuses": statuses}, indent=4)


def lldp_detail_json(ports: Iterable[str], neighbors: Iterable[EosNeighbor]) -> str:
    """``show lldp neighbors detail | json``: every port, with the neighbour keys of NAPALM's capture."""
    table: dict[str, dict[str, list[dict[str, object]]]] = {p: {"lldpNeighborInfo": []} for p in ports}
    for n in neighbors:
        caps = _caps(n.capabilities)
        table.setdefault(n.local_port, {"lldpNeighborInfo": []})["lldpNeighborInfo"].append(
            {
                "systemCapabilities": {c: True for c in caps} or {"bridge": False, "router": False},
                "lastChangeTime": _LAST_MOVE,
                "neighborInterfaceInfo": {
                    "portAndProtocolVlanEnabled": {},
                    "linkAggregationStatus": "capableAndDisabled",
                    "unknownTlvs": [],
                    "interfaceIdType": "interfaceName",
                    "interfaceId": f'"{n.port_id}"',
                    "interfaceDescription": n.port_id,
                    "autoNegCapability": "notCapable",
                    "autoNegAdvertisedCapabilities": [],
                    "protocolIdentityInfo": [],
                    "portAndProtocolVlanSupported": {},
                    "operMauType": "1000BASE-T",
                    "vlanNames": {},
                    "maxFrameSize": 0,
                    "linkAggregationInterfaceId": 0,
                    "unknownOrgDefinedTlvs": [],
                },
                "neighborDiscoveryTime": _LAST_MOVE,
                "lastContactTime": _LAST_MOVE,
                "chassisId": n.chassis_id,
                "systemName": n.name,
                "systemDescription": "lab",
                "ttl": 120,
                "managementAddresses": [],
                "chassisIdType": "macAddress",
            }
        )
    return json.dumps({"lldpNeighbors": table}, indent=2)


# --- text ---------------------------------------------------------------------------


def mac_table_text(macs: Iterable[EosMac]) -> str:
    """``show mac address-table``, columns as in ntc-templates' arista_eos capture."""
    rows = [
        f"{m.vlan:>4}    {_dotted(m.mac)}    {'DYNAMIC':<11} {short_name(m.port):<10} 1       0:00:12 ago"
        for m in macs
    ]
    head = (
        "          Mac Address Table\n"
        "------------------------------------------------------------------\n\n"
        "Vlan    Mac Address       Type        Ports      Moves   Last Move\n"
        "----    -----------       ----        -----      -----   ---------\n"
    )
    return head + "".join(r + "\n" for r in rows) + f"Total Mac Addresses for this criterion: {len(rows)}\n"


def interface_status_text(ports: Iterable[EosPort]) -> str:
    """``show interfaces status``: the name cut at 22, as in ntc-templates' arista_eos capture."""
    lines = ["Port       Name                   Status       Vlan        Duplex  Speed Type"]
    for p in ports:
        status = "disabled" if not p.admin_up else ("connected" if p.linked else "notconnect")
        duplex, speed = ("a-full", "a-1G") if p.linked else ("auto", "auto")
        lines.append(
            f"{short_name(p.name):<10} {p.description[:22]:<22} {status:<12} {p.vlan!s:<11} "
            f"{duplex:>6} {speed:>6} 10/100/1000".rstrip()
        )
    return "\n".join(lines) + "\n"


def interfaces_description_text(ports: Iterable[EosPort]) -> str:
    """``show interfaces description``, as in ntc-templates' arista_eos capture."""
    lines = ["Interface                      Status         Protocol           Description"]
    for p in ports:
        status = ("up" if p.linked else "down") if p.admin_up else "admin down"
        protocol = "up" if p.admin_up and p.linked else "down"
        lines.append(f"{short_name(p.name):<30} {status:<14} {protocol:<18} {p.description}".rstrip())
    return "\n".join(lines) + "\n"


def lldp_detail_text(neighbors: Iterable[EosNeighbor]) -> str:
    """``show lldp neighbors detail`` (ports with a neighbour), as in ntc-templates' arista_eos capture."""
    blocks = []
    for n in neighbors:
        caps = ", ".join(_TEXT_CAPS.get(c, c) for c in _caps(n.capabilities))
        blocks.append(
            f"Interface {n.local_port} detected 1 LLDP neighbors:\n\n"
            f'  Neighbor {n.chassis_id}/"{n.port_id}", age 12 seconds\n'
            "  Discovered 0:01:11 ago; Last changed 0:01:11 ago\n"
            "  - Chassis ID type: MAC address (4)\n"
            f"    Chassis ID     : {n.chassis_id}\n"
            "  - Port ID type: Interface name (5)\n"
            f'    Port ID     : "{n.port_id}"\n'
            "  - Time To Live: 120 seconds\n"
            f'  - System Name: "{n.name}"\n'
            '  - System Description: "lab"\n'
            f"  - System Capabilities : {caps}\n"
            f"    Enabled Capabilities: {caps}\n"
        )
    return "\n".join(blocks)
