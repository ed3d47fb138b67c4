"""netmiko (cisco_ios) against the in-process asyncssh switch: poll, diff, describe, shut."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipsinfra.errors import SwitchError, TargetProofFailed
from ipsinfra.journal import Journal
from ipsinfra.lab.switches import IosSwitchServer, IosSwitchState
from ipsinfra.models import Switch
from ipsinfra.network.models import FailureKind
from ipsinfra.network.portmap import build_port_map, diff_port_map
from ipsinfra.network.switches import (
    SwitchCredentials,
    collect,
    no_shutdown_port,
    open_session,
    poll,
    set_descriptions,
    shutdown_port,
)
from tests.switchinv import switch_inventory

PASSWORD = "lab-pw-5b1e"
CREDS = SwitchCredentials(password=PASSWORD)
DED1, DED2, KVM1 = "52:54:00:aa:00:01", "52:54:00:aa:00:03", "52:54:00:00:0a:01"
SERVERS = {DED1: "ded1", DED2: "ded2", KVM1: "kvm1", "52:54:00:01:00:01": "VPS1001(113.10)"}


@pytest.fixture
def state() -> IosSwitchState:
    st = IosSwitchState(hostname="sw1-msk1", ports=[f"Gi0/{i}" for i in range(1, 9)] + ["Gi0/24"])
    st.learn(DED1, "Gi0/5")
    st.learn(KVM1, "Gi0/7")
    st.learn("52:54:00:01:00:01", "Gi0/7")
    st.neighbor("Gi0/24", "core1", "B,R")
    st.learn(DED2, "Gi0/24")  # seen through the uplink only
    return st


@pytest.fixture
def server(state: IosSwitchState) -> Iterator[IosSwitchServer]:
    with IosSwitchServer(state, username="netops", password=PASSWORD) as srv:
        yield srv


def switch_of(srv: IosSwitchServer, name: str = "sw1-msk1", **kw: Any) -> Switch:
    fields: dict[str, Any] = {
        "name": name,
        "site": "msk1",
        "host": srv.host,
        "port": srv.port,
        "platform": "cisco_ios",
        "username": "netops",
        "ssh_known_hosts": str(srv.known_hosts),  # its key pinned, as a real switch's would be
        **kw,
    }
    return Switch(**fields)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_login_and_poll_parse_everything(server: IosSwitchServer) -> None:
    started = time.monotonic()
    with open_session(switch_of(server), credentials=CREDS, timeout=10) as session:
        login_s = time.monotonic() - started
        facts = poll(session)
    assert login_s < 3, f"a login took {login_s:.2f} s"
    assert facts.ports_of(DED1) == ["Gi0/5"]
    assert {i.name for i in facts.interfaces} >= {"Gi0/5", "Gi0/24"}
    assert [(n.local_port, n.name, n.is_switch) for n in facts.neighbors] == [("Gi0/24", "core1", True)]
    assert "terminal length 0" in server.state.commands


def test_the_lab_switch_puts_each_prompt_on_its_own_line_when_lines_queue_up(
    server: IosSwitchServer,
) -> None:
    """Lines sent before the first answer (netmiko under load) get one prompt each, as on IOS."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a lab switch, a fresh host key
    client.connect(
        server.host,
        port=server.port,
        username="netops",
        password=PASSWORD,
        allow_agent=False,
        look_for_keys=False,
    )
    out = b""
    try:
        channel = client.invoke_shell()
        channel.send(b"\n\n\nterminal length 0\n\n")  # in one packet, before any answer
        deadline = time.monotonic() + 5
        while out.count(b"sw1-msk1#") < 6 and time.monotonic() < deadline:
            if channel.recv_ready():
                out += channel.recv(65536)
            else:
                time.sleep(0.01)
    finally:
        client.close()
    text = out.decode()
    assert text.count("sw1-msk1#") == 6, repr(text)  # the login prompt and one per line
    assert text.count("\r\nsw1-msk1#") == 6, repr(text)  # each after its own newline, none glued
    assert "sw1-msk1#terminal length 0\r\nsw1-msk1#" in text  # the echo, then the answer's prompt


def test_the_lab_switch_prints_its_mac_table_anew_whenever_the_macs_change() -> None:
    state = IosSwitchState(hostname="sw1", ports=["Gi0/1", "Gi0/2"])
    state.learn(DED1, "Gi0/1")
    first = state.show_mac()
    assert state.show_mac() is first  # unchanged MACs: the table printed last time
    state.learn(DED1, "Gi0/2")
    assert "Gi0/2" in state.show_mac() and "Gi0/1" not in state.show_mac()
    state.macs[DED2] = ("Gi0/1", 10)  # changed behind learn()'s back, as a shutdown does
    assert "5254.00aa.0003" in state.show_mac()
    state.garbage = True
    assert "--More--" in state.show_mac()


def test_a_moved_mac_shows_as_moved_in_the_next_poll(server: IosSwitchServer, state: IosSwitchState) -> None:
    sw = switch_of(server)
    first = collect([sw], credentials={sw.name: CREDS}, timeout=10)
    first.raise_on_error()
    recorded = build_port_map(first.facts, SERVERS, hosts={"kvm1"})
    assert recorded.port_of("ded1") is not None and recorded.port_of("ded1").port == "Gi0/5"  # type: ignore[union-attr]
    assert recorded.port_of("kvm1").port == "Gi0/7"  # type: ignore[union-attr]
    assert recorded.port_of("ded2") is None  # only behind the uplink

    state.learn(DED1, "Gi0/6")  # re-plugged
    second = collect([sw], credentials={sw.name: CREDS}, timeout=10)
    diff = diff_port_map(recorded, build_port_map(second.facts, SERVERS, hosts={"kvm1"}))
    assert [(m.server, m.before.port, m.after.port) for m in diff.moved] == [("ded1", "Gi0/5", "Gi0/6")]
    assert diff.appeared == [] and diff.vanished == []


def test_set_descriptions_writes_reads_back_and_journals(
    server: IosSwitchServer, state: IosSwitchState, tmp_path: Any
) -> None:
    sw = switch_of(server)
    journal = Journal(tmp_path / "journal.db")
    long_name = "VPS1001(113.10)-a-long-name"
    actions = set_descriptions(sw, {"Gi0/5": "ded1", "Gi0/7": long_name}, credentials=CREDS, journal=journal)
    assert [(a.port, a.after["description"]) for a in actions] == [("Gi0/5", "ded1"), ("Gi0/7", long_name)]
    assert state.port_states["Gi0/7"].description == long_name
    assert set_descriptions(sw, {"Gi0/5": "ded1"}, credentials=CREDS) == []  # already right: untouched
    entries = journal.entries()
    assert [(e.action, e.target, e.result) for e in entries] == [
        ("switch.port.description", "sw1-msk1:Gi0/5", "ok"),
        ("switch.port.description", "sw1-msk1:Gi0/7", "ok"),
    ]
    journal.close()
    with pytest.raises(SwitchError, match="no such port"):
        set_descriptions(sw, {"Gi0/99": "x"}, credentials=CREDS)


def test_shutdown_refuses_when_the_mac_is_elsewhere(
    server: IosSwitchServer, state: IosSwitchState, tmp_path: Any
) -> None:
    sw = switch_of(server)
    journal = Journal(tmp_path / "journal.db")
    with pytest.raises(TargetProofFailed, match=r"52:54:00:aa:00:01 is on Gi0/5 of sw1-msk1, not on Gi0/6"):
        shutdown_port(sw, "Gi0/6", DED1, credentials=CREDS, journal=journal)
    with pytest.raises(TargetProofFailed, match="is on no port"):
        shutdown_port(sw, "Gi0/6", "02:00:00:00:00:99", credentials=CREDS)
    with pytest.raises(TargetProofFailed, match="uplink"):
        shutdown_port(sw, "Gi0/24", DED2, credentials=CREDS)
    assert all(p.admin_up for p in state.port_states.values())
    assert not any(c in {"shutdown", "configure terminal"} for c in state.commands)
    assert [(e.action, e.result) for e in journal.entries()] == [("switch.port.shutdown", "refused")]
    journal.close()


def test_shutdown_and_no_shutdown_when_proven(
    server: IosSwitchServer, state: IosSwitchState, tmp_path: Any
) -> None:
    sw = switch_of(server)
    journal = Journal(tmp_path / "journal.db")
    action = shutdown_port(sw, "Gi0/5", "5254.00AA.0001", credentials=CREDS, journal=journal, reason="SBL")
    assert action.before["admin_up"] is True and action.after["admin_up"] is False
    assert state.port_states["Gi0/5"].admin_up is False

    # unblock refuses if the server now shows up on another port
    state.learn(DED1, "Gi0/6")
    with pytest.raises(TargetProofFailed, match="is on Gi0/6"):
        no_shutdown_port(sw, "Gi0/5", DED1, credentials=CREDS, journal=journal)
    assert state.port_states["Gi0/5"].admin_up is False
    state.forget(DED1)
    up = no_shutdown_port(sw, "Gi0/5", DED1, credentials=CREDS, journal=journal)
    assert up.after["admin_up"] is True and state.port_states["Gi0/5"].admin_up is True
    assert [(e.action, e.result) for e in journal.entries()] == [
        ("switch.port.shutdown", "ok"),
        ("switch.port.no_shutdown", "refused"),
        ("switch.port.no_shutdown", "ok"),
    ]
    journal.close()


def test_bad_switches_give_typed_results_and_the_others_are_still_mapped(server: IosSwitchServer) -> None:
    garbage_state = IosSwitchState(hostname="sw-garbage", ports=["Gi0/1"], garbage=True)
    with IosSwitchServer(garbage_state, username="netops", password=PASSWORD) as garbage:
        good = switch_of(server)
        switches = [
            good,
            switch_of(server, name="sw-wrongpw"),
            Switch(name="sw-closed", site="msk1", host="127.0.0.1", port=closed_port(), platform="cisco_ios"),
            switch_of(server, name="sw-unknown", platform="acme_os"),
            switch_of(garbage, name="sw-garbage"),
            Switch(name="sw-nosecret", site="msk1", host="127.0.0.1", port=server.port, platform="cisco_ios"),
        ]
        creds = {s.name: CREDS for s in switches if s.name != "sw-nosecret"}
        creds["sw-wrongpw"] = SwitchCredentials(password="wrong")
        started = time.monotonic()
        report = collect(switches, credentials=creds, timeout=5, max_workers=4)
        elapsed = time.monotonic() - started
    kinds = {name: r.failure for name, r in report.results.items()}
    assert kinds == {
        "sw1-msk1": None,
        "sw-wrongpw": FailureKind.AUTH_FAILED,
        "sw-closed": FailureKind.UNREACHABLE,
        "sw-unknown": FailureKind.UNKNOWN_PLATFORM,
        "sw-garbage": FailureKind.GARBAGE_OUTPUT,
        "sw-nosecret": FailureKind.NO_CREDENTIALS,
    }
    assert list(report.results) == [s.name for s in switches]  # the caller's order
    assert PASSWORD not in repr(report) and "wrong" not in str(report.results["sw-wrongpw"].reason)
    assert build_port_map(report.facts, SERVERS).port_of("ded1") is not None
    assert not report.ok
    with pytest.raises(SwitchError, match="sw-closed: unreachable"):
        report.raise_on_error()
    assert elapsed < 15


def test_polls_run_concurrently(state: IosSwitchState) -> None:
    servers = [
        IosSwitchServer(IosSwitchState(hostname=f"sw{i}", ports=["Gi0/1"]), password=PASSWORD).start()
        for i in range(6)
    ]
    try:
        switches = [
            Switch(
                name=f"sw{i}",
                site="msk1",
                host=s.host,
                port=s.port,
                platform="cisco_ios",
                ssh_known_hosts=str(s.known_hosts),
            )
            for i, s in enumerate(servers)
        ]
        t0 = time.monotonic()
        one = collect(switches[:1], credentials=lambda s: CREDS, timeout=10)
        single = time.monotonic() - t0
        t0 = time.monotonic()
        report = collect(switches, credentials=lambda s: CREDS, timeout=10)  # default: one session each
        many = time.monotonic() - t0
    finally:
        for s in servers:
            s.stop()
    assert one.ok and report.ok and len(report.results) == 6
    assert many < 6 * single * 0.7, f"6 switches took {many:.2f} s, one took {single:.2f} s"


def test_portmap_cli_check_write_and_set_descriptions(
    server: IosSwitchServer, state: IosSwitchState, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ipsinfra.network.cli import app

    inv = switch_inventory(tmp_path, server, ded1=f"macs: ['{DED1}']\nswitch: sw1-msk1\nswitch_port: Gi0/5\n")
    monkeypatch.setenv("IPSINFRA_TEST_SW_PW", PASSWORD)
    runner = CliRunner()
    map_file = inv / "switch_ports.msk1.yml"

    checked = runner.invoke(app, ["--inventory", str(inv), "--check", "--timeout", "10"])
    assert checked.exit_code == 1, checked.output
    # no map recorded yet: ded1's inventory switch/switch_port are the baseline, and it is there
    assert "unmapped  no map recorded yet" in checked.output
    assert "appeared" not in checked.output
    assert "describe  sw1-msk1 Gi0/5" in checked.output
    assert not map_file.exists()

    written = runner.invoke(
        app,
        [
            "--inventory",
            str(inv),
            "--write",
            "--set-descriptions",
            "--journal",
            f"sqlite:///{tmp_path / 'j.db'}",
            "--timeout",
            "10",
        ],
    )
    assert written.exit_code == 0, written.output
    assert "server: ded1" in map_file.read_text()
    assert state.port_states["Gi0/5"].description == "ded1"

    again = runner.invoke(app, ["--inventory", str(inv), "--check", "--timeout", "10"])
    assert again.exit_code == 0, again.output
    state.learn(DED1, "Gi0/6")
    moved = runner.invoke(app, ["--inventory", str(inv), "--check", "--timeout", "10"])
    assert moved.exit_code == 1 and "moved     ded1: sw1-msk1 Gi0/5 -> sw1-msk1 Gi0/6" in moved.output


def test_what_netmiko_reads_from_the_lab_switch_is_the_catalyst_layout(
    server: IosSwitchServer, state: IosSwitchState, shared_fixtures: Path
) -> None:
    """Over SSH each answer is the switch's text unchanged, with the captures' header lines.

    The lines themselves are checked against real captures in
    tests/unit/test_lab_switch_output.py; here: nothing is lost or added on the way.
    """
    ios = shared_fixtures / "ntc-templates-port-views" / "cisco_ios"
    headers = {
        "show interfaces status": (ios / "show_interfaces_status/cisco_ios_show_interfaces_status.raw"),
        "show interfaces description": (
            ios / "show_interfaces_description/cisco_ios_show_interfaces_description.raw"
        ),
        "show lldp neighbors detail": (
            ios / "show_lldp_neighbors_detail/cisco_ios_show_lldp_neighbors_detail4.raw"
        ),
    }
    expected = {
        "show interfaces status": state.show_status(),
        "show interfaces description": state.show_description(),
        "show lldp neighbors detail": state.show_lldp(),
        "show mac address-table": state.show_mac(),
    }
    with open_session(switch_of(server), credentials=CREDS, timeout=10) as session:
        answers = {command: session.run(command) for command in expected}
    for command, text in answers.items():
        assert [line.rstrip() for line in text.strip("\n").splitlines()] == [
            line.rstrip() for line in expected[command].strip("\n").splitlines()
        ], command
    for command, capture in headers.items():
        assert answers[command].strip("\n").splitlines()[0] == capture.read_text().splitlines()[0], command
    assert "Total entries displayed: 1" in answers["show lldp neighbors detail"]
