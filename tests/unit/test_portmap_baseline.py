"""The port map's baseline: with no map recorded, the dedicated servers' switch/switch_port
from the inventory are what the first poll is compared with (issue #20). Pure."""

from __future__ import annotations

from ipsinfra.models import DedicatedServer, SwitchPort
from ipsinfra.network.models import MacEntry, SwitchFacts
from ipsinfra.network.portmap import (
    UNMAPPED_LINE,
    PortMap,
    baseline_port_map,
    build_port_map,
    diff_port_map,
    diff_with_baseline,
    recorded_or_baseline,
)

DED1, DED2, DED3, KVM1 = "52:54:00:aa:00:01", "52:54:00:aa:00:02", "52:54:00:aa:00:03", "52:54:00:00:0a:01"
SERVERS = {DED1: "ded1", DED2: "ded2", DED3: "ded3", KVM1: "kvm1"}


def ded(name: str, mac: str, switch: str | None, port: str | None, site: str = "msk1") -> DedicatedServer:
    return DedicatedServer(name=name, site=site, macs=[mac], switch=switch, port=port)


INVENTORY = [
    ded("ded1", DED1, "sw1", "Gi0/5"),
    ded("ded2", DED2, "sw1", "Gi0/6"),
    ded("ded3", DED3, None, None),  # not placed in the inventory
    ded("ded9", "52:54:00:aa:00:09", "sw9", "Gi0/1", site="fra1"),  # another site's switch
]


def observed(table: dict[str, str]) -> PortMap:
    entries = tuple(MacEntry(mac=mac, port=port, vlan=10) for mac, port in table.items())
    return build_port_map(
        [SwitchFacts(switch="sw1", platform="cisco_ios", mac_table=entries)], SERVERS, hosts={"kvm1"}
    )


def test_the_baseline_is_the_inventorys_placement_on_these_switches() -> None:
    base = baseline_port_map(INVENTORY, {"sw1"})
    assert [(p.switch, p.port, p.server, p.macs) for p in base.ports] == [
        ("sw1", "Gi0/5", "ded1", [DED1]),
        ("sw1", "Gi0/6", "ded2", [DED2]),
    ]
    assert baseline_port_map(INVENTORY, {"sw9"}).ports[0].server == "ded9"
    assert baseline_port_map(INVENTORY, set()).ports == ()


def test_a_first_run_reports_only_what_differs_from_the_inventory() -> None:
    now = observed({DED1: "GigabitEthernet0/5", DED2: "Gi0/8", DED3: "Gi0/3", KVM1: "Gi0/7"})
    base = baseline_port_map(INVENTORY, {"sw1"})
    diff = diff_with_baseline(PortMap(), base, now, switches={"sw1"})
    # ded1 is where the inventory says (spelled in full by the MAC table): not news
    assert [(m.server, str(m.before), str(m.after)) for m in diff.moved] == [
        ("ded2", "sw1 Gi0/6", "sw1 Gi0/8")
    ]
    assert [p.server for p in diff.appeared] == ["ded3", "kvm1"]  # not placed in the inventory
    assert diff.vanished == []
    assert diff.unrecorded and diff.changed  # the map is still to be written
    assert diff.lines()[0] == UNMAPPED_LINE
    assert not any(line.startswith("appeared  ded1") for line in diff.lines())
    # without the baseline every server was "appeared" on the first run
    assert {p.server for p in diff_port_map(PortMap(), now).appeared} == {"ded1", "ded2", "ded3", "kvm1"}


def test_a_placed_server_not_seen_is_reported_vanished_from_its_inventory_port() -> None:
    now = observed({DED1: "Gi0/5"})
    diff = diff_with_baseline(PortMap(), baseline_port_map(INVENTORY, {"sw1"}), now, switches={"sw1"})
    assert [(p.server, p.port) for p in diff.vanished] == [("ded2", "Gi0/6")]
    # a switch that did not answer hides nothing and invents nothing
    quiet = diff_with_baseline(PortMap(), baseline_port_map(INVENTORY, {"sw1"}), now, switches=set())
    assert quiet.vanished == []


def test_a_recorded_map_wins_over_the_baseline() -> None:
    recorded = PortMap(ports=(SwitchPort(switch="sw1", port="Gi0/2", server="ded1", macs=[DED1]),))
    base = baseline_port_map(INVENTORY, {"sw1"})
    assert recorded_or_baseline(recorded, base) is recorded
    assert recorded_or_baseline(PortMap(), base) is base
    diff = diff_with_baseline(recorded, base, observed({DED1: "Gi0/5"}), switches={"sw1"})
    assert not diff.unrecorded
    assert [(m.server, str(m.before)) for m in diff.moved] == [("ded1", "sw1 Gi0/2")]
    assert diff.vanished == []  # ded2 is in the inventory but not in the record: the record rules


def test_an_empty_site_with_nothing_observed_has_nothing_to_write() -> None:
    diff = diff_with_baseline(PortMap(), PortMap(), PortMap(), switches={"sw1"})
    assert not diff.unrecorded and diff.empty
