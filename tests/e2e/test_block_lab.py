"""Blocking on the lab (§7.2, §11.8): the right server, or nothing at all.

Every refusal is checked by reading the devices back: the hypervisors' VDS
and the switch's port states are exactly as they were.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from ipsinfra import audit
from ipsinfra.abuse.block import block, prove_target, unblock
from ipsinfra.errors import InvalidInput, TargetProofFailed
from ipsinfra.lab.fleet import Lab
from ipsinfra.models import Nic, VdsState

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]

VDS_KVM = ("203.0.113.101", "kvm1", "VPS1001(113.10)")
VDS_PVE = ("198.51.100.105", "pve1", "VPS1005(100.30)")
DEDICATED_IP = "203.0.113.200"


def snapshot(lab: Lab) -> dict[str, Any]:
    """Everything a block could change, read from the devices."""
    assert lab.fleet is not None
    seen: dict[str, Any] = {}
    for node in lab.fleet.nodes:
        try:
            seen[node] = sorted(
                (v.name, v.state.value, v.autostart, v.description) for v in lab.driver(node).list_vds()
            )
        except Exception as exc:
            seen[node] = type(exc).__name__
    for name, server in lab.switch_servers.items():
        seen[name] = {p: (s.admin_up, s.description) for p, s in server.state.port_states.items()}
    return seen


@pytest.mark.parametrize(("ip", "node", "name"), [VDS_KVM, VDS_PVE], ids=["libvirt", "proxmox"])
def test_block_vds_then_unblock(lab: Lab, ip: str, node: str, name: str) -> None:
    assert lab.fleet is not None and lab.pool is not None
    with lab.journal() as journal:
        result = block(
            ip, lab.fleet, lab.pool, reason="spamhaus_sbl", complaint_ref="SBL123456", journal=journal
        )
        assert result.changed and result.proof.ok
        got = lab.driver(node).get_vds(name)
        assert got.state is VdsState.STOPPED and got.autostart is False
        assert "ipsinfra-blocked: spamhaus_sbl" in got.description
        again = block(ip, lab.fleet, lab.pool, reason="spamhaus_sbl", journal=journal)
        assert not again.changed  # idempotent
        [line] = journal.entries(action="vds.block")
        assert line.target == f"{node}/{name}" and line.result == "ok"

        back = unblock(ip, lab.fleet, lab.pool, journal=journal)
        assert back.changed
        got = lab.driver(node).get_vds(name)
        assert got.state is VdsState.RUNNING and got.autostart is True
        assert "blocked" not in got.description
        assert journal.verify().ok


def test_blocked_vds_stays_down_after_reboot(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    ip, node, name = VDS_KVM
    block(ip, lab.fleet, lab.pool, reason="malware")
    lab.reboot(node)
    assert lab.driver(node).get_vds(name).state is VdsState.STOPPED
    assert lab.driver(node).get_vds("VPS1002(113.10)").state is VdsState.RUNNING  # autostart still works
    with lab.journal() as journal:
        report = audit.run(lab.fleet, lab.pool, journal=journal, probe_for=lab.probe_for, recheck_delay=0.2)
    assert name not in [f.target for f in report.open_findings if f.check == "vds_not_running"]
    unblock(ip, lab.fleet, lab.pool)
    assert lab.driver(node).get_vds(name).state is VdsState.RUNNING


def test_block_dedicated_server_port(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    sw = lab.switch_servers["sw1-msk1"].state
    with lab.journal() as journal:
        result = block(DEDICATED_IP, lab.fleet, lab.pool, reason="botnet", journal=journal)
        assert result.proof.kind == "dedicated" and result.proof.port == "Gi0/5"
        assert sw.port_states["Gi0/5"].admin_up is False
        assert all(p.admin_up for n, p in sw.port_states.items() if n != "Gi0/5")
        unblock(DEDICATED_IP, lab.fleet, lab.pool, journal=journal)
        assert sw.port_states["Gi0/5"].admin_up is True
        assert [e.action for e in journal.entries()][:2] == [
            "switch.port.shutdown",
            "switch.port.no_shutdown",
        ]


def _fleet_with(lab: Lab, name: str, **changes: Any) -> Any:
    assert lab.fleet is not None
    vds = dict(lab.fleet.vds)
    vds[name] = vds[name].model_copy(update=changes)
    return lab.fleet.model_copy(update={"vds": vds})


def wrong_targets(lab: Lab) -> dict[str, tuple[Any, str, dict[str, Any], str]]:
    """case -> (fleet, ip, extra kwargs, what the refusal must say)."""
    assert lab.fleet is not None
    ip, _node, name = VDS_KVM
    f = lab.fleet
    twice = _fleet_with(lab, "VPS1002(113.10)", ips=[ipaddress.ip_address(ip)])
    elsewhere = _fleet_with(lab, name, node="kvm2")
    wrong_ip = _fleet_with(lab, "VPS1002(113.10)", ips=[ipaddress.ip_address("203.0.113.150")])
    wrong_ip_fleet = _fleet_with(lab, name, ips=[ipaddress.ip_address("203.0.113.150")])
    wrong_mac = _fleet_with(lab, name, nics=[Nic(mac="52:54:00:ff:ff:ff")])
    no_nics = _fleet_with(lab, name, nics=[])
    ded = dict(f.dedicated)
    ded["ded1"] = ded["ded1"].model_copy(update={"port": "Gi0/6"})
    ded_wrong_port = f.model_copy(update={"dedicated": ded})
    return {
        "ip owned twice": (twice, ip, {}, "belongs to 2 services"),
        "ip owned by nobody": (f, "203.0.113.199", {}, "belongs to 0 services"),
        "name differs from the DC's": (f, ip, {"dc_names": {ip: "vps-old-name"}}, "names must match"),
        "vds on another node": (
            elsewhere,
            ip,
            {},
            "node kvm2 does not report VPS1001(113.10); it is on kvm1",
        ),
        "ip not on the vds per hypervisor": (wrong_ip_fleet, "203.0.113.150", {}, "not 203.0.113.150"),
        "mac not on the vds": (wrong_mac, ip, {}, "has no NIC 52:54:00:ff:ff:ff"),
        "no nic in the record: nothing to compare": (no_nics, ip, {}, "records no NIC (MAC) for"),
        "dedicated mac on another port": (ded_wrong_port, DEDICATED_IP, {}, "not (only) on Gi0/6"),
        "dedicated name differs from the DC's": (
            f,
            DEDICATED_IP,
            {"dc_names": {DEDICATED_IP: "srv-99"}},
            "names must match",
        ),
        "another ip of the wrong record": (wrong_ip, "203.0.113.150", {}, "not 203.0.113.150"),
    }


def test_wrong_targets_are_refused_and_nothing_changes(lab: Lab) -> None:
    assert lab.pool is not None
    before = snapshot(lab)
    cases = wrong_targets(lab)
    with lab.journal() as journal:
        for case, (fleet, ip, extra, needle) in cases.items():
            with pytest.raises(TargetProofFailed) as exc:
                block(ip, fleet, lab.pool, reason="spam", journal=journal, **extra)
            assert needle in str(exc.value), case
            assert "nothing was changed" in str(exc.value)
            assert snapshot(lab) == before, case
        refused = journal.entries(action="server.block")
        assert len(refused) == len(cases) and {e.result for e in refused} == {"refused"}


def test_refused_when_the_devices_cannot_answer(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    # the switch's MAC moved away from the server's port: a re-cabled server
    lab.switch_servers["sw1-msk1"].state.learn("52:54:00:aa:00:01", "Gi0/9")
    with pytest.raises(TargetProofFailed, match="Gi0/9"):
        block(DEDICATED_IP, lab.fleet, lab.pool, reason="spam")
    assert lab.switch_servers["sw1-msk1"].state.port_states["Gi0/5"].admin_up
    # the node that should hold the VDS does not answer
    lab.daemons["kvm1"].kill_libvirtd()
    with pytest.raises(TargetProofFailed, match="kvm1 cannot be asked"):
        block(VDS_KVM[0], lab.fleet, lab.pool, reason="spam")
    lab.pve.call(lambda: lab.pve.pve.set_node_offline("pve1"))
    with pytest.raises(TargetProofFailed, match="pve1 cannot be asked"):
        block(VDS_PVE[0], lab.fleet, lab.pool, reason="spam")


def test_bad_input(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    with pytest.raises(InvalidInput, match=r"ip: value '300\.1\.1\.1'"):
        block("300.1.1.1", lab.fleet, lab.pool, reason="spam")
    with pytest.raises(InvalidInput, match="reason"):
        block(VDS_KVM[0], lab.fleet, lab.pool, reason=" ")


def test_check_mode_proves_but_changes_nothing(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    before = snapshot(lab)
    result = block(VDS_KVM[0], lab.fleet, lab.pool, reason="spam", check=True)
    assert result.checked_only and result.proof.ok and not result.changed
    assert [s.check for s in prove_target(VDS_KVM[0], lab.fleet, lab.pool).steps] == [
        "inventory_owner",
        "dc_name",
        "hypervisor",
    ]
    assert snapshot(lab) == before
