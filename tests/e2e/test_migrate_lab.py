"""Migration (§9) on the lab: real live migrations between libvirtd daemons,
Proxmox migrations inside the fake cluster, and faults at every step — after
each, the VDS exists exactly once, runs where it ran, and a re-run converges."""

from __future__ import annotations

import threading
import time

import pytest

from ipsinfra import locks
from ipsinfra.errors import (
    HypervisorError,
    InvalidInput,
    IpsinfraError,
    Locked,
    NodeNotFound,
    VdsNotFound,
)
from ipsinfra.lab.fleet import Lab
from ipsinfra.migrate import migrate
from ipsinfra.models import VdsState

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]

OLD, NEW = "VPS1001(113.10)", "VPS1001(113.20)"  # kvm1 -> kvm2
PVE_OLD, PVE_NEW = "VPS1005(100.30)", "VPS1005(100.31)"  # pve1 -> pve2


def copies(lab: Lab, order: int) -> list[tuple[str, str, str]]:
    """Every copy of an order's VDS on every node: (node, name, state)."""
    assert lab.fleet is not None
    found = []
    for node in lab.fleet.nodes:
        try:
            listed = lab.driver(node).list_vds()
        except IpsinfraError:
            continue
        found += [(node, v.name, v.state.value) for v in listed if v.order == order]
    return found


def test_live_migration_between_libvirt_daemons(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    source = lab.driver("kvm1").get_vds(OLD)
    with lab.journal() as journal:
        result = migrate(OLD, "kvm2", lab.fleet, lab.pool, journal=journal)
        assert result.ok and result.changed, result.mismatches
        got = lab.driver("kvm2").get_vds(NEW)
        assert got.vcpus == source.vcpus == 2  # §9.1: exactly the source's count
        assert got.cpuset == "1-40"
        assert str(got.vnc_listen) == "127.0.0.12"  # §9.10: the target's VNC address
        assert got.state is VdsState.RUNNING and got.autostart is True
        assert copies(lab, 1001) == [("kvm2", NEW, "running")]
        [line] = journal.entries(action="vds.migrate")
        assert line.result == "ok" and line.target == f"kvm1/{OLD} -> kvm2/{NEW}"
        again = migrate(OLD, "kvm2", lab.fleet, lab.pool, journal=journal)
        assert not again.changed and again.ok
    # The persistent config carries the target's VNC address too (it survives a reboot).
    lab.reboot("kvm2")
    assert str(lab.driver("kvm2").get_vds(NEW).vnc_listen) == "127.0.0.12"
    assert lab.driver("kvm2").get_vds(NEW).state is VdsState.RUNNING


def test_offline_migration_of_a_stopped_vds(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    result = migrate("VPS1004(113.20)", "kvm1", lab.fleet, lab.pool)
    assert result.ok and not result.plan.live
    assert copies(lab, 1004) == [("kvm1", "VPS1004(113.10)", "stopped")]


def test_proxmox_migration_in_the_cluster(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    result = migrate(PVE_OLD, "pve2", lab.fleet, lab.pool)
    assert result.ok, result.mismatches
    got = lab.driver("pve2").get_vds(PVE_NEW)
    assert got.state is VdsState.RUNNING and got.vcpus == 2 and got.autostart
    assert str(got.vnc_listen) == "127.0.0.30"
    assert copies(lab, 1005) == [("pve2", PVE_NEW, "running")]


def test_check_mode_and_bad_input_change_nothing(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    result = migrate(OLD, "kvm2", lab.fleet, lab.pool, check=True)
    assert result.checked_only and "vCPUs 2 exactly as on kvm1 (§9.1)" in "\n".join(result.plan.describe())
    cases = [
        (lambda: migrate("VPS9999(113.10)", "kvm2", lab.fleet, lab.pool), VdsNotFound, "VPS9999"),
        (lambda: migrate(OLD, "kvm1", lab.fleet, lab.pool), InvalidInput, "already on that node"),
        (lambda: migrate(OLD, "kvm9", lab.fleet, lab.pool), NodeNotFound, "target: value 'kvm9'"),
        (lambda: migrate(OLD, "pve1", lab.fleet, lab.pool), IpsinfraError, "libvirt -> proxmox"),
    ]
    tiny = lab.fleet.model_copy(
        update={"nodes": {**lab.fleet.nodes, "kvm2": lab.fleet.nodes["kvm2"].model_copy(update={"cpus": 1})}}
    )
    cases.append((lambda: migrate(OLD, "kvm2", tiny, lab.pool), InvalidInput, "fewer than the VDS's 2 vCPUs"))
    elsewhere = lab.fleet.model_copy(
        update={
            "nodes": {
                **lab.fleet.nodes,
                "kvm2": lab.fleet.nodes["kvm2"].model_copy(
                    update={"site": "fra1", "ip_pool": lab.fleet.nodes["pve1"].ip_pool}
                ),
            }
        }
    )
    cases.append(
        (lambda: migrate(OLD, "kvm2", elsewhere, lab.pool), InvalidInput, "does not carry the VDS's network")
    )
    for call, error, needle in cases:
        with pytest.raises(error) as exc:
            call()
        assert needle in str(exc.value)
        assert copies(lab, 1001) == [("kvm1", OLD, "running")]


def test_second_operation_on_a_locked_vds_is_refused(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    with (
        locks.hold("vds-1001", "migrate VPS1001(113.10) -> kvm2"),
        pytest.raises(Locked, match="busy: migrate"),
    ):
        migrate(OLD, "kvm2", lab.fleet, lab.pool)
    assert copies(lab, 1001) == [("kvm1", OLD, "running")]


def test_target_offline_then_rerun(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    lab.daemons["kvm2"].kill_libvirtd()
    with pytest.raises(HypervisorError):
        migrate(OLD, "kvm2", lab.fleet, lab.pool)
    assert copies(lab, 1001) == [("kvm1", OLD, "running")]
    lab.reboot("kvm2")  # the node comes back
    assert migrate(OLD, "kvm2", lab.fleet, lab.pool).ok
    assert copies(lab, 1001) == [("kvm2", NEW, "running")]


def test_daemon_killed_mid_migration(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(OLD, "kvm2", lab.fleet, lab.pool)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.4)  # the migration is under way (a live one takes ~2 s here)
    lab.daemons["kvm2"].kill_libvirtd()
    worker.join(60)
    assert errors and isinstance(errors[0], IpsinfraError)
    assert copies(lab, 1001) == [("kvm1", OLD, "running")]
    lab.reboot("kvm2")
    assert migrate(OLD, "kvm2", lab.fleet, lab.pool).ok
    assert copies(lab, 1001) == [("kvm2", NEW, "running")]


def test_proxmox_task_fails(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    vmid = lab.driver("pve1").get_vds(PVE_OLD).backend_id
    lab.pve.call(
        lambda: lab.pve.pve.fail("POST", f"/nodes/pve1/qemu/{vmid}/migrate", 500, "migration aborted")
    )
    with pytest.raises(HypervisorError, match="migration aborted"):
        migrate(PVE_OLD, "pve2", lab.fleet, lab.pool)
    assert copies(lab, 1005) == [("pve1", PVE_OLD, "running")]
    lab.pve.call(lab.pve.pve.failures.clear)
    assert migrate(PVE_OLD, "pve2", lab.fleet, lab.pool).ok
    assert copies(lab, 1005) == [("pve2", PVE_NEW, "running")]


def test_proxmox_rename_refused_then_rerun(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    vmid = lab.driver("pve1").get_vds(PVE_OLD).backend_id
    lab.pve.call(lambda: lab.pve.pve.fail("PUT", f"/nodes/pve2/qemu/{vmid}/config", 500, "rename refused"))
    with pytest.raises(HypervisorError, match="rename refused"):
        migrate(PVE_OLD, "pve2", lab.fleet, lab.pool)
    assert copies(lab, 1005) == [("pve2", PVE_OLD, "running")]  # moved, exactly once, still running
    lab.pve.call(lab.pve.pve.failures.clear)
    result = migrate(PVE_OLD, "pve2", lab.fleet, lab.pool)
    assert result.ok and result.changed
    assert copies(lab, 1005) == [("pve2", PVE_NEW, "running")]
