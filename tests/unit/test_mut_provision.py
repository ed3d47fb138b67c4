"""provision: what the mutation run (issue 23) found unchecked — §8.1-8.4 ``order_mismatches``
field by field, the duplicate-order scan past unrelated VDS, and every field of the planned spec."""

from __future__ import annotations

import datetime as dt

import pytest

from ipsinfra import metadata
from ipsinfra.errors import Conflict, InvalidInput, NodeNotFound
from ipsinfra.models import Disk, Nic, Order, Vds, VdsSpec, VdsState
from ipsinfra.provision import (
    ProvisionPlan,
    effective_cpuset,
    format_cpuset,
    mac_for,
    order_mismatches,
    panel_warnings,
    plan_provision,
)
from tests.unit.fleetkit import fleet, node, vds

TODAY = dt.date(2026, 11, 26)
KVM1 = node("kvm1", "198.51.100.10", bridge="vmbr7", ip_pool=["203.0.113.10", "203.0.113.11", "203.0.113.12"])
KVM2 = node("kvm2", "198.51.100.20", ip_pool=["203.0.113.20"])
PANELS = {"cpanel": ["centos", "almalinux"]}


def order(**kw: object) -> Order:
    values: dict[str, object] = {
        "number": 1234,
        "client": "c1",
        "node": "kvm1",
        "vcpus": 2,
        "memory_mib": 2048,
        "disk_gib": 20,
        "ips": 1,
        "os": "almalinux-9",
        "arch": "aarch64",
        "install_type": "iso",
        "comment": "install  nginx\n and php",
    }
    values.update(kw)
    return Order.model_validate(values)


def plan(**kw: object) -> ProvisionPlan:
    return plan_provision(order(**kw), fleet(KVM1, KVM2), {"kvm1": [], "kvm2": []}, today=TODAY)


def test_the_whole_planned_spec() -> None:
    p = plan_provision(order(panel="cpanel"), fleet(KVM1), {"kvm1": []}, today=TODAY, panels=PANELS)
    facts = {
        "order": "1234",
        "client": "c1",
        "os": "almalinux-9",
        "arch": "aarch64",
        "install": "iso",
        "ips": "203.0.113.10",
        "panel": "cpanel",
        "comment": "install nginx and php",
        "activated": "2026-11-26",
        "status": "Active",
    }
    assert p.spec == VdsSpec(
        name="VPS1234(100.10)",
        vcpus=2,
        cpuset="1-7",
        memory_mib=2048,
        disks=[Disk(size_gib=20)],
        nics=[Nic(mac="52:54:00:00:04:d2", bridge="vmbr7")],
        ips=["203.0.113.10"],
        vnc_listen="198.51.100.10",
        autostart=True,
        description=metadata.render(facts),
        os="almalinux-9",
        arch="aarch64",
    )
    assert metadata.parse(p.spec.description) == facts
    assert (p.node, p.name, p.backend_name, p.activated, p.trial_end) == (
        "kvm1",
        "VPS1234(100.10)",
        "VPS1234(100.10)",
        TODAY,
        None,
    )
    assert p.warnings == []
    assert p.existing is None


def test_the_plan_carries_the_panel_warning() -> None:
    p = plan_provision(order(panel="cpanel", os="debian-12"), fleet(KVM1), {}, today=TODAY, panels=PANELS)
    assert p.warnings == panel_warnings("cpanel", "debian-12", PANELS)
    assert p.warnings == [
        "§4.1: panel 'cpanel' does not support OS 'debian-12' (supported: centos, almalinux); warn the client"
    ]
    assert "  warning: " + p.warnings[0] in p.describe()


def test_no_cpuset_rule_plans_no_cpuset() -> None:
    p = plan_provision(order(), fleet(KVM1), {}, today=TODAY, cpuset_rule=None)
    assert p.spec.cpuset is None


def test_a_duplicate_order_after_unrelated_vds_is_still_found() -> None:
    """The scan goes on past VDS of other orders (and foreign names): the duplicate is last."""
    others = [
        vds("not-a-house-name", "kvm2", ips=["203.0.113.20"]),
        vds("VPS77(100.20)", "kvm2"),
        vds("VPS1234(100.20)", "kvm2"),
    ]
    with pytest.raises(Conflict) as exc:
        plan_provision(order(), fleet(KVM1, KVM2), {"kvm1": [], "kvm2": others}, today=TODAY)
    assert str(exc.value) == "order.number: value 1234: already in use by VPS1234(100.20) on node kvm2"


def test_ips_of_every_vds_count_as_used_not_only_the_first() -> None:
    seen = [
        vds("VPS1(100.10)", "kvm1", ips=["203.0.113.10"]),
        vds("other", "kvm1", ips=["203.0.113.11"]),
        vds("VPS2(100.10)", "kvm1", ips=["203.0.113.12"]),
    ]
    with pytest.raises(InvalidInput) as exc:
        plan_provision(order(), fleet(KVM1), {"kvm1": seen}, today=TODAY)
    assert str(exc.value) == "order.ips: value 1: node kvm1 has 0 free IP(s) in its pool"


def test_existing_then_unrelated_then_duplicate_elsewhere_conflicts() -> None:
    here = vds("VPS1234(100.10)", "kvm1", ips=["203.0.113.12"], state=VdsState.RUNNING)
    there = vds("VPS1234(100.20)", "kvm2")
    with pytest.raises(Conflict, match=r"already in use by VPS1234\(100\.20\) on node kvm2"):
        plan_provision(
            order(),
            fleet(KVM1, KVM2),
            {"kvm1": [here, vds("VPS9(100.10)", "kvm1")], "kvm2": [there]},
            today=TODAY,
        )


def test_existing_without_ips_gets_free_ones() -> None:
    here = vds("VPS1234(100.10)", "kvm1")
    p = plan_provision(order(ips=2), fleet(KVM1), {"kvm1": [here]}, today=TODAY)
    assert p.existing == here
    assert [str(ip) for ip in p.spec.ips] == ["203.0.113.10", "203.0.113.11"]


def test_exactly_enough_free_ips() -> None:
    p = plan_provision(order(ips=3), fleet(KVM1), {}, today=TODAY)
    assert [str(ip) for ip in p.spec.ips] == ["203.0.113.10", "203.0.113.11", "203.0.113.12"]
    assert plan_provision(order(ips=0), fleet(KVM1), {}, today=TODAY).spec.ips == []


def test_vcpus_equal_to_the_node_are_allowed() -> None:
    assert plan(vcpus=8).spec.vcpus == 8
    with pytest.raises(InvalidInput) as exc:
        plan(vcpus=9)
    assert str(exc.value) == "order.vcpus: value 9: node kvm1 has only 8 CPUs"


def test_trial_ends_seven_days_after_activation() -> None:
    p = plan(trial=True)
    assert p.trial_end == dt.date(2026, 12, 3)
    assert metadata.parse(p.spec.description)["trial-end"] == "2026-12-03"
    assert "  trial: Active, ends 2026-12-03 (§2.1)" in p.describe()


def reported(p: ProvisionPlan, **changes: object) -> Vds:
    """What a hypervisor that did exactly what was planned reports, with ``changes``."""
    s = p.spec
    values: dict[str, object] = {
        "name": s.name,
        "node": p.node,
        "vcpus": s.vcpus,
        "cpuset": s.cpuset,
        "memory_mib": s.memory_mib,
        "disks": s.disks,
        "ips": s.ips,
        "nics": s.nics,
        "vnc_listen": s.vnc_listen,
        "autostart": s.autostart,
        "description": s.description,
    }
    values.update(changes)
    return Vds.model_validate(values)


def test_a_faithful_hypervisor_has_no_mismatch() -> None:
    p = plan()
    assert order_mismatches(p, reported(p)) == []


def described(p: ProvisionPlan, **facts: object) -> str:
    merged: dict[str, object] = dict(metadata.parse(p.spec.description))
    merged.update(facts)
    return metadata.render(merged)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"name": "VPS1234(100.11)"}, "name: ordered 'VPS1234(100.10)', hypervisor has 'VPS1234(100.11)'"),
        ({"vcpus": 3}, "vcpus: ordered 2, hypervisor has 3"),
        ({"cpuset": "1-3"}, "cpuset: ordered '1-7', hypervisor has '1-3'"),
        ({"cpuset": None}, "cpuset: ordered '1-7', hypervisor has None"),
        ({"memory_mib": 1024}, "memory_mib: ordered 2048, hypervisor has 1024"),
        ({"autostart": False}, "autostart: ordered True, hypervisor has False"),
        ({"vnc_listen": "0.0.0.0"}, "vnc_listen: ordered '198.51.100.10', hypervisor has '0.0.0.0'"),
        (
            {"nics": [Nic(mac="52:54:00:00:00:01", bridge="vmbr7")]},
            "macs: ordered ['52:54:00:00:04:d2'], hypervisor has ['52:54:00:00:00:01']",
        ),
        ({"ips": []}, "ips: ordered 1, hypervisor has 0"),
    ],
)
def test_each_parameter_mismatch_is_named(changes: dict[str, object], expected: str) -> None:
    p = plan()
    assert order_mismatches(p, reported(p, **changes)) == [expected]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({"os": "debian-12"}, "os: ordered 'almalinux-9', hypervisor has 'debian-12'"),
        ({"arch": "x86_64"}, "arch: ordered 'aarch64', hypervisor has 'x86_64'"),
        ({"install": "template"}, "install_type: ordered 'iso', hypervisor has 'template'"),
        (
            {"comment": "install nginx"},
            "comment: ordered 'install nginx and php', hypervisor has 'install nginx'",
        ),
    ],
)
def test_each_description_fact_mismatch_is_named(facts: dict[str, object], expected: str) -> None:
    p = plan()
    assert order_mismatches(p, reported(p, description=described(p, **facts))) == [expected]


def test_a_hypervisor_that_kept_no_description_mismatches_every_fact() -> None:
    p = plan()
    assert order_mismatches(p, reported(p, description="")) == [
        "os: ordered 'almalinux-9', hypervisor has None",
        "arch: ordered 'aarch64', hypervisor has None",
        "install_type: ordered 'iso', hypervisor has None",
        "comment: ordered 'install nginx and php', hypervisor has ''",
    ]


def test_an_empty_comment_matches_an_absent_one() -> None:
    p = plan(comment="")
    assert order_mismatches(p, reported(p)) == []


def test_cpu_and_mac_helpers_at_their_edges() -> None:
    assert format_cpuset([5]) == "5"
    assert format_cpuset([3, 1, 2, 2]) == "1-3"
    assert format_cpuset([0, 2, 4]) == "0,2,4"
    with pytest.raises(ValueError, match="an empty cpuset"):
        format_cpuset([])
    assert effective_cpuset("1-40", 41) == "1-40"
    assert effective_cpuset("1-40", 40) == "1-39"
    assert effective_cpuset("0", 1) == "0"
    with pytest.raises(InvalidInput) as exc:
        effective_cpuset("8-9", 8)
    assert str(exc.value) == "cpuset: value '8-9': none of these CPUs exists on a node with 8 CPU(s)"
    assert mac_for(0x123456, 0) == "52:54:00:12:34:56"
    assert mac_for(0x1ABCDEF, 255) == "52:54:ff:ab:cd:ef"
    for bad in (-1, 256):
        with pytest.raises(InvalidInput) as bad_nic:
            mac_for(1, bad)
        assert str(bad_nic.value) == f"nic: value {bad}: 0-255"


def test_panel_prefix_match_is_case_blind() -> None:
    assert panel_warnings("CPanel", "AlmaLinux-9", PANELS) == []
    assert panel_warnings("", "debian-12", PANELS) == []


def test_unknown_node_lists_the_known_ones() -> None:
    with pytest.raises(NodeNotFound) as exc:
        plan(node="kvm9")
    assert str(exc.value) == "order.node: value 'kvm9': no such node (known: kvm1, kvm2)"


def test_the_same_order_under_other_octets_on_the_same_node_conflicts() -> None:
    stale = vds("VPS1234(100.11)", "kvm1")  # the same order, named for another node's IP
    with pytest.raises(Conflict) as exc:
        plan_provision(order(), fleet(KVM1), {"kvm1": [stale]}, today=TODAY)
    assert str(exc.value) == "order.number: value 1234: already in use by VPS1234(100.11) on node kvm1"


def test_every_address_is_in_the_facts() -> None:
    p = plan(ips=2)
    assert metadata.parse(p.spec.description)["ips"] == "203.0.113.10 203.0.113.11"


def test_describe_every_line() -> None:
    p = plan(ips=2)
    two_nics = p.spec.model_copy(
        update={"nics": [*p.spec.nics, Nic(mac="52:54:01:00:04:d2", bridge="vmbr7")], "autostart": False}
    )
    assert p.model_copy(update={"spec": two_nics}).describe() == [
        "create VPS1234(100.10) on kvm1 (libvirt, backend name VPS1234(100.10))",
        "  vCPUs 2 cpuset 1-7, memory 2048 MiB, disk 20 GiB",
        "  IPs 203.0.113.10 203.0.113.11, MAC 52:54:00:00:04:d2 52:54:01:00:04:d2",
        "  VNC listen 198.51.100.10, autostart off",
        "  root password: generated (§4.8), set through the hypervisor, shown once",
    ]
    bare = plan_provision(order(ips=0), fleet(KVM1), {}, today=TODAY, cpuset_rule=None)
    assert bare.describe()[1:4] == [
        "  vCPUs 2 cpuset -, memory 2048 MiB, disk 20 GiB",
        "  IPs -, MAC 52:54:00:00:04:d2",
        "  VNC listen 198.51.100.10, autostart on",
    ]


def test_empty_cpuset_message() -> None:
    with pytest.raises(ValueError) as exc:
        format_cpuset(set())
    assert str(exc.value) == "an empty cpuset"
