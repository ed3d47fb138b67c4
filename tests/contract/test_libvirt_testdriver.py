"""The driver contract on libvirt's in-process test driver (a fresh node per test)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra.errors import Conflict, UnsupportedOperation
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.models import HypervisorKind, Node, VdsState
from tests.contract.base import DriverContract, spec_for

NODE_XML = """<node>
  <cpu>
    <nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads>
    <active>{cpus}</active><mhz>2400</mhz><model>x86_64</model>
  </cpu>
  <memory>{memory_kib}</memory>
</node>
"""


def test_node(tmp_path: Path, name: str = "lv1", ip: str = "10.0.34.56", cpus: int = 8) -> Node:
    """A Node backed by a fresh ``test:///`` node file (each open() is independent)."""
    path = tmp_path / f"{name}.xml"
    path.write_text(NODE_XML.format(cpus=cpus, memory_kib=16 * 1024 * 1024), encoding="utf-8")
    return Node(
        name=name,
        site="lab",
        main_ip=ipaddress.ip_address(ip),
        kind=HypervisorKind.LIBVIRT,
        uri=f"test://{path}",
        cpus=cpus,
        vnc_listen=ipaddress.ip_address("127.0.0.1"),
    )


test_node.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[LibvirtDriver]:
    drv = LibvirtDriver(test_node(tmp_path))
    yield drv
    drv.close()


class TestLibvirtTestDriver(DriverContract):
    def test_node_facts_from_node_xml(self, driver: LibvirtDriver) -> None:
        facts = driver.node_facts()
        assert (facts.cpus, facts.memory_mib, facts.boot_id) == (8, 16 * 1024, None)

    def test_vcpus_stored_as_libvirt_static_cpuset(self, driver: LibvirtDriver) -> None:
        spec = spec_for(driver, 1101)
        driver.define(spec)
        assert "<vcpu placement='static' cpuset='1-3'>2</vcpu>" in driver.ex_xml(spec.name)

    def test_rename_running_refused(self, driver: LibvirtDriver) -> None:
        spec = spec_for(driver, 1102)
        driver.define(spec, start=True)
        with pytest.raises(Conflict, match="running") as info:
            driver.rename(spec.name, "VPS1102(77.88)")
        assert "lv1" in str(info.value)
        assert driver.get_vds(spec.name).state == VdsState.RUNNING

    def test_set_password_without_agent_hides_password(self, driver: LibvirtDriver) -> None:
        spec = spec_for(driver, 1103)
        driver.define(spec)
        xml = driver.ex_xml(spec.name, inactive=True)
        start, end = xml.index("<channel"), xml.index("</channel>") + len("</channel>")
        driver.ex_conn.defineXML(xml[:start] + xml[end:])  # no agent channel: no agent
        driver.start(spec.name)
        with pytest.raises(UnsupportedOperation) as info:
            driver.set_password(spec.name, "root", "Sup3r-Secret-Pw")
        assert "Sup3r-Secret-Pw" not in str(info.value)
        assert "Sup3r-Secret-Pw" not in repr(info.value.__cause__) and info.value.__cause__ is None

    def test_live_migrate_unsupported_names_node(self, driver: LibvirtDriver, tmp_path: Path) -> None:
        target = LibvirtDriver(test_node(tmp_path, "lv2", "10.0.77.88"))
        spec = spec_for(driver, 1104)
        driver.define(spec, start=True)
        with pytest.raises(UnsupportedOperation, match="lv1"):
            driver.migrate(spec.name, target, new_name="VPS1104(77.88)")
        assert driver.get_vds(spec.name).state == VdsState.RUNNING
        assert target.list_vds() == []

    def test_offline_migrate_moves_definition(self, driver: LibvirtDriver, tmp_path: Path) -> None:
        target = LibvirtDriver(test_node(tmp_path, "lv2", "10.0.77.88"))
        target_vnc = ipaddress.ip_address("127.0.0.1")
        driver.define(spec_for(driver, 1105, autostart=True, vnc_listen=ipaddress.ip_address("127.0.0.9")))
        got = driver.migrate("VPS1105(34.56)", target, live=False, new_name="VPS1105(77.88)")
        assert got.name == "VPS1105(77.88)" and got.node == "lv2"
        assert (got.autostart, got.vcpus, got.cpuset, got.vnc_listen) == (True, 2, "1-3", target_vnc)
        assert got.macs == ["52:54:00:00:51:01"]
        assert driver.list_vds() == []
