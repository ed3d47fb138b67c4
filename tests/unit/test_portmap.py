"""The port map: join, uplinks, diff and the recorded file. Pure, no switch needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsinfra.errors import InventoryError
from ipsinfra.models import SwitchPort
from ipsinfra.network.models import Interface, LldpNeighbor, MacEntry, SwitchFacts, natural_port_key
from ipsinfra.network.portmap import PortMap, PortRef, build_port_map, diff_port_map, find_uplinks
from ipsinfra.network.portmap_file import (
    dump_port_map,
    load_port_map,
    map_file_path,
    read_port_map,
    write_port_map,
)

SERVERS = {
    "52:54:00:aa:00:01": "ded1",
    "5254.00aa.0003": "ded2",  # any spelling
    "52:54:00:00:0a:01": "kvm1",
    "52:54:00:01:00:01": "VPS1001(113.10)",
    "52:54:00:01:00:02": "VPS1002(113.10)",
}


def facts(switch: str, table: dict[str, list[str]], **kw: object) -> SwitchFacts:
    entries = tuple(MacEntry(mac=m, port=p, vlan=10) for p, macs in table.items() for m in macs)
    return SwitchFacts(switch=switch, platform="cisco_ios", mac_table=entries, **kw)  # type: ignore[arg-type]


def many_macs(n: int) -> list[str]:
    return [f"02:00:00:00:{i // 256:02x}:{i % 256:02x}" for i in range(n)]


def sw1(ded1_port: str = "Gi0/5", **kw: object) -> SwitchFacts:
    return facts(
        "sw1-msk1",
        {
            ded1_port: ["52:54:00:aa:00:01"],
            "Gi0/7": ["52:54:00:00:0a:01", "52:54:00:01:00:01", "52:54:00:01:00:02", "02:aa:00:00:00:09"],
            "Gi0/24": [*many_macs(70), "52:54:00:aa:00:03"],  # an uplink also sees every server
        },
        **kw,
    )


def test_natural_port_order() -> None:
    ports = ["Gi0/10", "Gi0/2", "swp10", "Gi1/0/1", "swp2", "Gi0/1"]
    assert sorted(ports, key=natural_port_key) == ["Gi0/1", "Gi0/2", "Gi0/10", "Gi1/0/1", "swp2", "swp10"]


def test_join_attributes_ports_and_excludes_uplinks() -> None:
    pm = build_port_map([sw1()], SERVERS, hosts={"kvm1"})
    assert [(p.port, p.server, p.uplink) for p in pm.ports] == [
        ("Gi0/5", "ded1", False),
        ("Gi0/7", "kvm1", False),  # the node owns its port; its VDS's MACs ride on it
        ("Gi0/24", None, True),
    ]
    assert pm.port_of("ded1") == SwitchPort(
        switch="sw1-msk1", port="Gi0/5", macs=["52:54:00:aa:00:01"], server="ded1"
    )
    assert pm.port_of("ded2") is None  # seen only through the uplink
    assert pm.get("sw1-msk1", "Gi0/7") is not None and pm.get("sw1-msk1", "Gi0/7").macs == sorted(  # type: ignore[union-attr]
        ["52:54:00:00:0a:01", "52:54:00:01:00:01", "52:54:00:01:00:02"]
    )


def test_several_servers_without_a_host_is_a_conflict() -> None:
    pm = build_port_map([sw1()], SERVERS)  # kvm1 not named as a host
    assert pm.port_of("kvm1") is None
    assert [(c.port, c.servers) for c in pm.conflicts] == [
        ("Gi0/7", ("VPS1001(113.10)", "VPS1002(113.10)", "kvm1"))
    ]


def test_uplink_by_lldp_switch_neighbour_and_by_list() -> None:
    f = facts(
        "sw2",
        {"swp1": ["52:54:00:aa:00:01"], "swp2": ["52:54:00:aa:00:03"], "swp3": []},
        neighbors=(LldpNeighbor(local_port="swp2", name="core1", capabilities=("Bridge",)),),
    )
    assert find_uplinks(f) == {"swp2"}
    assert find_uplinks(f, uplinks=["swp1"]) == {"swp1", "swp2"}
    assert find_uplinks(facts("s", {"p": many_macs(5)}), threshold=4) == {"p"}
    pm = build_port_map([f], SERVERS)
    assert pm.port_of("ded2") is None and pm.port_of("ded1") is not None


def test_descriptions_come_from_interfaces_and_mismatches_are_reported() -> None:
    f = sw1(
        interfaces=(Interface(name="Gi0/5", description="ded1"), Interface(name="Gi0/7", description="old"))
    )
    observed = build_port_map([f], SERVERS, hosts={"kvm1"})
    diff = diff_port_map(observed, observed)
    assert not diff.changed
    assert [(d.port, d.server, d.description) for d in diff.description_mismatches] == [
        ("Gi0/7", "kvm1", "old")
    ]


def test_diff_moved_appeared_vanished() -> None:
    recorded = build_port_map([sw1("Gi0/4")], SERVERS, hosts={"kvm1"})
    recorded = PortMap(ports=(*recorded.ports, SwitchPort(switch="sw1-msk1", port="Gi0/9", server="ded9")))
    observed = build_port_map(
        [sw1("Gi0/6"), facts("sw2-msk1", {"swp3": ["52:54:00:aa:00:03"]})], SERVERS, hosts={"kvm1"}
    )
    diff = diff_port_map(recorded, observed)
    assert [(m.server, m.before, m.after) for m in diff.moved] == [
        ("ded1", PortRef(switch="sw1-msk1", port="Gi0/4"), PortRef(switch="sw1-msk1", port="Gi0/6"))
    ]
    assert [p.server for p in diff.appeared] == ["ded2"]
    assert [p.server for p in diff.vanished] == ["ded9"]
    assert diff.changed
    assert diff.lines()[0] == "moved     ded1: sw1-msk1 Gi0/4 -> sw1-msk1 Gi0/6"
    # a switch that did not answer does not make its servers vanish
    assert diff_port_map(recorded, observed, switches={"sw2-msk1"}).vanished == []


def test_identical_maps_give_an_empty_diff() -> None:
    pm = build_port_map(
        [sw1(interfaces=(Interface(name="Gi0/5", description="ded1"),))], {"52:54:00:aa:00:01": "ded1"}
    )
    assert diff_port_map(pm, pm).empty


def test_file_round_trip_is_stable(tmp_path: Path) -> None:
    pm = build_port_map(
        [sw1(interfaces=(Interface(name="Gi0/5", description="ded1"),))], SERVERS, hosts={"kvm1"}
    )
    path = map_file_path(tmp_path / "inventory", "msk1")
    assert path == tmp_path / "inventory" / "switch_ports.msk1.yml"
    assert write_port_map(path, pm, "msk1") is True
    assert write_port_map(path, pm, "msk1") is False  # unchanged: not rewritten
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    again = read_port_map(path)
    assert again == pm
    assert dump_port_map(again, "msk1") == path.read_text()
    text = path.read_text()
    assert text.index("Gi0/5:") < text.index("Gi0/7:") < text.index("Gi0/24:")
    assert "  sw1-msk1:\n    Gi0/5:\n      server: ded1\n      description: ded1\n" in text
    assert not diff_port_map(again, pm).changed


def test_absent_file_is_an_empty_map(tmp_path: Path) -> None:
    assert read_port_map(tmp_path / "nope.yml") == PortMap()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("site: x\nswitches: [1, 2]\n", "expected a mapping"),
        ("site: x\nswitches:\n  sw1:\n    Gi0/1:\n      macs: [nonsense]\n", r"switches\.sw1\.Gi0/1"),
        ("site: x\nswitches:\n  sw1:\n    Gi0/1:\n      colour: red\n", "colour"),
        ("site: [x\n", "not valid YAML"),
    ],
)
def test_bad_map_file_names_the_place(text: str, match: str) -> None:
    with pytest.raises(InventoryError, match=match):
        load_port_map(text)
