"""The Proxmox backend against STOCK fakepve: fakepve's own server, none of our routes.

Stock fakepve 0.5 answers ``POST /nodes/{node}/execute`` with HTTP 200 and
``[{}]`` (its schema-shaped reply), returns current config values whatever
``current`` says, and its ``POST .../migrate`` ends OK without moving the VM.
The product must list every VM anyway (the audit sees no false drift,
provisioning sees every used IP and order), and a migration that did not
happen must fail loudly, never claim success.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from ipsinfra import audit, naming
from ipsinfra.errors import Conflict, HypervisorApiError, InvalidInput
from ipsinfra.hypervisors import DriverPool
from ipsinfra.hypervisors.proxmox import ProxmoxDriver
from ipsinfra.lab.pve import FakePveHandle, start_fake_pve
from ipsinfra.migrate import migrate
from ipsinfra.models import Order, Vds, VdsState
from ipsinfra.provision import provision
from tests.conftest import require_module
from tests.unit.fleetkit import fleet

PVE1_IP, PVE2_IP = "10.0.34.56", "10.0.77.88"
TODAY = dt.date(2026, 12, 1)


@pytest.fixture(scope="module", autouse=True)
def _fakepve() -> None:
    require_module("fakepve", "the Proxmox tier runs on fakepve (pip install fakepve)")


@pytest.fixture(scope="module")
def stock() -> Iterator[FakePveHandle]:
    with start_fake_pve(["pve1", "pve2"], stock=True) as handle:
        assert type(handle.pve).__module__ == "fakepve.server"  # no subclass of ours
        yield handle


def _wait(api: Any, upid: str) -> None:
    status = api.nodes(upid.split(":")[1]).tasks(upid).status.get()
    assert status["status"] == "stopped" and status["exitstatus"] == "OK", status


def create_vm(stock: FakePveHandle, node: str, vmid: int, house: str | None, **extra: Any) -> None:
    """A VM made through the API as an operator or an older tool would (time_scale 0: tasks end at once)."""
    driver = ProxmoxDriver(stock.node_model(node, PVE1_IP))
    params: dict[str, Any] = {"vmid": vmid, "cores": 2, "sockets": 1, "memory": 256, **extra}
    if house is not None:
        params["name"] = naming.pve_safe_name(house)
        params.setdefault("description", f"ipsinfra-name: {house}")
    _wait(driver.ex_api, driver.ex_api.nodes(node).qemu.post(**params))
    driver.close()


@pytest.fixture
def fresh(stock: FakePveHandle) -> Iterator[FakePveHandle]:
    stock.clear_vms()
    create_vm(
        stock,
        "pve1",
        101,
        "VPS3001(34.56)",
        description="ipsinfra-name: VPS3001(34.56)\nipsinfra-ips: 10.0.34.100",
        onboot=1,
        affinity="0-1",
        net0="virtio=52:54:00:00:0B:B9,bridge=vmbr0",
        args="-vnc 127.0.0.21:101",
        start=1,
    )
    create_vm(stock, "pve1", 102, "VPS3002(34.56)", onboot=0)
    create_vm(stock, "pve1", 103, None, name="legacy-box")  # not ours: listed under its PVE name
    yield stock


def driver_for(stock: FakePveHandle, node: str = "pve1", ip: str = PVE1_IP) -> ProxmoxDriver:
    return ProxmoxDriver(stock.node_model(node, ip), task_timeout=10, poll_interval=0.01)


def by_name(listed: list[Vds]) -> dict[str, Vds]:
    return {v.name: v for v in listed}


def test_listing_reads_every_config_and_says_it_fell_back(
    fresh: FakePveHandle, caplog: pytest.LogCaptureFixture
) -> None:
    driver = driver_for(fresh)
    caplog.set_level(logging.INFO, logger="ipsinfra.hypervisors.proxmox")
    listed = by_name(driver.list_vds())
    assert sorted(listed) == ["VPS3001(34.56)", "VPS3002(34.56)", "legacy-box"]
    one = listed["VPS3001(34.56)"]
    assert (one.vcpus, one.cpuset, one.autostart, one.state) == (2, "0-1", True, VdsState.RUNNING)
    assert (str(one.vnc_listen), one.vnc_port) == ("127.0.0.21", 6001)
    assert [str(ip) for ip in one.ips] == ["10.0.34.100"]
    assert [n.bridge for n in one.nics] == ["vmbr0"]
    assert listed["VPS3002(34.56)"].autostart is False
    assert driver.ex_listing_mode == "per-vm"
    assert "not PVE's shape" in (driver.ex_listing_reason or "")
    # Again: per-VM at once, and the fall-back was logged once, as a warning.
    before = len(fresh.requests())
    assert len(driver.list_vds()) == 3
    calls = [f"{m} {p.removeprefix('/api2/json')}" for m, p, _b in fresh.requests()[before:]]
    assert calls[0] == "GET /nodes/pve1/qemu" and "POST /nodes/pve1/execute" not in calls
    fell_back = [r for r in caplog.records if "one VM at a time" in r.getMessage()]
    assert len(fell_back) == 1 and fell_back[0].levelno == logging.WARNING
    driver.close()


def test_a_config_read_that_fails_fails_the_listing(fresh: FakePveHandle) -> None:
    driver = driver_for(fresh)
    fresh.call(lambda: fresh.pve.fail("GET", "/nodes/pve1/qemu/102/config", 500, "pmxcfs: timeout"))
    try:
        with pytest.raises(HypervisorApiError, match="pmxcfs: timeout"):
            driver.list_vds()
    finally:
        fresh.call(fresh.pve.failures.clear)
    assert len(driver.list_vds()) == 3
    driver.close()


def test_only_pves_own_does_not_exist_means_gone(fresh: FakePveHandle) -> None:
    driver = driver_for(fresh)
    reader = driver._reader  # the listing's reader, to ask for a VM the row list still had
    configs, gone = reader.read([101, 999])
    assert sorted(configs) == [101] and gone == {999}
    fresh.call(lambda: fresh.pve.fail("GET", "/nodes/pve1/qemu/101/config", 404, "Not Found"))
    try:
        with pytest.raises(HypervisorApiError):  # a 404 from somewhere is no proof
            reader.read([101])
    finally:
        fresh.call(fresh.pve.failures.clear)
    driver.close()


def stock_fleet(stock: FakePveHandle) -> Any:
    pve1 = stock.node_model("pve1", PVE1_IP, ip_pool=["10.0.34.100", "10.0.34.101"], cpus=8)
    pve2 = stock.node_model("pve2", PVE2_IP, ip_pool=["10.0.77.100"], cpus=8)
    records = (
        Vds(name="VPS3001(34.56)", node="pve1", vcpus=2, cpuset="0-1", memory_mib=256, autostart=True),
        Vds(name="VPS3002(34.56)", node="pve1", vcpus=2, memory_mib=256),
    )
    return fleet(pve1, pve2, vds=records)


def test_audit_lists_every_vm_without_false_drift(fresh: FakePveHandle) -> None:
    the_fleet = stock_fleet(fresh)
    with DriverPool(the_fleet.nodes) as pool:
        report = audit.run(the_fleet, pool, nodes=["pve1"], today=TODAY, reach=False, processes=1)
    [node] = report.nodes
    assert node.reachable and node.vds_total == 3 and node.vds_running == 1
    drift = [f for f in report.findings if f.check == "inventory_drift"]
    assert drift == [], drift


def order(number: int, node: str) -> Order:
    return Order(number=number, client="c1", node=node, vcpus=1, memory_mib=256, disk_gib=1, os="debian12")


def test_provisioning_sees_used_ips_and_taken_orders(fresh: FakePveHandle) -> None:
    the_fleet = stock_fleet(fresh)
    with DriverPool(the_fleet.nodes) as pool:
        # Order 3001 runs on pve1 already: taken, wherever it is asked for.
        taken = order(3001, "pve2")
        with pytest.raises(Conflict, match="already in use by VPS3001"):
            provision(taken, the_fleet, pool, check=True, today=TODAY)
        # 10.0.34.100 is VPS3001's: the plan takes the other address, and two are not there.
        new = order(3003, "pve1")
        plan = provision(new, the_fleet, pool, check=True, today=TODAY).plan
        assert [str(ip) for ip in plan.spec.ips] == ["10.0.34.101"]
        with pytest.raises(InvalidInput, match="1 free IP"):
            provision(new.model_copy(update={"ips": 2}), the_fleet, pool, check=True, today=TODAY)


def test_migration_that_did_not_happen_fails_loudly(fresh: FakePveHandle) -> None:
    """Stock fakepve's migrate task ends OK but leaves the VM where it was."""
    the_fleet = stock_fleet(fresh)
    with DriverPool(the_fleet.nodes) as pool:
        with pytest.raises(HypervisorApiError, match="vmid 101 is not on pve2"):
            migrate("VPS3001(34.56)", "pve2", the_fleet, pool, step_timeout=30)
        assert [v.name for v in pool.get("pve1").list_vds() if v.order == 3001] == ["VPS3001(34.56)"]
        assert [v for v in pool.get("pve2").list_vds() if v.order == 3001] == []
        assert pool.get("pve1").get_vds("VPS3001(34.56)").state is VdsState.RUNNING


def test_vnc_address_written_to_a_stopped_vm_reads_back(fresh: FakePveHandle) -> None:
    driver = driver_for(fresh)
    got = driver.set_vnc_listen("VPS3002(34.56)", ipaddress.ip_address("127.0.0.22"))
    assert str(got.vnc_listen) == "127.0.0.22"
    assert str(driver.get_vds("VPS3002(34.56)").vnc_listen) == "127.0.0.22"
    driver.close()


@pytest.fixture(scope="module")
def extended() -> Iterator[FakePveHandle]:
    with start_fake_pve(["pve1"]) as handle:
        yield handle


def test_extended_lab_batch_error_items_are_read_on_their_own(extended: FakePveHandle) -> None:
    """The lab's /execute answers PVE's shape: an error item is re-read alone, the batch stays."""
    extended.clear_vms()
    create_vm(extended, "pve1", 101, "VPS3001(34.56)", onboot=1)
    driver = driver_for(extended)
    before = len(extended.requests())
    configs, gone = driver._reader.read([101, 999])
    assert sorted(configs) == [101] and gone == {999}
    calls = [f"{m} {p.removeprefix('/api2/json')}" for m, p, _b in extended.requests()[before:]]
    assert calls == ["POST /nodes/pve1/execute", "GET /nodes/pve1/qemu/999/config"]
    assert driver.ex_listing_mode == "batch" and driver.ex_listing_reason is None
    assert [v.name for v in driver.list_vds()] == ["VPS3001(34.56)"]
    driver.close()
