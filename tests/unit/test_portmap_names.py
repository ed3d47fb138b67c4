"""The port map compares ports in their canonical form (issue 22): spellings never make moves or strays."""

from __future__ import annotations

from ipsinfra.models import SwitchPort
from ipsinfra.network.models import Interface, MacEntry, SwitchFacts
from ipsinfra.network.parsers import interfaces_from_records
from ipsinfra.network.portmap import PortMap, build_port_map, diff_port_map

DED1 = "52:54:00:aa:00:01"


def arista(port: str, *, interfaces: tuple[Interface, ...] = ()) -> SwitchFacts:
    return SwitchFacts(
        switch="sw1",
        platform="arista_eos",
        mac_table=(MacEntry(mac=DED1, port=port, vlan=10),),
        interfaces=interfaces,
    )


def test_a_port_recorded_in_another_spelling_has_not_moved() -> None:
    observed = build_port_map([arista("Et5")], {DED1: "ded1"})
    recorded = PortMap(ports=(SwitchPort(switch="sw1", port="Ethernet5", server="ded1", macs=[DED1]),))
    assert diff_port_map(recorded, observed).moved == []
    moved = diff_port_map(recorded, build_port_map([arista("Et6")], {DED1: "ded1"})).moved
    assert [(m.before.port, m.after.port) for m in moved] == [("Ethernet5", "Et6")]


def test_the_map_finds_a_port_and_its_description_in_any_spelling() -> None:
    pm = build_port_map(
        [arista("Et5", interfaces=(Interface(name="Ethernet5", description="ded1"),))], {DED1: "ded1"}
    )
    entry = pm.get("sw1", "Ethernet5")
    assert entry is not None and entry.port == "Et5" and entry.description == "ded1"
    assert pm.get("sw1", "Et5") == entry and pm.get("sw1", "Et6") is None
    assert diff_port_map(pm, pm).description_mismatches == []


def test_interface_records_of_one_port_merge_whichever_way_they_spell_it() -> None:
    records = [
        {"port": "Et1", "status": "connected", "vlan_id": "10"},
        {"port": "Ethernet1", "description": "ded1"},
    ]
    merged = interfaces_from_records(records, platform="arista_eos")
    assert merged == [Interface(name="Et1", description="ded1", admin_up=True, oper_up=True, vlan="10")]
    assert len(interfaces_from_records(records)) == 2  # no platform: names as printed
