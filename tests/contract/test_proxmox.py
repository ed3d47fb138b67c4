"""The driver contract against a fake PVE cluster over HTTPS (fakepve + ipsinfra.lab.pve).

One server per module; every test gets a node with no VMs. Token auth and
ticket (password + CSRF) auth each run the whole contract.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from ipsinfra.errors import InvalidName
from ipsinfra.hypervisors.proxmox import ProxmoxDriver
from ipsinfra.lab.pve import FakePveHandle, start_fake_pve
from tests.conftest import require_module
from tests.contract.base import DriverContract, spec_for


@pytest.fixture(scope="module", autouse=True)
def _fakepve() -> None:
    """Before the module's lab starts: fakepve must import (CI fails, elsewhere skips)."""
    require_module("fakepve", "the Proxmox contract runs on fakepve (pip install fakepve)")


@pytest.fixture(scope="module")
def lab() -> Iterator[FakePveHandle]:
    with start_fake_pve({"pve1": 8, "pve2": 8}) as handle:
        yield handle


def _driver(lab: FakePveHandle, auth: str) -> Iterator[ProxmoxDriver]:
    lab.clear_vms()
    driver = ProxmoxDriver(
        lab.node_model("pve1", "10.0.34.56", auth=auth), task_timeout=10, poll_interval=0.01
    )
    yield driver
    driver.close()


class TestProxmox(DriverContract):
    """The contract with API-token auth."""

    @pytest.fixture
    def driver(self, lab: FakePveHandle) -> Iterator[ProxmoxDriver]:
        yield from _driver(lab, "token")

    def test_house_name_kept_in_description_and_twin_as_pve_name(
        self, driver: ProxmoxDriver, lab: FakePveHandle
    ) -> None:
        spec = spec_for(driver, 2001, description="rack B, paid till May")
        vds = driver.define(spec)
        config = driver.ex_api.nodes("pve1").qemu(int(vds.backend_id or 0)).config.get()
        assert config["name"] == "VPS2001-34-56"
        assert config["description"].splitlines()[0] == "ipsinfra-name: VPS2001(34.56)"
        assert "rack B, paid till May" in config["description"]
        renamed = driver.rename(spec.name, "VPS2001(77.88)")
        config = driver.ex_api.nodes("pve1").qemu(int(vds.backend_id or 0)).config.get()
        assert (renamed.name, config["name"]) == ("VPS2001(77.88)", "VPS2001-77-88")
        assert "ipsinfra-name: VPS2001(77.88)" in config["description"]
        assert "rack B, paid till May" in config["description"]
        assert renamed.comment == "rack B, paid till May"

    def test_bad_name_refused_before_any_api_call(self, driver: ProxmoxDriver, lab: FakePveHandle) -> None:
        before = len(lab.requests())
        with pytest.raises(InvalidName):
            driver.define(spec_for(driver, 2002).model_copy(update={"name": "VPS2002(34.56) "}))
        assert len(lab.requests()) == before

    def test_vnc_listen_is_a_qemu_vnc_arg(self, driver: ProxmoxDriver) -> None:
        vds = driver.define(spec_for(driver, 2003))
        vmid = int(vds.backend_id or 0)
        api = driver.ex_api.nodes("pve1").qemu(vmid)
        api.config.put(args=f"-vnc 127.0.0.1:{vmid} -global kvm-pit.lost_tick_policy=discard")
        got = driver.set_vnc_listen(vds.name, ipaddress.ip_address("::1"))
        assert (str(got.vnc_listen), got.vnc_port) == ("::1", 5900 + vmid)
        assert api.config.get()["args"] == f"-vnc [::1]:{vmid} -global kvm-pit.lost_tick_policy=discard"

    def test_password_masked_and_never_logged(
        self, driver: ProxmoxDriver, lab: FakePveHandle, caplog: pytest.LogCaptureFixture
    ) -> None:
        vds = driver.define(spec_for(driver, 2004))
        caplog.set_level("DEBUG", logger="proxmoxer.core")
        driver.set_password(vds.name, "client", "S3cret-Pa55-word")
        config = driver.ex_api.nodes("pve1").qemu(int(vds.backend_id or 0)).config.get()
        assert (config["ciuser"], config["cipassword"]) == ("client", "**********")
        assert "S3cret-Pa55-word" not in caplog.text
        assert any("cipassword" in r.getMessage() for r in caplog.records)  # proxmoxer did log the request
        assert not any(b"S3cret-Pa55-word" in body for _m, _p, body in lab.requests())


class TestProxmoxTicketAuth(DriverContract):
    """The same contract with a password login (ticket cookie + CSRF token)."""

    @pytest.fixture
    def driver(self, lab: FakePveHandle) -> Iterator[ProxmoxDriver]:
        yield from _driver(lab, "password")

    def test_logged_in_with_a_ticket(self, driver: ProxmoxDriver, lab: FakePveHandle) -> None:
        ticket, csrf = driver.ex_api.get_tokens()
        assert ticket is not None and ticket.startswith("PVE:root@pam:")
        assert csrf
