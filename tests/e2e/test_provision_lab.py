"""Provisioning (§8, §4.8, §2.1) on the lab: a real guest takes its password
through qemu-ga on libvirt; cloud-init carries it on Proxmox."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from ipsinfra import metadata, passwords
from ipsinfra.errors import Conflict, InvalidInput, NodeNotFound, WeakPassword
from ipsinfra.lab.fleet import Lab
from ipsinfra.models import Order, VdsState
from ipsinfra.provision import provision

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]
TODAY = dt.date(2026, 11, 26)


def order(node: str, **kw: Any) -> Order:
    values: dict[str, Any] = {
        "number": 2001,
        "client": "c1",
        "node": node,
        "vcpus": 2,
        "memory_mib": 256,
        "disk_gib": 10,
        "ips": 1,
        "os": "debian-12",
        "comment": "install nginx",
    }
    values.update(kw)
    return Order.model_validate(values)


def names(lab: Lab, node: str) -> list[str]:
    return sorted(v.name for v in lab.driver(node).list_vds())


def grep_tree(root: Path, needle: str) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle.encode() in path.read_bytes():
                    hits.append(path)
            except OSError:
                continue
    return hits


@pytest.mark.parametrize(
    ("node", "name"), [("kvm1", "VPS2001(113.10)"), ("pve1", "VPS2001(100.30)")], ids=["libvirt", "proxmox"]
)
def test_provision_verify_and_rerun(
    lab: Lab, node: str, name: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lab.fleet is not None and lab.pool is not None
    caplog.set_level(logging.DEBUG)
    with lab.journal() as journal:
        result = provision(order(node, trial=True), lab.fleet, lab.pool, journal=journal, today=TODAY)
        assert result.changed and result.ok, result.mismatches
        assert result.plan.name == name
        assert result.password is not None
        secret = result.password.get_secret_value()
        assert passwords.problems(secret) == []
        got = lab.driver(node).get_vds(name)
        assert got.state is VdsState.RUNNING and got.autostart
        assert (got.vcpus, got.memory_mib) == (2, 256)
        facts = metadata.parse(got.description)
        assert facts["trial-end"] == "2026-12-03" and facts["status"] == "Active"  # §2.1
        assert journal.get_state(f"vds:{name}")["trial_end"] == "2026-12-03"

        again = provision(order(node, trial=True), lab.fleet, lab.pool, journal=journal, today=TODAY)
        assert not again.changed and again.password is None and again.ok
        assert names(lab, node).count(name) == 1
        assert [e.result for e in journal.entries(action="vds.provision")] == ["ok"]  # a re-run: no line
    # The password was handed out once; it is nowhere else.
    assert "***" in repr(result.password) and secret not in repr(result)
    assert secret not in caplog.text and secret not in capsys.readouterr().out
    assert grep_tree(lab.base_dir, secret) == []


def test_libvirt_password_reached_the_guest(lab: Lab) -> None:
    """The guest's /etc/shadow changed: read back through the agent, never the clear text."""
    import json

    import libvirt_qemu  # type: ignore[import-not-found]

    assert lab.fleet is not None and lab.pool is not None
    result = provision(order("kvm1", number=2002), lab.fleet, lab.pool, today=TODAY)
    assert result.password is not None
    dom = lab.driver("kvm1").ex_conn.lookupByName("VPS2002(113.10)")  # type: ignore[attr-defined]
    cmd = {"execute": "guest-file-open", "arguments": {"path": "/etc/shadow", "mode": "r"}}
    handle = json.loads(libvirt_qemu.qemuAgentCommand(dom, json.dumps(cmd), 30, 0))["return"]
    read = {"execute": "guest-file-read", "arguments": {"handle": handle, "count": 65536}}
    import base64

    shadow = base64.b64decode(
        json.loads(libvirt_qemu.qemuAgentCommand(dom, json.dumps(read), 30, 0))["return"]["buf-b64"]
    ).decode()
    root_hash = next(line.split(":")[1] for line in shadow.splitlines() if line.startswith("root:"))
    assert root_hash.startswith("$") and result.password.get_secret_value() not in shadow


def test_check_mode_touches_nothing(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    before = {n: names(lab, n) for n in lab.fleet.nodes}
    result = provision(order("pve1"), lab.fleet, lab.pool, check=True, today=TODAY)
    assert result.checked_only and not result.changed and result.password is None
    assert any("create VPS2001(100.30)" in line for line in result.plan.describe())
    assert {n: names(lab, n) for n in lab.fleet.nodes} == before


@pytest.mark.parametrize(
    ("kw", "password", "error", "needle"),
    [
        ({"node": "kvm9"}, None, NodeNotFound, "order.node: value 'kvm9'"),
        ({"number": 1001, "node": "kvm2"}, None, Conflict, "already in use by VPS1001(113.10) on node kvm1"),
        ({"ips": 4}, None, InvalidInput, "order.ips: value 4: node pve1 has"),
        ({}, "Order2001!", WeakPassword, "word + digits + symbol"),
        ({"vcpus": 33}, None, InvalidInput, "order.vcpus: value 33"),
    ],
    ids=["unknown node", "order on another node", "more IPs than free", "weak password", "too many vCPUs"],
)
def test_bad_orders_create_nothing(
    lab: Lab, kw: dict[str, Any], password: str | None, error: type[Exception], needle: str
) -> None:
    assert lab.fleet is not None and lab.pool is not None
    before = {n: names(lab, n) for n in lab.fleet.nodes}
    the_order = order(kw.pop("node", "pve1"), **kw)
    with pytest.raises(error) as exc:
        provision(the_order, lab.fleet, lab.pool, password=password, today=TODAY)
    assert needle in str(exc.value)
    if password:
        assert password not in str(exc.value)
    assert {n: names(lab, n) for n in lab.fleet.nodes} == before
