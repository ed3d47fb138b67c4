"""The lab's in-process cisco_ios switch prints what real Catalysts print.

Real captures (``../shared/fixtures/ntc-templates-port-views/cisco_ios`` and
``ntc-templates-mac-tables/cisco_ios``) are rendered again with the lab
switch's own line formatters, from the values ntc-templates reads out of them,
and compared with the capture line by line (line-end spaces aside). Lines a
capture prints in a way no formatter could (IOS-XE's TDR notes that push the
columns, hand-edited rows) are listed by port with the reason. The lab's own
output must then parse, with the same template, into records with the same
keys as the capture's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ipsinfra.lab.ios_output import (
    DESCRIPTION_HEADER,
    MAC_TABLE_HEAD,
    STATUS_HEADER,
    IosLldpNeighbor,
    description_row,
    lldp_detail,
    mac_row,
    status_row,
)
from ipsinfra.lab.switches import IosSwitchState
from ipsinfra.network.parsers import parse_interfaces, parse_lldp_neighbors, parse_mac_table, parse_ntc

IOS = "ntc-templates-port-views/cisco_ios"
MAC_TABLES = "ntc-templates-mac-tables/cisco_ios/show_mac-address-table"

# Rows of the captures no column formatter reproduces, and why.
IRREGULAR_STATUS_ROWS = {
    "Gi1/0/19": "IOS-XE appends ':' to the status and shifts the Vlan column",
    "Gi1/0/20": "IOS-XE appends ':' to the status and shifts the Vlan column",
    "Gi1/0/21": "a 10-character Vlan ('unassigned') followed by 5 spaces, not 1",
    "Gi1/0/22": "IOS-XE's TDR note ('notconnect: TD') shifts the columns",
    "Gi1/0/23": "IOS-XE's TDR note ('connected: TDR') shifts the columns",
    "Fa1/6": "the port column is 8 wide on this one row (an edited line)",
}
IRREGULAR_MAC_ROWS = {
    ("87", "0019.ab11.1111"): "vlan 87 printed 3 wide where IOS pads to 4 (an edited capture)",
    ("87", "12db.dbdb.1919"): "the same",
    ("87", "1818.1818.1818"): "the same",
}


def _records(raw: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = yaml.safe_load(raw.with_suffix(".yml").read_text())["parsed_sample"]
    return records


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def _catalyst_captures(folder: Path, header: str) -> list[Path]:
    """The captures in the lab's layout: their first line that is not empty is ``header``."""
    out = []
    for raw in sorted(folder.glob("*.raw")):
        first = next(line for line in raw.read_text().splitlines() if line.strip())
        if first.rstrip() == header:
            out.append(raw)
    return out


def test_interfaces_status_rows_are_formatted_as_a_catalyst_formats_them(shared_fixtures: Path) -> None:
    captures = _catalyst_captures(shared_fixtures / IOS / "show_interfaces_status", STATUS_HEADER)
    assert len(captures) >= 2, "the Catalyst-layout captures are gone"
    compared = 0
    for raw in captures:
        body = [line for line in _lines(raw.read_text())[1:] if line]
        records = _records(raw)
        assert len(body) == len(records), raw.name
        for record, line in zip(records, body, strict=True):
            mine = status_row(
                record["port"],
                record["name"],
                record["status"],
                record["vlan_id"],
                record["duplex"],
                record["speed"],
                record["type"],
            )
            if record["port"] in IRREGULAR_STATUS_ROWS:
                assert mine != line, f"{record['port']} is regular now: drop it from the list"
                continue
            assert mine == line, raw.name
            compared += 1
    assert compared >= 25


def test_interfaces_description_rows_are_formatted_as_a_catalyst_formats_them(shared_fixtures: Path) -> None:
    captures = _catalyst_captures(shared_fixtures / IOS / "show_interfaces_description", DESCRIPTION_HEADER)
    assert captures
    for raw in captures:
        records = _records(raw)
        mine = [DESCRIPTION_HEADER] + [
            description_row(r["port"], r["status"], r["protocol"], r["description"]) for r in records
        ]
        assert mine == [line for line in _lines(raw.read_text()) if line]


def test_mac_table_rows_are_formatted_as_a_catalyst_formats_them(shared_fixtures: Path) -> None:
    captures = [
        raw
        for raw in sorted((shared_fixtures / MAC_TABLES).glob("*.raw"))
        if raw.read_text().startswith(MAC_TABLE_HEAD)
    ]
    assert len(captures) >= 3, "the Catalyst-layout MAC tables are gone"
    compared = 0
    for raw in captures:
        text = raw.read_text()
        body = [
            line
            for line in _lines(text[len(MAC_TABLE_HEAD) :])
            if line and not line.startswith("Total Mac Addresses")
        ]
        records = _records(raw)
        assert len(body) == len(records), raw.name
        for r, line in zip(records, body, strict=True):
            mine = mac_row(r["vlan_id"], r["destination_address"], r["type"], ",".join(r["destination_port"]))
            if (r["vlan_id"], r["destination_address"]) in IRREGULAR_MAC_ROWS:
                assert mine != line
                continue
            assert mine == line, raw.name
            compared += 1
        total = [line for line in _lines(text) if line.startswith("Total Mac Addresses")]
        assert total in (
            [],
            [f"Total Mac Addresses for this criterion: {len(records)}"],
        ) or raw.name.endswith(
            "table13.raw"  # says 87 of its 6 rows: a cut capture
        )
    assert compared >= 30


# Neighbours transcribed by hand from cisco_ios captures: (capture, local port,
# the neighbour, how much of the capture's block the lab prints). Everything up
# to the MED section, which the lab does not print.
DSW01 = IosLldpNeighbor(
    name="dsw01",
    capabilities="B,R",
    chassis_id="2c33.1100.a6c0",
    port_id="Te1/2/13",
    port_description="asw22",
    system_description=(
        "Cisco IOS Software, s6t64 Software (s6t64-ADVENTERPRISEK9-M), Version 15.4(1)SY3, "
        "RELEASE SOFTWARE (fc4)\nTechnical Support: http://www.cisco.com/techsupport\n"
        "Copyright (c) 1986-2017 by Cisco Systems, Inc.\nCompiled Fri 27-Oct-17 23:06 by prod_rel_team"
    ),
    time_remaining=110,
    mgmt_ip="172.16.0.10",
    auto_negotiation="supported, enabled",
    media_capabilities=("Other/unknown",),
    vlan=1,
)
SDALAB = IosLldpNeighbor(
    name="sdalab-bldg1-as01.devices.example.com",
    capabilities="B,R",
    chassis_id="2416.abcd.abcd",
    port_id="Gi1/0/16",
    port_description="GigabitEthernet1/0/16",
    system_description=(
        "Cisco IOS Software [Bengaluru], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.6.5, "
        "RELEASE SOFTWARE (fc2)\nTechnical Support: http://www.cisco.com/techsupport\n"
        "Copyright (c) 1986-2023 by Cisco Systems, Inc.\nCompiled Wed 25-Jan-23 16:15 by mcpre"
    ),
    time_remaining=107,
    mgmt_ip="172.16.1.1",
    auto_negotiation="supported, enabled",
    media_capabilities=("1000baseT(FD)", "100base-TX(FD)", "100base-TX(HD)", "10base-T(FD)", "10base-T(HD)"),
    mau_type=30,
    vlan=1,
    peer_mac="2416.abcd.ab12",
)
ZULTYS = IosLldpNeighbor(
    name="ZULTYS IP Phone",
    capabilities="T",
    chassis_id="172.16.4.125",
    port_id="000b.ea00.16e0",
    port_description="WAN PORT",
    system_description="ZULTYS IP Phone",
    time_remaining=64,
    mgmt_ip=None,
    auto_negotiation="supported, enabled",
    media_capabilities=("1000baseT(FD)", "100base-TX(FD)", "100base-TX(HD)", "10base-T(FD)", "10base-T(HD)"),
    mau_type=30,
)
LLDP_CASES = [
    ("cisco_ios_show_lldp_neighbors_detail4.raw", "Te1/1/1", DSW01),
    ("cisco_ios_show_lldp_neighbors_detail_01.raw", "Gi1/1/2", SDALAB),
    ("cisco_ios_show_lldp_neighbors_detail4.raw", "Gi2/0/13", ZULTYS),
]


def _block(text: str, local_port: str) -> list[str]:
    """The capture's block for ``local_port``: its dashes up to the MED section or the next dashes."""
    lines = _lines(text)
    start = lines.index(f"Local Intf: {local_port}") - 1
    end = start + 1
    while end < len(lines) and not lines[end].startswith(("-----", "MED Information", "Total entries")):
        end += 1
    while not lines[end - 1]:
        end -= 1
    return lines[start:end]


@pytest.mark.parametrize(("capture", "port", "neighbor"), LLDP_CASES, ids=[c[2].name for c in LLDP_CASES])
def test_lldp_blocks_are_printed_as_ios_prints_them(
    capture: str, port: str, neighbor: IosLldpNeighbor, shared_fixtures: Path
) -> None:
    text = (shared_fixtures / IOS / "show_lldp_neighbors_detail" / capture).read_text()
    rendered = neighbor.render(port)
    assert rendered.endswith("\n\n")  # one empty line after each block, as between the capture's
    assert _lines(rendered)[:-1] == _block(text, port)


def test_a_whole_lldp_answer_is_the_capture(shared_fixtures: Path) -> None:
    """The capture's last neighbour and its end, exactly: block, two empty lines, the total."""
    text = (
        shared_fixtures / IOS / "show_lldp_neighbors_detail/cisco_ios_show_lldp_neighbors_detail4.raw"
    ).read_text()
    tail = _lines(text)[_lines(text).index("Local Intf: Te1/1/1") - 1 :]
    mine = _lines(lldp_detail([("Te1/1/1", DSW01)]))
    assert mine[:-1] == tail[:-1]
    assert mine[-1] == "Total entries displayed: 1" and tail[-1] == "Total entries displayed: 2"


def _lab_state() -> IosSwitchState:
    state = IosSwitchState(hostname="sw1", ports=[f"Gi1/0/{i}" for i in range(1, 9)])
    state.port_states["Gi1/0/2"].description = "ded1 a long description past 18"
    state.port_states["Gi1/0/3"].admin_up = False
    state.learn("52:54:00:aa:00:01", "Gi1/0/2")
    state.learn("52:54:00:aa:00:02", "Gi1/0/8", vlan=20)
    state.neighbor("Gi1/0/8", "core1", "B,R")
    state.neighbor("Gi1/0/2", "ded1", "")
    return state


def test_the_lab_switch_output_parses_into_the_captures_records(shared_fixtures: Path) -> None:
    state = _lab_state()
    cases = [
        ("show interfaces status", state.show_status(), IOS + "/show_interfaces_status"),
        ("show interfaces description", state.show_description(), IOS + "/show_interfaces_description"),
        ("show lldp neighbors detail", state.show_lldp(), IOS + "/show_lldp_neighbors_detail"),
        ("show mac address-table", state.show_mac(), MAC_TABLES),
    ]
    for command, text, folder in cases:
        keys = {frozenset(r) for raw in (shared_fixtures / folder).glob("*.yml") for r in _records(raw)}
        records = parse_ntc("cisco_ios", command, text)
        assert records, command
        assert {frozenset(r) for r in records} <= keys, command

    interfaces = {i.name: i for i in parse_interfaces("cisco_ios", {
        "show interfaces status": state.show_status(),
        "show interfaces description": state.show_description(),
    })}  # fmt: skip
    assert (interfaces["Gi1/0/2"].description, interfaces["Gi1/0/2"].oper_up) == (
        "ded1 a long description past 18",
        True,
    )
    assert (interfaces["Gi1/0/1"].admin_up, interfaces["Gi1/0/1"].oper_up) == (True, False)
    assert (interfaces["Gi1/0/3"].admin_up, interfaces["Gi1/0/3"].oper_up) == (False, False)
    status = parse_ntc("cisco_ios", "show interfaces status", state.show_status())
    assert [(r["status"], r["duplex"], r["speed"]) for r in status[:3]] == [
        ("notconnect", "auto", "auto"),
        ("connected", "a-full", "a-1000"),
        ("disabled", "auto", "auto"),
    ]
    neighbors = parse_lldp_neighbors("cisco_ios", "show lldp neighbors detail", state.show_lldp())
    assert [(n.local_port, n.name, n.is_switch, n.port_id == n.chassis_id) for n in neighbors] == [
        ("Gi1/0/2", "ded1", False, True),  # a server's lldpd: its MAC for both
        ("Gi1/0/8", "core1", True, False),
    ]
    macs = parse_mac_table("cisco_ios", "show mac address-table", state.show_mac())
    assert [(e.mac, e.port, e.vlan) for e in macs] == [
        ("52:54:00:aa:00:01", "Gi1/0/2", 10),
        ("52:54:00:aa:00:02", "Gi1/0/8", 20),
    ]


def test_the_lab_switch_headers_are_the_captures_headers(shared_fixtures: Path) -> None:
    state = _lab_state()
    status = _lines(
        (shared_fixtures / IOS / "show_interfaces_status/cisco_ios_show_interfaces_status.raw").read_text()
    )
    description = _lines(
        (
            shared_fixtures / IOS / "show_interfaces_description/cisco_ios_show_interfaces_description.raw"
        ).read_text()
    )
    mac = (shared_fixtures / MAC_TABLES / "cisco_ios_show_mac-address-table6.raw").read_text()
    assert state.show_status().splitlines()[0] == status[0]
    assert state.show_description().splitlines()[0] == description[0]
    assert state.show_mac().startswith(
        mac[: mac.index("Vlan")] + "Vlan    Mac Address       Type        Ports\n"
    )
    assert state.show_mac().splitlines()[3:5] == mac.splitlines()[3:5]
    assert state.show_mac().splitlines()[-1] == "Total Mac Addresses for this criterion: 2"
