"""domxml: parse/build on domain XML recorded from the test driver and a real qemu session daemon."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ipsinfra.errors import InvalidInput
from ipsinfra.hypervisors import domxml
from ipsinfra.models import Disk, Nic, Vds, VdsSpec, VdsState

DATA = Path(__file__).resolve().parent.parent / "data" / "libvirt"


def recorded(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def parse(name: str, state: VdsState = VdsState.STOPPED, autostart: bool = False) -> Vds:
    return domxml.parse_domain(recorded(name), node="n1", state=state, autostart=autostart)


def test_test_driver_domain_every_field() -> None:
    vds = parse("testdriver-VPS1001-defined.xml", autostart=True)
    assert (vds.name, vds.order, vds.node) == ("VPS1001(34.56)", 1001, "n1")
    assert (vds.vcpus, vds.cpuset, vds.memory_mib) == (2, "1-3", 64)
    assert vds.macs == ["52:54:00:00:e9:01", "52:54:00:00:e9:02"]
    assert [(n.bridge, n.model) for n in vds.nics] == [("br0", "virtio"), ("br1", "e1000")]
    assert vds.disks == [Disk(size_gib=20), Disk(name="disk1", size_gib=50, storage="ssd")]
    assert vds.ips == [ipaddress.ip_address("185.12.34.57")]
    assert (vds.comment, vds.os, vds.arch) == ("order 1001, client c42", "debian-12", "x86_64")
    assert (str(vds.vnc_listen), vds.vnc_port, vds.autostart) == ("127.0.0.1", -1, True)
    assert vds.backend_id and len(vds.backend_id) == 36


def test_qemu_session_user_nic_keeps_bridge_from_metadata() -> None:
    vds = parse("qemu-session-VPS1002-shutoff.xml")
    assert vds.nics[0].mac == "52:54:00:00:ea:01"
    assert vds.nics[0].bridge == "br0"  # the slirp NIC has no <source bridge>; metadata keeps it
    assert (vds.vcpus, vds.cpuset, vds.vnc_port) == (1, None, -1)


def test_qemu_session_running_has_live_vnc_port() -> None:
    vds = parse("qemu-session-VPS1002-running.xml", state=VdsState.RUNNING)
    assert (vds.state, vds.vnc_port, str(vds.vnc_listen)) == (VdsState.RUNNING, 5900, "127.0.0.1")


def test_foreign_domain_without_metadata() -> None:
    vds = parse("foreign-web1.xml")
    assert (vds.name, vds.order) == ("web-1", None)
    assert (vds.vcpus, vds.memory_mib) == (2, 2048)  # current='2' of 4; 2 GiB
    assert vds.macs == ["52:54:00:ab:cd:ef"]
    assert (str(vds.vnc_listen), vds.vnc_port) == ("192.0.2.10", 5907)
    assert vds.disks == [] and vds.ips == []


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.xml")))
def test_rewrites_keep_everything_else(name: str) -> None:
    xml = recorded(name)
    before = domxml.parse_domain(xml, node="n1", state=VdsState.STOPPED, autostart=False)
    moved = domxml.with_vnc_listen(xml, ipaddress.ip_address("10.9.8.7"))
    after = domxml.parse_domain(moved, node="n1", state=VdsState.STOPPED, autostart=False)
    assert str(after.vnc_listen) == "10.9.8.7"
    assert after.vnc_port in (-1, 5907)  # autoport: the old node's live port is dropped
    assert after.model_dump(exclude={"vnc_listen", "vnc_port"}) == before.model_dump(
        exclude={"vnc_listen", "vnc_port"}
    )
    cpus = domxml.parse_domain(
        domxml.with_vcpus(xml, 3, "0-3"), node="n1", state=VdsState.STOPPED, autostart=False
    )
    assert (cpus.vcpus, cpus.cpuset, cpus.macs) == (3, "0-3", before.macs)
    kept = domxml.parse_domain(
        domxml.with_vcpus(xml, 1, None), node="n1", state=VdsState.STOPPED, autostart=False
    )
    assert kept.cpuset == before.cpuset
    assert domxml.domain_name(domxml.with_name(xml, "VPS5(7.7)")) == "VPS5(7.7)"


def test_build_then_parse_round_trips_spec() -> None:
    spec = VdsSpec(
        name="VPS42(1.2)",
        vcpus=4,
        cpuset="1-40",
        memory_mib=2048,
        disks=[Disk(size_gib=30)],
        nics=[Nic(mac="52:54:00:12:34:56", bridge="br0")],
        ips=[ipaddress.ip_address("10.1.1.2")],
        vnc_listen=ipaddress.ip_address("10.0.1.2"),
        description="trial",
        os="ubuntu-24.04",
    )
    backends: tuple[domxml.NicBackend, ...] = ("bridge", "user")
    for backend in backends:
        xml = domxml.build_domain(spec, domain_type="qemu", nic_backend=backend)
        vds = domxml.parse_domain(xml, node="n1", state=VdsState.STOPPED, autostart=False)
        assert (vds.vcpus, vds.cpuset, vds.memory_mib, vds.order) == (4, "1-40", 2048, 42)
        assert [(n.mac, n.bridge) for n in vds.nics] == [("52:54:00:12:34:56", "br0")]
        assert (vds.disks, vds.ips, vds.comment, vds.os) == (spec.disks, spec.ips, "trial", "ubuntu-24.04")
        assert str(vds.vnc_listen) == "10.0.1.2"
        assert domxml.has_guest_agent_channel(xml)
    assert '<interface type="bridge">' in domxml.build_domain(spec)
    assert '<vcpu placement="static" cpuset="1-40">4</vcpu>' in domxml.build_domain(spec)


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [(1, 1, VdsState.RUNNING), (5, 0, VdsState.STOPPED), (3, 2, VdsState.MIGRATING), (3, 1, VdsState.PAUSED),
     (6, 0, VdsState.CRASHED), (0, 0, VdsState.UNKNOWN), (3, 11, VdsState.STARTING)],
)  # fmt: skip
def test_state_mapping(state: int, reason: int, expected: VdsState) -> None:
    assert domxml.state_from_libvirt(state, reason) == expected


def test_guest_domain_type() -> None:
    caps = """<capabilities><guest><os_type>hvm</os_type><arch name='x86_64'>
      <domain type='qemu'/><domain type='kvm'/></arch></guest></capabilities>"""
    assert domxml.guest_domain_type(caps) == "kvm"
    assert domxml.guest_domain_type(caps.replace("<domain type='kvm'/>", "")) == "qemu"
    with pytest.raises(InvalidInput, match="aarch64"):
        domxml.guest_domain_type(caps, arch="aarch64")


@pytest.mark.parametrize("bad", ["<domain", "<network/>", "<domain><name>x</name></domain>"])
def test_bad_xml_is_invalid_input(bad: str) -> None:
    with pytest.raises(InvalidInput):
        domxml.parse_domain(bad, node="n1", state=VdsState.UNKNOWN, autostart=False)


def test_direct_boot_round_trip() -> None:
    spec = VdsSpec(name="VPS7(1.2)", vcpus=1, memory_mib=128)
    assert domxml.direct_boot(domxml.build_domain(spec)) is None
    boots = [
        domxml.DirectBoot(
            kernel=Path("/var/tmp/g/vmlinuz"),
            initrd=Path("/var/tmp/g/initrd.cpio"),
            cmdline="console=ttyS0 quiet",
            serial_log=Path("/var/tmp/n/console.log"),
        ),
        domxml.DirectBoot(kernel=Path("/boot/vmlinuz-6.1")),
    ]
    for boot in boots:
        xml = domxml.build_domain(spec, domain_type="qemu", nic_backend="user", boot=boot)
        assert domxml.direct_boot(xml) == boot
        # the rest of the domain is untouched by the boot element
        vds = domxml.parse_domain(xml, node="n1", state=VdsState.STOPPED, autostart=False)
        assert (vds.name, vds.memory_mib, vds.arch) == ("VPS7(1.2)", 128, "x86_64")
        assert domxml.has_guest_agent_channel(xml)
        assert domxml.direct_boot(domxml.with_vnc_listen(xml, ipaddress.ip_address("10.0.0.9"))) == boot
    xml = domxml.build_domain(spec, boot=boots[0])
    assert "<kernel>/var/tmp/g/vmlinuz</kernel><initrd>/var/tmp/g/initrd.cpio</initrd>" in xml
    assert "<cmdline>console=ttyS0 quiet</cmdline></os>" in xml
    assert '<serial type="file"><source path="/var/tmp/n/console.log" />' in xml
    assert "<serial" not in domxml.build_domain(spec, boot=boots[1])


def test_direct_boot_as_libvirt_writes_it() -> None:
    """libvirt's own normalized form (single quotes, os before devices, a <console> twin)."""
    xml = """<domain type='qemu' id='3'><name>VPS7(1.2)</name><memory unit='KiB'>131072</memory>
      <vcpu placement='static'>1</vcpu>
      <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
        <kernel>/var/tmp/ipsinfra-guest/6.1.0-56-cloud-amd64-de00/vmlinuz</kernel>
        <initrd>/var/tmp/ipsinfra-guest/6.1.0-56-cloud-amd64-de00/initrd.cpio</initrd>
        <cmdline>console=ttyS0 quiet panic=-1</cmdline><boot dev='hd'/></os>
      <devices><serial type='file'><source path='/var/tmp/x/lvguest1/h/console.log'/>
        <target type='isa-serial' port='0'><model name='isa-serial'/></target><alias name='serial0'/></serial>
        <console type='file'><source path='/var/tmp/x/lvguest1/h/console.log'/>
        <target type='serial' port='0'/><alias name='serial0'/></console></devices></domain>"""
    boot = domxml.direct_boot(xml)
    assert boot == domxml.DirectBoot(
        kernel=Path("/var/tmp/ipsinfra-guest/6.1.0-56-cloud-amd64-de00/vmlinuz"),
        initrd=Path("/var/tmp/ipsinfra-guest/6.1.0-56-cloud-amd64-de00/initrd.cpio"),
        cmdline="console=ttyS0 quiet panic=-1",
        serial_log=Path("/var/tmp/x/lvguest1/h/console.log"),
    )
