"""``inventory sync``'s reconciliation (pure): fleet + what the nodes report -> updates and findings."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ipsinfra import cli
from ipsinfra.inventory.sync import NodeListing, SyncResult, reconcile, reported_ips
from ipsinfra.inventory.writeback import DELETE, InventoryChange
from ipsinfra.models import Disk, Vds
from tests.unit.fleetkit import fleet, node, vds

KVM1 = node("kvm1", "185.12.113.10")
KVM2 = node("kvm2", "185.12.113.20")
KVM3 = node("kvm3", "185.12.113.30")


def listing(name: str, *reported: Vds) -> NodeListing:
    return NodeListing(node=name, vds=list(reported))


def test_nothing_to_change_when_the_nodes_say_what_the_records_say() -> None:
    rec = vds("VPS1001(113.10)", "kvm1")
    plan = reconcile(fleet(KVM1, KVM2, vds=(rec,)), [listing("kvm1", rec), listing("kvm2")])
    assert (plan.changes, plan.updates, plan.findings) == ([], [], [])
    assert not plan.needs_human


def test_moved_and_renamed_by_order_number() -> None:
    rec = vds("VPS1001(113.10)", "kvm1", vnc_listen="185.12.113.10")
    seen = vds("VPS1001(113.20)", "kvm2", vnc_listen="185.12.113.20")
    plan = reconcile(fleet(KVM1, KVM2, vds=(rec,)), [listing("kvm1"), listing("kvm2", seen)])
    assert plan.findings == []
    [update] = plan.updates
    assert (update.action, update.name, update.new_name) == ("sync", "VPS1001(113.10)", "VPS1001(113.20)")
    assert update.values == {"node": "kvm2", "vnc_listen": "185.12.113.20"}
    assert update.only_if_present == {"vnc_listen"}
    assert plan.changes[0].describe() == (
        "VPS1001(113.10) -> VPS1001(113.20): node kvm1 -> kvm2; vnc_listen 185.12.113.10 -> 185.12.113.20"
    )


def test_another_order_on_the_same_node_is_not_taken_for_the_record() -> None:
    rec = vds("VPS1002(113.10)", "kvm1")
    seen = vds("VPS1002(113.10)", "kvm1", vcpus=2)
    other = vds("VPS1003(113.10)", "kvm1")
    plan = reconcile(fleet(KVM1, vds=(rec,)), [listing("kvm1", seen, other)])
    assert plan.updates == []
    assert [(f.kind, f.target) for f in plan.findings] == [("undescribed", "VPS1003(113.10)")]
    assert plan.findings[0].message == "kvm1 runs VPS1003(113.10), which no record describes"


def test_resized_vcpus_memory_disks_cpuset_and_ips() -> None:
    rec = vds(
        "VPS1004(113.10)",
        "kvm1",
        vcpus=2,
        memory_mib=1024,
        cpuset="1-40",
        disks=[Disk(name="disk0", size_gib=20)],
        ips=["185.12.113.101"],
    )
    seen = vds(
        "VPS1004(113.10)",
        "kvm1",
        vcpus=4,
        memory_mib=2048,
        cpuset="1-8",
        disks=[Disk(name="disk0", size_gib=40)],
        ips=["185.12.113.101", "185.12.113.102"],
    )
    plan = reconcile(fleet(KVM1, vds=(rec,)), [listing("kvm1", seen)])
    [update] = plan.updates
    assert update.new_name is None
    assert update.values == {
        "vcpus": 4,
        "cpuset": "1-8",
        "memory_mib": 2048,
        "_disks": {"disk0": 40},
        "ips": ["185.12.113.101", "185.12.113.102"],
    }
    assert update.only_if_present == {"cpuset"}
    assert plan.changes[0].describe() == (
        "VPS1004(113.10): vcpus 2 -> 4; cpuset 1-40 -> 1-8; memory_mib 1024 -> 2048; disks.disk0 20 -> 40; "
        "ips [185.12.113.101] -> [185.12.113.101, 185.12.113.102]"
    )


def test_a_cpuset_the_record_does_not_carry_is_not_added_and_one_gone_is_dropped() -> None:
    seen = vds("VPS1005(113.10)", "kvm1", cpuset="1-3")
    none = reconcile(fleet(KVM1, vds=(vds("VPS1005(113.10)", "kvm1"),)), [listing("kvm1", seen)])
    assert none.updates == []
    gone = reconcile(
        fleet(KVM1, vds=(vds("VPS1005(113.10)", "kvm1", cpuset="1-3"),)),
        [listing("kvm1", vds("VPS1005(113.10)", "kvm1"))],
    )
    assert gone.updates[0].values == {"cpuset": DELETE}


def test_ips_only_where_the_hypervisor_reports_them() -> None:
    rec = vds("VPS1006(113.10)", "kvm1", ips=["185.12.113.101"])
    silent = reconcile(fleet(KVM1, vds=(rec,)), [listing("kvm1", vds("VPS1006(113.10)", "kvm1"))])
    assert silent.updates == []  # no IP reported: the record's IPs stay
    described = vds(
        "VPS1006(113.10)", "kvm1", description="ipsinfra-ips: 185.12.113.105\nipsinfra-order: 1006"
    )
    assert reported_ips(described) == [ipaddress.ip_address("185.12.113.105")]
    plan = reconcile(fleet(KVM1, vds=(rec,)), [listing("kvm1", described)])
    assert plan.updates[0].values == {"ips": ["185.12.113.105"]}
    garbled = vds("VPS1006(113.10)", "kvm1", description="ipsinfra-ips: 185.12.113.105 soon")
    assert reported_ips(garbled) is None


def test_disks_by_position_when_the_backend_names_them_its_own_way() -> None:
    rec = vds("VPS1007(113.10)", "kvm1", disks=[Disk(name="disk0", size_gib=10)])
    seen = vds("VPS1007(113.10)", "kvm1", disks=[Disk(name="scsi0", size_gib=15)])
    plan = reconcile(fleet(KVM1, vds=(rec,)), [listing("kvm1", seen)])
    assert plan.updates[0].values == {"_disks": {"disk0": 15}}
    extra = vds("VPS1007(113.10)", "kvm1", disks=[Disk(name="a", size_gib=10), Disk(name="b", size_gib=5)])
    plan = reconcile(fleet(KVM1, vds=(rec,)), [listing("kvm1", extra)])
    assert plan.updates == []
    assert [(f.kind, f.target) for f in plan.findings] == [("disks", "VPS1007(113.10)")]
    assert "reports 2 disk(s), the inventory 1" in plan.findings[0].message


def test_the_same_order_on_two_nodes_is_refused_and_both_are_reported() -> None:
    rec = vds("VPS1008(113.10)", "kvm1", vcpus=2)
    on1 = vds("VPS1008(113.10)", "kvm1", vcpus=3)
    on2 = vds("VPS1008(113.20)", "kvm2", vcpus=2)
    plan = reconcile(fleet(KVM1, KVM2, vds=(rec,)), [listing("kvm1", on1), listing("kvm2", on2)])
    assert plan.updates == [] and plan.changes == []
    [finding] = plan.findings
    assert (finding.kind, finding.target, finding.nodes) == ("ambiguous", "order 1008", ["kvm1", "kvm2"])
    assert "VPS1008(113.10) on kvm1" in finding.message and "VPS1008(113.20) on kvm2" in finding.message
    assert plan.needs_human


def test_two_records_with_one_order_are_refused() -> None:
    a, b = vds("VPS1009(113.10)", "kvm1"), vds("VPS1009(113.20)", "kvm2")
    plan = reconcile(fleet(KVM1, KVM2, vds=(a, b)), [listing("kvm1", a.model_copy(update={"vcpus": 5}))])
    assert plan.updates == []
    assert [f.kind for f in plan.findings] == ["ambiguous"]


def test_an_unreported_record_is_listed_never_deleted() -> None:
    rec, kept = vds("VPS1010(113.10)", "kvm1"), vds("VPS1011(113.10)", "kvm1")
    plan = reconcile(fleet(KVM1, KVM2, vds=(rec, kept)), [listing("kvm1", kept), listing("kvm2")])
    assert plan.updates == []
    [finding] = plan.findings
    assert (finding.kind, finding.target) == ("unreported", "VPS1010(113.10)")
    assert finding.message == (
        "the inventory has VPS1010(113.10) on kvm1, but no node reports it; the record was left as it is"
    )


def test_an_undescribed_vds_is_listed_even_without_a_house_name() -> None:
    plan = reconcile(
        fleet(KVM1, KVM2),
        [listing("kvm1"), listing("kvm2", vds("VPS1012(113.20)", "kvm2"), vds("test-vm", "kvm2"))],
    )
    assert plan.updates == []
    assert sorted(f.message for f in plan.findings) == [
        "kvm2 runs VPS1012(113.20), which no record describes",
        "kvm2 runs test-vm, which no record describes (not a house name, §8.5)",
    ]
    assert {f.kind for f in plan.findings} == {"undescribed"}


def test_an_unreachable_node_is_reported_and_its_records_left_alone() -> None:
    on1, on3 = vds("VPS1013(113.10)", "kvm1"), vds("VPS1014(113.30)", "kvm3")
    moved = vds("VPS1015(113.10)", "kvm1")
    records = (on1, on3, moved)
    plan = reconcile(
        fleet(KVM1, KVM2, KVM3, vds=records),
        [
            listing("kvm1", on1.model_copy(update={"vcpus": 4})),
            NodeListing(node="kvm3", error="NodeUnreachable: connection refused"),
            listing("kvm2"),
        ],
    )
    # The others are read and synced all the same (one dead node never hides the rest).
    assert [u.name for u in plan.updates] == ["VPS1013(113.10)"]
    kinds = {(f.kind, f.target) for f in plan.findings}
    assert kinds == {("unreachable", "kvm3"), ("unreported", "VPS1015(113.10)")}
    unreported = next(f for f in plan.findings if f.kind == "unreported")
    assert "(kvm3 could not be read)" in unreported.message  # it may have gone there
    assert [n.node for n in plan.nodes] == ["kvm1", "kvm2", "kvm3"]
    assert not plan.nodes[2].reachable


def test_moved_but_not_renamed_is_refused() -> None:
    rec = vds("VPS1016(113.10)", "kvm1")
    seen = vds("VPS1016(113.10)", "kvm2")  # moved behind our back, still carrying kvm1's octets
    plan = reconcile(fleet(KVM1, KVM2, vds=(rec,)), [listing("kvm1"), listing("kvm2", seen)])
    assert plan.updates == []
    [finding] = plan.findings
    assert finding.kind == "misnamed"
    assert "rename it VPS1016(113.20) on kvm2 (§9.10)" in finding.message


def test_exit_code() -> None:
    clean = reconcile(fleet(KVM1), [listing("kvm1")])
    change = InventoryChange(inventory="inv")
    assert SyncResult(plan=clean, change=change).exit_code == 0
    failed = change.model_copy(update={"error": "hosts.yml: read-only"})
    assert SyncResult(plan=clean, change=failed).exit_code == 1
    human = reconcile(fleet(KVM1), [NodeListing(node="kvm1", error="down")])
    assert SyncResult(plan=human, change=change).exit_code == 1
    assert SyncResult(plan=human, change=change).to_dict()["nodes"] == {
        "kvm1": {"reachable": False, "vds": 0, "error": "down"}
    }


def test_a_node_not_read_keeps_its_records_without_a_finding() -> None:
    on2 = vds("VPS1017(113.20)", "kvm2")
    plan = reconcile(fleet(KVM1, KVM2, vds=(on2,)), [listing("kvm1")])  # only kvm1 was asked
    assert (plan.updates, plan.findings) == ([], [])


def test_several_records_change_in_one_plan_in_name_order() -> None:
    a, b = vds("VPS1019(113.10)", "kvm1"), vds("VPS1018(113.10)", "kvm1")
    plan = reconcile(
        fleet(KVM1, KVM2, vds=(a, b)),
        [
            listing("kvm1", b.model_copy(update={"memory_mib": 512})),
            listing("kvm2", vds("VPS1019(113.20)", "kvm2")),
        ],
    )
    assert [(u.name, u.new_name) for u in plan.updates] == [
        ("VPS1018(113.10)", None),
        ("VPS1019(113.10)", "VPS1019(113.20)"),
    ]


def test_cli_bad_inventory_is_exit_2_and_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["inventory", "sync", "-i", str(tmp_path / "nowhere"), "--check"])
    captured = capsys.readouterr()
    assert code == 2
    assert str(tmp_path / "nowhere") in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == ""


def test_a_record_of_an_unreachable_node_reported_elsewhere_is_left_alone() -> None:
    rec = vds("VPS1020(113.30)", "kvm3")
    seen = vds("VPS1020(113.20)", "kvm2")
    plan = reconcile(
        fleet(KVM2, KVM3, vds=(rec,)),
        [listing("kvm2", seen), NodeListing(node="kvm3", error="OperationTimeout: list_vds")],
    )
    assert plan.updates == []
    assert sorted((f.kind, f.target) for f in plan.findings) == [
        ("unreachable", "VPS1020(113.30)"),
        ("unreachable", "kvm3"),
    ]
    assert "the record was left as it is" in plan.findings[1].message
