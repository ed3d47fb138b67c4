"""ProxmoxDriver against a misbehaving fake PVE: failed and endless tasks, offline
nodes, lost quorum, bad TLS, and a real intra-cluster migration and node reboot."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra import naming
from ipsinfra.errors import (
    Conflict,
    HypervisorApiError,
    NodeUnreachable,
    OperationTimeout,
    UnsupportedOperation,
    VdsNotFound,
)
from ipsinfra.hypervisors.proxmox import ProxmoxDriver, ProxmoxQuorumLost
from ipsinfra.lab.pve import FakePveHandle, start_fake_pve
from ipsinfra.models import VdsState
from tests.conftest import require_module
from tests.contract.base import spec_for


@pytest.fixture(scope="module", autouse=True)
def _fakepve() -> None:
    """Before the module's lab starts: fakepve must import (CI fails, elsewhere skips)."""
    require_module("fakepve", "the Proxmox tier runs on fakepve (pip install fakepve)")


PVE1_IP, PVE2_IP = "10.0.34.56", "10.0.77.88"


@pytest.fixture(scope="module")
def lab() -> Iterator[FakePveHandle]:
    with start_fake_pve({"pve1": 8, "pve2": 8}) as handle:
        yield handle


_OPEN: list[ProxmoxDriver] = []


@pytest.fixture
def pve(lab: FakePveHandle) -> Iterator[FakePveHandle]:
    lab.clear_vms()
    yield lab
    while _OPEN:
        _OPEN.pop().close()
    lab.call(lambda: (lab.pve.failures.clear(), lab.pve.regain_quorum()))
    for node in ("pve1", "pve2"):
        lab.pve.set_node_offline(node, False)


def driver_for(lab: FakePveHandle, node: str = "pve1", ip: str = PVE1_IP, **kwargs: float) -> ProxmoxDriver:
    options = {"task_timeout": 10.0, "poll_interval": 0.01, **kwargs}
    driver = ProxmoxDriver(lab.node_model(node, ip), **options)  # type: ignore[arg-type]
    _OPEN.append(driver)
    return driver


def test_failed_task_raises_with_exit_status_and_step(pve: FakePveHandle) -> None:
    driver = driver_for(pve)
    vds = driver.define(spec_for(driver, 3001))
    pve.pve.fail("POST", f"/nodes/pve1/qemu/{vds.backend_id}/status/start", error="qemu_exited_code")
    with pytest.raises(
        HypervisorApiError, match=r"start VPS3001\(34\.56\): task qmstart failed: QEMU exited"
    ) as exc:
        driver.start(vds.name)
    assert exc.value.node == "pve1"
    assert driver.get_vds(vds.name).state == VdsState.STOPPED


def test_offline_node_is_unreachable_naming_the_node(pve: FakePveHandle) -> None:
    driver = driver_for(pve)
    driver.define(spec_for(driver, 3002))
    pve.pve.set_node_offline("pve1")
    with pytest.raises(NodeUnreachable, match=r"^pve1: .*595") as exc:
        driver.list_vds()
    assert exc.value.node == "pve1"
    with pytest.raises(NodeUnreachable, match="pve1"):
        driver.node_facts()


def test_lost_quorum_is_a_typed_error_and_reads_still_work(pve: FakePveHandle) -> None:
    driver = driver_for(pve)
    vds = driver.define(spec_for(driver, 3003))
    pve.pve.lose_quorum()
    with pytest.raises(ProxmoxQuorumLost, match="no quorum") as exc:
        driver.start(vds.name)
    assert isinstance(exc.value, HypervisorApiError) and exc.value.node == "pve1"
    with pytest.raises(ProxmoxQuorumLost):
        driver.define(spec_for(driver, 3004))
    assert [v.name for v in driver.list_vds()] == [vds.name]


@pytest.mark.parametrize("auth", ["token", "password"])
def test_wrong_ca_is_unreachable_naming_the_node(pve: FakePveHandle, tmp_path: Path, auth: str) -> None:
    from fakepve.certs import make_cert

    other_ca = make_cert(str(tmp_path), name="other")[0]
    node = pve.node_model("pve1", PVE1_IP, auth=auth, ca_file=other_ca)
    with pytest.raises(NodeUnreachable, match=r"^pve1: .*TLS verification") as exc:
        driver = ProxmoxDriver(node)
        _OPEN.append(driver)
        driver.list_vds()
    assert exc.value.node == "pve1"


def test_task_that_never_finishes_times_out(tmp_path: Path) -> None:
    with start_fake_pve({"pve1": 8}, time_scale=1.0) as lab:
        driver = driver_for(lab, task_timeout=0.3)
        vds = driver.define(spec_for(driver, 3005))
        lab.call(lambda: setattr(lab.pve.vm(int(vds.backend_id or 0)), "start_secs", 3600))
        with pytest.raises(
            OperationTimeout, match=r"start VPS3005\(34\.56\): task .* still running after 0.3 s"
        ):
            driver.start(vds.name)
        driver.close()


def test_stop_without_force_times_out_when_the_guest_ignores_acpi(tmp_path: Path) -> None:
    with start_fake_pve({"pve1": 8}, time_scale=0.01) as lab:
        driver = driver_for(lab)
        vds = driver.define(spec_for(driver, 3006), start=True)
        lab.call(lambda: setattr(lab.pve.vm(int(vds.backend_id or 0)), "acpi", False))
        with pytest.raises(OperationTimeout, match="no clean shutdown within 1 s"):
            driver.stop(vds.name, timeout=1, force=False)
        assert driver.stop(vds.name, timeout=1, force=True).state == VdsState.STOPPED
        driver.close()


def test_migrate_moves_running_vds_keeps_state_and_renames(pve: FakePveHandle) -> None:
    src, dst = driver_for(pve), driver_for(pve, "pve2", PVE2_IP)
    vds = src.define(spec_for(src, 3007, autostart=True), start=True)
    new_name = naming.renamed_for_node(vds.name, PVE2_IP)
    moved = src.migrate(vds.name, dst, live=True, new_name=new_name)
    assert (moved.name, moved.node, moved.state) == ("VPS3007(77.88)", "pve2", VdsState.RUNNING)
    assert moved.backend_id == vds.backend_id
    assert (moved.vcpus, moved.cpuset, moved.autostart, moved.macs) == (2, "1-3", True, vds.macs)
    assert [v.name for v in dst.list_vds()] == [new_name]
    assert src.list_vds() == []
    with pytest.raises(VdsNotFound):
        src.get_vds(vds.name)
    body = next(b for m, p, b in pve.requests() if m == "POST" and p.endswith("/migrate"))
    assert b"target=pve2" in body and b"online=1" in body


def test_migrate_refusals(pve: FakePveHandle) -> None:
    src, dst = driver_for(pve), driver_for(pve, "pve2", PVE2_IP)
    vds = src.define(spec_for(src, 3008), start=True)
    with pytest.raises(Conflict, match="live=False"):
        src.migrate(vds.name, dst, live=False)
    with start_fake_pve({"pve2": 8}, cluster_name="elsewhere") as other:
        foreign = driver_for(other, "pve2", PVE2_IP)
        with pytest.raises(UnsupportedOperation, match="not in the cluster"):
            src.migrate(vds.name, foreign)
        foreign.close()
    assert src.get_vds(vds.name).state == VdsState.RUNNING


def test_node_uptime_and_reboot(pve: FakePveHandle) -> None:
    driver = driver_for(pve)
    pve.set_uptime("pve1", 86400)
    facts = driver.node_facts()
    assert (facts.hostname, facts.cpus) == ("pve1", 8)
    assert facts.uptime_s == pytest.approx(86400, abs=5)
    assert facts.boot_time is not None
    assert abs((dt.datetime.now(dt.UTC) - facts.boot_time).total_seconds() - 86400) < 5
    keep = driver.define(spec_for(driver, 3009, autostart=True), start=True)
    lose = driver.define(spec_for(driver, 3010, autostart=False), start=True)
    pve.reboot("pve1")
    assert driver.node_facts().uptime_s == pytest.approx(0, abs=5)
    states = {v.name: v.state for v in driver.list_vds()}
    assert states == {keep.name: VdsState.RUNNING, lose.name: VdsState.STOPPED}


def test_set_password_error_never_carries_the_password(pve: FakePveHandle) -> None:
    driver = driver_for(pve)
    vds = driver.define(spec_for(driver, 3011))
    pve.pve.fail("PUT", f"/nodes/pve1/qemu/{vds.backend_id}/config", 500, "bad value 'Hunter2-Hunter2'")
    with pytest.raises(HypervisorApiError) as exc:
        driver.set_password(vds.name, "client", "Hunter2-Hunter2")
    assert "Hunter2-Hunter2" not in str(exc.value)
    assert exc.value.__cause__ is None and exc.value.__suppress_context__
    assert "***" in str(exc.value)


def test_vnc_port_follows_vmid(pve: FakePveHandle) -> None:
    driver = driver_for(pve)
    vds = driver.define(spec_for(driver, 3012, vnc_listen=ipaddress.ip_address("127.0.0.5")))
    assert (str(vds.vnc_listen), vds.vnc_port) == ("127.0.0.5", 5900 + int(vds.backend_id or 0))
