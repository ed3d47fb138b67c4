"""How many API calls a listing costs, counted in fakepve's request log.

PVE keeps onboot, affinity, net0, description and args in each VM's config;
no listing endpoint carries them. The driver reads all configs through
PVE's batch endpoint ``POST /nodes/{node}/execute`` (root@pam only): 2
calls per node whatever the VM count. A user the endpoint refuses gets the
per-VM fallback: 1 + N calls (and one refused /execute, once per driver).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ipsinfra.hypervisors.proxmox import ProxmoxDriver
from ipsinfra.lab.pve import FakePveHandle, start_fake_pve
from tests.conftest import require_module
from tests.contract.base import spec_for


@pytest.fixture(scope="module", autouse=True)
def _fakepve() -> None:
    """Before the module's lab starts: fakepve must import (CI fails, elsewhere skips)."""
    require_module("fakepve", "the Proxmox tier runs on fakepve (pip install fakepve)")


@pytest.fixture(scope="module")
def lab() -> Iterator[FakePveHandle]:
    with start_fake_pve({"pve1": 64}) as handle:
        yield handle


def fill(lab: FakePveHandle, driver: ProxmoxDriver, count: int) -> None:
    lab.clear_vms()
    for order in range(1, count + 1):
        driver.define(spec_for(driver, 5000 + order, cpuset=None, autostart=order % 2 == 0))


def calls_of_listing(lab: FakePveHandle, driver: ProxmoxDriver, count: int) -> tuple[list[str], float]:
    before = len(lab.requests())
    started = time.perf_counter()
    listed = driver.list_vds()
    elapsed = time.perf_counter() - started
    assert len(listed) == count
    assert sum(v.autostart for v in listed) == count // 2  # config fields really read
    return [f"{m} {p.removeprefix('/api2/json')}" for m, p, _b in lab.requests()[before:]], elapsed


@pytest.mark.parametrize("count", [5, 50])
def test_listing_is_two_calls_per_node_whatever_the_count(lab: FakePveHandle, count: int) -> None:
    driver = ProxmoxDriver(lab.node_model("pve1", "10.0.34.56"), poll_interval=0.01)
    fill(lab, driver, count)
    calls, elapsed = calls_of_listing(lab, driver, count)
    print(f"batch listing of {count} VMs: {len(calls)} calls in {elapsed * 1000:.0f} ms: {calls}")
    assert calls == ["GET /nodes/pve1/qemu", "POST /nodes/pve1/execute"]
    assert driver.ex_listing_mode == "batch"
    driver.close()


@pytest.mark.parametrize("count", [5, 50])
def test_refused_batch_falls_back_to_one_call_per_vm(lab: FakePveHandle, count: int) -> None:
    lab.call(lambda: lab.pve.apitokens.__setitem__("ops@pve!audit", lab.token_value))
    node = lab.node_model("pve1", "10.0.34.56", api_user="ops@pve", api_token_id="ops@pve!audit")
    driver = ProxmoxDriver(node, poll_interval=0.01)
    fill(lab, driver, count)
    first, _ = calls_of_listing(lab, driver, count)
    assert first[:2] == ["GET /nodes/pve1/qemu", "POST /nodes/pve1/execute"]  # refused: 403, once
    assert len(first) == 2 + count
    again, elapsed = calls_of_listing(lab, driver, count)
    print(f"per-VM listing of {count} VMs: {len(again)} calls in {elapsed * 1000:.0f} ms")
    assert len(again) == 1 + count and driver.ex_listing_mode == "per-vm"
    driver.close()
