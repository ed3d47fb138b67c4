"""Interface and LLDP parsers on real switch output, for every platform that claims them.

The output is ntc-templates' own test data in
``../shared/fixtures/ntc-templates-port-views/<platform>/<command>/`` (each
``.raw`` capture beside the ``.yml`` records ntc-templates expects). The cases
are discovered there, and every (platform, command) that
:func:`ipsinfra.network.switches.default_platforms` sends for interfaces or
LLDP must have a folder, and every folder a platform that sends it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ipsinfra.network.models import Interface
from ipsinfra.network.parsers import parse_interfaces, parse_lldp_neighbors, parse_ntc
from ipsinfra.network.switches import default_platforms

PORT_VIEWS = "ntc-templates-port-views"
ROOT = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / PORT_VIEWS

# Written out by hand from the .yml files, independently of the parser's key
# lists: (local port, neighbour name, remote port id, enabled capabilities or
# None where the command does not print them).
LLDP_FIELDS: dict[str, tuple[str, str, str, str | None]] = {
    "arista_eos": ("local_interface", "neighbor_name", "neighbor_interface", None),
    "cisco_ios": ("local_interface", "neighbor_name", "neighbor_port_id", "capabilities"),
    "cisco_nxos": ("local_interface", "neighbor_name", "neighbor_interface", "capabilities"),
    "hp_procurve": ("local_interface", "neighbor_name", "neighbor_interface", None),
    "huawei_vrp": ("local_interface", "neighbor_name", "neighbor_port_id", "capabilities"),
    "juniper_junos": ("local_interface", "neighbor_name", "neighbor_interface", None),
}


class IfaceFields:
    """Which .yml key holds what, for one interface command."""

    def __init__(
        self,
        port: str,
        description: str | None = None,
        status: str | None = None,
        protocol: str | None = None,
        enabled: str | None = None,
        vlan: str | None = None,
    ) -> None:
        self.port, self.description, self.status = port, description, status
        self.protocol, self.enabled, self.vlan = protocol, enabled, vlan


IOS_STYLE_DESCRIPTION = IfaceFields("port", "description", "status", "protocol")
IOS_STYLE_STATUS = IfaceFields("port", "name", "status", vlan="vlan_id")
IFACE_FIELDS: dict[tuple[str, str], IfaceFields] = {
    ("arista_eos", "show interfaces description"): IOS_STYLE_DESCRIPTION,
    ("arista_eos", "show interfaces status"): IOS_STYLE_STATUS,
    ("cisco_ios", "show interfaces description"): IOS_STYLE_DESCRIPTION,
    ("cisco_ios", "show interfaces status"): IOS_STYLE_STATUS,
    ("cisco_nxos", "show interface description"): IfaceFields("port", "description"),
    ("cisco_nxos", "show interface status"): IOS_STYLE_STATUS,
    ("hp_procurve", "show interfaces brief"): IfaceFields("port", status="status", enabled="enabled"),
    ("huawei_vrp", "display interface description"): IfaceFields(
        "interface", "description", status="phy", protocol="protocol"
    ),
}

# Every state word in the captures -> (admin_up, oper_up), as the switch means
# it. A new capture with a word not here fails the test until someone says
# what that word means.
STATE: dict[str, tuple[bool | None, bool | None]] = {
    "connected": (True, True),
    "up": (True, True),
    "Up": (True, True),  # HP
    "notconnect": (True, False),
    "notconnec": (True, False),  # NX-OS cuts the column at 9 characters
    "down": (True, False),
    "Down": (True, False),
    "inactive": (True, False),
    "suspended": (True, False),
    "err-disabled": (True, False),  # stopped by the switch, not shut down in the configuration
    "errdisabled": (True, False),
    "xcvrAbsen": (True, False),
    "sfpAbsent": (True, False),
    "noOperMem": (True, False),
    "channelDo": (True, False),
    "monitoring": (True, None),  # a SPAN destination
    "disabled": (False, False),
    "admin down": (False, False),
    "deleted": (False, False),
    "*down": (False, False),  # Huawei: administratively down
    "reset": (None, None),
}
PROTOCOL_UP = {"up": True, "up(s)": True, "down": False, "lowerlayerdown": False, "notpresent": False}
PROTOCOL_UP["unknown"] = False
EMPTY = {"--"}  # NX-OS prints an empty description as "--"


def _command(folder: str) -> str:
    return folder.replace("_", " ")


def _cases() -> list[Any]:
    if not ROOT.is_dir():
        return [pytest.param(None, id="shared-fixtures-absent")]
    return [
        pytest.param(raw.relative_to(ROOT), id=str(raw.relative_to(ROOT).with_suffix("")))
        for raw in sorted(ROOT.glob("*/*/*.raw"))
    ]


CASES = _cases()


def _load(shared_fixtures: Path, relpath: Path | None) -> tuple[str, str, str, list[dict[str, Any]]]:
    assert relpath is not None
    raw = shared_fixtures / PORT_VIEWS / relpath
    platform, command = relpath.parts[0], _command(relpath.parts[1])
    records = yaml.safe_load(raw.with_suffix(".yml").read_text())["parsed_sample"]
    assert records, f"{relpath}: no expected records"
    return platform, command, raw.read_text(), records


def _caps(value: str) -> tuple[str, ...]:
    return tuple(c for c in re.split(r",\s*|\s+", value.strip()) if c)


def _expected_neighbors(platform: str, records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    local, name, port, caps = LLDP_FIELDS[platform]
    return [
        (
            r[local].strip(),
            r[name].strip(),
            r[port].strip(),
            r["chassis_id"].strip(),
            _caps(r[caps]) if caps else None,
        )
        for r in records
        if r[local].strip()  # a neighbour on no port (two IOS captures print none) is no port's
    ]


def _expected_interfaces(fields: IfaceFields, records: list[dict[str, Any]]) -> dict[str, Interface]:
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        row = rows.setdefault(r[fields.port].strip(), {"name": r[fields.port].strip()})
        text = r[fields.description].strip() if fields.description else ""
        if text and text not in EMPTY:
            row.setdefault("description", text)
        admin, oper = STATE[r[fields.status]] if fields.status else (None, None)
        if fields.enabled and r[fields.enabled] == "No":
            admin, oper = False, False
        if fields.protocol and admin is not False:
            oper = PROTOCOL_UP[r[fields.protocol]]
        if admin is not None:  # a later record (a port printed twice) says the state now
            row["admin_up"] = admin
        if oper is not None:
            row["oper_up"] = oper
        vlan = r[fields.vlan].strip() if fields.vlan else ""
        if vlan and vlan not in EMPTY:
            row.setdefault("vlan", vlan)
    return {name: Interface(**row) for name, row in rows.items()}


@pytest.mark.parametrize("relpath", CASES)
def test_real_port_views_parse_to_the_records_ntc_templates_expects(
    relpath: Path | None, shared_fixtures: Path
) -> None:
    platform, command, text, records = _load(shared_fixtures, relpath)
    claimed = default_platforms()[platform]
    # the records under the models: TextFSM as run by fast_tables, or ntc-templates' parse_output
    assert parse_ntc(platform, command, text) == records

    if command == claimed.lldp:
        neighbors = parse_lldp_neighbors(platform, command, text)
        caps_printed = LLDP_FIELDS[platform][3] is not None
        got = [
            (n.local_port, n.name, n.port_id, n.chassis_id, n.capabilities if caps_printed else None)
            for n in neighbors
        ]
        expected = _expected_neighbors(platform, records)
        assert got == expected
        assert neighbors or all(not r[LLDP_FIELDS[platform][0]].strip() for r in records)
        if caps_printed:
            switchy = {"B", "R", "bridge", "router"}
            assert [n.is_switch for n in neighbors] == [bool(set(e[4]) & switchy) for e in expected]
    else:
        assert command in claimed.interfaces, f"{platform} does not send {command!r}"
        interfaces = parse_interfaces(platform, {command: text})
        expected_ifaces = _expected_interfaces(IFACE_FIELDS[(platform, command)], records)
        assert {i.name: i for i in interfaces} == expected_ifaces
        assert len(interfaces) == len(expected_ifaces) > 0


def test_fixtures_and_claims_match(shared_fixtures: Path) -> None:
    """What ``default_platforms`` sends for ports and neighbours is what real output exists for."""
    root = shared_fixtures / PORT_VIEWS
    present = {
        (d.parent.name, _command(d.name)) for d in root.glob("*/*") if d.is_dir() and any(d.glob("*.raw"))
    }
    claimed = {
        (p.name, command)
        for p in default_platforms().values()
        if not p.linux_bridge
        for command in (*p.interfaces, *([p.lldp] if p.lldp else []))
    }
    assert present, f"no captures under {root}"
    assert claimed == present
    assert {p for p, _ in present} == set(LLDP_FIELDS)
    assert {pc for pc in present if pc[1] != default_platforms()[pc[0]].lldp} == set(IFACE_FIELDS)
    discovered = sorted(str(r.relative_to(root)) for r in root.glob("*/*/*.raw"))
    assert [str(c.values[0]) for c in CASES] == discovered  # the parametrized list is the whole tree
    assert all((root / r).with_suffix(".yml").is_file() for r in discovered)


def test_arista_neighbours_carry_their_enabled_capabilities(shared_fixtures: Path) -> None:
    """ntc-templates' Arista template drops them; read from the text (values read off the .raw by hand)."""
    raw = shared_fixtures / PORT_VIEWS / "arista_eos/show_lldp_neighbors_detail"
    text = (raw / "arista_eos_show_lldp_neighbors_detail.raw").read_text()
    neighbors = parse_lldp_neighbors("arista_eos", "show lldp neighbors detail", text)
    caps = {(n.local_port, n.port_id): n.capabilities for n in neighbors}
    assert caps[("Ethernet1", "Ethernet1")] == ("Bridge", "Router")
    assert caps[("Ethernet8", "Management1")] == ("Bridge",)
    assert caps[("Ethernet33", "0050.56ac.4cd9")] == ("Router", "Station Only")
    assert all(n.capabilities for n in neighbors)
    assert [n.local_port for n in neighbors if not n.is_switch] == []
    # a neighbour without a name is not in the template's records, and not in ours
    nameless = text.replace('- System Name: "spine2.company.com"', "", 1)
    fewer = parse_lldp_neighbors("arista_eos", "show lldp neighbors detail", nameless)
    assert len(fewer) == len(neighbors) - 1 and all(n.capabilities for n in fewer)
    # output the two readings do not agree on keeps the template's records as they are
    garbled = text.replace("Neighbor 0050.568b.67c8/Ethernet1, age 29 seconds", "", 1)
    unmatched = parse_lldp_neighbors("arista_eos", "show lldp neighbors detail", garbled)
    assert len(unmatched) == len(neighbors) - 1 and all(n.capabilities == () for n in unmatched)
