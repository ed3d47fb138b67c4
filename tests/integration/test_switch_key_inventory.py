"""A key-only switch (no password at all): the inventory's ansible_ssh_private_key_file and
ssh_known_hosts are what `ipsinfra block` and `ipsinfra portmap` log in with, over real SSH."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ipsinfra import cli
from ipsinfra.inventory import load
from ipsinfra.journal import Journal
from ipsinfra.lab.switches import IosSwitchServer, IosSwitchState
from ipsinfra.network.errors import SwitchAuthFailed
from ipsinfra.network.switches import SwitchCredentials, open_session, read_mac_table

DED1_MAC, DED1_IP = "52:54:00:aa:00:01", "203.0.113.200"


@pytest.fixture
def client_key(tmp_path: Path) -> tuple[Path, str]:
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp_path / "id_ed25519_switches"
    path.write_bytes(key.export_private_key("openssh"))
    path.chmod(0o600)
    return path, key.export_public_key("openssh").decode("ascii")


@pytest.fixture
def state() -> IosSwitchState:
    st = IosSwitchState(hostname="sw1-msk1", ports=[f"Gi0/{i}" for i in range(1, 9)])
    st.learn(DED1_MAC, "Gi0/5")
    return st


@pytest.fixture
def server(state: IosSwitchState, client_key: tuple[Path, str]) -> Iterator[IosSwitchServer]:
    # password=None: the switch offers public-key authentication only
    with IosSwitchServer(state, username="netops", password=None, client_keys=[client_key[1]]) as srv:
        yield srv


def write_inventory(inv: Path, server: IosSwitchServer, key: Path | None) -> Path:
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    hosts = {
        "all": {
            "children": {
                "sites": {"children": {"msk1": {"hosts": {"sw1-msk1": None, "ded1": None}}}},
                "switches": {"hosts": {"sw1-msk1": None}},
                "dedicated": {"hosts": {"ded1": None}},
            }
        }
    }
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (inv / "group_vars" / "msk1.yml").write_text("ipsinfra_site:\n  dc: lab-dc\n  own_network: true\n")
    (inv / "group_vars" / "all" / "clients.yml").write_text(
        "ipsinfra_clients:\n  c1: {name: Example Hosting Ltd, email: admin@c1.example, services: 3}\n"
    )
    switch: dict[str, Any] = {
        "ansible_host": "127.0.0.1",
        "ansible_port": server.port,
        "ansible_user": "netops",
        "platform": "cisco_ios",
        "ssh_known_hosts": str(server.known_hosts),
    }
    if key is not None:
        switch["ansible_ssh_private_key_file"] = str(key)
    (inv / "host_vars" / "sw1-msk1.yml").write_text(yaml.safe_dump(switch))
    (inv / "host_vars" / "ded1.yml").write_text(
        f"ips: [{DED1_IP}]\nmacs: ['{DED1_MAC}']\nswitch: sw1-msk1\nswitch_port: Gi0/5\nclient: c1\n"
    )
    return inv


def test_the_inventory_key_logs_in_and_nothing_else_does(
    server: IosSwitchServer, client_key: tuple[Path, str], tmp_path: Path
) -> None:
    fleet = load(write_inventory(tmp_path / "inv", server, client_key[0]))
    sw = fleet.switches["sw1-msk1"]
    assert sw.ssh_key_file == str(client_key[0]) and sw.secret is None
    creds = SwitchCredentials.for_switch(sw)
    assert (creds.password, creds.key_file) == (None, str(client_key[0]))
    with open_session(sw, timeout=10) as session:  # the inventory's credentials, nothing given
        assert [(e.mac, e.port) for e in read_mac_table(session)] == [(DED1_MAC, "Gi0/5")]
    # a password is not accepted by this switch: only the key logs in
    with (
        pytest.raises(SwitchAuthFailed),
        open_session(sw, credentials=SwitchCredentials(password="x"), timeout=10),
    ):
        pass
    # a key file that does not exist is named, before anything is sent
    gone = SwitchCredentials.for_switch(sw, key_file=str(tmp_path / "nope"))
    refused = pytest.raises(SwitchAuthFailed, match=r"ssh_key_file: value .*nope.*no such file")
    with refused, open_session(sw, credentials=gone, timeout=10):
        pass


def test_cli_block_of_a_dedicated_server_behind_a_key_only_switch(
    server: IosSwitchServer, state: IosSwitchState, client_key: tuple[Path, str], tmp_path: Path
) -> None:
    inv = write_inventory(tmp_path / "inv", server, client_key[0])
    journal = tmp_path / "j.sqlite3"
    rc = cli.main(["block", DED1_IP, "--reason", "malware", "-i", str(inv), "--journal", str(journal)])
    assert rc == 0
    assert state.port_states["Gi0/5"].admin_up is False  # shut on the switch, read from its state
    with Journal(journal) as jr:
        actions = [(e.action, e.target, e.result) for e in jr.entries()]
    assert any(a == "switch.port.shutdown" and r == "ok" for a, _, r in actions), actions
    assert load(inv).dedicated["ded1"].blocked is True  # written back to the inventory


def test_cli_block_without_a_key_is_refused_and_names_the_switch(
    server: IosSwitchServer, state: IosSwitchState, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = write_inventory(tmp_path / "inv", server, None)  # neither secret nor key in the inventory
    rc = cli.main(
        ["block", DED1_IP, "--reason", "malware", "-i", str(inv), "--journal", str(tmp_path / "j.sqlite3")]
    )
    assert rc != 0
    err = capsys.readouterr().err
    assert "sw1-msk1" in err and "ansible_ssh_private_key_file" in err
    assert state.port_states["Gi0/5"].admin_up is True  # nothing was shut


def test_portmap_logs_in_with_the_inventory_key_and_the_first_run_uses_the_baseline(
    server: IosSwitchServer, state: IosSwitchState, client_key: tuple[Path, str], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from ipsinfra.network.cli import app

    inv = write_inventory(tmp_path / "inv", server, client_key[0])
    runner = CliRunner()
    args = ["--inventory", str(inv), "--no-hypervisors", "--timeout", "10"]
    checked = runner.invoke(app, [*args, "--check"])
    assert checked.exit_code == 1, checked.output  # no map recorded yet
    assert "FAILED" not in checked.output
    assert "unmapped  no map recorded yet" in checked.output
    assert "appeared" not in checked.output  # ded1 is where the inventory says: nothing new
    journal = f"sqlite:///{tmp_path / 'j.db'}"
    written = runner.invoke(app, [*args, "--write", "--set-descriptions", "--journal", journal])
    assert written.exit_code == 0, written.output  # map written, description set: with the key
    assert "server: ded1" in (inv / "switch_ports.msk1.yml").read_text()
    assert state.port_states["Gi0/5"].description == "ded1"
    again = runner.invoke(app, [*args, "--check"])
    assert again.exit_code == 0, again.output


# --- the Ansible modules (server_block, switch_port_map) through their playbooks -------------


@pytest.mark.slow
def test_block_server_playbook_uses_the_inventory_key(
    server: IosSwitchServer, state: IosSwitchState, client_key: tuple[Path, str], tmp_path: Path
) -> None:
    from ipsinfra import playbooks

    inv = write_inventory(tmp_path / "inv", server, client_key[0])
    result = playbooks.run(
        "block_server",
        inv,
        extravars={
            "block_ip": DED1_IP,
            "block_reason": "malware",
            "ipsinfra_journal": str(tmp_path / "j.sqlite3"),
        },
        timeout=180,
    )
    assert result.ok, result
    assert result.data["server_block"]["target"] == "ded1"
    assert state.port_states["Gi0/5"].admin_up is False


@pytest.mark.slow
def test_switch_port_map_playbook_uses_the_inventory_key(
    server: IosSwitchServer, client_key: tuple[Path, str], tmp_path: Path
) -> None:
    from ipsinfra import playbooks

    inv = write_inventory(tmp_path / "inv", server, client_key[0])
    result = playbooks.run(
        "switch_port_map",
        inv,
        extravars={"portmap_switches": ["sw1-msk1"], "portmap_timeout": 10},
        timeout=180,
    )
    assert result.ok, result
    assert result.hosts["localhost"].changed == 1  # the first map, written
    assert "server: ded1" in (inv / "switch_ports.msk1.yml").read_text()
