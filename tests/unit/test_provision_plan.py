from __future__ import annotations

import datetime as dt

import pytest

from ipsinfra import metadata
from ipsinfra.errors import Conflict, InvalidInput, NodeNotFound
from ipsinfra.models import Order, VdsState
from ipsinfra.provision import effective_cpuset, format_cpuset, mac_for, panel_warnings, plan_provision
from tests.unit.fleetkit import fleet, node, vds

TODAY = dt.date(2026, 11, 26)
KVM1 = node("kvm1", "198.51.100.10", ip_pool=["203.0.113.10", "203.0.113.11", "203.0.113.12"])
KVM2 = node("kvm2", "198.51.100.20", ip_pool=["203.0.113.20"])
PVE1 = node("pve1", "192.0.2.30", kind="proxmox", site="fra1", cpus=16, ip_pool=["192.0.2.100"])


def order(**kw: object) -> Order:
    values: dict[str, object] = {
        "number": 1234,
        "client": "c1",
        "node": "kvm1",
        "vcpus": 2,
        "memory_mib": 2048,
        "disk_gib": 20,
        "ips": 1,
        "os": "debian-12",
    }
    values.update(kw)
    return Order.model_validate(values)


def test_plan_names_and_spec() -> None:
    plan = plan_provision(order(), fleet(KVM1, KVM2), {"kvm1": [], "kvm2": []}, today=TODAY)
    assert plan.name == "VPS1234(100.10)"
    assert plan.backend_name == plan.name
    assert plan.spec.vcpus == 2 and plan.spec.cpuset == "1-7"
    assert [str(ip) for ip in plan.spec.ips] == ["203.0.113.10"]
    assert str(plan.spec.vnc_listen) == "198.51.100.10"
    assert plan.spec.autostart is True
    assert plan.spec.nics[0].mac == mac_for(1234)
    facts = metadata.parse(plan.spec.description)
    assert facts["order"] == "1234" and facts["os"] == "debian-12" and facts["status"] == "Active"
    assert plan.trial_end is None and "trial-end" not in facts
    assert any("create VPS1234(100.10)" in line for line in plan.describe())


def test_proxmox_twin_and_trial() -> None:
    plan = plan_provision(order(node="pve1", trial=True), fleet(KVM1, PVE1), {}, today=TODAY)
    assert plan.name == "VPS1234(2.30)"
    assert plan.backend_name == "VPS1234-2-30"
    assert plan.trial_end == dt.date(2026, 12, 3)
    assert metadata.parse(plan.spec.description)["trial-end"] == "2026-12-03"


def test_ips_skip_used_ones() -> None:
    used = vds("VPS77(100.10)", "kvm1", ips=["203.0.113.10"])
    plan = plan_provision(order(ips=2), fleet(KVM1), {"kvm1": [used]}, today=TODAY)
    assert [str(ip) for ip in plan.spec.ips] == ["203.0.113.11", "203.0.113.12"]


def test_existing_is_idempotent() -> None:
    have = vds("VPS1234(100.10)", "kvm1", ips=["203.0.113.12"], state=VdsState.RUNNING)
    plan = plan_provision(order(), fleet(KVM1), {"kvm1": [have]}, today=TODAY)
    assert plan.existing is not None
    assert [str(ip) for ip in plan.spec.ips] == ["203.0.113.12"]
    assert plan.describe() == ["VPS1234(100.10) already exists on kvm1: nothing to create"]


@pytest.mark.parametrize(
    ("kw", "observed", "error", "needle"),
    [
        ({"node": "kvm9"}, {}, NodeNotFound, "order.node: value 'kvm9'"),
        ({"client": "c9"}, {}, InvalidInput, "order.client: value 'c9'"),
        ({"vcpus": 9}, {}, InvalidInput, "order.vcpus: value 9"),
        ({"ips": 4}, {}, InvalidInput, "order.ips: value 4"),
        ({}, {"kvm2": [vds("VPS1234(100.20)", "kvm2")]}, Conflict, "already in use by VPS1234(100.20)"),
    ],
)
def test_bad_orders(kw: dict[str, object], observed: dict, error: type[Exception], needle: str) -> None:
    with pytest.raises(error) as exc:
        plan_provision(order(**kw), fleet(KVM1, KVM2), observed, today=TODAY)
    assert needle in str(exc.value)


def test_inventory_counts_for_unobserved_nodes() -> None:
    elsewhere = vds("VPS1234(100.20)", "kvm2")
    with pytest.raises(Conflict):
        plan_provision(order(), fleet(KVM1, KVM2, vds=(elsewhere,)), {"kvm1": []}, today=TODAY)


def test_order_number_validation() -> None:
    with pytest.raises(ValueError, match="12a4"):
        order(number="12a4")


def test_cpusets() -> None:
    assert format_cpuset({1, 2, 3, 8, 10, 11}) == "1-3,8,10-11"
    assert effective_cpuset("1-40", 4) == "1-3"
    assert effective_cpuset(None, 4) is None
    with pytest.raises(InvalidInput, match="cpuset: value '1-40'"):
        effective_cpuset("1-40", 1)
    with pytest.raises(InvalidInput, match="cpuset: value 'x'"):
        effective_cpuset("x", 8)


def test_panel_warnings_from_data() -> None:
    assert panel_warnings("cpanel", "debian-12")
    assert "§4.1" in panel_warnings("cpanel", "debian-12")[0]
    assert panel_warnings("ispmanager", "debian-12") == []
    assert panel_warnings(None, "debian-12") == []
    assert panel_warnings("unknown-panel", "debian-12") == []
