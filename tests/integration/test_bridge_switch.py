"""netmiko (linux) against a REAL Linux bridge in network namespaces: learn, move, shut.

Root-only tier: the switch is a namespace with bridge br0, servers are namespaces
on veth ports, MACs are learnt from real frames, lldpd names the neighbours.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra.errors import TargetProofFailed
from ipsinfra.journal import Journal
from ipsinfra.lab.switches import BridgeLab
from ipsinfra.network.portmap import build_port_map, diff_port_map
from ipsinfra.network.switches import (
    SwitchCredentials,
    collect,
    no_shutdown_port,
    set_descriptions,
    shutdown_port,
)

pytestmark = [pytest.mark.netns, pytest.mark.root]


@pytest.fixture(scope="module")
def lab() -> Iterator[BridgeLab]:
    started = time.monotonic()
    with BridgeLab(lldp=True) as lab:
        lab.start(["ded1", "ded2", "ded3"])
        lab.send_frames()
        lab.build_s = time.monotonic() - started  # type: ignore[attr-defined]
        lab.wait_lldp()
        yield lab


def creds(lab: BridgeLab) -> SwitchCredentials:
    return SwitchCredentials(key_file=lab.key_file)


def server_macs(lab: BridgeLab) -> dict[str, str]:
    return {h.mac: name for name, h in lab.hosts.items()}


def test_the_bridge_learns_real_frames_and_lldp_names_the_ports(lab: BridgeLab) -> None:
    assert lab.build_s < 10  # type: ignore[attr-defined]
    sw = lab.switch("sw2-msk1")
    report = collect([sw], credentials={sw.name: creds(lab)}, platforms=lab.platforms(), timeout=15)
    report.raise_on_error()
    (facts,) = report.facts
    assert {e.port: e.mac for e in facts.mac_table} == {lab.ports[n]: h.mac for n, h in lab.hosts.items()}
    assert {n.local_port: n.name for n in facts.neighbors} == {"swp1": "ded1", "swp2": "ded2", "swp3": "ded3"}
    assert not any(n.is_switch for n in facts.neighbors)
    pm = build_port_map(report.facts, server_macs(lab))
    assert [(p.port, p.server) for p in pm.ports] == [("swp1", "ded1"), ("swp2", "ded2"), ("swp3", "ded3")]


def test_descriptions_are_written_as_link_aliases(lab: BridgeLab, tmp_path: Path) -> None:
    sw = lab.switch("sw2-msk1")
    journal = Journal(tmp_path / "j.db")
    actions = set_descriptions(
        sw, {"swp1": "ded1"}, credentials=creds(lab), platforms=lab.platforms(), journal=journal
    )
    assert [a.after["description"] for a in actions] == ["ded1"]
    assert lab.ip_link("swp1")["ifalias"] == "ded1"
    assert [e.result for e in journal.entries()] == ["ok"]
    journal.close()


def test_shutdown_refuses_the_wrong_mac_and_downs_the_right_port(lab: BridgeLab, tmp_path: Path) -> None:
    sw = lab.switch("sw2-msk1")
    ded2, ded3 = lab.hosts["ded2"], lab.hosts["ded3"]
    lab.send_frames(["ded2", "ded3"])
    with pytest.raises(TargetProofFailed, match=f"{ded3.mac} is on swp3 of sw2-msk1, not on swp2"):
        shutdown_port(sw, "swp2", ded3.mac, credentials=creds(lab), platforms=lab.platforms())
    assert "UP" in lab.ip_link("swp2")["flags"]

    journal = Journal(tmp_path / "j.db")
    action = shutdown_port(
        sw, "swp2", ded2.mac, credentials=creds(lab), platforms=lab.platforms(), journal=journal
    )
    assert action.after["admin_up"] is False
    assert "UP" not in lab.ip_link("swp2")["flags"]  # read back in the switch namespace

    action = no_shutdown_port(
        sw, "swp2", ded2.mac, credentials=creds(lab), platforms=lab.platforms(), journal=journal
    )
    assert "UP" in lab.ip_link("swp2")["flags"] and action.after["admin_up"] is True
    assert [(e.action, e.result) for e in journal.entries()] == [
        ("switch.port.shutdown", "ok"),
        ("switch.port.no_shutdown", "ok"),
    ]
    journal.close()


def test_a_server_replugged_into_another_port_shows_as_moved(lab: BridgeLab) -> None:
    sw = lab.switch("sw2-msk1")
    lab.send_frames()
    first = collect([sw], credentials={sw.name: creds(lab)}, platforms=lab.platforms(), timeout=15)
    recorded = build_port_map(first.facts, server_macs(lab))
    assert recorded.port_of("ded1").port == "swp1"  # type: ignore[union-attr]

    lab.move("ded1", "swp7")
    second = collect([sw], credentials={sw.name: creds(lab)}, platforms=lab.platforms(), timeout=15)
    diff = diff_port_map(recorded, build_port_map(second.facts, server_macs(lab)))
    assert [(m.server, str(m.before), str(m.after)) for m in diff.moved] == [
        ("ded1", "sw2-msk1 swp1", "sw2-msk1 swp7")
    ]
    assert diff.appeared == [] and diff.vanished == []
