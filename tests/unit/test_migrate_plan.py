from __future__ import annotations

import pytest

from ipsinfra.errors import InvalidInput, UnsupportedOperation
from ipsinfra.migrate import plan_migration, target_mismatches
from ipsinfra.models import Nic, VdsState
from tests.unit.fleetkit import node, vds

KVM1 = node("kvm1", "198.51.100.10", cpus=8, ip_pool=["203.0.113.10"])
KVM2 = node("kvm2", "198.51.100.20", cpus=4, bridge="vmbr7", gateway="198.51.100.1", vnc_listen="10.9.9.9")
KVM3 = node("kvm3", "198.51.100.30", cpus=2)
FRA = node("kvm9", "192.0.2.90", site="fra1", ip_pool=["192.0.2.100"])
PVE = node("pve1", "192.0.2.30", kind="proxmox", site="msk1")


def running(**kw: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "vcpus": 3,
        "cpuset": "1-7",
        "state": VdsState.RUNNING,
        "autostart": True,
        "ips": ["203.0.113.10"],
        "nics": [Nic(mac="52:54:00:00:04:d2", bridge="br0")],
    }
    values.update(kw)
    return vds("VPS1234(100.10)", "kvm1", **values)


def test_plan_keeps_exact_vcpus_and_takes_target_network() -> None:
    plan = plan_migration(running(), KVM1, KVM2)
    assert plan.new_name == "VPS1234(100.20)"
    assert plan.vcpus == 3  # §9.1: exactly the source's count
    assert plan.cpuset == "1-3"  # the house range cut to the target's 4 CPUs
    assert str(plan.vnc_listen) == "10.9.9.9"
    assert plan.bridge == "vmbr7"
    assert str(plan.gateway) == "198.51.100.1"
    assert plan.autostart is True
    assert plan.live and plan.was_running
    text = "\n".join(plan.describe())
    assert "vCPUs 3 exactly" in text and "VPS1234(100.20)" in text


def test_stopped_vds_migrates_offline() -> None:
    plan = plan_migration(running(state=VdsState.STOPPED, autostart=False), KVM1, KVM2, live=True)
    assert plan.live is False and plan.autostart is False


@pytest.mark.parametrize(
    ("target", "error", "needle"),
    [
        (KVM1, InvalidInput, "already on that node"),
        (KVM3, InvalidInput, "fewer than the VDS's 3 vCPUs"),
        (FRA, InvalidInput, "does not carry the VDS's network"),
        (PVE, UnsupportedOperation, "libvirt -> proxmox"),
    ],
)
def test_refusals(target, error, needle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as exc:
        plan_migration(running(), KVM1, target)
    assert needle in str(exc.value)
    assert f"target: value {target.name!r}" in str(exc.value)


def test_other_site_with_the_network_is_fine() -> None:
    plan = plan_migration(running(ips=["192.0.2.100"]), KVM1, FRA)
    assert plan.target == "kvm9"


def test_target_mismatches() -> None:
    plan = plan_migration(running(), KVM1, KVM2)
    good = vds(
        plan.new_name,
        "kvm2",
        vcpus=3,
        cpuset="1-3",
        vnc_listen="10.9.9.9",
        autostart=True,
        state=VdsState.RUNNING,
        nics=[Nic(mac="52:54:00:00:04:d2", bridge="vmbr7")],
    )
    assert target_mismatches(plan, good) == []
    bad = good.model_copy(update={"vcpus": 4, "autostart": False})
    found = target_mismatches(plan, bad)
    assert any(m.startswith("vcpus: planned 3") for m in found)
    assert any(m.startswith("autostart: planned True") for m in found)


def test_verify_target_tells_written_from_in_force() -> None:
    from ipsinfra.migrate import verify_target

    plan = plan_migration(running(), KVM1, KVM2)
    configured = vds(
        plan.new_name,
        "kvm2",
        vcpus=3,
        cpuset="1-3",
        vnc_listen="10.9.9.9",
        autostart=True,
        state=VdsState.RUNNING,
        nics=[Nic(mac="52:54:00:00:04:d2", bridge="vmbr7")],
    )
    runs = configured.model_copy(update={"vnc_listen": "127.0.0.1"})
    # Written, in force at the next cold start: a warning, not a mismatch.
    mismatches, warnings = verify_target(plan, runs, configured)
    assert mismatches == []
    assert warnings and warnings[0].startswith(
        f"VNC address 10.9.9.9 takes effect at the next cold start of {plan.new_name}"
    )
    # Without a configuration view the two cannot be told apart: a mismatch.
    assert verify_target(plan, runs, None)[0] == ["vnc_listen: planned '10.9.9.9', target has '127.0.0.1'"]
    # In force now but the configuration says otherwise: the next start would lose it.
    mismatches, warnings = verify_target(plan, configured, runs)
    assert warnings == [] and mismatches == [
        "vnc_listen: planned '10.9.9.9', the target's configuration for the next start has '127.0.0.1'"
    ]
    # Fields that are never pending stay mismatches.
    assert verify_target(plan, runs.model_copy(update={"autostart": False}), configured)[0] == [
        "autostart: planned True, target has False"
    ]
