"""The uplink guard and port-name checks over real netmiko (cisco_ios) against the in-process switch.

The lab switch's LLDP names its uplink ``GigabitEthernet0/24`` while its MAC
table says ``Gi0/24``, as Arista's and Huawei's do (real captures of those:
``tests/unit/test_uplink_guard_fixtures.py``): :func:`shutdown_port` must still
refuse, and a port given in another spelling must still be found and changed
under the name the switch lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ipsinfra.errors import InvalidInput, TargetProofFailed
from ipsinfra.journal import Journal
from ipsinfra.lab.switches import IosSwitchServer, IosSwitchState
from ipsinfra.models import DedicatedServer, Switch
from ipsinfra.network.switches import SwitchCredentials, no_shutdown_port, set_descriptions, shutdown_port

PASSWORD = "lab-pw-77c1"
CREDS = SwitchCredentials(password=PASSWORD)
DED1, BEHIND = "52:54:00:aa:00:01", "52:54:00:aa:00:03"


@pytest.fixture
def state() -> IosSwitchState:
    st = IosSwitchState(hostname="sw1-msk1", ports=[f"Gi0/{i}" for i in range(1, 9)] + ["Gi0/24"])
    st.learn(DED1, "Gi0/5")
    st.learn(BEHIND, "Gi0/24")  # one MAC: far under the 64-MAC threshold
    st.neighbor("GigabitEthernet0/24", "core1", "B,R")  # LLDP spells the port in full
    return st


@pytest.fixture
def switch(state: IosSwitchState, tmp_path: Path) -> Iterator[Switch]:
    with IosSwitchServer(state, username="netops", password=PASSWORD) as srv:
        yield Switch(
            name="sw1-msk1",
            site="msk1",
            host=srv.host,
            port=srv.port,
            platform="cisco_ios",
            username="netops",
            ssh_known_hosts=str(srv.write_known_hosts(tmp_path / "known_hosts")),
        )


def test_an_uplink_lldp_spells_in_full_is_never_shut(
    switch: Switch, state: IosSwitchState, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal.db")
    for spelling in ("Gi0/24", "GigabitEthernet0/24"):
        with pytest.raises(
            TargetProofFailed, match=r"of sw1-msk1 is an uplink \(1 MACs / LLDP switch neighbour\)"
        ):
            shutdown_port(switch, spelling, BEHIND, credentials=CREDS, journal=journal)
    assert state.port_states["Gi0/24"].admin_up is True
    assert "shutdown" not in state.commands and "configure terminal" not in state.commands
    assert [(e.action, e.result) for e in journal.entries()] == [("switch.port.shutdown", "refused")] * 2
    journal.close()


def test_a_port_given_in_full_is_changed_under_the_name_the_switch_lists(
    switch: Switch, state: IosSwitchState
) -> None:
    action = shutdown_port(switch, "GigabitEthernet0/5", DED1, credentials=CREDS)
    assert action.before["admin_up"] is True and action.after["admin_up"] is False
    assert state.port_states["Gi0/5"].admin_up is False
    assert "interface Gi0/5" in state.commands  # the lab, like a strict CLI, knows only its own spelling
    up = no_shutdown_port(switch, "GigabitEthernet0/5", DED1, credentials=CREDS)
    assert up.after["admin_up"] is True
    set_descriptions(switch, {"GigabitEthernet0/5": "ded1"}, credentials=CREDS)
    assert state.port_states["Gi0/5"].description == "ded1"


@pytest.mark.parametrize("bad", ["Gi0/5\nreload", "Gi0/5 ", "Gi0/5\r", "Gi0/5;reload", "Gi0/5?", ""])
def test_a_port_name_that_is_not_one_word_is_refused_before_the_switch_is_asked(
    switch: Switch, state: IosSwitchState, bad: str
) -> None:
    with pytest.raises(InvalidInput, match=r"^port: value .*: a port name is one word"):
        shutdown_port(switch, bad, DED1, credentials=CREDS)
    with pytest.raises(InvalidInput, match=r"^port: value"):
        no_shutdown_port(switch, bad, DED1, credentials=CREDS)
    with pytest.raises(InvalidInput, match=r"^port: value"):
        set_descriptions(switch, {bad: "ded1"}, credentials=CREDS)
    with pytest.raises(InvalidInput, match=r"^expect_mac: value 'a:ab:bc:cd:de:ef:f': not a MAC address"):
        shutdown_port(switch, "Gi0/5", "a:ab:bc:cd:de:ef:f", credentials=CREDS)
    assert state.commands == []  # nobody logged in


def test_the_block_proof_matches_the_inventory_port_in_any_spelling(switch: Switch) -> None:
    """abuse.block's switch-port step (§11.8): inventory GigabitEthernet0/5, MAC table Gi0/5."""
    from ipsinfra.abuse.block import _prove_port

    fleet: Any = SimpleNamespace(switches={switch.name: switch})

    def server(port: str) -> DedicatedServer:
        return DedicatedServer(name="ded1", site="msk1", macs=[DED1], switch=switch.name, port=port)

    for for_unblock in (False, True):
        step = _prove_port(server("GigabitEthernet0/5"), fleet, CREDS, 10, for_unblock)
        assert step.ok, step.detail
        wrong = _prove_port(server("GigabitEthernet0/6"), fleet, CREDS, 10, for_unblock)
        assert not wrong.ok and "ded1's MAC is on Gi0/5 of sw1-msk1" in wrong.detail
