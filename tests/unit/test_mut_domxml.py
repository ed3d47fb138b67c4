"""domxml: what the mutation run (issue 23) found unchecked — the whole XML ``build_domain``
writes, compared element by element (not only what ``parse_domain`` reads back), and the
rewrites used on migration and resize (bridge, description, memory, disks)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ipsinfra.errors import InvalidInput
from ipsinfra.hypervisors import domxml
from ipsinfra.hypervisors.domxml import DirectBoot, DiskDevice
from ipsinfra.models import Disk, Nic, VdsSpec

NS = domxml.NS
Tree = tuple[str, tuple[tuple[str, str], ...], str, tuple["Tree", ...]]


def tree(xml: str | ET.Element) -> Tree:
    """An element as (tag, attributes, text, children): whitespace between elements ignored."""
    el = ET.fromstring(xml) if isinstance(xml, str) else xml
    return (el.tag, tuple(sorted(el.attrib.items())), (el.text or "").strip(), tuple(tree(c) for c in el))


def same(got: str, expected: str) -> None:
    assert tree(got) == tree(expected)


SPEC = VdsSpec(
    name="VPS7(1.2)",
    vcpus=2,
    cpuset="1-3",
    memory_mib=64,
    disks=[Disk(size_gib=20), Disk(name="data", size_gib=5, storage="pool2")],
    nics=[Nic(mac="52:54:00:00:00:07", bridge="br0"), Nic(mac="52:54:00:00:00:08", model="e1000")],
    ips=["185.12.34.57", "2001:db8::7"],
    vnc_listen="10.0.0.1",
    description="ipsinfra-order: 7",
    os="debian-12",
)


def test_build_domain_whole_xml() -> None:
    got = domxml.build_domain(SPEC, uuid="2b3c4d5e-0000-4000-8000-000000000001")
    same(
        got,
        f"""
        <domain type="kvm" xmlns:ipsinfra="{NS}">
          <name>VPS7(1.2)</name>
          <uuid>2b3c4d5e-0000-4000-8000-000000000001</uuid>
          <metadata>
            <ipsinfra:vds>
              <ipsinfra:disk name="disk0" size_gib="20"/>
              <ipsinfra:disk name="data" size_gib="5" storage="pool2"/>
              <ipsinfra:nic mac="52:54:00:00:00:07" bridge="br0"/>
              <ipsinfra:ip>185.12.34.57</ipsinfra:ip>
              <ipsinfra:ip>2001:db8::7</ipsinfra:ip>
              <ipsinfra:description>ipsinfra-order: 7</ipsinfra:description>
              <ipsinfra:os>debian-12</ipsinfra:os>
            </ipsinfra:vds>
          </metadata>
          <memory unit="KiB">65536</memory>
          <vcpu placement="static" cpuset="1-3">2</vcpu>
          <os><type arch="x86_64" machine="pc">hvm</type></os>
          <features><acpi/></features>
          <on_poweroff>destroy</on_poweroff>
          <on_reboot>restart</on_reboot>
          <on_crash>destroy</on_crash>
          <devices>
            <interface type="bridge">
              <mac address="52:54:00:00:00:07"/>
              <source bridge="br0"/>
              <model type="virtio"/>
            </interface>
            <interface type="user">
              <mac address="52:54:00:00:00:08"/>
              <model type="e1000"/>
            </interface>
            <graphics type="vnc" port="-1" autoport="yes" listen="10.0.0.1">
              <listen type="address" address="10.0.0.1"/>
            </graphics>
            <channel type="unix">
              <target type="virtio" name="org.qemu.guest_agent.0"/>
            </channel>
          </devices>
        </domain>
        """,
    )


def test_build_domain_minimal_user_nics_direct_boot_agent_socket() -> None:
    spec = VdsSpec(
        name="VPS8(1.2)",
        vcpus=1,
        memory_mib=128,
        nics=[Nic(mac="52:54:00:00:00:09", bridge="br1")],
        arch="aarch64",
    )
    boot = DirectBoot(
        kernel=Path("/boot/vmlinuz"),
        initrd=Path("/boot/initrd"),
        cmdline="console=ttyS0",
        serial_log=Path("/l"),
    )
    got = domxml.build_domain(
        spec,
        domain_type="qemu",
        nic_backend="user",
        machine="q35",
        boot=boot,
        agent_socket="/run/libvirt/qemu/ga-x.sock",
    )
    same(
        got,
        f"""
        <domain type="qemu" xmlns:ipsinfra="{NS}">
          <name>VPS8(1.2)</name>
          <metadata>
            <ipsinfra:vds><ipsinfra:nic mac="52:54:00:00:00:09" bridge="br1"/></ipsinfra:vds>
          </metadata>
          <memory unit="KiB">131072</memory>
          <vcpu placement="static">1</vcpu>
          <os>
            <type arch="aarch64">hvm</type>
            <kernel>/boot/vmlinuz</kernel>
            <initrd>/boot/initrd</initrd>
            <cmdline>console=ttyS0</cmdline>
          </os>
          <features><acpi/></features>
          <on_poweroff>destroy</on_poweroff>
          <on_reboot>restart</on_reboot>
          <on_crash>destroy</on_crash>
          <devices>
            <interface type="user"><mac address="52:54:00:00:00:09"/><model type="virtio"/></interface>
            <graphics type="vnc" port="-1" autoport="yes"/>
            <channel type="unix">
              <source mode="bind" path="/run/libvirt/qemu/ga-x.sock"/>
              <target type="virtio" name="org.qemu.guest_agent.0"/>
            </channel>
            <serial type="file"><source path="/l"/><target port="0"/></serial>
          </devices>
        </domain>
        """,
    )


@pytest.mark.parametrize(("arch", "machine"), [("x86_64", "pc"), ("i686", "pc"), ("ppc64le", None)])
def test_machine_only_for_pc_archs(arch: str, machine: str | None) -> None:
    xml = domxml.build_domain(VdsSpec(name="VPS1(1.2)", vcpus=1, memory_mib=64, arch=arch))
    type_el = ET.fromstring(xml).find("os/type")
    assert type_el is not None
    assert type_el.get("machine") == machine


def test_kernel_without_initrd_or_cmdline_or_serial() -> None:
    xml = domxml.build_domain(
        VdsSpec(name="VPS1(1.2)", vcpus=1, memory_mib=64), boot=DirectBoot(kernel=Path("/k"))
    )
    root = ET.fromstring(xml)
    assert [c.tag for c in root.find("os")] == ["type", "kernel"]  # type: ignore[union-attr]
    assert root.find("devices/serial") is None
    assert domxml.direct_boot(xml) == DirectBoot(kernel=Path("/k"))


def test_agent_socket_must_be_absolute_and_short() -> None:
    spec = VdsSpec(name="VPS1(1.2)", vcpus=1, memory_mib=64)
    with pytest.raises(InvalidInput, match="an absolute path is needed"):
        domxml.build_domain(spec, agent_socket="run/x.sock")
    ok = "/" + "a" * 106
    assert domxml.agent_socket(domxml.build_domain(spec, agent_socket=ok)) == ok
    with pytest.raises(InvalidInput) as exc:
        domxml.build_domain(spec, agent_socket=ok + "a")
    assert str(exc.value) == (
        f"guest agent socket: value {ok + 'a'!r}: 108 bytes, a UNIX socket path holds 107; "
        "the node's socket directory is too deep"
    )


BRIDGED = f"""
<domain type="kvm">
  <name>VPS7(1.2)</name>
  <metadata>
    <ipsinfra:vds xmlns:ipsinfra="{NS}">
      <ipsinfra:nic mac="52:54:00:00:00:07" bridge="br0"/>
      <ipsinfra:description>old text</ipsinfra:description>
    </ipsinfra:vds>
  </metadata>
  <memory unit="MiB">64</memory>
  <currentMemory unit="MiB">32</currentMemory>
  <vcpu>1</vcpu>
  <devices>
    <disk type="file" device="cdrom"><source file="/iso/a.iso"/><target dev="hdc" bus="ide"/></disk>
    <disk type="file" device="disk"><source file="/img/a.qcow2"/><target dev="vda" bus="virtio"/></disk>
    <disk type="block"><source dev="/dev/vg/b"/><target dev="vdb" bus="virtio"/></disk>
    <disk type="volume" device="disk"><source pool="p" volume="vol-c"/><target dev="vdc"/></disk>
    <disk type="file" device="disk"><target dev="vdd"/></disk>
    <disk type="file" device="disk"><source file="/img/nodev.qcow2"/></disk>
    <disk type="file" device="disk"><source file="/img/emptydev.qcow2"/><target dev=""/></disk>
    <disk type="file" device="floppy"><source file="/f.img"/><target dev="fda"/></disk>
    <interface type="bridge"><mac address="52:54:00:00:00:07"/><source bridge="br0"/></interface>
    <interface type="user"><mac address="52:54:00:00:00:0A"/></interface>
    <interface type="network"><mac address="52:54:00:00:00:0b"/><source network="default"/></interface>
    <interface type="bridge"><source bridge="br0"/></interface>
  </devices>
</domain>
"""


def test_disk_devices_are_the_real_disks_in_order() -> None:
    assert domxml.disk_devices(BRIDGED) == [
        DiskDevice(target="vda", source="/img/a.qcow2"),
        DiskDevice(target="vdb", source="/dev/vg/b"),
        DiskDevice(target="vdc", source="vol-c"),
        DiskDevice(target="vdd", source=None),
    ]
    assert domxml.disk_devices("<domain><devices/></domain>") == []


def test_with_bridge_moves_every_nic() -> None:
    got = domxml.with_bridge(BRIDGED, "vmbr9")
    root = ET.fromstring(got)
    assert [
        (i.get("type"), (i.find("source").attrib if i.find("source") is not None else None))  # type: ignore[union-attr]
        for i in root.findall("devices/interface")
    ] == [
        ("bridge", {"bridge": "vmbr9"}),
        ("user", None),
        ("network", {"network": "default"}),  # not a bridge: its source is left alone
        ("bridge", {"bridge": "vmbr9"}),
    ]
    meta = root.find(f"metadata/{{{NS}}}vds")
    assert meta is not None
    assert [tree(n) for n in meta.findall(f"{{{NS}}}nic")] == [
        (f"{{{NS}}}nic", (("bridge", "vmbr9"), ("mac", "52:54:00:00:00:07")), "", ()),
        (f"{{{NS}}}nic", (("bridge", "vmbr9"), ("mac", "52:54:00:00:00:0a")), "", ()),
        (f"{{{NS}}}nic", (("bridge", "vmbr9"), ("mac", "52:54:00:00:00:0b")), "", ()),
    ]
    # everything else unchanged
    assert tree(root.find("devices/disk")) == tree(ET.fromstring(BRIDGED).find("devices/disk"))  # type: ignore[arg-type]
    assert meta.findtext(f"{{{NS}}}description") == "old text"


def test_with_bridge_on_a_domain_without_metadata() -> None:
    xml = (
        '<domain><name>x</name><devices><interface type="bridge"><mac address="52:54:00:00:00:01"/>'
        '<source bridge="br0"/></interface></devices></domain>'
    )
    same(
        domxml.with_bridge(xml, "br5"),
        f"""<domain xmlns:ipsinfra="{NS}"><name>x</name>
        <devices>
          <interface type="bridge"><mac address="52:54:00:00:00:01"/><source bridge="br5"/></interface>
        </devices>
        <metadata><ipsinfra:vds><ipsinfra:nic mac="52:54:00:00:00:01" bridge="br5"/></ipsinfra:vds></metadata>
        </domain>""",
    )
    # metadata present but no ipsinfra element
    with_other = xml.replace("<name>x</name>", "<name>x</name><metadata><other/></metadata>")
    root = ET.fromstring(domxml.with_bridge(with_other, "br5"))
    assert [c.tag for c in root.find("metadata")] == ["other", f"{{{NS}}}vds"]  # type: ignore[union-attr]


def test_with_description_replaces_adds_and_removes() -> None:
    def text_of(xml: str) -> list[str | None]:
        return [e.text for e in ET.fromstring(xml).iter(f"{{{NS}}}description")]

    assert text_of(domxml.with_description(BRIDGED, "new text")) == ["new text"]
    assert text_of(domxml.with_description(BRIDGED, "")) == []
    removed = ET.fromstring(domxml.with_description(BRIDGED, ""))
    assert [c.tag for c in removed.find(f"metadata/{{{NS}}}vds")] == [f"{{{NS}}}nic"]  # type: ignore[union-attr]
    bare = "<domain><name>x</name></domain>"
    same(
        domxml.with_description(bare, "hello"),
        f'<domain xmlns:ipsinfra="{NS}"><name>x</name><metadata><ipsinfra:vds>'
        "<ipsinfra:description>hello</ipsinfra:description></ipsinfra:vds></metadata></domain>",
    )
    same(
        domxml.with_description(bare, ""),
        f'<domain xmlns:ipsinfra="{NS}"><name>x</name><metadata><ipsinfra:vds/></metadata></domain>',
    )


def test_with_memory_sets_both_in_kib() -> None:
    root = ET.fromstring(domxml.with_memory(BRIDGED, 2048))
    assert tree(root.find("memory")) == ("memory", (("unit", "KiB"),), "2097152", ())  # type: ignore[arg-type]
    assert tree(root.find("currentMemory")) == ("currentMemory", (("unit", "KiB"),), "2097152", ())  # type: ignore[arg-type]
    bare = ET.fromstring(domxml.with_memory("<domain><name>x</name></domain>", 16))
    assert tree(bare) == (
        "domain",
        (),
        "",
        (("name", (), "x", ()), ("memory", (("unit", "KiB"),), "16384", ())),
    )
    with pytest.raises(InvalidInput) as exc:
        domxml.with_memory(BRIDGED, 15)
    assert str(exc.value) == "memory_mib: value 15: at least 16"


def test_with_vcpus_and_name() -> None:
    xml = '<domain><name>a</name><vcpu current="1" cpuset="0-3">4</vcpu></domain>'
    same(domxml.with_vcpus(xml, 2, None), '<domain><name>a</name><vcpu cpuset="0-3">2</vcpu></domain>')
    same(domxml.with_vcpus(xml, 1, "1-7"), '<domain><name>a</name><vcpu cpuset="1-7">1</vcpu></domain>')
    same(domxml.with_vcpus("<domain/>", 3, None), '<domain><vcpu placement="static">3</vcpu></domain>')
    with pytest.raises(InvalidInput, match="vcpus: value 0: at least 1"):
        domxml.with_vcpus(xml, 0, None)
    same(domxml.with_name(xml, "b"), '<domain><name>b</name><vcpu current="1" cpuset="0-3">4</vcpu></domain>')
    same(domxml.with_name("<domain/>", "b"), "<domain><name>b</name></domain>")


def test_with_vnc_listen_replaces_the_address_and_frees_an_auto_port() -> None:
    xml = (
        '<domain><devices><graphics type="spice"/><graphics type="vnc" port="5901" autoport="yes" '
        'listen="1.1.1.1"><listen type="address" address="1.1.1.1"/></graphics></devices></domain>'
    )
    same(
        domxml.with_vnc_listen(xml, "2.2.2.2"),  # type: ignore[arg-type]
        '<domain><devices><graphics type="spice"/><graphics type="vnc" port="-1" autoport="yes" '
        'listen="2.2.2.2"><listen type="address" address="2.2.2.2"/></graphics></devices></domain>',
    )
    fixed = xml.replace('autoport="yes"', 'autoport="no"')
    assert (
        ET.fromstring(domxml.with_vnc_listen(fixed, "2.2.2.2"))
        .find(  # type: ignore[arg-type]
            "devices/graphics[@type='vnc']"
        )
        .get("port")
        == "5901"
    )  # type: ignore[union-attr]
    same(
        domxml.with_vnc_listen("<domain/>", "2.2.2.2"),  # type: ignore[arg-type]
        '<domain><devices><graphics type="vnc" port="-1" autoport="yes" listen="2.2.2.2">'
        '<listen type="address" address="2.2.2.2"/></graphics></devices></domain>',
    )


def test_recorded_disks_and_disk_size() -> None:
    xml = domxml.build_domain(SPEC)
    assert domxml.recorded_disks(xml) == [Disk(size_gib=20), Disk(name="data", size_gib=5, storage="pool2")]
    assert domxml.recorded_disks("<domain/>") == []
    grown = domxml.with_disk_size(xml, "data", 9)
    assert domxml.recorded_disks(grown) == [Disk(size_gib=20), Disk(name="data", size_gib=9, storage="pool2")]
    with pytest.raises(InvalidInput) as exc:
        domxml.with_disk_size(xml, "nope", 9)
    assert str(exc.value) == "disk: value 'nope': the domain records no such disk (recorded: disk0, data)"
    with pytest.raises(InvalidInput) as none:
        domxml.with_disk_size("<domain/>", "disk0", 9)
    assert str(none.value) == "disk: value 'disk0': the domain records no such disk (recorded: none)"


def test_vds_metadata_is_plain() -> None:
    xml = domxml.build_domain(VdsSpec(name="VPS1(1.2)", vcpus=1, memory_mib=64, ips=["1.2.3.4"], os="x"))
    same(domxml.vds_metadata(xml), "<vds><ip>1.2.3.4</ip><os>x</os></vds>")
    with pytest.raises(InvalidInput, match="no ipsinfra metadata"):
        domxml.vds_metadata("<domain/>")


def test_seed_cdrom_added_replaced_ejected_removed() -> None:
    pc = domxml.build_domain(VdsSpec(name="VPS1(1.2)", vcpus=1, memory_mib=64))
    seeded = domxml.with_seed(pc, "/var/lib/seed.iso")
    disk = ET.fromstring(seeded).find("devices/disk")
    assert disk is not None
    assert tree(disk) == tree(
        '<disk type="file" device="cdrom"><driver name="qemu" type="raw"/><source file="/var/lib/seed.iso"/>'
        '<target dev="hdc" bus="ide"/><readonly/><alias name="ua-ipsinfra-seed"/></disk>'
    )
    assert domxml.seed_path(seeded) == "/var/lib/seed.iso"
    again = domxml.with_seed(seeded, "/other.iso")
    assert len(ET.fromstring(again).findall("devices/disk")) == 1
    assert domxml.seed_path(again) == "/other.iso"
    same(
        domxml.ejected_seed_device(seeded) or "",
        '<disk type="file" device="cdrom"><driver name="qemu" type="raw"/>'
        '<target dev="hdc" bus="ide"/><readonly/><alias name="ua-ipsinfra-seed"/></disk>',
    )
    same(domxml.with_seed(seeded, None), pc)
    assert domxml.seed_path(pc) is None and domxml.ejected_seed_device(pc) is None
    q35 = domxml.build_domain(VdsSpec(name="VPS1(1.2)", vcpus=1, memory_mib=64), machine="Q35")
    target = ET.fromstring(domxml.with_seed(q35, "/s.iso")).find("devices/disk/target")
    assert target is not None and target.attrib == {"dev": "sdc", "bus": "sata"}
    used = BRIDGED  # hdc is taken by the install cdrom: the next free letter
    target = ET.fromstring(domxml.with_seed(used, "/s.iso")).find("devices/disk/target")
    assert target is not None and target.attrib == {"dev": "hdd", "bus": "ide"}


def test_agent_socket_dir_by_uri() -> None:
    assert domxml.agent_socket_dir("test:///default") == "/run/libvirt/qemu"
    assert domxml.agent_socket_dir("qemu:///system/") == "/run/libvirt/qemu"
    assert domxml.agent_socket_dir("qemu:///session", local_runtime_dir="/run/user/1/libvirt") == (
        "/run/user/1/libvirt"
    )
    assert domxml.agent_socket_dir("qemu+ssh://kvm1/session", local_runtime_dir="/x") is None
    assert domxml.agent_socket_dir("qemu://kvm1/session", local_runtime_dir="/x") is None
    assert domxml.agent_socket_dir("qemu+unix:///session?socket=relative/sock") is None
    assert domxml.agent_socket_path("/run/x", "u-1") == "/run/x/ga-u-1.sock"


def test_with_agent_socket_sets_and_clears() -> None:
    xml = domxml.build_domain(VdsSpec(name="VPS1(1.2)", vcpus=1, memory_mib=64), agent_socket="/a/old.sock")
    moved = domxml.with_agent_socket(xml, "/b/new.sock")
    assert domxml.agent_socket(moved) == "/b/new.sock"
    channel = ET.fromstring(moved).find("devices/channel")
    assert channel is not None and [c.tag for c in channel] == ["source", "target"]
    cleared = domxml.with_agent_socket(xml, None)
    assert domxml.agent_socket(cleared) is None
    assert domxml.has_guest_agent_channel(cleared) is True
    assert domxml.has_guest_agent_channel("<domain/>") is False


FOREIGN = f"""
<domain type="kvm">
  <name> VPS9(3.4) </name>
  <uuid> 11111111-2222-3333-4444-555555555555 </uuid>
  <metadata>
    <other xmlns="urn:x"><nic mac="52:54:00:00:00:99" bridge="nope"/></other>
    <ipsinfra:vds xmlns:ipsinfra="{NS}">
      <ipsinfra:nic mac="52:54:00:00:00:AC" bridge="meta-br"/>
      <ipsinfra:nic mac="52:54:00:00:00:ad"/>
      <ipsinfra:nic bridge="orphan"/>
      <ipsinfra:disk/>
      <ipsinfra:disk name="data" size_gib="7" storage="fast"/>
      <ipsinfra:ip> 10.0.0.9 </ipsinfra:ip>
      <ipsinfra:description>first</ipsinfra:description>
      <ipsinfra:description>second</ipsinfra:description>
      <ipsinfra:os>debian-12</ipsinfra:os>
      <ipsinfra:os>ubuntu</ipsinfra:os>
    </ipsinfra:vds>
  </metadata>
  <memory>2097152</memory>
  <vcpu placement="static" current="2" cpuset="0-3">4</vcpu>
  <os><type arch="aarch64" machine="virt">hvm</type></os>
  <devices>
    <interface type="bridge"><mac address="52:54:00:00:00:AB"/><source bridge="br-src"/></interface>
    <interface type="user"><mac address="52:54:00:00:00:ac"/><model type="e1000"/></interface>
    <interface type="user"><mac address="52:54:00:00:00:ad"/></interface>
    <interface type="user"><mac/></interface>
    <interface type="user"/>
    <graphics type="spice" port="5999" listen="10.9.9.9"/>
    <graphics type="vnc" port="5901">
      <listen type="network" network="default" address="10.1.1.1"/>
      <listen type="address"/>
      <listen type="address" address="10.2.2.2"/>
    </graphics>
    <graphics type="vnc" port="5902" listen="10.3.3.3"/>
  </devices>
</domain>
"""


def test_parse_a_domain_every_field() -> None:
    from ipsinfra.models import Vds, VdsState

    got = domxml.parse_domain(FOREIGN, node="n1", state=VdsState.RUNNING, autostart=True)
    assert got == Vds(
        name="VPS9(3.4)",
        order=9,
        node="n1",
        vcpus=2,
        cpuset="0-3",
        memory_mib=2048,
        disks=[Disk(name="disk0", size_gib=1), Disk(name="data", size_gib=7, storage="fast")],
        ips=["10.0.0.9"],
        nics=[
            Nic(mac="52:54:00:00:00:ab", bridge="br-src"),
            Nic(mac="52:54:00:00:00:ac", bridge="meta-br", model="e1000"),
            Nic(mac="52:54:00:00:00:ad", bridge=None),
        ],
        vnc_listen="10.2.2.2",
        vnc_port=5901,
        autostart=True,
        state=VdsState.RUNNING,
        os="debian-12",
        arch="aarch64",
        comment="first",
        description="first",
        backend_id="11111111-2222-3333-4444-555555555555",
    )
    assert domxml.domain_name(FOREIGN) == "VPS9(3.4)"


def test_parse_a_bare_domain() -> None:
    from ipsinfra.models import VdsState

    got = domxml.parse_domain(
        '<domain><name>foreign</name><vcpu>1</vcpu><memory unit="MiB">64</memory><uuid/>'
        '<devices><graphics type="vnc"/></devices></domain>',
        node="n1",
        state=VdsState.STOPPED,
        autostart=False,
    )
    assert (got.name, got.order, got.vcpus, got.memory_mib) == ("foreign", None, 1, 64)
    assert (got.vnc_listen, got.vnc_port, got.backend_id, got.os, got.arch, got.comment) == (
        None,
        None,
        None,
        None,
        None,
        "",
    )
    assert got.nics == [] and got.disks == [] and got.ips == []
    assert domxml.domain_name("<domain/>") == ""
    no_devices = domxml.parse_domain(
        "<domain><name>x</name><vcpu>1</vcpu><memory>65536</memory></domain>",
        node="n1",
        state=VdsState.STOPPED,
        autostart=False,
    )
    assert no_devices.nics == [] and no_devices.vnc_listen is None


@pytest.mark.parametrize(
    ("memory", "mib"),
    [
        ("<memory>65536</memory>", 64),
        ('<memory unit="KiB">65536</memory>', 64),
        ('<memory unit="GiB">2</memory>', 2048),
        ('<memory unit="b">67108864</memory>', 64),
        ('<memory unit="MB">1048576</memory>', 1000000),
    ],
)
def test_memory_units(memory: str, mib: int) -> None:
    from ipsinfra.models import VdsState

    xml = f"<domain><name>x</name><vcpu>1</vcpu>{memory}</domain>"
    assert domxml.parse_domain(xml, node="n", state=VdsState.STOPPED, autostart=False).memory_mib == mib


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<domain><name>x</name><vcpu>1</vcpu></domain>", "domain XML: <memory> is missing"),
        ("<domain><name>x</name><vcpu>1</vcpu><memory/></domain>", "domain XML: <memory> is missing"),
        ("<domain><name>x</name><vcpu/><memory>1</memory></domain>", "domain XML of 'x': <vcpu> is missing"),
        (
            "<domain><name>x</name><vcpu>1</vcpu><memory> </memory></domain>",
            "domain XML: <memory> is missing",
        ),
        (
            '<domain><name>x</name><vcpu>1</vcpu><memory unit="pages">1</memory></domain>',
            "domain XML: memory unit 'pages' is unknown",
        ),
        ("<domain><name>x</name><memory>1</memory></domain>", "domain XML of 'x': <vcpu> is missing"),
        (
            "<domain><name>x</name><vcpu> </vcpu><memory>1</memory></domain>",
            "domain XML of 'x': <vcpu> is missing",
        ),
        ("<domian/>", "domain XML: root element is <domian>, expected <domain>"),
    ],
)
def test_parse_errors_say_what_is_wrong(xml: str, message: str) -> None:
    from ipsinfra.models import VdsState

    with pytest.raises(InvalidInput) as exc:
        domxml.parse_domain(xml, node="n", state=VdsState.STOPPED, autostart=False)
    assert str(exc.value) == message


def test_not_well_formed_xml() -> None:
    with pytest.raises(InvalidInput) as exc:
        domxml.domain_name("<domain>")
    assert str(exc.value).startswith("domain XML: not well-formed: ")


def test_rewrites_return_text() -> None:
    xml = domxml.build_domain(SPEC, agent_socket="/a/b.sock")
    for out in (
        domxml.with_memory(xml, 32),
        domxml.with_disk_size(xml, "disk0", 3),
        domxml.with_seed(xml, "/s.iso"),
        domxml.with_seed(xml, None),
        domxml.with_agent_socket(xml, "/c/d.sock"),
        domxml.with_bridge(xml, "b"),
        domxml.with_description(xml, "d"),
        domxml.with_vcpus(xml, 1, None),
        domxml.with_name(xml, "n"),
        domxml.with_vnc_listen(xml, "1.2.3.4"),  # type: ignore[arg-type]
    ):
        assert isinstance(out, str)


def test_a_disk_after_one_without_target_is_still_listed() -> None:
    xml = (
        "<domain><devices>"
        '<disk type="file" device="disk"><source file="/a"/></disk>'
        '<disk type="file" device="disk"><source file="/b"/><target dev="vdb"/></disk>'
        "</devices></domain>"
    )
    assert domxml.disk_devices(xml) == [DiskDevice(target="vdb", source="/b")]


def test_with_agent_socket_skips_other_channels() -> None:
    xml = (
        "<domain><devices>"
        '<channel type="spicevmc"><target type="virtio" name="com.redhat.spice.0"/></channel>'
        '<channel type="pty"/>'
        f'<channel type="unix"><target type="virtio" name="{domxml.GUEST_AGENT}"/></channel>'
        "</devices></domain>"
    )
    same(
        domxml.with_agent_socket(xml, "/r/ga.sock"),
        "<domain><devices>"
        '<channel type="spicevmc"><target type="virtio" name="com.redhat.spice.0"/></channel>'
        '<channel type="pty"/>'
        '<channel type="unix"><source mode="bind" path="/r/ga.sock"/>'
        f'<target type="virtio" name="{domxml.GUEST_AGENT}"/></channel>'
        "</devices></domain>",
    )


def test_with_bridge_finds_the_recorded_nic_whatever_its_case() -> None:
    xml = (
        f'<domain><metadata><ipsinfra:vds xmlns:ipsinfra="{NS}">'
        '<ipsinfra:nic mac="52:54:00:00:00:ab" bridge="br0"/><ipsinfra:nic bridge="x"/>'
        "</ipsinfra:vds></metadata>"
        '<devices><interface type="user"><mac address="52:54:00:00:00:AB"/></interface>'
        '<interface type="user"/></devices></domain>'
    )
    meta = ET.fromstring(domxml.with_bridge(xml, "br9")).find(f"metadata/{{{NS}}}vds")
    assert meta is not None
    assert [n.attrib for n in meta] == [{"mac": "52:54:00:00:00:ab", "bridge": "br9"}, {"bridge": "x"}]


def test_metadata_defaults_for_disks() -> None:
    xml = (
        f'<domain><metadata><ipsinfra:vds xmlns:ipsinfra="{NS}"><ipsinfra:disk/>'
        "</ipsinfra:vds></metadata></domain>"
    )
    assert domxml.recorded_disks(xml) == [Disk(name="disk0", size_gib=1)]
    assert domxml.recorded_disks(domxml.with_disk_size(xml, "disk0", 4)) == [Disk(name="disk0", size_gib=4)]
    with pytest.raises(InvalidInput) as exc:
        domxml.with_disk_size(xml, "data", 4)
    assert str(exc.value) == "disk: value 'data': the domain records no such disk (recorded: disk0)"
    same(domxml.vds_metadata(xml), "<vds><disk/></vds>")


def test_vds_metadata_keeps_attributes_and_text() -> None:
    same(
        domxml.vds_metadata(domxml.build_domain(SPEC)),
        '<vds><disk name="disk0" size_gib="20"/><disk name="data" size_gib="5" storage="pool2"/>'
        '<nic mac="52:54:00:00:00:07" bridge="br0"/><ip>185.12.34.57</ip><ip>2001:db8::7</ip>'
        "<description>ipsinfra-order: 7</description><os>debian-12</os></vds>",
    )
    with pytest.raises(InvalidInput) as exc:
        domxml.vds_metadata("<domain/>")
    assert str(exc.value) == "domain XML: no ipsinfra metadata"


def test_seed_lookups_among_other_disks() -> None:
    assert domxml.seed_path(BRIDGED) is None
    assert domxml.ejected_seed_device(BRIDGED) is None
    seeded = domxml.with_seed(BRIDGED, "/s.iso")
    ejected_disk = domxml.ejected_seed_device(seeded) or ""
    ejected = seeded.replace(ET.tostring(ET.fromstring(seeded).find("devices/disk"), encoding="unicode"), "")  # type: ignore[arg-type]
    assert domxml.seed_path(ejected) is None
    no_medium = f"<domain><devices>{ejected_disk}</devices></domain>"
    assert domxml.seed_path(no_medium) is None
    same(
        domxml.with_seed("<domain><name>x</name></domain>", "/s.iso"),
        '<domain><name>x</name><devices><disk type="file" device="cdrom"><driver name="qemu" type="raw"/>'
        '<source file="/s.iso"/><target dev="hdc" bus="ide"/><readonly/><alias name="ua-ipsinfra-seed"/>'
        "</disk></devices></domain>",
    )


def test_direct_boot_reads_the_first_file_serial() -> None:
    xml = (
        "<domain><os><kernel>/k</kernel></os><devices>"
        '<serial type="pty"><source path="/dev/pts/3"/></serial>'
        '<serial type="file"/>'
        '<serial type="file"><source/></serial>'
        '<serial type="file"><source path="/var/log/a.log"/></serial>'
        '<serial type="file"><source path="/var/log/b.log"/></serial>'
        "</devices></domain>"
    )
    assert domxml.direct_boot(xml) == DirectBoot(kernel=Path("/k"), serial_log=Path("/var/log/a.log"))


def test_agent_socket_dir_reads_the_socket_parameter() -> None:
    uri = "qemu+unix:///session?socket=/run/user/1000/libvirt/libvirt-sock"
    assert domxml.agent_socket_dir(uri) == "/run/user/1000/libvirt"
    assert domxml.agent_socket_dir("qemu+ssh://kvm1/session?socket=/a/b/sock&socket=/c/d") == "/a/b"
    assert domxml.agent_socket_dir("qemu:///session", local_runtime_dir=None) is None
    assert domxml.agent_socket_dir("qemu+ssh://root@kvm1/system") == "/run/libvirt/qemu"


def test_guest_domain_type_choices() -> None:
    def caps(*guests: tuple[str, str, list[str]]) -> str:
        body = "".join(
            f"<guest><os_type>{os}</os_type><arch name='{arch}'>"
            + "".join(f"<domain type='{t}'/>" for t in types)
            + "</arch></guest>"
            for os, arch, types in guests
        )
        return f"<capabilities>{body}</capabilities>"

    assert domxml.guest_domain_type(caps(("hvm", "x86_64", ["qemu", "kvm"]))) == "kvm"
    assert domxml.guest_domain_type(caps(("hvm", "x86_64", ["xen", "qemu"]))) == "qemu"
    assert domxml.guest_domain_type(caps(("hvm", "x86_64", ["xen", "lxc"]))) == "xen"
    assert domxml.guest_domain_type(caps(("xen", "x86_64", ["kvm"]), ("hvm", "x86_64", ["lxc"]))) == "lxc"
    assert domxml.guest_domain_type(caps(("hvm", "i686", ["test"]), ("hvm", "i686", ["test"]))) == "test"
    assert domxml.guest_domain_type(caps(("hvm", "aarch64", ["kvm"])), arch="aarch64") == "kvm"
    with pytest.raises(InvalidInput) as exc:
        domxml.guest_domain_type(caps(("hvm", "i686", ["kvm"])))
    assert str(exc.value) == "capabilities: the host offers no hvm guest for arch 'x86_64'"
    with pytest.raises(InvalidInput, match="capabilities XML: not well-formed"):
        domxml.guest_domain_type("<capabilities>")
    with pytest.raises(InvalidInput):
        domxml.guest_domain_type("<capabilities><guest><os_type>hvm</os_type></guest></capabilities>")


def test_parse_domain_edges() -> None:
    from ipsinfra.models import VdsState

    xml = (
        "<domain><name>x</name><vcpu>1</vcpu><memory>65536</memory>"
        f'<metadata><ipsinfra:vds xmlns:ipsinfra="{NS}">'
        "<ipsinfra:description/><ipsinfra:description>kept</ipsinfra:description><ipsinfra:os/>"
        "</ipsinfra:vds></metadata><devices>"
        '<interface type="user"><mac address="52:54:00:00:00:01"/><model/></interface>'
        '<graphics type="vnc" listen="10.5.5.5"><listen type="address" address="10.6.6.6"/></graphics>'
        "</devices></domain>"
    )
    got = domxml.parse_domain(xml, node="n", state=VdsState.STOPPED, autostart=False)
    assert got.comment == "kept"
    assert got.os == ""
    assert got.nics == [Nic(mac="52:54:00:00:00:01", model="virtio")]
    assert str(got.vnc_listen) == "10.5.5.5"  # the attribute wins over the <listen> child
    assert got.vnc_port is None
    assert got.backend_id is None


@pytest.mark.parametrize("name", ["<name/>", "<name> </name>", ""])
def test_a_domain_without_a_name_is_refused(name: str) -> None:
    from ipsinfra.models import VdsState

    with pytest.raises(ValueError, match="name"):
        domxml.parse_domain(
            f"<domain>{name}<vcpu>1</vcpu><memory>65536</memory></domain>",
            node="n",
            state=VdsState.STOPPED,
            autostart=False,
        )


def test_with_bridge_ignores_a_nic_without_address() -> None:
    xml = '<domain><devices><interface type="user"><mac/></interface></devices></domain>'
    same(
        domxml.with_bridge(xml, "br1"),
        f'<domain xmlns:ipsinfra="{NS}"><devices><interface type="user"><mac/></interface></devices>'
        "<metadata><ipsinfra:vds/></metadata></domain>",
    )


def test_vds_metadata_copies_the_elements_own_attributes_and_text() -> None:
    xml = (
        f'<domain><metadata><ipsinfra:vds xmlns:ipsinfra="{NS}" v="1">hi<ipsinfra:ip>1.2.3.4</ipsinfra:ip>'
        "</ipsinfra:vds></metadata></domain>"
    )
    same(domxml.vds_metadata(xml), '<vds v="1">hi<ip>1.2.3.4</ip></vds>')


def test_a_remote_session_without_socket_parameter_has_no_local_dir() -> None:
    assert domxml.agent_socket_dir("qemu+unix:///session", local_runtime_dir="/x") is None


def test_no_free_target_for_the_seed() -> None:
    disks = "".join(
        f'<disk type="file" device="disk"><target dev="hd{c}"/></disk>' for c in "cdbefghijklmnopqrstuvwxyz"
    )
    with pytest.raises(InvalidInput) as exc:
        domxml.with_seed(f"<domain><devices>{disks}</devices></domain>", "/s.iso")
    assert str(exc.value) == "domain XML: no free ide target for the seed cdrom"


def test_guest_domain_type_skips_a_guest_without_arch() -> None:
    caps = (
        "<capabilities><guest><os_type>hvm</os_type></guest>"
        "<guest><os_type>hvm</os_type><arch name='x86_64'><domain type='qemu'/></arch></guest></capabilities>"
    )
    assert domxml.guest_domain_type(caps) == "qemu"


def test_seed_on_a_domain_without_machine_type() -> None:
    arm = domxml.build_domain(VdsSpec(name="VPS1(1.2)", vcpus=1, memory_mib=64, arch="aarch64"))
    target = ET.fromstring(domxml.with_seed(arm, "/s.iso")).find("devices/disk/target")
    assert target is not None and target.attrib == {"dev": "hdc", "bus": "ide"}
