"""Structured switch output (EOS/NX-OS ``| json``, Junos ``| display json``) -> the TextFSM path's records.

No third-party JSON is stored in the project. Each document below is written
here, with our own values (documentation MACs ``00:00:5e:00:53:xx`` of RFC 7042,
``example`` names), in the keys and nesting of the real answers; a comment
above each names the public capture that shows that shape (a citation, not a
copy; the same list is in :mod:`ipsinfra.network.structured`'s docstring).
The real device output is the text in ``../shared/fixtures`` (ntc-templates'
test data): the tests at "the text path and the JSON path agree" build, at
test time, a JSON document from a real text capture's rows and check that both
paths give the same records in canonical form.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from ipsinfra.identity import InterfaceNames
from ipsinfra.lab import eos_output
from ipsinfra.network import structured
from ipsinfra.network.models import Interface, LldpNeighbor, MacEntry, SwitchFacts
from ipsinfra.network.parsers import parse_interfaces, parse_lldp_neighbors, parse_mac_table, parse_ntc
from ipsinfra.network.portmap import DEFAULT_UPLINK_THRESHOLD, find_uplinks
from ipsinfra.network.structured import JsonPipeRejected, StructuredOutputError
from ipsinfra.network.switches import default_platforms, shutdown_problem

EOS_MAC = "show mac address-table | json"
EOS_IF = "show interfaces status | json"
EOS_LLDP = "show lldp neighbors detail | json"
NXOS_MAC = "show mac address-table | json"
JUNOS_MAC = "show ethernet-switching table detail | display json"
JUNOS_LLDP = "show lldp neighbors detail | display json"

NAPALM = "napalm-automation/napalm @ ee70e634555f6d1f9d32369f2151dde526ad6dfd"
SUZIEQ = "netenglabs/suzieq @ 584b22abb1d66f8cb50da76f35f0522b1607bff7"
PYNTC = "networktocode/pyntc @ 2d710b8c8015d6ba0315061dae50566f47952013"


def doc(value: Any) -> str:
    """A document as a switch prints it (indented, as EOS and Junos do)."""
    return json.dumps(value, indent=2)


# --- the documented shapes, written out --------------------------------------------------------

# Arista eAPI `show mac address-table`: the shape of NAPALM's
# test/eos/mocked_data/test_get_mac_address_table/normal/show_mac_address_table.json (NAPALM above);
# a static entry without lastMove/moves as in SuzieQ's tests/integration/sqcmds/eos-input/macs.output
# (leaf01's `show mac address-table unicast`).
EOS_MAC_TOP_KEYS = {"multicastTable", "unicastTable"}
EOS_MAC_ENTRY_KEYS = {"macAddress", "lastMove", "interface", "moves", "entryType", "vlanId"}
# Arista eAPI `show interfaces status`: the shape of pyntc's
# tests/unit/test_devices/device_mocks/eos/enable_json/show_interfaces_status (its `result` member).
EOS_STATUS_KEYS = {
    "description",
    "duplex",
    "vlanInformation",
    "bandwidth",
    "interfaceType",
    "autoNegotiateActive",
    "autoNegotigateActive",  # sic: EOS prints both spellings
    "linkStatus",
}
EOS_VLAN_INFO_KEYS = {"interfaceMode", "vlanId", "interfaceForwardingModel"}  # a bridged port
# Arista eAPI `show lldp neighbors detail`: the shape of NAPALM's
# test/eos/mocked_data/test_get_lldp_neighbors_detail/normal/show_lldp_neighbors__detail.json
# (SuzieQ's eos-input/lldp.output has the same, less systemDescription and interfaceDescription).
EOS_LLDP_INFO_KEYS = {
    "chassisId",
    "chassisIdType",
    "lastChangeTime",
    "lastContactTime",
    "managementAddresses",
    "neighborDiscoveryTime",
    "neighborInterfaceInfo",
    "systemCapabilities",
    "systemDescription",
    "systemName",
    "ttl",
}
EOS_LLDP_IFACE_KEYS = {
    "autoNegAdvertisedCapabilities",
    "autoNegCapability",
    "interfaceDescription",
    "interfaceId",
    "interfaceIdType",
    "linkAggregationInterfaceId",
    "linkAggregationStatus",
    "maxFrameSize",
    "operMauType",
    "portAndProtocolVlanEnabled",
    "portAndProtocolVlanSupported",
    "protocolIdentityInfo",
    "unknownOrgDefinedTlvs",
    "unknownTlvs",
    "vlanNames",
}


def eos_mac(mac: str, port: str, vlan: int, kind: str = "dynamic", *, moved: bool = True) -> dict[str, Any]:
    """One ``unicastTable.tableEntries`` entry; ``moved=False``: static, as SuzieQ's leaf01 prints it."""
    entry: dict[str, Any] = {"macAddress": mac, "interface": port, "entryType": kind, "vlanId": vlan}
    if moved:
        entry.update(lastMove=1700000000.25, moves=1)
    return entry


def eos_mac_table(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"multicastTable": {"tableEntries": []}, "unicastTable": {"tableEntries": list(entries)}}


def eos_status(link: str, *, description: str = "", vlan: int | str = 10) -> dict[str, Any]:
    """One ``interfaceStatuses`` value. ``vlan``: a number (a bridged port), or ``"routed"``/``"trunk"``.

    pyntc's capture shows bridged ports (``interfaceMode`` ``bridged`` with a
    ``vlanId``) and a routed one (``interfaceMode`` ``routed``, no ``vlanId``).
    A trunk is written the routed way with ``interfaceMode`` ``trunk``: how the
    parser reads it; no capture cited here shows a trunk port.
    """
    if isinstance(vlan, int):
        info: dict[str, Any] = {
            "interfaceMode": "bridged",
            "vlanId": vlan,
            "interfaceForwardingModel": "bridged",
        }
    else:
        info = {
            "interfaceMode": vlan,
            "interfaceForwardingModel": "routed" if vlan == "routed" else "bridged",
        }
    up = link == "connected"
    return {
        "description": description,
        "duplex": "duplexFull" if up else "duplexUnknown",
        "vlanInformation": info,
        "bandwidth": 10_000_000_000 if up else 0,
        "interfaceType": "10GBASE-T",
        "autoNegotiateActive": False,
        "autoNegotigateActive": False,
        "linkStatus": link,
    }


def eos_neighbour(
    name: str, chassis: str, port_id: str, caps: Mapping[str, bool], *, id_type: str = "interfaceName"
) -> dict[str, Any]:
    """One ``lldpNeighborInfo`` item. EOS quotes an interface name or a locally
    assigned ID (``"\\"Ethernet1\\""``, type ``interfaceName``/``local``), not a MAC
    (type ``macAddress``), as NAPALM's and SuzieQ's captures show."""
    quoted = port_id if id_type == "macAddress" else f'"{port_id}"'
    return {
        "systemCapabilities": dict(caps),
        "lastChangeTime": 1700000000.5,
        "neighborInterfaceInfo": {
            "portAndProtocolVlanEnabled": {},
            "linkAggregationStatus": "capableAndDisabled",
            "unknownTlvs": [],
            "interfaceIdType": id_type,
            "interfaceId": quoted,
            "interfaceDescription": port_id,
            "autoNegCapability": "notCapable",
            "autoNegAdvertisedCapabilities": [],
            "protocolIdentityInfo": [],
            "portAndProtocolVlanSupported": {},
            "operMauType": "10GBASE-T",
            "vlanNames": {},
            "maxFrameSize": 9236,
            "linkAggregationInterfaceId": 0,
            "unknownOrgDefinedTlvs": [],
        },
        "neighborDiscoveryTime": 1700000000.5,
        "lastContactTime": 1700000100.5,
        "chassisId": chassis,
        "systemName": name,
        "systemDescription": "example",
        "ttl": 120,
        "managementAddresses": [],
        "chassisIdType": "macAddress",
    }


SWITCH_CAPS = {"bridge": True, "router": True}
HOST_CAPS = {
    "bridge": False,
    "router": False,
    "wlanAccessPoint": False,
}  # a Linux host, as in NAPALM's capture


def nxos_row(mac: str, port: str, vlan: str, kind: str = "dynamic") -> dict[str, str]:
    """One ``ROW_mac_address``: NX-OS 9.3's keys, SuzieQ's tests/integration/sqcmds/nxos-input/macs.output
    (leaf01's ``show mac address-table | json native``); MAC dotted, VLAN a string, ``-`` for none."""
    return {
        "disp_mac_addr": mac,
        "disp_type": kind,
        "disp_vlan": vlan,
        "disp_age": "0",
        "disp_is_secure": "F",
        "disp_is_ntfy": "F",
        "disp_port": port,
    }


def leaf(value: str) -> list[dict[str, str]]:
    """A Junos JSON leaf: ``[{"data": value}]``."""
    return [{"data": value}]


def junos_mac(mac: str, port: str, vlan: str) -> dict[str, Any]:
    """One ``l2ng-l2ald-mac-entry-vlan`` item: SuzieQ's tests/integration/sqcmds/junos-input/macs.output
    (leaf01, a vQFX: ``show ethernet-switching table detail | display json``)."""
    return {
        "attributes": {"junos:style": "extensive"},
        "l2ng-l2-mac-address": leaf(mac),
        "mac-count-global": leaf("1"),
        "learnt-mac-count": leaf("1"),
        "l2ng-l2-mac-routing-instance": leaf("default-switch"),
        "l2ng-l2-vlan-id": leaf(vlan),
        "l2ng-l2-mac-vlan-name": leaf(f"v{vlan}"),
        "l2ng-l2-mac-logical-interface": leaf(port),
        "l2ng-l2-mac-ifl-generation": leaf("131"),
        "l2ng-l2-mac-entry-flags": leaf("in_hash,in_ifd,in_ifl,in_vlan"),
        "l2ng-l2-mac-epoch": leaf("0"),
        "l2ng-l2-mac-sequence-number": leaf("0"),
        "l2ng-l2-mac-learn-mask": leaf("0x00000001"),
    }


def junos_neighbour(
    local: str,
    *,
    name: str = "",
    chassis: str = "",
    port_id: str = "",
    port_description: str | None = None,
    caps: str | None = None,
    parent: str = "-",
) -> dict[str, Any]:
    """One ``lldp-neighbor-information`` item: SuzieQ's tests/integration/sqcmds/junos-input/lldp.output
    (leaf01's ``show lldp neighbors detail | display json``). A leaf the neighbour did not send is absent."""
    item: dict[str, Any] = {
        "lldp-index": leaf("2"),
        "lldp-ttl": leaf("120"),
        "lldp-age": leaf("0"),
        "lldp-local-interface": leaf(local),
        "lldp-local-parent-interface-name": leaf(parent),
        "lldp-local-port-id": leaf("519"),
        "lldp-remote-chassis-id-subtype": leaf("Mac address"),
        "lldp-remote-chassis-id": leaf(chassis),
        "lldp-remote-port-id-subtype": leaf("Locally assigned"),
        "lldp-remote-port-id": leaf(port_id),
        "lldp-remote-system-name": leaf(name),
        "lldp-system-description": [{"lldp-remote-system-description": leaf("example")}],
    }
    if port_description is not None:
        item["lldp-remote-port-description"] = leaf(port_description)
    if caps is not None:
        item["lldp-remote-system-capabilities-supported"] = leaf(caps)
        item["lldp-remote-system-capabilities-enabled"] = leaf(caps)
    return item


def junos_lldp(neighbours: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {
        "lldp-neighbors-information": [
            {
                "attributes": {"xmlns": "http://xml.juniper.net/junos/example", "junos:style": "detail"},
                "lldp-neighbor-information": list(neighbours),
            }
        ]
    }


# The documents the tests read (our own values in the shapes above).
EOS_MAC_DOC = eos_mac_table(
    [
        eos_mac("00:00:5e:00:53:01", "Ethernet5", 10),
        eos_mac("00:00:5e:00:53:02", "Ethernet6", 10),
        eos_mac("00:00:5e:00:53:10", "Ethernet24", 20),
        eos_mac("00:00:5e:00:53:20", "Port-Channel1", 20, "static", moved=False),
        eos_mac("00:00:5e:00:53:fe", "Router", 1, "static"),  # the switch's own MAC, as NAPALM's capture has
    ]
)
EOS_STATUS_DOC = {
    "interfaceStatuses": {
        "Management1": eos_status("connected", vlan="routed"),
        "Ethernet1": eos_status("connected", description="ded1.example.net"),
        "Ethernet2": eos_status("notconnect"),
        "Ethernet3": eos_status("disabled", description="spare"),
        "Ethernet4": eos_status("errdisabled", vlan=20),
    }
}
EOS_LLDP_DOC = {
    "lldpNeighbors": {
        "Ethernet1": {
            "lldpNeighborInfo": [
                eos_neighbour("spine1.example.net", "0000.5e00.5301", "Ethernet7", SWITCH_CAPS)
            ]
        },
        "Ethernet5": {
            "lldpNeighborInfo": [
                eos_neighbour("ded1", "0000.5e00.5311", "0000.5e00.5311", HOST_CAPS, id_type="macAddress")
            ]
        },
        "Ethernet6": {"lldpNeighborInfo": []},  # EOS lists every port, with or without a neighbour
        "Ethernet7": {
            "lldpNeighborInfo": [
                eos_neighbour("mx1.example.net", "0000.5e00.5321", "527", SWITCH_CAPS, id_type="local")
            ]
        },
    }
}
# NX-OS 7 prints one row as an object, and a gateway MAC's type as "G" with disp_is_static: NAPALM's
# test/nxos/mocked_data/test_get_mac_address_table/normal/show_mac_address-table.json.
NXOS_ONE_ROW_DOC = {
    "TABLE_mac_address": {
        "ROW_mac_address": {
            "disp_mac_addr": "0000.5e00.53fe",
            "disp_type": "G",
            "disp_vlan": "0",
            "disp_is_static": "enabled",
            "disp_age": "0",
            "disp_is_secure": "disabled",
            "disp_is_ntfy": "disabled",
            "disp_port": "SUP_INBAND_CFSOE(R)",
        }
    }
}
NXOS_ROWS_DOC = {
    "TABLE_mac_address": {
        "ROW_mac_address": [
            nxos_row("0000.5e00.5301", "Po3", "10"),
            nxos_row("0000.5e00.5302", "Eth1/3", "20"),
            nxos_row("0000.5e00.5303", "nve1(192.0.2.12)", "10"),
            nxos_row("0000.5e00.53fe", "sup-eth1(R)", "-", "static"),
        ]
    }
}
JUNOS_MAC_DOC = {
    "l2ng-l2ald-rtb-macdb": [
        {
            "l2ng-l2ald-mac-entry-vlan": [
                junos_mac("00:00:5e:00:53:01", "xe-0/0/2.0", "10"),
                junos_mac("00:00:5e:00:53:02", "xe-0/0/3.0", "30"),
                junos_mac("00:00:5e:00:53:03", "vtep.32769", "30"),
            ]
        }
    ]
}
JUNOS_EMPTY_MAC_DOC = {"l2ng-l2ald-rtb-macdb": [{}]}  # SuzieQ's spine01: a switch that learnt nothing
JUNOS_LLDP_DOC = junos_lldp(
    [
        junos_neighbour(
            "xe-0/0/0",
            name="spine1",
            chassis="00:00:5e:00:53:a0",
            port_id="517",
            port_description="xe-0/0/0",
            caps="Bridge Router ",
        ),
        junos_neighbour(
            "xe-0/0/1",
            name="spine2",
            chassis="00:00:5e:00:53:b0",
            port_id="517",
            port_description="xe-0/0/0",
            caps="Bridge Router ",
        ),
        junos_neighbour("xe-0/0/5", name="ded1", chassis="00:00:5e:00:53:11", port_id="00:00:5e:00:53:11"),
    ]
)


# --- the registry says what the module docstring says ------------------------------------


def test_platforms_prefer_the_json_commands_the_docstring_names() -> None:
    reg = default_platforms()
    json_views = {
        name: (p.json_mac_table, p.json_interfaces, p.json_lldp)
        for name, p in reg.items()
        if (p.json_mac_table, p.json_interfaces, p.json_lldp) != (None, None, None)
    }
    assert json_views == {
        "arista_eos": (EOS_MAC, EOS_IF, EOS_LLDP),
        "cisco_nxos": (NXOS_MAC, None, None),
        "juniper_junos": (JUNOS_MAC, None, JUNOS_LLDP),
    }
    doc_text = structured.__doc__ or ""
    for commands in json_views.values():
        for command in filter(None, commands):
            assert command in doc_text
    # the shape sources are cited there, by repository, path and commit
    for source in (NAPALM, SUZIEQ, PYNTC):
        repo, commit = source.split(" @ ")
        assert repo in doc_text and commit in doc_text
    # the text commands stay as the fallback
    assert reg["arista_eos"].mac_table == "show mac address-table"
    assert reg["arista_eos"].lldp == "show lldp neighbors detail"
    assert reg["cisco_ios"].json_mac_table is None  # every other platform: TextFSM only


# --- each document -> the records ------------------------------------------------------


def test_eos_mac_table() -> None:
    entries = structured.parse_mac_table("arista_eos", EOS_MAC, doc(EOS_MAC_DOC))
    assert entries == [
        MacEntry(mac="00:00:5e:00:53:01", port="Ethernet5", vlan=10, kind="dynamic"),
        MacEntry(mac="00:00:5e:00:53:02", port="Ethernet6", vlan=10, kind="dynamic"),
        MacEntry(mac="00:00:5e:00:53:10", port="Ethernet24", vlan=20, kind="dynamic"),
        MacEntry(mac="00:00:5e:00:53:20", port="Port-Channel1", vlan=20, kind="static"),
        MacEntry(mac="00:00:5e:00:53:fe", port="Router", vlan=1, kind="static"),
    ]


def test_eos_mac_table_takes_any_mac_spelling_through_the_full_check() -> None:
    """EOS prints canonical MACs; another spelling or a padded port takes the checked path: same records."""
    table = eos_mac_table(
        [
            eos_mac("00:00:5E:00:53:01", " Ethernet5 ", 10),
            eos_mac("0000.5e00.5302", "Ethernet6", 10, " Dynamic "),
        ]
    )
    assert structured.parse_mac_table("arista_eos", EOS_MAC, doc(table)) == [
        MacEntry(mac="00:00:5e:00:53:01", port="Ethernet5", vlan=10, kind="dynamic"),
        MacEntry(mac="00:00:5e:00:53:02", port="Ethernet6", vlan=10, kind="dynamic"),
    ]


def test_eos_interfaces_status() -> None:
    interfaces = structured.parse_interfaces("arista_eos", EOS_IF, doc(EOS_STATUS_DOC))
    assert interfaces == [
        Interface(name="Management1", description="", admin_up=True, oper_up=True, vlan="routed"),
        Interface(name="Ethernet1", description="ded1.example.net", admin_up=True, oper_up=True, vlan="10"),
        Interface(name="Ethernet2", description="", admin_up=True, oper_up=False, vlan="10"),
        Interface(name="Ethernet3", description="spare", admin_up=False, oper_up=False, vlan="10"),
        Interface(name="Ethernet4", description="", admin_up=True, oper_up=False, vlan="20"),
    ]


def test_eos_lldp_neighbours() -> None:
    found = structured.parse_lldp_neighbors("arista_eos", EOS_LLDP, doc(EOS_LLDP_DOC))
    assert found == [
        LldpNeighbor(
            local_port="Ethernet1",
            name="spine1.example.net",
            port_id="Ethernet7",  # EOS's quotes are not part of the ID
            chassis_id="0000.5e00.5301",
            capabilities=("bridge", "router"),
        ),
        LldpNeighbor(
            local_port="Ethernet5",
            name="ded1",
            port_id="0000.5e00.5311",
            chassis_id="0000.5e00.5311",
            capabilities=(),  # every capability false: none enabled
        ),
        LldpNeighbor(
            local_port="Ethernet7",
            name="mx1.example.net",
            port_id="527",
            chassis_id="0000.5e00.5321",
            capabilities=("bridge", "router"),
        ),
    ]
    assert [n.is_switch for n in found] == [True, False, True]


def test_nxos_one_row_is_an_object_and_a_gateway_mac_is_static() -> None:
    [gateway] = structured.parse_mac_table("cisco_nxos", NXOS_MAC, doc(NXOS_ONE_ROW_DOC))
    # NX-OS 7 types a gateway MAC "G" with disp_is_static "enabled": the text's Type column says static
    assert gateway == MacEntry(mac="00:00:5e:00:53:fe", port="SUP_INBAND_CFSOE(R)", vlan=0, kind="static")
    row = copy.deepcopy(NXOS_ONE_ROW_DOC)
    row["TABLE_mac_address"]["ROW_mac_address"]["disp_is_static"] = "disabled"
    assert structured.parse_mac_table("cisco_nxos", NXOS_MAC, doc(row))[0].kind == "dynamic"


def test_nxos_rows_are_a_list() -> None:
    entries = structured.parse_mac_table("cisco_nxos", NXOS_MAC, doc(NXOS_ROWS_DOC))
    assert [(e.mac, e.port, e.vlan, e.kind) for e in entries] == [
        ("00:00:5e:00:53:01", "Po3", 10, "dynamic"),
        ("00:00:5e:00:53:02", "Eth1/3", 20, "dynamic"),
        ("00:00:5e:00:53:03", "nve1(192.0.2.12)", 10, "dynamic"),
        ("00:00:5e:00:53:fe", "sup-eth1(R)", None, "static"),  # "-": the supervisor's own, no VLAN
    ]


def test_junos_mac_table_and_an_empty_one() -> None:
    entries = structured.parse_mac_table("juniper_junos", JUNOS_MAC, doc(JUNOS_MAC_DOC))
    assert [(e.mac, e.port, e.vlan, e.kind) for e in entries] == [
        ("00:00:5e:00:53:01", "xe-0/0/2.0", 10, ""),
        ("00:00:5e:00:53:02", "xe-0/0/3.0", 30, ""),
        ("00:00:5e:00:53:03", "vtep.32769", 30, ""),
    ]
    assert structured.parse_mac_table("juniper_junos", JUNOS_MAC, doc(JUNOS_EMPTY_MAC_DOC)) == []


def test_junos_lldp_neighbours() -> None:
    found = structured.parse_lldp_neighbors("juniper_junos", JUNOS_LLDP, doc(JUNOS_LLDP_DOC))
    assert [(n.local_port, n.name, n.port_id, n.chassis_id, n.capabilities, n.is_switch) for n in found] == [
        ("xe-0/0/0", "spine1", "xe-0/0/0", "00:00:5e:00:53:a0", ("Bridge", "Router"), True),
        ("xe-0/0/1", "spine2", "xe-0/0/0", "00:00:5e:00:53:b0", ("Bridge", "Router"), True),
        # no port description sent: the port ID, as the summary's "Port info" column shows
        ("xe-0/0/5", "ded1", "00:00:5e:00:53:11", "00:00:5e:00:53:11", (), False),
    ]


# --- the text path and the JSON path agree, on real captures -----------------------------------
#
# The text is a real capture from ../shared/fixtures; the JSON document is built
# here, at test time, from that capture's rows (the records the text path gives,
# or ntc-templates' raw rows), in the shape cited above. Both must give the same
# records, compared in canonical form (EOS's text says Et8 where its JSON says
# Ethernet8: one key).

_EOS_LONG = (("Et", "Ethernet"), ("Po", "Port-Channel"), ("Ma", "Management"))


def eos_long(port: str) -> str:
    """``Et8`` -> ``Ethernet8``: how EOS's JSON names a port its text tables shorten."""
    for short, long in _EOS_LONG:
        if re.fullmatch(rf"{short}\d+(/\d+)*", port):
            return long + port[len(short) :]
    return port


def dotted(mac: str) -> str:
    h = mac.replace(":", "")
    return f"{h[0:4]}.{h[4:8]}.{h[8:12]}"


def mac_keys(platform: str, entries: Iterable[MacEntry]) -> list[tuple[str, str, int | None, str]]:
    names = InterfaceNames.of(platform)
    return [(e.mac, names.key(e.port), e.vlan, e.kind) for e in entries]


def _capture(shared: Path, kind: str, platform: str, command: str, name: str) -> str:
    return (shared / kind / platform / command.replace(" ", "_") / name).read_text()


def test_eos_mac_table_text_and_json_agree(shared_fixtures: Path) -> None:
    text = _capture(
        shared_fixtures,
        "ntc-templates-mac-tables",
        "arista_eos",
        "show mac address-table",
        "arista_eos_show_mac_address-table.raw",
    )
    # Its unicast table; the multicast one (ports listed per MAC) has no cited JSON capture here.
    unicast = re.split(r"(?im)^\s*multicast mac address table", text)[0]
    assert unicast != text
    by_text = parse_mac_table("arista_eos", "show mac address-table", unicast)
    assert len(by_text) == 19 and {e.kind for e in by_text} == {"static", "dynamic"}
    assert all(e.vlan is not None for e in by_text)
    table = eos_mac_table(
        eos_mac(e.mac, eos_long(e.port), e.vlan or 0, e.kind, moved=e.kind == "dynamic") for e in by_text
    )
    by_json = structured.parse_mac_table("arista_eos", EOS_MAC, doc(table))
    assert {e.port for e in by_json} >= {"Ethernet7", "Port-Channel1"}  # the JSON's long names
    assert mac_keys("arista_eos", by_json) == mac_keys("arista_eos", by_text)


@pytest.mark.parametrize(
    "name", ["arista_eos_show_interfaces_status.raw", "arista_eos_show_interfaces_status_encap.raw"]
)
def test_eos_interfaces_text_and_json_agree(shared_fixtures: Path, name: str) -> None:
    text = _capture(shared_fixtures, "ntc-templates-port-views", "arista_eos", "show interfaces status", name)
    rows = parse_ntc("arista_eos", "show interfaces status", text)
    assert rows
    statuses = {
        eos_long(r["port"]): eos_status(
            r["status"],
            description=r["name"],
            vlan=int(r["vlan_id"]) if r["vlan_id"].isdecimal() else r["vlan_id"],
        )
        for r in rows
    }
    by_json = structured.parse_interfaces("arista_eos", EOS_IF, doc({"interfaceStatuses": statuses}))
    by_text = parse_interfaces("arista_eos", {"show interfaces status": text})
    names = InterfaceNames.of("arista_eos")

    def keys(found: list[Interface]) -> list[tuple[str, str, bool | None, bool | None, str | None]]:
        return [(names.key(i.name), i.description, i.admin_up, i.oper_up, i.vlan) for i in found]

    assert keys(by_json) == keys(by_text)
    assert all(i.name.startswith(("Ethernet", "Management")) for i in by_json)


# The text's capability words -> the keys of EOS's JSON systemCapabilities (NAPALM's capture
# has bridge, router and wlanAccessPoint; the rest follow the same lowerCamelCase).
_EOS_JSON_CAPS = {
    "Other": "other",
    "Repeater": "repeater",
    "Bridge": "bridge",
    "WLAN Access Point": "wlanAccessPoint",
    "Router": "router",
    "Telephone": "telephone",
    "DOCSIS Cable Device": "docsisCableDevice",
    "Station Only": "stationOnly",
}


def _json_caps(text_caps: Iterable[str]) -> dict[str, bool]:
    """``("Router", "Station Only")`` (the text's enabled capabilities) -> EOS's JSON, enabled."""
    return {_EOS_JSON_CAPS[c]: True for c in text_caps}


def test_eos_lldp_text_and_json_agree(shared_fixtures: Path) -> None:
    text = _capture(
        shared_fixtures,
        "ntc-templates-port-views",
        "arista_eos",
        "show lldp neighbors detail",
        "arista_eos_show_lldp_neighbors_detail.raw",
    )
    by_text = parse_lldp_neighbors("arista_eos", "show lldp neighbors detail", text)
    assert len(by_text) > 10
    table: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for n in by_text:
        is_mac = re.fullmatch(r"[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}", n.port_id) is not None
        info = eos_neighbour(
            n.name,
            n.chassis_id,
            n.port_id,
            _json_caps(n.capabilities),
            id_type="macAddress" if is_mac else "interfaceName",
        )
        table.setdefault(n.local_port, {"lldpNeighborInfo": []})["lldpNeighborInfo"].append(info)
    by_json = structured.parse_lldp_neighbors("arista_eos", EOS_LLDP, doc({"lldpNeighbors": table}))
    names = InterfaceNames.of("arista_eos")

    def keys(found: list[LldpNeighbor]) -> list[tuple[str, str, str, str, frozenset[str], bool]]:
        return sorted(
            (
                names.key(n.local_port),
                n.name,
                n.port_id,
                n.chassis_id,
                frozenset(c.replace(" ", "").lower() for c in n.capabilities),
                n.is_switch,
            )
            for n in found
        )

    assert keys(by_json) == keys(by_text)
    # the capture's spines (Bridge, Router), CVX (Bridge) and Linux hosts (Router, Station Only)
    assert {n.capabilities for n in by_json} == {("bridge", "router"), ("bridge",), ("router", "stationOnly")}


def test_nxos_mac_table_text_and_json_agree(shared_fixtures: Path) -> None:
    text = _capture(
        shared_fixtures,
        "ntc-templates-mac-tables",
        "cisco_nxos",
        "show mac address-table",
        "cisco_nxos_show_mac_address-table.raw",
    )
    by_text = parse_mac_table("cisco_nxos", "show mac address-table", text)
    assert len(by_text) >= 2
    rows = [nxos_row(dotted(e.mac), e.port, "-" if e.vlan is None else str(e.vlan), e.kind) for e in by_text]
    as_list = structured.parse_mac_table(
        "cisco_nxos", NXOS_MAC, doc({"TABLE_mac_address": {"ROW_mac_address": rows}})
    )
    assert mac_keys("cisco_nxos", as_list) == mac_keys("cisco_nxos", by_text)
    # the first row alone, as NX-OS prints one row: an object
    as_object = structured.parse_mac_table(
        "cisco_nxos", NXOS_MAC, doc({"TABLE_mac_address": {"ROW_mac_address": rows[0]}})
    )
    assert mac_keys("cisco_nxos", as_object) == mac_keys("cisco_nxos", by_text[:1])


@pytest.mark.parametrize(
    "name", ["juniper_junos_show_lldp_neighbors.raw", "juniper_junos_show_lldp_neighbors_ae7.raw"]
)
def test_junos_lldp_text_and_json_agree(shared_fixtures: Path, name: str) -> None:
    text = _capture(shared_fixtures, "ntc-templates-port-views", "juniper_junos", "show lldp neighbors", name)
    by_text = parse_lldp_neighbors("juniper_junos", "show lldp neighbors", text)
    assert by_text
    # The summary's "Port info" is the remote port's description where it sends one: put it there.
    table = junos_lldp(
        junos_neighbour(
            n.local_port, name=n.name, chassis=n.chassis_id, port_id="517", port_description=n.port_id
        )
        for n in by_text
    )
    by_json = structured.parse_lldp_neighbors("juniper_junos", JUNOS_LLDP, doc(table))

    def keys(found: list[LldpNeighbor]) -> list[tuple[str, str, str, str, bool]]:
        return [(n.local_port, n.name, n.port_id, n.chassis_id, n.is_switch) for n in found]

    assert keys(by_json) == keys(by_text)


# --- an unexpected shape raises, naming the command and the field -------------------------------


def _mutated(document: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> str:
    copied = copy.deepcopy(document)
    change(copied)
    return doc(copied)


def _rename_entries(d: dict[str, Any]) -> None:
    db = d["l2ng-l2ald-rtb-macdb"][0]
    db["l2ng-mac-entry"] = db.pop("l2ng-l2ald-mac-entry-vlan")


@pytest.mark.parametrize(
    ("platform", "document", "parse", "command", "change", "field"),
    [
        (
            "arista_eos",
            EOS_MAC_DOC,
            structured.parse_mac_table,
            EOS_MAC,
            lambda d: d["unicastTable"]["tableEntries"][3].pop("macAddress"),
            "unicastTable.tableEntries[3].macAddress",
        ),
        (
            "arista_eos",
            EOS_MAC_DOC,
            structured.parse_mac_table,
            EOS_MAC,
            lambda d: d["unicastTable"]["tableEntries"][2].update(vlanId="ten"),
            "unicastTable.tableEntries[2].vlanId",
        ),
        (
            "arista_eos",
            EOS_MAC_DOC,
            structured.parse_mac_table,
            EOS_MAC,
            lambda d: d["unicastTable"]["tableEntries"][0].update(macAddress="00:00:5e:00:53"),
            "unicastTable.tableEntries[0].macAddress",
        ),
        (
            "arista_eos",
            EOS_MAC_DOC,
            structured.parse_mac_table,
            EOS_MAC,
            lambda d: d.update(unicastTable={"entries": []}),
            "unicastTable.tableEntries",
        ),
        (
            "arista_eos",
            EOS_LLDP_DOC,
            structured.parse_lldp_neighbors,
            EOS_LLDP,
            lambda d: d["lldpNeighbors"]["Ethernet1"]["lldpNeighborInfo"][0]["systemCapabilities"].update(
                bridge="yes"
            ),
            "lldpNeighbors.Ethernet1.lldpNeighborInfo[0].systemCapabilities.bridge",
        ),
        (
            "arista_eos",
            EOS_LLDP_DOC,
            structured.parse_lldp_neighbors,
            EOS_LLDP,
            lambda d: d["lldpNeighbors"].update(Ethernet1={"neighbors": []}),
            "lldpNeighbors.Ethernet1.lldpNeighborInfo",
        ),
        (
            "arista_eos",
            EOS_STATUS_DOC,
            structured.parse_interfaces,
            EOS_IF,
            lambda d: d["interfaceStatuses"]["Ethernet2"].pop("linkStatus"),
            "interfaceStatuses.Ethernet2.linkStatus",
        ),
        (
            "cisco_nxos",
            NXOS_ROWS_DOC,
            structured.parse_mac_table,
            NXOS_MAC,
            lambda d: d["TABLE_mac_address"]["ROW_mac_address"][2].update(disp_port=7),
            "TABLE_mac_address.ROW_mac_address[2].disp_port",
        ),
        (
            "cisco_nxos",
            NXOS_ONE_ROW_DOC,
            structured.parse_mac_table,
            NXOS_MAC,
            lambda d: d["TABLE_mac_address"].update(ROW_mac_address="none"),
            "TABLE_mac_address.ROW_mac_address",
        ),
        (
            "juniper_junos",
            JUNOS_MAC_DOC,
            structured.parse_mac_table,
            JUNOS_MAC,
            lambda d: d["l2ng-l2ald-rtb-macdb"][0]["l2ng-l2ald-mac-entry-vlan"][1][
                "l2ng-l2-mac-address"
            ].append({"data": "00:00:5e:00:53:09"}),
            "l2ng-l2ald-rtb-macdb[0].l2ng-l2ald-mac-entry-vlan[1].l2ng-l2-mac-address",
        ),
        (
            "juniper_junos",
            JUNOS_MAC_DOC,
            structured.parse_mac_table,
            JUNOS_MAC,
            _rename_entries,
            "l2ng-l2ald-rtb-macdb[0].l2ng-l2ald-mac-entry-vlan",
        ),
        (
            "juniper_junos",
            JUNOS_LLDP_DOC,
            structured.parse_lldp_neighbors,
            JUNOS_LLDP,
            lambda d: d["lldp-neighbors-information"][0]["lldp-neighbor-information"][1].pop(
                "lldp-local-interface"
            ),
            "lldp-neighbors-information[0].lldp-neighbor-information[1].lldp-local-interface",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and "." in v and " " not in v else None,
)
def test_an_unexpected_shape_raises_naming_the_command_and_the_field(
    platform: str,
    document: dict[str, Any],
    parse: Any,
    command: str,
    change: Callable[[dict[str, Any]], object],
    field: str,
) -> None:
    assert parse(platform, command, doc(document))  # the document itself is read
    text = _mutated(document, change)
    with pytest.raises(StructuredOutputError, match=re.escape(f"{command!r}: field {field!r}")):
        parse(platform, command, text)


@pytest.mark.parametrize(
    "text",
    ["[]", '"a string"', '{"lldp": {}}'],
)
def test_a_wrong_top_level_raises(text: str) -> None:
    with pytest.raises(StructuredOutputError, match=r"'show mac address-table \| json'"):
        structured.parse_mac_table("arista_eos", EOS_MAC, text)


@pytest.mark.parametrize(
    "text",
    [
        '{"unicastTable": {"tableEntries": [',  # cut short
        "\x1b[7m--More--\x1b[0m 5254.00aa.0001 Et1",  # a pager, not JSON
        "",
    ],
)
def test_what_is_not_json_raises_and_is_not_a_refusal(text: str) -> None:
    with pytest.raises(StructuredOutputError) as caught:
        structured.parse_mac_table("arista_eos", EOS_MAC, text)
    assert not isinstance(caught.value, JsonPipeRejected)


def test_deep_nesting_raises_cleanly() -> None:
    with pytest.raises(StructuredOutputError, match="nested too deep"):
        structured.parse_mac_table("arista_eos", EOS_MAC, "[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize(
    ("platform", "answer"),
    [
        ("arista_eos", "% This is an unconverted command\n"),  # nautobot/nornir-nautobot#280
        ("arista_eos", "% Invalid input\n"),
        ("cisco_nxos", "                                  ^\n% Invalid command at '^' marker.\n"),
        ("juniper_junos", "                                       ^\nsyntax error, expecting <command>.\n"),
        ("arista_eos", '{"errors": ["This is an unconverted command"]}'),
    ],
)
def test_a_refused_pipe_is_told_apart(platform: str, answer: str) -> None:
    with pytest.raises(JsonPipeRejected, match="was refused"):
        structured.parse_mac_table(platform, "show mac address-table | json", answer)


# --- bounded memory --------------------------------------------------------------------------


def test_an_oversize_answer_is_refused_before_it_is_parsed() -> None:
    text = doc(EOS_MAC_DOC)
    assert len(text) > 500 and structured.parse_mac_table("arista_eos", EOS_MAC, text, max_chars=len(text))
    with pytest.raises(StructuredOutputError, match=r"over the cap of 500: refused"):
        structured.parse_mac_table("arista_eos", EOS_MAC, text, max_chars=500)
    huge = " " * (structured.MAX_JSON_CHARS + 1)
    with pytest.raises(StructuredOutputError, match="over the cap"):
        structured.parse_mac_table("arista_eos", EOS_MAC, huge)


@pytest.mark.parametrize(
    ("parse", "platform", "document", "command"),
    [
        (structured.parse_mac_table, "arista_eos", EOS_MAC_DOC, EOS_MAC),
        (structured.parse_lldp_neighbors, "arista_eos", EOS_LLDP_DOC, EOS_LLDP),
        (structured.parse_interfaces, "arista_eos", EOS_STATUS_DOC, EOS_IF),
        (structured.parse_mac_table, "cisco_nxos", NXOS_ROWS_DOC, NXOS_MAC),
        (structured.parse_mac_table, "juniper_junos", JUNOS_MAC_DOC, JUNOS_MAC),
        (structured.parse_lldp_neighbors, "juniper_junos", JUNOS_LLDP_DOC, JUNOS_LLDP),
    ],
)
def test_too_many_rows_are_refused(parse: Any, platform: str, document: dict[str, Any], command: str) -> None:
    text = doc(document)
    assert parse(platform, command, text, max_rows=100)  # under the cap: read
    with pytest.raises(StructuredOutputError, match=r"more than 2 rows .*: refused"):
        parse(platform, command, text, max_rows=2)


# --- the uplink guard on the JSON path --------------------------------------------------------

UPLINK_MACS = 24  # far under the MAC-count threshold: only LLDP can tell this port is an uplink


def eos_json_facts() -> SwitchFacts:
    """One EOS switch's MAC table and LLDP neighbours, read from JSON: Ethernet24 is an uplink to a
    bridge/router with 24 MACs behind it, Ethernet5 a server (a Linux host, no capabilities enabled)."""
    behind = [eos_mac(f"00:00:5e:00:53:{0x40 + i:02x}", "Ethernet24", 10) for i in range(UPLINK_MACS)]
    table = eos_mac_table([eos_mac("00:00:5e:00:53:01", "Ethernet5", 10), *behind])
    lldp = {
        "lldpNeighbors": {
            "Ethernet5": {
                "lldpNeighborInfo": [
                    eos_neighbour("ded1", "0000.5e00.5301", "0000.5e00.5301", HOST_CAPS, id_type="macAddress")
                ]
            },
            "Ethernet24": {
                "lldpNeighborInfo": [
                    eos_neighbour("core1.example.net", "0000.5e00.53c0", "Ethernet1", SWITCH_CAPS)
                ]
            },
        }
    }
    return SwitchFacts(
        switch="sw1",
        platform="arista_eos",
        mac_table=tuple(structured.parse_mac_table("arista_eos", EOS_MAC, doc(table))),
        neighbors=tuple(structured.parse_lldp_neighbors("arista_eos", EOS_LLDP, doc(lldp))),
    )


def test_the_uplink_guard_fires_on_the_json_path() -> None:
    facts = eos_json_facts()
    behind = sorted({e.mac for e in facts.mac_table if e.port == "Ethernet24"})
    assert len(behind) == UPLINK_MACS < DEFAULT_UPLINK_THRESHOLD  # the MAC count alone would not catch it
    assert "Ethernet24" in find_uplinks(facts)
    for spelling in ("Et24", "Ethernet24"):
        assert shutdown_problem(facts, spelling, behind[0]) == (
            f"{spelling} of sw1 is an uplink ({UPLINK_MACS} MACs / LLDP switch neighbour)"
        )
    # a server's port (a Linux host, every capability false) is not one
    assert "Ethernet5" not in find_uplinks(facts)
    assert shutdown_problem(facts, "Et5", "00:00:5e:00:53:01") is None


def test_the_junos_json_lldp_marks_its_spines() -> None:
    found = structured.parse_lldp_neighbors("juniper_junos", JUNOS_LLDP, doc(JUNOS_LLDP_DOC))
    facts = SwitchFacts(switch="leaf01", platform="juniper_junos", neighbors=tuple(found))
    uplinks = find_uplinks(facts)
    assert {"xe-0/0/0", "xe-0/0/1"} <= uplinks and "xe-0/0/5" not in uplinks


# --- the lab's EOS answers have the documented keys -------------------------------------------


def test_the_lab_eos_json_has_the_documented_keys() -> None:
    macs = json.loads(eos_output.mac_table_json([eos_output.EosMac("52:54:00:aa:00:01", "Ethernet5", 10)]))
    assert set(macs) == EOS_MAC_TOP_KEYS
    assert set(macs["unicastTable"]["tableEntries"][0]) == EOS_MAC_ENTRY_KEYS

    status = json.loads(
        eos_output.interface_status_json([eos_output.EosPort("Ethernet5", "ded1", True, True, 10)])
    )
    assert set(status) == {"interfaceStatuses"}
    assert set(status["interfaceStatuses"]["Ethernet5"]) == EOS_STATUS_KEYS
    assert set(status["interfaceStatuses"]["Ethernet5"]["vlanInformation"]) == EOS_VLAN_INFO_KEYS

    lldp = json.loads(
        eos_output.lldp_detail_json(
            ["Ethernet5", "Ethernet24"],
            [eos_output.EosNeighbor("Ethernet24", "core1", "B,R", "2c60.0cad.30de", "Ethernet1")],
        )
    )
    assert set(lldp) == {"lldpNeighbors"}
    mine = lldp["lldpNeighbors"]["Ethernet24"]["lldpNeighborInfo"][0]
    assert set(mine) == EOS_LLDP_INFO_KEYS
    assert set(mine["neighborInterfaceInfo"]) == EOS_LLDP_IFACE_KEYS
    assert lldp["lldpNeighbors"]["Ethernet5"] == {"lldpNeighborInfo": []}  # every port listed, as on EOS


def test_the_documents_here_have_the_documented_keys() -> None:
    """The documents this file builds keep to the key sets written out above."""
    entries = EOS_MAC_DOC["unicastTable"]["tableEntries"]
    assert set(EOS_MAC_DOC) == EOS_MAC_TOP_KEYS
    assert all(set(e) in (EOS_MAC_ENTRY_KEYS, EOS_MAC_ENTRY_KEYS - {"lastMove", "moves"}) for e in entries)
    ports = EOS_STATUS_DOC["interfaceStatuses"]
    assert all(set(p) == EOS_STATUS_KEYS for p in ports.values())
    assert set(ports["Ethernet1"]["vlanInformation"]) == EOS_VLAN_INFO_KEYS
    infos = [i for p in EOS_LLDP_DOC["lldpNeighbors"].values() for i in p["lldpNeighborInfo"]]
    assert all(set(i) == EOS_LLDP_INFO_KEYS for i in infos)
    assert all(set(i["neighborInterfaceInfo"]) == EOS_LLDP_IFACE_KEYS for i in infos)


def test_the_lab_eos_text_parses_to_the_same_canonical_records() -> None:
    macs = [
        eos_output.EosMac("52:54:00:aa:00:01", "Ethernet5", 10),
        eos_output.EosMac("52:54:00:aa:00:03", "Ethernet24", 10),
    ]
    ports = [
        eos_output.EosPort("Ethernet5", "ded1", True, True, 10),
        eos_output.EosPort("Ethernet6", "", False, False, 10),
    ]
    neighbors = [eos_output.EosNeighbor("Ethernet24", "core1", "B,R", "2c60.0cad.30de", "Ethernet1")]
    names = InterfaceNames.of("arista_eos")

    def canon_macs(entries: list[MacEntry]) -> set[tuple[str, str, int | None, str]]:
        return {(e.mac, names.key(e.port), e.vlan, e.kind) for e in entries}

    text_macs = parse_mac_table("arista_eos", "show mac address-table", eos_output.mac_table_text(macs))
    json_macs = structured.parse_mac_table("arista_eos", EOS_MAC, eos_output.mac_table_json(macs))
    assert canon_macs(text_macs) == canon_macs(json_macs) and len(json_macs) == 2

    text_if = parse_interfaces(
        "arista_eos",
        {
            "show interfaces status": eos_output.interface_status_text(ports),
            "show interfaces description": eos_output.interfaces_description_text(ports),
        },
    )
    json_if = structured.parse_interfaces("arista_eos", EOS_IF, eos_output.interface_status_json(ports))
    assert {(names.key(i.name), i.description, i.admin_up, i.oper_up, i.vlan) for i in text_if} == {
        (names.key(i.name), i.description, i.admin_up, i.oper_up, i.vlan) for i in json_if
    }

    text_n = parse_lldp_neighbors(
        "arista_eos", "show lldp neighbors detail", eos_output.lldp_detail_text(neighbors)
    )
    json_n = structured.parse_lldp_neighbors(
        "arista_eos", EOS_LLDP, eos_output.lldp_detail_json(["Ethernet5", "Ethernet24"], neighbors)
    )
    assert [(n.local_port, n.name, n.port_id, n.chassis_id, n.is_switch) for n in text_n] == [
        (n.local_port, n.name, n.port_id, n.chassis_id, n.is_switch) for n in json_n
    ]
