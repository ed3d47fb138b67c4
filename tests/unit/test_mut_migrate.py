"""migrate: what the mutation run (issue 23) found unchecked — the Proxmox twin name, a VDS
without a cpuset, a stopped VDS, the bridge comparison, the site/network check at its edges."""

from __future__ import annotations

import pytest

from ipsinfra.errors import InvalidInput, UnsupportedOperation
from ipsinfra.migrate import MigrationPlan, plan_migration, target_mismatches, verify_target
from ipsinfra.models import HypervisorKind, Nic, Vds, VdsState
from tests.unit.fleetkit import node, vds

KVM1 = node("kvm1", "198.51.100.10", cpus=8, ip_pool=["203.0.113.10"])
KVM2 = node("kvm2", "198.51.100.20", cpus=4, bridge="vmbr7", gateway="198.51.100.1", vnc_listen="10.9.9.9")
PVE1 = node("pve1", "192.0.2.30", kind="proxmox", cpus=16)
PVE2 = node("pve2", "192.0.2.31", kind="proxmox", cpus=64, bridge="vmbr1")
FRA = node("kvm9", "192.0.2.90", site="fra1", cpus=8, ip_pool=["192.0.2.100", "2001:db8:5::10"])


def a_vds(name: str = "VPS1234(100.10)", node_name: str = "kvm1", **kw: object) -> Vds:
    values: dict[str, object] = {
        "vcpus": 3,
        "cpuset": "1-7",
        "state": VdsState.RUNNING,
        "autostart": True,
        "ips": ["203.0.113.10"],
        "nics": [Nic(mac="52:54:00:00:04:d2", bridge="br0")],
    }
    values.update(kw)
    return vds(name, node_name, **values)


def test_the_whole_plan_libvirt() -> None:
    assert plan_migration(a_vds(), KVM1, KVM2) == MigrationPlan(
        name="VPS1234(100.10)",
        source="kvm1",
        target="kvm2",
        kind=HypervisorKind.LIBVIRT,
        new_name="VPS1234(100.20)",
        backend_new_name="VPS1234(100.20)",
        vcpus=3,
        cpuset="1-3",
        vnc_listen="10.9.9.9",
        bridge="vmbr7",
        gateway="198.51.100.1",
        autostart=True,
        live=True,
        was_running=True,
    )


def test_proxmox_plans_the_dns_safe_twin() -> None:
    plan = plan_migration(a_vds("VPS1234(2.30)", "pve1"), PVE1, PVE2)
    assert (plan.new_name, plan.backend_new_name) == ("VPS1234(2.31)", "VPS1234-2-31")
    assert plan.kind is HypervisorKind.PROXMOX
    assert plan.cpuset == "1-40"
    assert plan.describe() == [
        "migrate VPS1234(2.30) from pve1 to pve2 (live, proxmox)",
        "  rename to VPS1234(2.31) (backend name VPS1234-2-31)",
        "  vCPUs 3 exactly as on pve1 (§9.1), cpuset 1-40",
        "  VNC listen 192.0.2.31, bridge vmbr1, gateway - (§9.10)",
        "  autostart on (set again on the target)",
        "  release the source only after pve2 reports the VDS as planned",
    ]


def test_describe_a_stopped_libvirt_vds_without_cpuset() -> None:
    plan = plan_migration(a_vds(cpuset=None, state=VdsState.STOPPED, autostart=False), KVM1, KVM2)
    assert plan.describe() == [
        "migrate VPS1234(100.10) from kvm1 to kvm2 (offline, libvirt)",
        "  rename to VPS1234(100.20)",
        "  vCPUs 3 exactly as on kvm1 (§9.1), cpuset -",
        "  VNC listen 10.9.9.9, bridge vmbr7, gateway 198.51.100.1 (§9.10)",
        "  autostart off (set again on the target)",
        "  release the source only after kvm2 reports the VDS as planned",
    ]


def test_a_vds_without_cpuset_does_not_gain_one() -> None:
    assert plan_migration(a_vds(cpuset=None), KVM1, KVM2).cpuset is None
    assert plan_migration(a_vds(), KVM1, KVM2, cpuset_rule=None).cpuset is None
    assert plan_migration(a_vds(), KVM1, KVM2, cpuset_rule="0-1").cpuset == "0-1"


def test_offline_when_asked_or_not_running() -> None:
    plan = plan_migration(a_vds(), KVM1, KVM2, live=False)
    assert (plan.live, plan.was_running) == (False, True)
    for state in (VdsState.STOPPED, VdsState.PAUSED, VdsState.UNKNOWN):
        plan = plan_migration(a_vds(state=state), KVM1, KVM2)
        assert (plan.live, plan.was_running) == (False, False)


def test_vcpus_equal_to_the_target_are_allowed() -> None:
    assert plan_migration(a_vds(vcpus=4), KVM1, KVM2).vcpus == 4
    with pytest.raises(InvalidInput) as exc:
        plan_migration(a_vds(vcpus=5), KVM1, KVM2)
    assert str(exc.value) == "target: value 'kvm2': 4 CPUs, fewer than the VDS's 5 vCPUs"


def test_the_vds_must_be_on_the_source() -> None:
    with pytest.raises(InvalidInput) as exc:
        plan_migration(a_vds(node_name="kvm2"), KVM1, FRA)
    assert str(exc.value) == "source: value 'kvm1': VPS1234(100.10) is on node kvm2"


@pytest.mark.parametrize(
    ("ips", "shown"),
    [
        ([], "its addresses"),
        (["192.0.2.100", "192.0.3.1"], "192.0.3.1"),  # a /24 around the pool's address, not wider
        (["203.0.113.10", "192.0.2.101"], "203.0.113.10"),
        (["2001:db8:6::1"], "2001:db8:6::1"),
    ],
)
def test_another_site_must_carry_every_address(ips: list[str], shown: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        plan_migration(a_vds(ips=ips), KVM1, FRA)
    assert str(exc.value) == (
        f"target: value 'kvm9': site fra1 does not carry the VDS's network ({shown}, site msk1)"
    )


def test_another_site_with_every_address_in_its_networks() -> None:
    plan = plan_migration(a_vds(ips=["192.0.2.255", "192.0.2.1", "2001:db8:5::ffff"]), KVM1, FRA)
    assert plan.new_name == "VPS1234(2.90)"


def migrated(plan: MigrationPlan, **kw: object) -> Vds:
    values: dict[str, object] = {
        "vcpus": plan.vcpus,
        "cpuset": plan.cpuset,
        "vnc_listen": plan.vnc_listen,
        "autostart": plan.autostart,
        "state": VdsState.RUNNING if plan.was_running else VdsState.STOPPED,
        "nics": [Nic(mac="52:54:00:00:04:d2", bridge=plan.bridge)],
    }
    values.update(kw)
    return vds(plan.new_name, plan.target, **values)


def test_a_stopped_vds_must_arrive_stopped() -> None:
    plan = plan_migration(a_vds(state=VdsState.STOPPED), KVM1, KVM2)
    assert target_mismatches(plan, migrated(plan)) == []
    assert target_mismatches(plan, migrated(plan, state=VdsState.RUNNING)) == [
        "state: planned 'stopped', target has 'running'"
    ]
    running = plan_migration(a_vds(), KVM1, KVM2)
    assert target_mismatches(running, migrated(running, state=VdsState.STOPPED)) == [
        "state: planned 'running', target has 'stopped'"
    ]


def test_every_planned_field_is_compared() -> None:
    plan = plan_migration(a_vds(), KVM1, KVM2)
    wrong = vds(
        "VPS1234(100.10)",
        "kvm1",
        vcpus=2,
        cpuset="1-2",
        vnc_listen="10.0.0.1",
        autostart=False,
        state=VdsState.RUNNING,
        nics=[Nic(mac="52:54:00:00:04:d2", bridge="br0")],
    )
    assert target_mismatches(plan, wrong) == [
        "name: planned 'VPS1234(100.20)', target has 'VPS1234(100.10)'",
        "node: planned 'kvm2', target has 'kvm1'",
        "vcpus: planned 3, target has 2",
        "cpuset: planned '1-3', target has '1-2'",
        "vnc_listen: planned '10.9.9.9', target has '10.0.0.1'",
        "autostart: planned True, target has False",
        "bridge: planned ['vmbr7'], target has ['br0']",
    ]


def test_bridges_are_compared_as_a_set_of_all_nics() -> None:
    plan = plan_migration(a_vds(), KVM1, KVM2)
    two = [Nic(mac="52:54:00:00:04:d2", bridge="vmbr7"), Nic(mac="52:54:01:00:04:d2", bridge="br0")]
    assert target_mismatches(plan, migrated(plan, nics=two)) == [
        "bridge: planned ['vmbr7'], target has ['br0', 'vmbr7']"
    ]
    same = [Nic(mac="52:54:00:00:04:d2", bridge="vmbr7"), Nic(mac="52:54:01:00:04:d2", bridge="vmbr7")]
    assert target_mismatches(plan, migrated(plan, nics=same)) == []
    # libvirt that reports no bridge at all (e.g. a direct NIC): nothing to compare
    assert target_mismatches(plan, migrated(plan, nics=[])) == []


def test_proxmox_always_reports_a_bridge() -> None:
    plan = plan_migration(a_vds("VPS1234(2.30)", "pve1"), PVE1, PVE2)
    assert target_mismatches(plan, migrated(plan)) == []
    assert target_mismatches(plan, migrated(plan, nics=[])) == ["bridge: planned ['vmbr1'], target has []"]


def test_cold_start_warning_for_vcpus_and_cpuset() -> None:
    plan = plan_migration(a_vds(), KVM1, KVM2)
    configured = migrated(plan)
    runs = migrated(plan, vcpus=2, cpuset="1-2")
    mismatches, warnings = verify_target(plan, runs, configured)
    assert mismatches == []
    assert warnings == [
        "vcpus 3 takes effect at the next cold start of VPS1234(100.20) "
        "(written to its configuration; running with 2)",
        "cpuset '1-3' takes effect at the next cold start of VPS1234(100.20) "
        "(written to its configuration; running with '1-2')",
    ]
    assert verify_target(plan, configured, configured) == ([], [])
    assert verify_target(plan, configured) == ([], [])


def test_vnc_cold_start_warning_text() -> None:
    plan = plan_migration(a_vds(), KVM1, KVM2)
    mismatches, warnings = verify_target(plan, migrated(plan, vnc_listen="127.0.0.1"), migrated(plan))
    assert mismatches == []
    assert warnings == [
        "VNC address 10.9.9.9 takes effect at the next cold start of VPS1234(100.20) "
        "(written to its configuration; the running QEMU keeps listening on 127.0.0.1 "
        "until the hypervisor stops and starts it)"
    ]


def test_wrong_now_and_in_the_configuration() -> None:
    plan = plan_migration(a_vds(), KVM1, KVM2)
    same_wrong = migrated(plan, vcpus=2)
    assert verify_target(plan, same_wrong, same_wrong) == (["vcpus: planned 3, target has 2"], [])
    other_wrong = migrated(plan, vcpus=1)
    assert verify_target(plan, same_wrong, other_wrong) == (
        ["vcpus: planned 3, target has 2 (and its configuration for the next start has 1)"],
        [],
    )
    # a field that is never pending, wrong only in the configuration
    assert verify_target(plan, migrated(plan), migrated(plan, autostart=False)) == (
        ["autostart: planned True, the target's configuration for the next start has False"],
        [],
    )


def test_an_ipv6_pool_address_carries_its_whole_slash_64() -> None:
    plan = plan_migration(a_vds(ips=["192.0.2.7", "2001:db8:5:0:8000::1"]), KVM1, FRA)
    assert plan.target == "kvm9"


def test_every_stranded_address_is_named() -> None:
    with pytest.raises(InvalidInput) as exc:
        plan_migration(a_vds(ips=["10.1.1.1", "10.2.2.2"]), KVM1, FRA)
    assert "(10.1.1.1, 10.2.2.2, site msk1)" in str(exc.value)


def test_another_hypervisor_kind_is_refused_with_the_way_out() -> None:
    with pytest.raises(UnsupportedOperation) as exc:
        plan_migration(a_vds(), KVM1, node("pve3", "192.0.2.33", kind="proxmox"))
    assert str(exc.value) == (
        "target: value 'pve3': libvirt -> proxmox is not a migration this library performs "
        "(reinstall instead)"
    )
