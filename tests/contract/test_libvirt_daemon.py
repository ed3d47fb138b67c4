"""The driver contract on real session-mode libvirtd daemons with qemu (TCG) guests.

Two daemons per module (nodes ``lvnode1``/``lvnode2``); each test gets a
cleaned node rather than a new daemon, to keep the tier fast.
"""

from __future__ import annotations

import ipaddress
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from ipsinfra import naming
from ipsinfra.errors import NodeUnreachable, OperationTimeout
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.lab.libvirtd import LibvirtDaemon, start_daemons, stop_daemons
from ipsinfra.models import HypervisorKind, Node, VdsState
from tests.contract.base import DriverContract, spec_for

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.slow]

LOOPBACK = ipaddress.ip_address("127.0.0.1")
LAB_PARENT = "/var/tmp"  # NOT pytest's 0700 tmp root: nobody must enter it


def lab_node(daemon: LibvirtDaemon, ip: str) -> Node:
    return Node(
        name=daemon.name,
        site="lab",
        main_ip=ipaddress.ip_address(ip),
        kind=HypervisorKind.LIBVIRT,
        uri=daemon.uri,
        cpus=4,  # declared; TCG guests do not need the host to have them
        vnc_listen=ipaddress.ip_address("127.0.0.1"),
    )


def wipe(conn: libvirt.virConnect) -> None:
    for dom in conn.listAllDomains(0):
        if dom.isActive():
            dom.destroy()
        dom.undefine()


@pytest.fixture(scope="module")
def daemons() -> Iterator[list[LibvirtDaemon]]:
    base = tempfile.mkdtemp(prefix="ipsinfra-libvirt-", dir=LAB_PARENT)
    started = start_daemons(2, base)
    try:
        yield started
    finally:
        stop_daemons(started)
        shutil.rmtree(base, ignore_errors=True)


def _driver(daemon: LibvirtDaemon, ip: str) -> LibvirtDriver:
    drv = LibvirtDriver(lab_node(daemon, ip), nic_backend="user", migration_address=LOOPBACK)
    wipe(drv.ex_conn)
    return drv


@pytest.fixture
def driver(daemons: list[LibvirtDaemon]) -> Iterator[LibvirtDriver]:
    drv = _driver(daemons[0], "10.0.34.56")
    yield drv
    wipe(drv.ex_conn)
    drv.close()


@pytest.fixture
def target(daemons: list[LibvirtDaemon]) -> Iterator[LibvirtDriver]:
    drv = _driver(daemons[1], "10.0.77.88")
    yield drv
    wipe(drv.ex_conn)
    drv.close()


class TestLibvirtDaemon(DriverContract):
    def test_guests_are_real_qemu_processes(
        self, driver: LibvirtDriver, daemons: list[LibvirtDaemon]
    ) -> None:
        spec = spec_for(driver, 1201)
        vds = driver.define(spec, start=True)
        assert vds.state == VdsState.RUNNING
        assert vds.vnc_port is not None and vds.vnc_port >= 5900  # the live port qemu got
        cmdlines = [
            Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] for pid in daemons[0].namespace_pids()
        ]
        assert any(c.endswith(b"qemu-system-x86_64") for c in cmdlines)

    def test_set_password_without_agent(self, driver: LibvirtDriver) -> None:
        spec = spec_for(driver, 1202)
        driver.define(spec, start=True)  # has the agent channel, but no agent runs in the guest
        t0 = time.monotonic()
        with pytest.raises(OperationTimeout, match="lvnode1") as info:
            driver.set_password(spec.name, "root", "Sup3r-Secret-Pw", agent_timeout=1.5)
        assert 1.4 < time.monotonic() - t0 < 10  # bounded by agent_timeout (+ one ping)
        assert "Sup3r-Secret-Pw" not in str(info.value)
        assert info.value.__cause__ is None
        # (a real agent answering: tests/integration/test_guest_agent.py)

    def test_stop_without_force_times_out(self, driver: LibvirtDriver) -> None:
        spec = spec_for(driver, 1203)
        driver.define(spec, start=True)  # no OS: ignores ACPI
        with pytest.raises(OperationTimeout, match="lvnode1"):
            driver.stop(spec.name, timeout=0.5, force=False)
        assert driver.get_vds(spec.name).state == VdsState.RUNNING

    def test_live_migrate(self, driver: LibvirtDriver, target: LibvirtDriver) -> None:
        spec = spec_for(driver, 1204, autostart=True, vnc_listen=ipaddress.ip_address("127.0.0.2"))
        driver.define(spec, start=True)
        new_name = naming.renamed_for_node(spec.name, target.node.main_ip)
        t0 = time.monotonic()
        got = driver.migrate(spec.name, target, live=True, new_name=new_name)
        took = time.monotonic() - t0
        for vds in (got, target.get_vds(new_name)):
            assert vds.name == "VPS1204(77.88)" and vds.node == "lvnode2"
            assert vds.state == VdsState.RUNNING
            assert vds.autostart is True  # libvirt drops it; the driver sets it again
            assert str(vds.vnc_listen) == "127.0.0.1"
            assert (vds.vcpus, vds.cpuset, vds.macs) == (2, "1-3", ["52:54:00:00:b4:01"])
        # the persistent config too (the next boot), not only the running guest
        assert "listen='127.0.0.1'" in target.ex_xml(new_name, inactive=True)
        assert [v.name for v in driver.list_vds()] == []
        assert took < 30

    def test_offline_migrate(self, driver: LibvirtDriver, target: LibvirtDriver) -> None:
        spec = spec_for(driver, 1205)
        driver.define(spec)
        got = driver.migrate(spec.name, target, live=False, new_name="VPS1205(77.88)")
        assert (got.name, got.state, got.node) == ("VPS1205(77.88)", VdsState.STOPPED, "lvnode2")
        assert driver.list_vds() == []


def test_killed_daemon_is_node_unreachable() -> None:
    base = tempfile.mkdtemp(prefix="ipsinfra-libvirt-", dir=LAB_PARENT)
    daemon = LibvirtDaemon("lvdying", base, index=7)
    try:
        daemon.start()
        node = lab_node(daemon, "10.0.9.9")
        drv = LibvirtDriver(node, nic_backend="user")
        drv.define(spec_for(drv, 1301), start=True)
        assert [v.name for v in drv.list_vds()] == ["VPS1301(9.9)"]
        daemon.kill_libvirtd(signal.SIGKILL)
        with pytest.raises(NodeUnreachable, match="lvdying") as info:
            drv.list_vds()
        assert info.value.node == "lvdying"
        with pytest.raises(NodeUnreachable, match="lvdying"):
            LibvirtDriver(node)
    finally:
        daemon.stop()
        shutil.rmtree(base, ignore_errors=True)
    assert daemon.namespace_pids() == []
