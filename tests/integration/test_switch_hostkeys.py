"""Switch SSH refuses any host key it was not told to trust (issue 18, part 4).

netmiko is driven against the lab's asyncssh IOS switch and against a real
OpenSSH sshd (``lab/sshd.py``, platform ``linux``): a pinned key logs in, an
unknown or changed key is refused with its SHA256 fingerprint before the
password is sent, and ``ipsinfra trust`` pins a first key only on purpose.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from ipsinfra import hostkeys
from ipsinfra.cli import main
from ipsinfra.hostkeys import HostKey, HostKeyChanged, HostKeyUnknown
from ipsinfra.lab.sshd import SshHostPool
from ipsinfra.lab.switches import IosSwitchServer, IosSwitchState
from ipsinfra.models import Switch
from ipsinfra.network.errors import SwitchHostKeyChanged, SwitchHostKeyUnknown
from ipsinfra.network.models import FailureKind
from ipsinfra.network.switches import SwitchCredentials, collect, open_session

PASSWORD = "hk-lab-pw-7c41"
CREDS = SwitchCredentials(password=PASSWORD)


@pytest.fixture
def server() -> Iterator[IosSwitchServer]:
    state = IosSwitchState(hostname="sw1-msk1", ports=["Gi0/1", "Gi0/2"])
    with IosSwitchServer(state, username="netops", password=PASSWORD) as srv:
        yield srv


def login(switch: Switch, credentials: SwitchCredentials, timeout: float) -> None:
    with open_session(switch, credentials=credentials, timeout=timeout):
        pass


def ios_key(srv: IosSwitchServer) -> HostKey:
    key_type, blob = srv.host_key.export_public_key("openssh").decode().split()[:2]
    return HostKey(key_type, blob)


def switch_for(srv: IosSwitchServer, known_hosts: Path | None, **kw: Any) -> Switch:
    fields: dict[str, Any] = {
        "name": "sw1-msk1",
        "site": "msk1",
        "host": srv.host,
        "port": srv.port,
        "platform": "cisco_ios",
        "username": "netops",
        "ssh_known_hosts": str(known_hosts) if known_hosts is not None else None,
        **kw,
    }
    return Switch(**fields)


def other_key_line(name: str) -> str:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()
    return f"{name} {other[0]} {other[1]}\n"


def test_the_pinned_key_logs_in(server: IosSwitchServer) -> None:
    with open_session(switch_for(server, server.known_hosts), credentials=CREDS, timeout=10) as s:
        assert "Gi0/1" in s.run("show interfaces status")
    assert server.logins == 1


def test_an_unknown_key_is_refused_with_its_fingerprint_before_the_password(
    server: IosSwitchServer, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text(other_key_line("[127.0.0.1]:1"))  # some other host's key only

    with pytest.raises(SwitchHostKeyUnknown) as caught:
        login(switch_for(server, empty), credentials=CREDS, timeout=10)

    message = str(caught.value)
    assert ios_key(server).fingerprint in message and message.count("SHA256:") == 1
    assert f"[127.0.0.1]:{server.port}" in message and "ipsinfra trust sw1-msk1" in message
    assert isinstance(caught.value, HostKeyUnknown)
    assert server.logins == 0 and PASSWORD not in message
    assert empty.read_text().count("\n") == 1  # nothing was added


def test_a_changed_key_is_refused_showing_both_fingerprints(server: IosSwitchServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(other_key_line(f"[127.0.0.1]:{server.port}"))
    pinned = hostkeys.lookup(known, "127.0.0.1", server.port)[0]

    with pytest.raises(SwitchHostKeyChanged) as caught:
        login(switch_for(server, known), credentials=CREDS, timeout=10)

    message = str(caught.value)
    assert "CHANGED" in message
    assert ios_key(server).fingerprint in message and pinned.fingerprint in message
    assert isinstance(caught.value, HostKeyChanged)
    assert server.logins == 0


def test_a_missing_known_hosts_file_is_refused(server: IosSwitchServer, tmp_path: Path) -> None:
    with pytest.raises(SwitchHostKeyUnknown, match="does not exist"):
        login(switch_for(server, tmp_path / "nope"), credentials=CREDS, timeout=10)
    assert server.logins == 0


def test_without_ssh_known_hosts_the_users_known_hosts_is_used(
    server: IosSwitchServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    switch = switch_for(server, None)
    with pytest.raises(SwitchHostKeyUnknown, match=str(tmp_path / ".ssh" / "known_hosts")):
        login(switch, credentials=CREDS, timeout=10)

    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "known_hosts").write_text(server.known_hosts_line() + "\n")
    with open_session(switch, credentials=CREDS, timeout=10) as s:
        assert "Gi0/2" in s.run("show interfaces description")
    assert server.logins == 1


def test_collect_reports_a_refused_key_and_still_polls_the_others(
    server: IosSwitchServer, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(other_key_line(f"[127.0.0.1]:{server.port}"))
    switches = [switch_for(server, server.known_hosts), switch_for(server, known, name="sw-spoofed")]

    report = collect(switches, credentials=lambda s: CREDS, timeout=10)

    assert report.results["sw1-msk1"].failure is None
    assert report.results["sw-spoofed"].failure is FailureKind.HOST_KEY
    assert ios_key(server).fingerprint in report.results["sw-spoofed"].reason


def _inventory(tmp_path: Path, srv: IosSwitchServer, known_hosts: Path) -> Path:
    inv = tmp_path / "inventory"
    (inv / "host_vars").mkdir(parents=True)
    (inv / "group_vars").mkdir()
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    sites:\n      children:\n        msk1:\n          hosts:\n"
        "            sw1-msk1:\n    switches:\n      hosts:\n        sw1-msk1:\n"
    )
    (inv / "group_vars" / "msk1.yml").write_text("ipsinfra_site:\n  dc: lab-dc\n")
    (inv / "host_vars" / "sw1-msk1.yml").write_text(
        f"ansible_host: 127.0.0.1\nansible_port: {srv.port}\nansible_user: netops\n"
        f"platform: cisco_ios\nssh_known_hosts: {known_hosts}\n"
    )
    return inv


def test_trust_shows_the_fingerprint_and_pins_only_with_yes(
    server: IosSwitchServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = tmp_path / "pins" / "switches_known_hosts"
    inv = _inventory(tmp_path, server, known)
    fingerprint = ios_key(server).fingerprint

    assert main(["trust", "sw1-msk1", "-i", str(inv)]) == 1  # no terminal to ask on, no --yes
    shown = capsys.readouterr().out
    assert fingerprint in shown and "not pinned" in shown
    assert not known.exists()

    assert main(["trust", "sw1-msk1", "-i", str(inv), "--yes"]) == 0
    assert f"pinned in {known}" in capsys.readouterr().out
    assert known.read_text() == server.known_hosts_line() + "\n"
    assert known.stat().st_mode & 0o777 == 0o600

    assert main(["trust", "sw1-msk1", "-i", str(inv), "--yes", "--json"]) == 0
    assert '"already": true' in capsys.readouterr().out
    with open_session(switch_for(server, known), credentials=CREDS, timeout=10) as s:
        s.run("show mac address-table")


def test_trust_refuses_to_replace_a_pinned_key_exit_2(
    server: IosSwitchServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(other_key_line(f"[127.0.0.1]:{server.port}"))
    before = known.read_text()

    assert main(["trust", f"127.0.0.1:{server.port}", "--known-hosts", str(known), "--yes"]) == 2

    err = capsys.readouterr().err
    assert ios_key(server).fingerprint in err and "ssh-keygen -R" in err
    assert known.read_text() == before


def test_a_refused_switch_key_exits_2_from_the_cli(server: IosSwitchServer, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ipsinfra.network.cli import app

    known = tmp_path / "known_hosts"
    known.write_text(other_key_line(f"[127.0.0.1]:{server.port}"))
    inv = _inventory(tmp_path, server, known)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    with (inv / "host_vars" / "sw1-msk1.yml").open("a") as fh:
        fh.write(f"secret: {{file: {pw}}}\n")

    result = CliRunner().invoke(app, ["--inventory", str(inv), "--check", "--timeout", "10"])

    assert "host_key" in result.output and ios_key(server).fingerprint in result.output
    assert result.exit_code != 0
    assert server.logins == 0


# --- a real OpenSSH sshd (lab/sshd.py), netmiko's linux driver ----------------------------


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshHostPool]:
    with SshHostPool() as pool:
        pool.start(["swreal"])
        yield pool


def _real_switch(pool: SshHostPool, known_hosts: Path) -> Switch:
    host = pool["swreal"]
    return Switch(
        name="swreal",
        site="msk1",
        host=host.host,
        port=host.port,
        platform="linux",
        username=host.user,
        ssh_known_hosts=str(known_hosts),
    )


@pytest.mark.ssh
def test_real_sshd_pinned_key_accepted_changed_key_refused(sshd: SshHostPool, tmp_path: Path) -> None:
    host = sshd["swreal"]
    creds = SwitchCredentials(key_file=str(host.key_file))
    with open_session(_real_switch(sshd, host.known_hosts), credentials=creds, timeout=15) as s:
        assert s.run_checked("hostname").strip().endswith("swreal")

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    key_type, blob = other.with_suffix(".pub").read_text().split()[:2]
    changed = tmp_path / "known_hosts"
    changed.write_text(f"[{host.host}]:{host.port} {key_type} {blob}\n")
    real = hostkeys.lookup(host.known_hosts, host.host, host.port)[0]

    with pytest.raises(SwitchHostKeyChanged) as caught:
        login(_real_switch(sshd, changed), credentials=creds, timeout=15)
    assert real.fingerprint in str(caught.value)
    assert HostKey(key_type, blob).fingerprint in str(caught.value)

    unknown = tmp_path / "empty_known_hosts"
    unknown.write_text("")
    with pytest.raises(SwitchHostKeyUnknown, match=real.fingerprint.replace("+", r"\+")):
        login(_real_switch(sshd, unknown), credentials=creds, timeout=15)
    log = (sshd.base_dir / "swreal" / "sshd.log").read_text(errors="replace")
    assert log.count("Accepted publickey") == 1  # only the pinned session logged in


@pytest.mark.ssh
def test_trust_fetches_the_same_fingerprint_as_ssh_keygen(sshd: SshHostPool, tmp_path: Path) -> None:
    host = sshd["swreal"]
    fetched = hostkeys.fetch_host_key(host.host, host.port)
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(sshd.base_dir / "swreal" / "ssh_host_ed25519_key.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    assert fetched.fingerprint == listed

    target = tmp_path / "known_hosts"
    assert hostkeys.pin(target, host.host, host.port, fetched) is True
    assert hostkeys.pin(target, host.host, host.port, fetched) is False
    with open_session(
        _real_switch(sshd, target), credentials=SwitchCredentials(key_file=str(host.key_file)), timeout=15
    ) as s:
        assert s.run_checked("true").strip() == ""
