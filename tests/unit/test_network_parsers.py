"""Parsers: real device output (shared fixtures) and recorded Linux-bridge JSON -> models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ipsinfra.models import normalize_mac
from ipsinfra.network.errors import SwitchCommandFailed, SwitchOutputError, UnknownPlatform
from ipsinfra.network.models import LldpNeighbor, MacEntry
from ipsinfra.network.parsers import (
    interfaces_from_records,
    mac_entries_from_records,
    parse_bridge_fdb,
    parse_interfaces,
    parse_ip_link,
    parse_lldp_neighbors,
    parse_lldpcli,
    parse_mac_table,
)

REPO = Path(__file__).resolve().parents[2]
MAC_TABLES = REPO.parent / "shared" / "fixtures" / "ntc-templates-mac-tables"
DATA = Path(__file__).resolve().parents[1] / "data" / "network"

# Written out by hand from the .yml files, independently of the parser's own
# key lists: which field holds the MAC, the port and the VLAN on each platform.
FIELDS: dict[str, tuple[str, str, str]] = {
    "alcatel_aos": ("mac", "interface", "vlan_id"),
    "allied_telesis_awplus": ("destination_address", "destination_port", "vlan_id"),
    "arista_eos": ("mac_address", "destination_port", "vlan_id"),
    "aruba_aoscx": ("mac_address", "port", "vlan_id"),
    "avaya_ers": ("mac_address", "port", "vid"),
    "broadcom_icos": ("mac_address", "interface", "vlan_id"),
    "brocade_fastiron": ("mac_address", "destination_port", "vlan_id"),
    "cisco_ios": ("destination_address", "destination_port", "vlan_id"),
    "cisco_nxos": ("mac_address", "ports", "vlan_id"),
    "cisco_s300": ("destination_address", "destination_port", "vlan_id"),
    "extreme_exos": ("mac_address", "interface", "vlan_id"),
    "hp_comware": ("mac_address", "interface", "vlan_id"),
    "hp_procurve": ("mac_address", "port", "vlan_id"),
    "huawei_ont": ("mac_address", "port_id", "vlan"),
    "huawei_smartax": ("mac", "fsp", "vlan_id"),
    "huawei_vrp": ("destination_address", "destination_port", "vlan_id"),
    "paloalto_panos": ("mac_address", "interface", "vlan_id"),
    "ruckus_fastiron": ("mac_address", "port", "vlan_id"),
}


def _fixture_cases() -> list[Any]:
    if not MAC_TABLES.is_dir():
        return [pytest.param(None, id="shared-fixtures-absent")]
    return [
        pytest.param(raw.relative_to(MAC_TABLES), id=str(raw.relative_to(MAC_TABLES).with_suffix("")))
        for raw in sorted(MAC_TABLES.glob("*/*/*.raw"))
    ]


def _expected(platform: str, record: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    mac_key, port_key, vlan_key = FIELDS[platform]
    ports = record[port_key] if isinstance(record[port_key], list) else [record[port_key]]
    ports = [p.strip() for p in ports if p.strip()]
    if port_key == "fsp":  # smartax's frame/slot/port "0 /1 /0" is compacted to "0/1/0"
        ports = [p.replace(" ", "") for p in ports]
    try:
        mac = normalize_mac(record[mac_key])
    except ValueError:
        return []  # e.g. arista's "jenn.3057.8423": not a MAC, skipped by the parser
    vlan = int(record[vlan_key]) if record[vlan_key].isdigit() else None
    return [(mac, p, vlan) for p in ports]


@pytest.mark.parametrize("relpath", _fixture_cases())
def test_every_fixture_platform_parses_to_its_yml(relpath: Path | None, shared_fixtures: Path) -> None:
    assert relpath is not None
    raw = shared_fixtures / "ntc-templates-mac-tables" / relpath
    platform, command_dir = relpath.parts[0], relpath.parts[1]
    command = command_dir.replace("_", " ")
    expected_records = yaml.safe_load(raw.with_suffix(".yml").read_text())["parsed_sample"]
    expected = [e for rec in expected_records for e in _expected(platform, rec)]

    entries = parse_mac_table(platform, command, raw.read_text())

    assert [(e.mac, e.port, e.vlan) for e in entries] == expected
    assert entries, "every fixture holds at least one usable entry"
    assert all(re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", e.mac) for e in entries)


def test_fixtures_cover_every_platform_directory(shared_fixtures: Path) -> None:
    platforms = {p.name for p in (shared_fixtures / "ntc-templates-mac-tables").iterdir() if p.is_dir()}
    assert platforms == set(FIELDS)


def test_cisco_ios_record_normalised() -> None:
    records = [
        {
            "destination_address": "0010.0DE0.E289",
            "destination_port": ["Fa0/1"],
            "type": "Dynamic",
            "vlan_id": "1",
        }
    ]
    assert mac_entries_from_records(records) == [
        MacEntry(mac="00:10:0d:e0:e2:89", port="Fa0/1", vlan=1, kind="dynamic")
    ]


def test_multi_port_record_gives_one_entry_per_port_and_bad_records_are_skipped() -> None:
    records = [
        {
            "mac_address": "0100.5e00.0001",
            "destination_port": ["Po1", "Po2"],
            "vlan_id": "5",
            "type": "STATIC",
        },
        {"mac_address": "jenn.3057.8423", "destination_port": ["Po66"], "vlan_id": "200", "type": "STATIC"},
        {"mac_address": "50-61-84-DD-58-00", "port": "", "vid": "25", "type": "Self"},
    ]
    entries = mac_entries_from_records(records)
    assert [(e.port, e.multicast) for e in entries] == [("Po1", True), ("Po2", True)]


def test_garbage_output_raises_output_error() -> None:
    garbage = "Mac Address Table\nzz 0010.0de0.e289 ??? what\n%%%%\n"
    with pytest.raises(SwitchOutputError, match="none parsed"):
        parse_mac_table("cisco_ios", "show mac address-table", garbage)
    with pytest.raises(SwitchOutputError, match="no MAC table"):
        parse_mac_table("cisco_ios", "show mac address-table", "lorem ipsum dolor\n")


def test_refused_command_and_unknown_platform() -> None:
    refused = "show mac address-table\n        ^\n% Invalid input detected at '^' marker.\n"
    with pytest.raises(SwitchCommandFailed, match="Invalid input"):
        parse_mac_table("cisco_ios", "show mac address-table", refused)
    with pytest.raises(UnknownPlatform):
        parse_mac_table("no_such_os", "show mac address-table", "x")


@pytest.mark.parametrize(
    "refusal",
    [
        "% Invalid input detected at '^' marker.",
        "% Incomplete command.",
        '% Ambiguous command:  "show mac"',
        "%Unknown command or computer name, or unable to find computer address",
        "% Unrecognized command found at '^' position.",
        "Error: Unrecognized command found at '^' position.",
        "Unrecognized command found at '^' position.",
        "syntax error, expecting <command>.",
        "command not found: bridge",
        "Unknown command: 'show'",
        "  ERROR: Wrong parameter found at '^' position.",
        "Error: Wrong parameter \u2013 non-ASCII text takes the regex path",
    ],
)
def test_every_kind_of_refusal_is_caught(refusal: str) -> None:
    table = "          Mac Address Table\n-------------------------------------------\n\n"
    with pytest.raises(SwitchCommandFailed):
        parse_mac_table("cisco_ios", "show mac address-table", f"{refusal}\n")
    with pytest.raises(SwitchCommandFailed):
        parse_mac_table("cisco_ios", "show mac address-table", f"{table}{refusal}\n")


def test_empty_cisco_table_is_empty_not_garbage() -> None:
    text = (
        "          Mac Address Table\n-------------------------------------------\n\n"
        "Vlan    Mac Address       Type        Ports\n----    -----------       --------    -----\n"
        "Total Mac Addresses for this criterion: 0\n"
    )
    assert parse_mac_table("cisco_ios", "show mac address-table", text) == []


def test_cisco_interfaces_status_and_description_merge() -> None:
    status = (
        "Port      Name               Status       Vlan       Duplex  Speed Type\n"
        "Gi0/1     ded1               connected    10         a-full a-1000 10/100/1000BaseTX\n"
        "Gi0/2                        disabled     10           auto   auto 10/100/1000BaseTX\n"
    )
    description = (
        "Interface                      Status         Protocol Description\n"
        "Gi0/1                          up             up       ded1\n"
        "Gi0/2                          admin down     down     \n"
    )
    interfaces = parse_interfaces(
        "cisco_ios", {"show interfaces status": status, "show interfaces description": description}
    )
    by_name = {i.name: i for i in interfaces}
    assert by_name["Gi0/1"].description == "ded1"
    assert by_name["Gi0/1"].admin_up is True and by_name["Gi0/1"].oper_up is True
    assert by_name["Gi0/2"].admin_up is False and by_name["Gi0/2"].description == ""
    assert interfaces_from_records([{"port": ""}]) == []


def test_cisco_lldp_detail() -> None:
    text = (DATA / "cisco_ios_show_lldp_neighbors_detail.txt").read_text()
    neighbors = parse_lldp_neighbors("cisco_ios", "show lldp neighbors detail", text)
    assert neighbors == [
        LldpNeighbor(
            local_port="Gi0/24",
            name="core1",
            port_id="Te1/0/1",
            chassis_id="0011.2233.4455",
            capabilities=("B", "R"),
        ),
        LldpNeighbor(
            local_port="Gi0/1",
            name="ded1",
            port_id="52:54:00:aa:00:01",
            chassis_id="5254.00aa.0001",
            capabilities=(),
        ),
    ]
    assert [n.is_switch for n in neighbors] == [True, False]


def test_bridge_fdb_keeps_learnt_unicast_on_bridge_ports() -> None:
    entries = parse_bridge_fdb((DATA / "bridge_fdb.json").read_text(), bridge="br0")
    assert [(e.mac, e.port) for e in entries] == [
        ("02:00:00:00:01:01", "swp1"),
        ("02:00:00:00:01:02", "swp2"),
    ]
    assert all(e.kind == "dynamic" for e in entries)


def test_ip_link_gives_bridge_ports_with_alias_as_description() -> None:
    interfaces = parse_ip_link((DATA / "ip_link.json").read_text(), bridge="br0")
    assert [(i.name, i.description, i.admin_up) for i in interfaces] == [
        ("swp1", "ded1", True),
        ("swp2", "", False),
    ]


def test_lldpcli_json_one_and_many_interfaces() -> None:
    many = parse_lldpcli((DATA / "lldpcli_neighbors.json").read_text())
    assert [(n.local_port, n.name, n.is_switch) for n in many] == [
        ("swp1", "ded1", False),
        ("swp2", "core1", True),
    ]
    one = {
        "lldp": {
            "interface": {
                "swp1": json.loads((DATA / "lldpcli_neighbors.json").read_text())["lldp"]["interface"][0][
                    "swp1"
                ]
            }
        }
    }
    assert [n.name for n in parse_lldpcli(json.dumps(one))] == ["ded1"]
    assert parse_lldpcli('{"lldp": {}}') == []


@pytest.mark.parametrize("fn", [parse_bridge_fdb, parse_ip_link, parse_lldpcli])
def test_linux_parsers_refuse_non_json(fn: Any) -> None:
    with pytest.raises(SwitchOutputError, match="JSON"):
        fn("-bash: bridge: command not found\n")
