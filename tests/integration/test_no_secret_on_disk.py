"""Canary secrets end to end: nothing kept on disk, logged or journalled carries them (issue 18, part 5).

One lab run with every log at DEBUG: a Proxmox provisioning on the lab's
fakepve with a known root password (proxmoxer logs ``cipassword`` at INFO) and
the cluster's API token, a switch login with its password (a port shut down
and brought back up, journalled), and a playbook through ``playbooks.run``
with ``keep_artifacts`` against an sshd test host, with the token and the
switch password in the environment (ansible-runner copies the environment
into ``artifacts/<id>/command``) and a secret extravar. Then every kept
artifact file, every captured log line and the journal's bytes are searched
for each canary, in its plain, URL-encoded and JSON-escaped spellings.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from ipsinfra import passwords, playbooks
from ipsinfra.lab.fleet import Lab
from ipsinfra.lab.sshd import SshHostPool
from ipsinfra.models import HypervisorKind, Order, SecretRef
from ipsinfra.network.switches import no_shutdown_port, shutdown_port
from ipsinfra.provision import provision

pytestmark = [pytest.mark.ssh, pytest.mark.slow]
TODAY = dt.date(2026, 12, 6)


def spellings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(tmp_path / "lab", mode="test", ssh=False) as running:
        yield running


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Every record of the process at DEBUG into a file, as an operator's log set-up would."""
    path = tmp_path / "debug.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet = {name: logging.getLogger(name).level for name in ("proxmoxer", "proxmoxer.core")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.DEBUG)  # proxmoxer sets WARNING for itself
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
        handler.close()


def test_canary_secrets_are_nowhere_after_a_lab_run(
    lab: Lab,
    log_file: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert lab.fleet is not None and lab.pool is not None
    vds_password = passwords.generate(24)
    token = lab.pve.token_value
    switch_name, switch = next(iter(lab.fleet.switches.items()))
    assert switch.secret is not None and switch.secret.file is not None
    switch_password = Path(switch.secret.file).read_text().strip()
    extravar_secret = "xv-canary-" + passwords.generate(16)
    canaries = {
        "vds password (cipassword)": vds_password,
        "proxmox token": token,
        "switch password": switch_password,
        "secret extravar": extravar_secret,
    }
    journal = lab.journal()

    # 1. Proxmox provisioning with a root password: proxmoxer logs the config PUT at INFO.
    pve_node = next(n for n, node in lab.fleet.nodes.items() if node.kind is HypervisorKind.PROXMOX)
    order = Order(
        number=2931, client="c1", node=pve_node, vcpus=1, memory_mib=256, disk_gib=5, os="debian-12"
    )
    result = provision(order, lab.fleet, lab.pool, journal=journal, password=vds_password, today=TODAY)
    assert result.changed

    # 2. A switch login with its password: shut a proven port down and bring it back.
    ded = next(d for d in lab.fleet.dedicated.values() if d.switch == switch_name and d.port and d.macs)
    assert ded.port is not None
    shutdown_port(switch, ded.port, ded.macs[0], journal=journal, timeout=10, reason="canary test")
    no_shutdown_port(switch, ded.port, ded.macs[0], journal=journal, timeout=10)
    journal.close()

    # 3. A playbook with keep_artifacts against an sshd test host, secrets in its environment.
    monkeypatch.setenv("LAB_PVE_TOKEN", token)
    monkeypatch.setenv("LAB_SWITCH_PASSWORD", switch_password)
    assert SecretRef(env="LAB_PVE_TOKEN").resolve() == token
    kept = tmp_path / "kept"
    with SshHostPool() as pool:
        pool.start(["canary"])
        run = playbooks.run(
            "ping",
            pool.ansible_inventory(),
            extravars={"secret_password": extravar_secret},
            keep_artifacts=kept,
            timeout=180,
        )
    assert run.ok, run

    # The paths that used to leak were taken...
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "cipassword" in logged  # proxmoxer did log the request with the password field
    commands = list(kept.glob("*/command"))
    assert commands and "ansible-playbook" in commands[0].read_text()
    assert files_under(kept) and log_file.stat().st_size > 0
    # ...and no canary, in any spelling, is anywhere.
    searched: dict[str, bytes] = {str(p): p.read_bytes() for p in files_under(kept)}
    searched["debug log file"] = log_file.read_bytes()
    searched["captured log lines"] = logged.encode()
    journal_files = sorted(lab.journal_path.parent.glob(lab.journal_path.name + "*"))  # -wal, -shm too
    for path in journal_files:
        searched[f"journal {path.name}"] = path.read_bytes()
    journal_bytes = b"".join(path.read_bytes() for path in journal_files)
    assert b"switch.port.shutdown" in journal_bytes and b"vds.provision" in journal_bytes
    found = [
        f"{what} in {where}"
        for what, secret in canaries.items()
        for spelling in spellings(secret)
        for where, data in searched.items()
        if spelling.encode() in data
    ]
    assert found == []
    kept_env = json.loads(commands[0].read_text())["env"]
    assert "LAB_PVE_TOKEN" not in kept_env and "LAB_SWITCH_PASSWORD" not in kept_env
    assert all(key.startswith(("ANSIBLE_", "IPSINFRA_")) for key in kept_env)
