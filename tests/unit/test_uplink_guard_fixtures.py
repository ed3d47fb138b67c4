"""The LLDP uplink guard on real Arista and Huawei output, where LLDP and the MAC table spell ports apart.

Arista's LLDP says ``Ethernet8`` and its MAC table ``Et8``; Huawei's LLDP says
``XGigabitEthernet0/0/1`` and its MAC table ``XGE0/0/1``. Compared as strings
the guard never fired there, and only the 64-MAC threshold stood between
:func:`ipsinfra.network.switches.shutdown_port` and an uplink (a rack offline).
These tests run the guard's own code (:func:`find_uplinks`,
:func:`shutdown_problem`, :func:`build_port_map`) on the real captures in
``../shared/fixtures``, parsed by the parsers a poll uses; the same guard over
real netmiko is in ``tests/integration/test_switch_ssh.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsinfra.network.models import LldpNeighbor, MacEntry, SwitchFacts
from ipsinfra.network.parsers import parse_lldp_neighbors, parse_mac_table
from ipsinfra.network.portmap import DEFAULT_UPLINK_THRESHOLD, build_port_map, find_uplinks
from ipsinfra.network.switches import default_platforms, shutdown_problem


def real_facts(shared: Path, platform: str, mac_capture: str, lldp_capture: str) -> SwitchFacts:
    """One switch's MAC table and LLDP neighbours from two real captures of ``platform``."""
    p = default_platforms()[platform]
    assert p.lldp is not None
    macs = shared / "ntc-templates-mac-tables" / platform / p.mac_table.replace(" ", "_") / mac_capture
    lldp = shared / "ntc-templates-port-views" / platform / p.lldp.replace(" ", "_") / lldp_capture
    return SwitchFacts(
        switch="sw1",
        platform=platform,
        mac_table=tuple(parse_mac_table(platform, p.mac_table, macs.read_text())),
        neighbors=tuple(parse_lldp_neighbors(platform, p.lldp, lldp.read_text())),
    )


# (platform, MAC-table capture, LLDP capture, port as the MAC table prints it, as LLDP prints it)
CASES = [
    pytest.param(
        "arista_eos",
        "arista_eos_show_mac_address-table.raw",
        "arista_eos_show_lldp_neighbors_detail.raw",
        "Et8",
        "Ethernet8",
        id="arista-Et8",
    ),
    pytest.param(
        "huawei_vrp",
        "huawei_vrp_display_mac-address.raw",
        "huawei_vrp_display_lldp_neighbor1.raw",
        "XGE0/0/1",
        "XGigabitEthernet0/0/1",
        id="huawei-XGE0/0/1",
    ),
    pytest.param(
        "huawei_vrp",
        "huawei_vrp_display_mac-address2.raw",
        "huawei_vrp_display_lldp_neighbor5.raw",
        "GE0/0/25",
        "GigabitEthernet0/0/25",
        id="huawei-GE0/0/25",
    ),
]


@pytest.mark.parametrize(("platform", "mac_capture", "lldp_capture", "mac_port", "lldp_port"), CASES)
def test_a_port_whose_lldp_neighbour_is_a_switch_is_never_shut(
    shared_fixtures: Path, platform: str, mac_capture: str, lldp_capture: str, mac_port: str, lldp_port: str
) -> None:
    facts = real_facts(shared_fixtures, platform, mac_capture, lldp_capture)
    on_port = sorted({e.mac for e in facts.mac_table if e.port == mac_port})
    switches = [n for n in facts.neighbors if n.local_port == lldp_port and n.is_switch]
    # what the captures hold: the port's MACs are few, its neighbour a bridge, and the two spell it apart
    assert 0 < len(on_port) <= DEFAULT_UPLINK_THRESHOLD and switches
    assert mac_port not in {n.local_port for n in facts.neighbors}

    assert mac_port in find_uplinks(facts)  # one port, spelled as the MAC table spells it
    assert lldp_port not in find_uplinks(facts)
    mac = on_port[0]
    for spelling in (mac_port, lldp_port):  # whichever way the operator names it
        problem = shutdown_problem(facts, spelling, mac)
        assert problem is not None and "is an uplink" in problem, spelling
        assert f"({len(on_port)} MACs / LLDP switch neighbour)" in problem

    # the port map: the uplink once, no server on it
    pm = build_port_map([facts], {mac: "ded9"})
    assert pm.port_of("ded9") is None
    uplinks = [p for p in pm.ports if p.uplink and facts.names.same(p.port, mac_port)]
    assert [p.port for p in uplinks] == [mac_port]
    assert pm.get("sw1", lldp_port) == pm.get("sw1", mac_port) == uplinks[0]


@pytest.mark.parametrize(("platform", "mac_capture", "lldp_capture", "mac_port", "lldp_port"), CASES)
def test_without_the_switch_neighbour_the_same_port_may_be_shut(
    shared_fixtures: Path, platform: str, mac_capture: str, lldp_capture: str, mac_port: str, lldp_port: str
) -> None:
    """The control: the guard is LLDP's doing, not the MAC count's."""
    facts = real_facts(shared_fixtures, platform, mac_capture, lldp_capture)
    alone = facts.model_copy(
        update={
            "neighbors": tuple(n for n in facts.neighbors if not facts.names.same(n.local_port, mac_port))
        }
    )
    mac = next(e.mac for e in facts.mac_table if e.port == mac_port)
    assert mac_port not in find_uplinks(alone)
    assert shutdown_problem(alone, lldp_port, mac) is None
    assert shutdown_problem(alone, mac_port, mac) is None


def test_a_neighbour_that_is_not_a_switch_does_not_make_an_uplink(shared_fixtures: Path) -> None:
    """Huawei's GE1/0/11 has an access point on it (real capture); a server MAC there may be shut."""
    facts = real_facts(
        shared_fixtures,
        "huawei_vrp",
        "huawei_vrp_display_mac-address.raw",
        "huawei_vrp_display_lldp_neighbor4.raw",
    )
    ap = [n for n in facts.neighbors if n.local_port == "GE1/0/11"]
    assert ap and not ap[0].is_switch
    server = MacEntry(mac="5254.00aa.0001", port="GigabitEthernet1/0/11", vlan=10)
    behind = MacEntry(mac="5254.00aa.0002", port="GigabitEthernet1/0/25", vlan=10)  # bridge neighbour there
    with_server = facts.model_copy(update={"mac_table": (*facts.mac_table, server, behind)})
    assert shutdown_problem(with_server, "GE1/0/11", "52:54:00:aa:00:01") is None
    assert "is an uplink" in str(shutdown_problem(with_server, "GE1/0/25", "52:54:00:aa:00:02"))


def test_the_mac_is_proven_on_the_port_whichever_way_either_side_spells_it() -> None:
    facts = SwitchFacts(
        switch="sw1",
        platform="arista_eos",
        mac_table=(MacEntry(mac="5254.00aa.0001", port="Et5", vlan=10),),
        neighbors=(LldpNeighbor(local_port="Ethernet49", name="spine1", capabilities=("Bridge", "Router")),),
    )
    assert shutdown_problem(facts, "Ethernet5", "52:54:00:aa:00:01") is None
    assert shutdown_problem(facts, "Et5", "5254.00AA.0001") is None
    problem = shutdown_problem(facts, "Et6", "52:54:00:aa:00:01")
    assert problem == "52:54:00:aa:00:01 is on Et5 of sw1, not on Et6"
    assert facts.interface("Ethernet5") is None  # no interface table in this read
