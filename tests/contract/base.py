"""The contract every HypervisorDriver passes (NAPALM's BaseTestGetters shape).

A backend's test module subclasses :class:`DriverContract` and provides the
``driver`` fixture: a driver for a FRESH node (no VDS) whose ``node.cpus`` is
at least 4 and whose ``node.main_ip`` is IPv4. Nothing here knows which
backend it talks to; each test reads results back through the driver.
"""

from __future__ import annotations

import ipaddress

import pytest

from ipsinfra import naming
from ipsinfra.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidName,
    VdsNotFound,
)
from ipsinfra.hypervisors.base import HypervisorDriver
from ipsinfra.models import Disk, Nic, VdsSpec, VdsState


def spec_for(driver: HypervisorDriver, order: int, **overrides: object) -> VdsSpec:
    """A small spec named by §8.5 for the driver's node."""
    values: dict[str, object] = {
        "name": naming.vps_name(order, driver.node.main_ip),
        "vcpus": 2,
        "cpuset": "1-3",
        "memory_mib": 64,
        "disks": [Disk(size_gib=1)],
        "nics": [Nic(mac=f"52:54:00:00:{order % 256:02x}:01", bridge=driver.node.bridge)],
        "vnc_listen": ipaddress.ip_address("127.0.0.1"),
        "autostart": False,
    }
    values.update(overrides)
    return VdsSpec.model_validate(values)


class DriverContract:
    """Tests every driver must pass; subclasses provide the ``driver`` fixture."""

    def test_description_round_trip(self, driver: HypervisorDriver) -> None:
        from ipsinfra import metadata

        spec = spec_for(driver, 1017, description=metadata.render({"order": 1017, "os": "debian-12"}))
        driver.define(spec)
        # A backend may keep facts of its own there too (Proxmox: the house name).
        assert {"order": "1017", "os": "debian-12"}.items() <= metadata.parse(
            driver.get_vds(spec.name).description
        ).items()
        text = metadata.update(driver.get_vds(spec.name).description, {"blocked": "SBL123"})
        got = driver.set_description(spec.name, text)
        assert metadata.parse(got.description)["blocked"] == "SBL123"
        again = driver.get_vds(spec.name)
        expected = {"order": "1017", "os": "debian-12", "blocked": "SBL123"}
        assert expected.items() <= metadata.parse(again.description).items()
        assert again.name == spec.name

    def names(self, driver: HypervisorDriver) -> list[str]:
        return sorted(v.name for v in driver.list_vds())

    def test_description_of_a_running_vds_reads_back_at_once(self, driver: HypervisorDriver) -> None:
        from ipsinfra import metadata

        spec = spec_for(driver, 1018)
        driver.define(spec, start=True)
        text = metadata.update(driver.get_vds(spec.name).description, {"blocked": "malware"})
        driver.set_description(spec.name, text)
        for seen in (driver.get_vds(spec.name), *[v for v in driver.list_vds() if v.name == spec.name]):
            assert metadata.parse(seen.description).get("blocked") == "malware"

    def test_fresh_node_lists_nothing_of_ours(self, driver: HypervisorDriver) -> None:
        assert [n for n in self.names(driver) if naming.is_vps_name(n)] == []

    def test_define_then_read_back(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1001, autostart=True)
        created = driver.define(spec)
        got = driver.get_vds(spec.name)
        for vds in (created, got):
            assert vds.name == spec.name
            assert vds.node == driver.node.name
            assert vds.vcpus == 2
            assert vds.cpuset == "1-3"
            assert vds.memory_mib == 64
            assert vds.autostart is True
            assert vds.macs == ["52:54:00:00:e9:01"]
            assert str(vds.vnc_listen) == "127.0.0.1"
            assert vds.state == VdsState.STOPPED
        assert spec.name in self.names(driver)

    def test_list_reports_every_field(self, driver: HypervisorDriver) -> None:
        a = spec_for(driver, 1002, vcpus=1, cpuset=None)
        b = spec_for(driver, 1003, vcpus=3, autostart=True)
        driver.define(a)
        driver.define(b)
        listed = {v.name: v for v in driver.list_vds()}
        assert listed[a.name].vcpus == 1
        assert listed[a.name].autostart is False
        assert listed[b.name].vcpus == 3
        assert listed[b.name].cpuset == "1-3"
        assert listed[b.name].autostart is True
        assert listed[b.name].macs == ["52:54:00:00:eb:01"]

    def test_start_and_stop(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1004)
        driver.define(spec)
        assert driver.start(spec.name).state == VdsState.RUNNING
        assert driver.get_vds(spec.name).state == VdsState.RUNNING
        assert driver.stop(spec.name, timeout=5).state == VdsState.STOPPED
        assert driver.get_vds(spec.name).state == VdsState.STOPPED

    def test_define_and_start(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1005)
        assert driver.define(spec, start=True).state == VdsState.RUNNING

    def test_set_autostart(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1006)
        driver.define(spec)
        assert driver.set_autostart(spec.name, True).autostart is True
        assert driver.get_vds(spec.name).autostart is True
        assert driver.set_autostart(spec.name, False).autostart is False
        assert driver.get_vds(spec.name).autostart is False

    def test_set_vcpus(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1007)
        driver.define(spec)
        got = driver.set_vcpus(spec.name, 3, cpuset="0-3")
        assert (got.vcpus, got.cpuset) == (3, "0-3")
        again = driver.get_vds(spec.name)
        assert (again.vcpus, again.cpuset) == (3, "0-3")

    @pytest.mark.parametrize("vcpus", [0, -1])
    def test_set_vcpus_refuses_non_positive(self, driver: HypervisorDriver, vcpus: int) -> None:
        spec = spec_for(driver, 1008)
        driver.define(spec)
        with pytest.raises(InvalidInput, match="vcpus"):
            driver.set_vcpus(spec.name, vcpus)
        assert driver.get_vds(spec.name).vcpus == 2

    def test_vcpus_above_node_cpus_refused_nothing_created(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1009, vcpus=driver.node.cpus + 1, cpuset=None)
        with pytest.raises(InvalidInput, match="vcpus"):
            driver.define(spec)
        assert spec.name not in self.names(driver)

    def test_duplicate_name_refused(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1010)
        driver.define(spec)
        before = driver.get_vds(spec.name)
        with pytest.raises(AlreadyExists, match=r"VPS1010"):
            driver.define(spec_for(driver, 1010, vcpus=1, cpuset=None))
        assert self.names(driver).count(spec.name) == 1
        assert driver.get_vds(spec.name).vcpus == before.vcpus

    @pytest.mark.parametrize("bad", ["VPS 1011(34.56)", "vps1011(34.56)", "web-1", "VPS1011-1-2"])
    def test_non_house_name_refused(self, driver: HypervisorDriver, bad: str) -> None:
        spec = spec_for(driver, 1011).model_copy(update={"name": bad})
        with pytest.raises(InvalidName):
            driver.define(spec)
        assert bad not in self.names(driver)

    def test_unknown_vds(self, driver: HypervisorDriver) -> None:
        with pytest.raises(VdsNotFound, match=r"VPS9999"):
            driver.get_vds("VPS9999(1.2)")
        with pytest.raises(VdsNotFound):
            driver.start("VPS9999(1.2)")

    def test_rename(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1012)
        driver.define(spec)
        new = naming.vps_name(1012, "10.0.77.88")
        got = driver.rename(spec.name, new)
        assert got.name == new
        assert new in self.names(driver)
        assert spec.name not in self.names(driver)
        with pytest.raises(VdsNotFound):
            driver.get_vds(spec.name)

    def test_rename_onto_existing_refused(self, driver: HypervisorDriver) -> None:
        a = spec_for(driver, 1013)
        b = spec_for(driver, 1014)
        driver.define(a)
        driver.define(b)
        with pytest.raises(AlreadyExists):
            driver.rename(a.name, b.name)
        assert {a.name, b.name} <= set(self.names(driver))

    def test_set_vnc_listen(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1015)
        driver.define(spec)
        got = driver.set_vnc_listen(spec.name, ipaddress.ip_address("127.0.0.2"))
        assert str(got.vnc_listen) == "127.0.0.2"
        assert str(driver.get_vds(spec.name).vnc_listen) == "127.0.0.2"

    def test_delete(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1016)
        driver.define(spec)
        driver.delete(spec.name)
        assert spec.name not in self.names(driver)
        with pytest.raises(VdsNotFound):
            driver.delete(spec.name)

    def test_node_facts(self, driver: HypervisorDriver) -> None:
        facts = driver.node_facts()
        assert facts.node == driver.node.name
        assert facts.cpus is not None and facts.cpus >= 1

    # --- resize (§6): set_memory, grow_disk -------------------------------------
    def test_set_memory(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1018)
        driver.define(spec)
        got = driver.set_memory(spec.name, 128)
        assert got.memory_mib == 128
        again = driver.get_vds(spec.name)
        assert (again.memory_mib, again.vcpus, again.cpuset) == (128, 2, "1-3")
        assert driver.set_memory(spec.name, 48).memory_mib == 48  # down as well
        assert driver.get_vds(spec.name).memory_mib == 48

    @pytest.mark.parametrize("memory_mib", [0, -64, 15])
    def test_set_memory_refuses_too_little(self, driver: HypervisorDriver, memory_mib: int) -> None:
        spec = spec_for(driver, 1019)
        driver.define(spec)
        with pytest.raises(InvalidInput, match=rf"memory_mib: value {memory_mib}"):
            driver.set_memory(spec.name, memory_mib)
        assert driver.get_vds(spec.name).memory_mib == 64

    def test_set_memory_unknown_vds(self, driver: HypervisorDriver) -> None:
        with pytest.raises(VdsNotFound):
            driver.set_memory("VPS9999(1.2)", 128)

    def test_grow_disk_refuses_shrink_nothing_changed(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1020, disks=[Disk(size_gib=2)])
        driver.define(spec)
        disk = driver.get_vds(spec.name).disks[0]
        assert disk.size_gib == 2
        with pytest.raises(InvalidInput, match=rf"disk_gib: value 1: disk {disk.name} .*only grows"):
            driver.grow_disk(spec.name, disk.name, 1)
        with pytest.raises(InvalidInput, match="disk_gib: value 0"):
            driver.grow_disk(spec.name, disk.name, 0)
        assert driver.get_vds(spec.name).disks == [disk]

    def test_grow_disk_same_size_and_unknown_disk(self, driver: HypervisorDriver) -> None:
        spec = spec_for(driver, 1021, disks=[Disk(size_gib=2)])
        driver.define(spec)
        disk = driver.get_vds(spec.name).disks[0]
        assert driver.grow_disk(spec.name, disk.name, 2).disks == [disk]  # nothing to do
        with pytest.raises(InvalidInput, match=r"disk: value 'nosuchdisk'"):
            driver.grow_disk(spec.name, "nosuchdisk", 3)
        assert driver.get_vds(spec.name).disks == [disk]
