"""The JSON path over real netmiko (``arista_eos``) against the lab's EOS personality.

:class:`ipsinfra.lab.switches.EosSwitchState` answers ``| json`` with EOS's
JSON (the keys of the public captures :mod:`ipsinfra.lab.eos_output` cites)
and the text commands with EOS's text tables. A poll, the uplink guard and a shutdown read the JSON
path (the switch's command log and :attr:`SwitchSession.sources` say so); a
switch that refuses the pipe is read by its text commands, with one warning.
The stock IOS switch is tested as before in ``test_switch_ssh.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra.errors import TargetProofFailed
from ipsinfra.journal import Journal
from ipsinfra.lab.switches import EosSwitchState, IosSwitchServer
from ipsinfra.models import Switch
from ipsinfra.network.models import SwitchFacts
from ipsinfra.network.switches import SwitchCredentials, open_session, poll, set_descriptions, shutdown_port

PASSWORD = "lab-pw-e05a"
CREDS = SwitchCredentials(password=PASSWORD)
DED1, BEHIND = "52:54:00:aa:00:01", "52:54:00:aa:00:03"
JSON_COMMANDS = [
    "show interfaces status | json",
    "show lldp neighbors detail | json",
    "show mac address-table | json",
]
TEXT_COMMANDS = {
    "show interfaces status",
    "show interfaces description",
    "show lldp neighbors detail",
    "show mac address-table",
}


@pytest.fixture
def state() -> EosSwitchState:
    st = EosSwitchState(hostname="sw2-msk1", ports=[f"Ethernet{i}" for i in range(1, 9)] + ["Ethernet24"])
    st.learn(DED1, "Ethernet5")
    st.learn(BEHIND, "Ethernet24")  # one MAC: far under the 64-MAC threshold
    st.neighbor("Ethernet24", "core1", "B,R")
    st.port_states["Ethernet5"].description = "ded1"
    return st


@pytest.fixture
def switch(state: EosSwitchState, tmp_path: Path) -> Iterator[Switch]:
    with IosSwitchServer(state, username="netops", password=PASSWORD) as srv:
        yield Switch(
            name="sw2-msk1",
            site="msk1",
            host=srv.host,
            port=srv.port,
            platform="arista_eos",
            username="netops",
            ssh_known_hosts=str(srv.write_known_hosts(tmp_path / "known_hosts")),
        )


def shows(state: EosSwitchState) -> list[str]:
    return [c for c in state.commands if c.startswith("show ")]


def canonical(facts: SwitchFacts) -> tuple[object, ...]:
    names = facts.names
    return (
        sorted((e.mac, names.key(e.port), e.vlan, e.kind) for e in facts.mac_table),
        sorted((names.key(i.name), i.description, i.admin_up, i.oper_up, i.vlan) for i in facts.interfaces),
        sorted(
            (names.key(n.local_port), n.name, n.port_id, n.chassis_id, n.is_switch) for n in facts.neighbors
        ),
    )


def test_a_poll_reads_the_json_path(switch: Switch, state: EosSwitchState) -> None:
    with open_session(switch, credentials=CREDS, timeout=10) as session:
        facts = poll(session)
        assert session.sources == {"interfaces": "json", "lldp": "json", "mac_table": "json"}
    assert shows(state) == JSON_COMMANDS  # no text command was sent
    assert [(e.mac, e.port, e.vlan) for e in facts.mac_table] == [
        (DED1, "Ethernet5", 10),
        (BEHIND, "Ethernet24", 10),
    ]
    assert [(n.local_port, n.name, n.is_switch) for n in facts.neighbors] == [("Ethernet24", "core1", True)]
    ded1 = facts.interface("Et5")  # any spelling finds the port
    assert ded1 is not None and (ded1.name, ded1.description, ded1.admin_up, ded1.oper_up) == (
        "Ethernet5",
        "ded1",
        True,
        True,
    )


def test_the_uplink_guard_refuses_on_the_json_path(
    switch: Switch, state: EosSwitchState, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal.db")
    for spelling in ("Et24", "Ethernet24"):
        with pytest.raises(
            TargetProofFailed, match=r"of sw2-msk1 is an uplink \(1 MACs / LLDP switch neighbour\)"
        ):
            shutdown_port(switch, spelling, BEHIND, credentials=CREDS, journal=journal)
    assert state.port_states["Ethernet24"].admin_up is True
    assert shows(state) == ["show mac address-table | json", "show lldp neighbors detail | json"] * 2
    assert not any(c.startswith(("configure", "interface", "shutdown")) for c in state.commands)
    assert [(e.action, e.result) for e in journal.entries()] == [("switch.port.shutdown", "refused")] * 2
    journal.close()


def test_a_server_port_is_shut_and_read_back_on_the_json_path(switch: Switch, state: EosSwitchState) -> None:
    action = shutdown_port(switch, "Et5", DED1, credentials=CREDS)
    assert action.before["admin_up"] is True and action.after["admin_up"] is False
    assert state.port_states["Ethernet5"].admin_up is False
    assert "interface Ethernet5" in state.commands  # named as the switch's JSON names it
    assert set(shows(state)) == {"show mac address-table | json", "show lldp neighbors detail | json",
                                 "show interfaces status | json"}  # fmt: skip
    set_descriptions(
        switch, {"Et6": "ded2", "Ethernet5": "ded1"}, credentials=CREDS
    )  # Ethernet5: already right
    assert state.port_states["Ethernet6"].description == "ded2"
    assert (
        "interface Ethernet6" in state.commands and "interface Ethernet5" in state.commands
    )  # once, for shutdown
    assert state.commands.count("interface Ethernet5") == 1


def test_a_refused_pipe_falls_back_to_text_with_one_warning(
    switch: Switch, state: EosSwitchState, caplog: pytest.LogCaptureFixture
) -> None:
    from ipsinfra.network import switches

    switches._REFUSALS_LOGGED.discard(switch.name)  # "once" is per process: start this test's count at zero
    with open_session(switch, credentials=CREDS, timeout=10) as session:
        by_json = poll(session)
    state.json_refusal = "% This is an unconverted command"  # nautobot/nornir-nautobot#280
    state.commands.clear()
    caplog.set_level(logging.DEBUG, logger="ipsinfra.network.switches")
    for _ in range(2):
        with open_session(switch, credentials=CREDS, timeout=10) as session:
            by_text = poll(session)
            assert session.sources == {"interfaces": "text", "lldp": "text", "mac_table": "text"}
            assert session.json_refused is not None and "unconverted command" in session.json_refused
        # the first JSON command is refused, then the session asks in text only
        assert shows(state)[0] == "show interfaces status | json"
        assert set(shows(state)[1:]) == TEXT_COMMANDS
        state.commands.clear()
        # the same rows, in the text's spelling (Et5), as the JSON path read
        assert canonical(by_text) == canonical(by_json)
        assert [e.port for e in by_text.mac_table] == ["Et5", "Et24"]
    refusals = [r for r in caplog.records if "structured output refused" in r.getMessage()]
    assert [r.levelno for r in refusals] == [logging.WARNING, logging.DEBUG]  # logged once, then quietly


def test_an_unexpected_json_shape_fails_the_poll_rather_than_dropping_rows(
    switch: Switch, state: EosSwitchState
) -> None:
    from ipsinfra.network.structured import StructuredOutputError

    state.json_refusal = '{"unicastTable": {"entries": []}}'  # JSON, but not EOS's shape
    with (
        open_session(switch, credentials=CREDS, timeout=10) as session,
        pytest.raises(
            StructuredOutputError, match=r"'show interfaces status \| json': field 'interfaceStatuses'"
        ),
    ):
        poll(session)
