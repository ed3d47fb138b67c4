"""portmap: what the mutation run (issue 23) found unchecked — the ports after a conflicting one,
``build_port_map``'s ``uplinks`` and ``threshold`` arguments and the threshold boundary."""

from __future__ import annotations

from ipsinfra.models import SwitchPort
from ipsinfra.network.models import Interface, LldpNeighbor, MacEntry, SwitchFacts
from ipsinfra.network.portmap import (
    DescriptionMismatch,
    PortConflict,
    PortMap,
    PortMove,
    PortRef,
    build_port_map,
    diff_port_map,
    find_uplinks,
)

SERVERS = {
    "52:54:00:aa:00:01": "ded1",
    "52:54:00:aa:00:02": "ded2",
    "52:54:00:aa:00:03": "ded3",
    "52:54:00:aa:00:04": "ded4",
}


def facts(
    switch: str, table: list[tuple[str, str]], platform: str = "cisco_ios", **kw: object
) -> SwitchFacts:
    entries = tuple(MacEntry(mac=m, port=p, vlan=10) for p, m in table)
    return SwitchFacts(switch=switch, platform=platform, mac_table=entries, **kw)  # type: ignore[arg-type]


def others(n: int) -> list[str]:
    return [f"02:00:00:00:00:{i:02x}" for i in range(n)]


def test_ports_after_a_conflicting_port_are_still_mapped() -> None:
    table = [
        ("Gi0/1", "52:54:00:aa:00:01"),  # two servers, no host: a conflict, met first
        ("Gi0/1", "52:54:00:aa:00:02"),
        ("Gi0/2", "52:54:00:aa:00:03"),
        ("Gi0/3", "52:54:00:aa:00:04"),
    ]
    pm = build_port_map([facts("sw1", table)], SERVERS)
    assert pm.conflicts == (PortConflict(switch="sw1", port="Gi0/1", servers=("ded1", "ded2")),)
    assert pm.ports == (
        SwitchPort(switch="sw1", port="Gi0/2", description="", macs=["52:54:00:aa:00:03"], server="ded3"),
        SwitchPort(switch="sw1", port="Gi0/3", description="", macs=["52:54:00:aa:00:04"], server="ded4"),
    )


def test_two_hosts_on_one_port_is_a_conflict_one_host_owns_it() -> None:
    table = [("Gi0/1", "52:54:00:aa:00:01"), ("Gi0/1", "52:54:00:aa:00:02"), ("Gi0/1", "52:54:00:aa:00:03")]
    pm = build_port_map([facts("sw1", table)], SERVERS, hosts={"ded1", "ded2"})
    assert pm.ports == ()
    assert pm.conflicts == (PortConflict(switch="sw1", port="Gi0/1", servers=("ded1", "ded2", "ded3")),)
    pm = build_port_map([facts("sw1", table)], SERVERS, hosts={"ded2"})
    assert [(p.port, p.server, p.macs) for p in pm.ports] == [
        ("Gi0/1", "ded2", ["52:54:00:aa:00:01", "52:54:00:aa:00:02", "52:54:00:aa:00:03"])
    ]


def test_threshold_boundary_in_the_map() -> None:
    """Exactly ``threshold`` distinct MACs is still a server port; one more makes an uplink."""
    table = [("Gi0/1", "52:54:00:aa:00:01"), *(("Gi0/1", m) for m in others(2))]
    table += [("Gi0/2", "52:54:00:aa:00:02"), *(("Gi0/2", m) for m in others(3))]
    pm = build_port_map([facts("sw1", table)], SERVERS, threshold=3)
    assert pm.ports == (
        SwitchPort(switch="sw1", port="Gi0/1", description="", macs=["52:54:00:aa:00:01"], server="ded1"),
        SwitchPort(switch="sw1", port="Gi0/2", description="", uplink=True),
    )
    # with the default threshold (64) both are server ports
    assert [(p.port, p.server) for p in build_port_map([facts("sw1", table)], SERVERS).ports] == [
        ("Gi0/1", "ded1"),
        ("Gi0/2", "ded2"),
    ]


def test_threshold_boundary_in_find_uplinks() -> None:
    sw = facts("sw1", [*(("Gi0/1", m) for m in others(64)), *(("Gi0/2", m) for m in others(65))])
    assert find_uplinks(sw) == {"Gi0/2"}
    assert find_uplinks(sw, threshold=63) == {"Gi0/1", "Gi0/2"}
    assert find_uplinks(sw, threshold=65) == set()
    # the same MAC learnt twice counts once
    twice = facts("sw1", [("Gi0/1", "02:00:00:00:00:01"), ("Gi0/1", "02:00:00:00:00:01")])
    assert find_uplinks(twice, threshold=1) == set()


def test_uplinks_argument_applies_per_switch() -> None:
    table = [("Gi0/1", "52:54:00:aa:00:01"), ("Gi0/2", "52:54:00:aa:00:02")]
    sw1 = facts("sw1", table, interfaces=(Interface(name="GigabitEthernet0/2", description="to core"),))
    sw2 = facts("sw2", [("Gi0/1", "52:54:00:aa:00:03")])
    pm = build_port_map([sw1, sw2], SERVERS, uplinks={"sw1": ["GigabitEthernet0/2"], "sw9": ["Gi0/1"]})
    assert pm.ports == (
        SwitchPort(switch="sw1", port="Gi0/1", description="", macs=["52:54:00:aa:00:01"], server="ded1"),
        SwitchPort(switch="sw1", port="Gi0/2", description="to core", uplink=True),
        SwitchPort(switch="sw2", port="Gi0/1", description="", macs=["52:54:00:aa:00:03"], server="ded3"),
    )
    assert pm.platforms == {"sw1": "cisco_ios", "sw2": "cisco_ios"}


def test_an_lldp_switch_neighbour_is_an_uplink_a_server_neighbour_is_not() -> None:
    sw = facts(
        "sw1",
        [("Gi0/1", "52:54:00:aa:00:01"), ("Gi0/2", "52:54:00:aa:00:02")],
        neighbors=(
            LldpNeighbor(local_port="GigabitEthernet0/1", name="ded1", capabilities=("station",)),
            LldpNeighbor(local_port="GigabitEthernet0/2", name="core", capabilities=("bridge", "router")),
            LldpNeighbor(local_port="GigabitEthernet0/9", name="core2", capabilities=("router",)),
        ),
    )
    assert find_uplinks(sw) == {"Gi0/2", "GigabitEthernet0/9"}
    assert find_uplinks(sw, uplinks=["Gi0/1"]) == {"Gi0/1", "Gi0/2", "GigabitEthernet0/9"}
    assert [(p.port, p.server, p.uplink) for p in build_port_map([sw], SERVERS).ports] == [
        ("Gi0/1", "ded1", False),
        ("Gi0/2", None, True),
        ("GigabitEthernet0/9", None, True),
    ]


def test_an_uplink_only_in_the_interface_table_keeps_that_spelling() -> None:
    sw = facts("sw1", [], interfaces=(Interface(name="Gi0/48", description="uplink"),))
    assert find_uplinks(sw, uplinks=["GigabitEthernet0/48"]) == {"Gi0/48"}
    assert find_uplinks(facts("sw1", []), uplinks=["GigabitEthernet0/48"]) == {"GigabitEthernet0/48"}


def test_unknown_macs_do_not_make_a_server_port() -> None:
    pm = build_port_map([facts("sw1", [("Gi0/1", m) for m in others(3)])], SERVERS)
    assert pm == PortMap()


def test_map_lookups() -> None:
    pm = PortMap(
        ports=(
            SwitchPort(switch="sw1", port="Et1", server="ded1", macs=["52:54:00:aa:00:01"]),
            SwitchPort(switch="sw1", port="Et2", server="ded1", macs=["52:54:00:aa:00:02"]),
            SwitchPort(switch="sw2", port="Et1", uplink=True),
        ),
        platforms={"sw1": "arista_eos"},
    )
    assert pm.port_of("ded1") == pm.ports[0]
    assert pm.port_of("nobody") is None
    assert pm.get("sw1", "Ethernet2") == pm.ports[1]
    assert pm.get("sw2", "Ethernet1") is None  # unknown platform: compared as printed
    assert pm.get("sw2", "Et1") == pm.ports[2]
    assert pm.switches() == ["sw1", "sw2"]
    assert pm == PortMap(ports=pm.ports)
    assert pm != PortMap(ports=pm.ports[:2])
    assert pm.__eq__(object()) is NotImplemented


def test_diff_lines_and_scope() -> None:
    recorded = PortMap(
        ports=(
            SwitchPort(switch="sw1", port="Gi0/1", server="ded1", description="ded1"),
            SwitchPort(switch="sw1", port="Gi0/2", server="ded2", description="ded2"),
            SwitchPort(switch="sw2", port="Gi0/3", server="ded3", description="ded3"),
        )
    )
    observed = PortMap(
        ports=(
            SwitchPort(switch="sw1", port="Gi0/4", server="ded1", description="old"),
            SwitchPort(switch="sw1", port="Gi0/5", server="ded4", description="ded4"),
        )
    )
    diff = diff_port_map(recorded, observed)
    assert diff.moved == [
        PortMove(
            server="ded1",
            before=PortRef(switch="sw1", port="Gi0/1"),
            after=PortRef(switch="sw1", port="Gi0/4"),
        )
    ]
    assert [p.server for p in diff.appeared] == ["ded4"]
    assert [p.server for p in diff.vanished] == ["ded2", "ded3"]
    assert diff.description_mismatches == [
        DescriptionMismatch(switch="sw1", port="Gi0/4", server="ded1", description="old")
    ]
    assert diff.changed and not diff.empty
    assert diff.lines() == [
        "moved     ded1: sw1 Gi0/1 -> sw1 Gi0/4",
        "appeared  ded4: sw1 Gi0/5",
        "vanished  ded2: was sw1 Gi0/2",
        "vanished  ded3: was sw2 Gi0/3",
        "describe  sw1 Gi0/4: description 'old' != server 'ded1'",
    ]
    scoped = diff_port_map(recorded, observed, switches=["sw1"])
    assert [p.server for p in scoped.vanished] == ["ded2"]
    only_descriptions = diff_port_map(observed, observed)
    assert not only_descriptions.changed and not only_descriptions.empty
    assert diff_port_map(recorded, recorded).empty


def test_conflicts_and_appeared_ports_are_in_natural_port_order() -> None:
    table = [
        ("Gi0/10", "52:54:00:aa:00:01"),
        ("Gi0/10", "52:54:00:aa:00:02"),
        ("Gi0/2", "52:54:00:aa:00:03"),
        ("Gi0/2", "52:54:00:aa:00:04"),
    ]
    pm = build_port_map([facts("sw1", table)], SERVERS)
    assert [c.port for c in pm.conflicts] == ["Gi0/2", "Gi0/10"]
    observed = PortMap(
        ports=(
            SwitchPort(switch="sw1", port="Gi0/10", server="a", description="a"),
            SwitchPort(switch="sw1", port="Gi0/2", server="b", description="b"),
        )
    )
    assert [p.port for p in diff_port_map(PortMap(), observed).appeared] == ["Gi0/2", "Gi0/10"]


def test_macs_of_two_spellings_of_one_port_add_up_to_an_uplink() -> None:
    sw = facts(
        "sw1", [*(("Gi0/1", m) for m in others(2)), *(("GigabitEthernet0/1", m) for m in others(4)[2:])]
    )
    assert find_uplinks(sw, threshold=3) == {"Gi0/1"}
    assert find_uplinks(sw, threshold=4) == set()


def test_an_uplink_seen_nowhere_keeps_the_spelling_it_was_given() -> None:
    assert find_uplinks(facts("sw1", []), uplinks=["Gi0/48"]) == {"Gi0/48"}
    lldp = facts("sw1", [], neighbors=(LldpNeighbor(local_port="Gi0/47", capabilities=("bridge",)),))
    assert find_uplinks(lldp) == {"Gi0/47"}
