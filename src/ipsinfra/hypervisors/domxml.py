"""libvirt domain XML <-> ipsinfra models, in one place, as pure functions.

Nothing here opens a connection: :mod:`ipsinfra.hypervisors.libvirt` fetches
the XML and hands it over. House data libvirt has no element for (the disks of
the spec, the bridge of a NIC that runs on slirp in session mode, the IPs, the
description) lives in ``<metadata>`` under the :data:`NS` namespace::

    <metadata>
      <ipsinfra:vds xmlns:ipsinfra="https://ipsinfra.dev/xmlns/vds/1">
        <ipsinfra:disk name="disk0" size_gib="1"/>
        <ipsinfra:nic mac="52:54:00:00:e9:01" bridge="br0"/>
        <ipsinfra:ip>185.12.34.57</ipsinfra:ip>
        <ipsinfra:description>order 1001</ipsinfra:description>
      </ipsinfra:vds>
    </metadata>

>>> xml = build_domain(VdsSpec(name="VPS7(1.2)", vcpus=2, cpuset="1-3", memory_mib=64))
>>> vds = parse_domain(xml, node="n1", state=VdsState.STOPPED, autostart=False)
>>> (vds.name, vds.order, vds.vcpus, vds.cpuset, vds.memory_mib)
('VPS7(1.2)', 7, 2, '1-3', 64)
"""

from __future__ import annotations

import functools
import ipaddress
import posixpath
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ipsinfra import naming
from ipsinfra.errors import InvalidInput
from ipsinfra.models import Disk, IPAddress, Nic, Vds, VdsSpec, VdsState

NS = "https://ipsinfra.dev/xmlns/vds/1"
NS_PREFIX = "ipsinfra"
GUEST_AGENT = "org.qemu.guest_agent.0"
NicBackend = Literal["bridge", "user"]
#: ``sun_path`` holds 108 bytes with the trailing NUL (unix(7)).
UNIX_PATH_MAX = 107
#: The system-mode qemu driver's state directory (src/qemu/qemu_conf.c
#: ``virQEMUDriverConfigNew``: ``stateDir`` = ``$runstatedir/libvirt/qemu``), which the
#: daemon creates at start in every libvirt version. Its channel directory moved
#: (``/var/lib/libvirt/qemu/channel/target`` in 9.0, ``<stateDir>/channel`` later), so
#: ipsinfra does not rely on it.
SYSTEM_SOCKET_DIR = "/run/libvirt/qemu"
#: The user alias of the NoCloud seed's cdrom (libvirt keeps ``ua-`` aliases in the config).
SEED_ALIAS = "ua-ipsinfra-seed"

# libvirt's virDomainState / reason numbers (stable ABI; kept here so this
# module needs no libvirt import).
_RUNNING, _BLOCKED, _PAUSED, _SHUTDOWN, _SHUTOFF, _CRASHED, _PMSUSPENDED = 1, 2, 3, 4, 5, 6, 7
_PAUSED_MIGRATION, _PAUSED_STARTING_UP, _PAUSED_POSTCOPY = 2, 11, 12
_RUNNING_MIGRATED, _RUNNING_MIGRATION_CANCELED = 2, 6

_UNIT_KIB = {
    "b": 1 / 1024,
    "bytes": 1 / 1024,
    "kb": 1000 / 1024,
    "k": 1,
    "kib": 1,
    "mb": 1000**2 / 1024,
    "m": 1024,
    "mib": 1024,
    "gb": 1000**3 / 1024,
    "g": 1024**2,
    "gib": 1024**2,
}

ET.register_namespace(NS_PREFIX, NS)


@dataclass(frozen=True)
class DirectBoot:
    """Direct kernel boot: ``<os><kernel/><initrd/><cmdline/></os>`` (the lab's tiny guest).

    The paths are read by qemu on the NODE (as the user qemu runs as).
    ``serial_log``: a file on the node the guest's ``ttyS0`` is written to
    (``<serial type="file">``); None adds no serial port.
    """

    kernel: Path
    initrd: Path | None = None
    cmdline: str = ""
    serial_log: Path | None = None


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


_TAG_NIC, _TAG_DISK, _TAG_IP, _TAG_DESCRIPTION, _TAG_OS = (
    _q(t) for t in ("nic", "disk", "ip", "description", "os")
)


def state_from_libvirt(state: int, reason: int = 0) -> VdsState:
    """Map ``virDomainGetState``'s (state, reason) to a :class:`VdsState`.

    >>> state_from_libvirt(5)
    <VdsState.STOPPED: 'stopped'>
    >>> state_from_libvirt(3, 2)
    <VdsState.MIGRATING: 'migrating'>
    """
    if state == _PAUSED:
        if reason in (_PAUSED_MIGRATION, _PAUSED_POSTCOPY):
            return VdsState.MIGRATING
        if reason == _PAUSED_STARTING_UP:
            return VdsState.STARTING
        return VdsState.PAUSED
    return _STATES.get(state, VdsState.UNKNOWN)


_STATES = {
    _RUNNING: VdsState.RUNNING,
    _BLOCKED: VdsState.RUNNING,
    _SHUTDOWN: VdsState.RUNNING,  # shutting down: still running until it is off
    _SHUTOFF: VdsState.STOPPED,
    _CRASHED: VdsState.CRASHED,
    _PMSUSPENDED: VdsState.PAUSED,
}


@functools.lru_cache(maxsize=4096)
def _ip(text: str) -> IPAddress:
    """An address of the XML; the same few (a node's VNC listen) recur in every domain (B4)."""
    return ipaddress.ip_address(text)


def _root(xml: str) -> ET.Element:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InvalidInput(f"domain XML: not well-formed: {exc}") from None
    if root.tag != "domain":
        raise InvalidInput(f"domain XML: root element is <{root.tag}>, expected <domain>")
    return root


def _to_mib(elem: ET.Element | None) -> int:
    if elem is None or not (elem.text or "").strip():
        raise InvalidInput("domain XML: <memory> is missing")
    unit = elem.get("unit", "KiB").lower()
    if unit not in _UNIT_KIB:
        raise InvalidInput(f"domain XML: memory unit {unit!r} is unknown")
    return round(int(elem.text or "0") * _UNIT_KIB[unit] / 1024)


def _meta(root: ET.Element) -> ET.Element | None:
    metadata = root.find("metadata")
    return None if metadata is None else metadata.find(_q("vds"))


def _vnc(root: ET.Element) -> ET.Element | None:
    for graphics in root.findall("devices/graphics"):
        if graphics.get("type") == "vnc":
            return graphics
    return None


def domain_name(xml: str) -> str:
    """The ``<name>`` of a domain XML."""
    return (_root(xml).findtext("name") or "").strip()


def parse_domain(xml: str, *, node: str, state: VdsState, autostart: bool) -> Vds:
    """Turn a domain's XML (``virDomainGetXMLDesc``) into a :class:`Vds`.

    State and autostart are not in the XML: the caller passes what libvirt's
    bulk calls said. A name that is not a house name is kept (``order`` None).
    One pass over the top level and one over ``<devices>`` (no ElementPath):
    the audit parses every domain of every node (B4).
    """
    root = _root(xml)
    top: dict[str, ET.Element] = {}
    for child in root:
        top.setdefault(child.tag, child)
    name_el = top.get("name")
    name = (name_el.text or "").strip() if name_el is not None else ""
    vcpu = top.get("vcpu")
    if vcpu is None or not (vcpu.text or "").strip():
        raise InvalidInput(f"domain XML of {name!r}: <vcpu> is missing")
    vcpus = int(vcpu.get("current") or vcpu.text or "0")
    metadata = top.get("metadata")
    meta = None if metadata is None else metadata.find(_q("vds"))
    meta_bridges: dict[str, str] = {}
    disks: list[Disk] = []
    ips: list[IPAddress] = []
    comment = ""
    os_name: str | None = None
    if meta is not None:
        for el in meta:
            tag = el.tag
            if tag == _TAG_NIC:
                if el.get("mac") and el.get("bridge"):
                    meta_bridges[el.get("mac", "").lower()] = el.get("bridge", "")
            elif tag == _TAG_DISK:
                disks.append(
                    Disk(
                        name=el.get("name", "disk0"),
                        size_gib=int(el.get("size_gib", "1")),
                        storage=el.get("storage"),
                    )
                )
            elif tag == _TAG_IP:
                ips.append(_ip((el.text or "").strip()))
            elif tag == _TAG_DESCRIPTION and not comment:
                comment = el.text or ""
            elif tag == _TAG_OS and os_name is None:
                os_name = el.text or ""
    nics: list[Nic] = []
    graphics: ET.Element | None = None
    devices = top.get("devices")
    for dev in devices if devices is not None else ():
        if dev.tag == "interface":
            mac_el = dev.find("mac")
            if mac_el is None or not mac_el.get("address"):
                continue
            mac = mac_el.get("address", "").lower()
            source = dev.find("source")
            bridge = source.get("bridge") if source is not None else None
            model = dev.find("model")
            nics.append(
                Nic(
                    mac=mac,
                    bridge=bridge or meta_bridges.get(mac),
                    model=model.get("type", "virtio") if model is not None else "virtio",
                )
            )
        elif dev.tag == "graphics" and graphics is None and dev.get("type") == "vnc":
            graphics = dev
    vnc_listen: IPAddress | None = None
    vnc_port: int | None = None
    if graphics is not None:
        listen = graphics.get("listen")
        if listen is None:
            for el in graphics.iter("listen"):
                if el.get("type") == "address" and el.get("address"):
                    listen = el.get("address")
                    break
        if listen:
            vnc_listen = _ip(listen)
        if graphics.get("port") is not None:
            vnc_port = int(graphics.get("port", "-1"))
    os_el = top.get("os")
    os_type = os_el.find("type") if os_el is not None else None
    order = naming.order_of(name)
    uuid_el = top.get("uuid")
    return Vds(
        name=name,
        order=order,
        node=node,
        vcpus=vcpus,
        cpuset=vcpu.get("cpuset"),
        memory_mib=_to_mib(top.get("memory")),
        disks=disks,
        ips=ips,
        nics=nics,
        vnc_listen=vnc_listen,
        vnc_port=vnc_port,
        autostart=autostart,
        state=state,
        os=os_name,
        arch=os_type.get("arch") if os_type is not None else None,
        comment=comment,
        description=comment,
        backend_id=((uuid_el.text or "").strip() if uuid_el is not None else "") or None,
    )


def _vnc_element(parent: ET.Element, address: IPAddress | None) -> ET.Element:
    graphics = ET.SubElement(parent, "graphics", type="vnc", port="-1", autoport="yes")
    if address is not None:
        graphics.set("listen", str(address))
        ET.SubElement(graphics, "listen", type="address", address=str(address))
    return graphics


def build_domain(
    spec: VdsSpec,
    *,
    domain_type: str = "kvm",
    nic_backend: NicBackend = "bridge",
    machine: str = "pc",
    boot: DirectBoot | None = None,
    uuid: str | None = None,
    agent_socket: str | None = None,
) -> str:
    """Domain XML for a spec (``virDomainDefineXML`` input).

    ``nic_backend="user"`` gives slirp NICs (session-mode qemu cannot use
    bridges); the MAC stays and the bridge is kept in the metadata.
    Disks are recorded in the metadata only: no image is created.
    ``boot`` boots a kernel (+ initrd) directly (see :class:`DirectBoot`).
    ``uuid``: the domain's UUID (libvirt makes one when None).
    ``agent_socket``: the guest-agent channel's socket path on the node (see
    :func:`agent_socket_path`); None lets libvirt build it from the domain
    name, which can pass the UNIX socket path limit.
    """
    root = ET.Element("domain", type=domain_type)
    ET.SubElement(root, "name").text = spec.name
    if uuid is not None:
        ET.SubElement(root, "uuid").text = uuid
    meta = ET.SubElement(ET.SubElement(root, "metadata"), _q("vds"))
    for disk in spec.disks:
        attrs = {"name": disk.name, "size_gib": str(disk.size_gib)}
        if disk.storage:
            attrs["storage"] = disk.storage
        ET.SubElement(meta, _q("disk"), attrs)
    for nic in spec.nics:
        if nic.bridge:
            ET.SubElement(meta, _q("nic"), mac=nic.mac, bridge=nic.bridge)
    for ip in spec.ips:
        ET.SubElement(meta, _q("ip")).text = str(ip)
    if spec.description:
        ET.SubElement(meta, _q("description")).text = spec.description
    if spec.os:
        ET.SubElement(meta, _q("os")).text = spec.os
    ET.SubElement(root, "memory", unit="KiB").text = str(spec.memory_mib * 1024)
    vcpu = ET.SubElement(root, "vcpu", placement="static")
    if spec.cpuset:
        vcpu.set("cpuset", spec.cpuset)
    vcpu.text = str(spec.vcpus)
    os_el = ET.SubElement(root, "os")
    type_attrs = {"arch": spec.arch}
    if spec.arch in ("x86_64", "i686"):
        type_attrs["machine"] = machine
    ET.SubElement(os_el, "type", type_attrs).text = "hvm"
    if boot is not None:
        ET.SubElement(os_el, "kernel").text = str(boot.kernel)
        if boot.initrd is not None:
            ET.SubElement(os_el, "initrd").text = str(boot.initrd)
        if boot.cmdline:
            ET.SubElement(os_el, "cmdline").text = boot.cmdline
    ET.SubElement(ET.SubElement(root, "features"), "acpi")
    ET.SubElement(root, "on_poweroff").text = "destroy"
    ET.SubElement(root, "on_reboot").text = "restart"
    ET.SubElement(root, "on_crash").text = "destroy"
    devices = ET.SubElement(root, "devices")
    for nic in spec.nics:
        if nic_backend == "bridge" and nic.bridge:
            iface = ET.SubElement(devices, "interface", type="bridge")
            ET.SubElement(iface, "mac", address=nic.mac)
            ET.SubElement(iface, "source", bridge=nic.bridge)
        else:
            iface = ET.SubElement(devices, "interface", type="user")
            ET.SubElement(iface, "mac", address=nic.mac)
        ET.SubElement(iface, "model", type=nic.model)
    _vnc_element(devices, spec.vnc_listen)
    channel = ET.SubElement(devices, "channel", type="unix")
    if agent_socket is not None:
        ET.SubElement(channel, "source", mode="bind", path=_checked_socket(agent_socket))
    ET.SubElement(channel, "target", type="virtio", name=GUEST_AGENT)
    if boot is not None and boot.serial_log is not None:
        serial = ET.SubElement(devices, "serial", type="file")
        ET.SubElement(serial, "source", path=str(boot.serial_log))
        ET.SubElement(serial, "target", port="0")
    return ET.tostring(root, encoding="unicode")


def direct_boot(xml: str) -> DirectBoot | None:
    """The direct kernel boot of a domain XML (None when it boots from BIOS/disk).

    The inverse of :func:`build_domain`'s ``boot``: the first file-backed
    ``<serial>`` is read back as ``serial_log``.
    """
    root = _root(xml)
    kernel = (root.findtext("os/kernel") or "").strip()
    if not kernel:
        return None
    initrd = (root.findtext("os/initrd") or "").strip()
    serial_log: Path | None = None
    for serial in root.findall("devices/serial"):
        source = serial.find("source")
        if serial.get("type") == "file" and source is not None and source.get("path"):
            serial_log = Path(source.get("path", ""))
            break
    return DirectBoot(
        kernel=Path(kernel),
        initrd=Path(initrd) if initrd else None,
        cmdline=(root.findtext("os/cmdline") or "").strip(),
        serial_log=serial_log,
    )


# --- the guest agent's socket (issue 19) -----------------------------------------
def agent_socket_dir(uri: str, *, local_runtime_dir: str | None = None) -> str | None:
    """Where the node's daemon can bind guest-agent sockets, by its URI (None: leave it to libvirt).

    libvirt names the socket after the domain when the channel has no path
    (``<channelTargetDir>/domain-<id>-<name>/org.qemu.guest_agent.0``,
    qemu_domain.c ``qemuDomainPrepareChannel``); with house names under a deep
    session root that passes the 108-byte ``sun_path``. A short explicit path
    goes in a directory the DAEMON can write: libvirt binds a ``mode="bind"``
    channel socket itself and hands qemu the open descriptor (qemu's command
    line shows ``-chardev socket,id=charchannel0,fd=N,server=on``; seen with
    libvirt 9.0), so qemu never opens the path:

    * ``.../system``: :data:`SYSTEM_SOCKET_DIR`, the qemu driver's state dir;
    * a ``socket=`` parameter (a unix transport, e.g. a session daemon): that
      socket's directory, which the daemon created and writes;
    * a local ``qemu:///session``: ``local_runtime_dir`` (the caller's
      ``$XDG_RUNTIME_DIR/libvirt``, where that daemon puts its socket);
    * ``test:///``: :data:`SYSTEM_SOCKET_DIR` (the test driver only records it);
    * anything else (a remote session daemon): None.

    >>> agent_socket_dir("qemu+ssh://root@kvm1/system")
    '/run/libvirt/qemu'
    >>> agent_socket_dir("qemu+unix:///session?socket=/run/user/1000/libvirt/libvirt-sock")
    '/run/user/1000/libvirt'
    """
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme == "test":
        return SYSTEM_SOCKET_DIR
    socket = urllib.parse.parse_qs(parts.query).get("socket")
    path = parts.path.rstrip("/")
    if path == "/system":
        return SYSTEM_SOCKET_DIR
    if socket and socket[0].startswith("/"):
        return posixpath.dirname(socket[0])
    if path == "/session" and not parts.netloc and "+" not in parts.scheme:
        return local_runtime_dir
    return None


def agent_socket_path(directory: str, uuid: str) -> str:
    """``<directory>/ga-<uuid>.sock``: unique per domain on the node, whatever its name.

    Raises InvalidInput when even this passes the UNIX socket path limit.

    >>> agent_socket_path(SYSTEM_SOCKET_DIR, "2b3c4d5e-0000-4000-8000-000000000001")
    '/run/libvirt/qemu/ga-2b3c4d5e-0000-4000-8000-000000000001.sock'
    """
    return _checked_socket(posixpath.join(directory, f"ga-{uuid}.sock"))


def _checked_socket(path: str) -> str:
    if not path.startswith("/"):
        raise InvalidInput(f"guest agent socket: value {path!r}: an absolute path is needed")
    if len(path.encode()) > UNIX_PATH_MAX:
        raise InvalidInput(
            f"guest agent socket: value {path!r}: {len(path.encode())} bytes, a UNIX socket path "
            f"holds {UNIX_PATH_MAX}; the node's socket directory is too deep"
        )
    return path


def agent_socket(xml: str) -> str | None:
    """The guest-agent channel's socket path as the XML has it (None: libvirt picks it at start)."""
    for channel in _root(xml).findall("devices/channel"):
        target = channel.find("target")
        source = channel.find("source")
        if target is not None and target.get("name") == GUEST_AGENT and source is not None:
            return source.get("path")
    return None


def with_agent_socket(xml: str, path: str | None) -> str:
    """The same domain XML with the guest-agent socket at ``path`` (None: libvirt's own path).

    Migration uses it: the socket directory is the TARGET node's.
    """
    root = _root(xml)
    for channel in root.findall("devices/channel"):
        target = channel.find("target")
        if target is None or target.get("name") != GUEST_AGENT:
            continue
        for source in channel.findall("source"):
            channel.remove(source)
        if path is not None:
            channel.insert(0, ET.Element("source", mode="bind", path=_checked_socket(path)))
    return ET.tostring(root, encoding="unicode")


# --- the NoCloud seed cdrom ----------------------------------------------------
def _seed_target(root: ET.Element) -> tuple[str, str]:
    """(dev, bus) for the seed: IDE on i440fx (``pc``), SATA on q35 (which has no IDE)."""
    type_el = root.find("os/type")
    machine = (type_el.get("machine", "") if type_el is not None else "").lower()
    used = {t.get("dev") for t in root.findall("devices/disk/target")}
    bus, prefix = ("sata", "sd") if "q35" in machine else ("ide", "hd")
    for letter in "cdbefghijklmnopqrstuvwxyz":  # hdc: the classic secondary-master cdrom
        if f"{prefix}{letter}" not in used:
            return f"{prefix}{letter}", bus
    raise InvalidInput(f"domain XML: no free {bus} target for the seed cdrom")


def seed_path(xml: str) -> str | None:
    """The NoCloud seed's file on the node (the cdrom aliased :data:`SEED_ALIAS`);
    None without a seed or with its medium ejected."""
    for disk in _root(xml).findall("devices/disk"):
        alias = disk.find("alias")
        if alias is not None and alias.get("name") == SEED_ALIAS:
            source = disk.find("source")
            return source.get("file") if source is not None else None
    return None


def with_seed(xml: str, path: str | None) -> str:
    """The same domain XML with the NoCloud seed cdrom reading ``path`` (None: the cdrom removed).

    A read-only raw cdrom, user alias :data:`SEED_ALIAS`; an existing seed
    cdrom is replaced in place.
    """
    root = _root(xml)
    devices = root.find("devices")
    if devices is None:
        devices = ET.SubElement(root, "devices")
    for disk in devices.findall("disk"):
        alias = disk.find("alias")
        if alias is not None and alias.get("name") == SEED_ALIAS:
            devices.remove(disk)
    if path is None:
        return ET.tostring(root, encoding="unicode")
    dev, bus = _seed_target(root)
    disk = ET.Element("disk", type="file", device="cdrom")
    ET.SubElement(disk, "driver", name="qemu", type="raw")
    ET.SubElement(disk, "source", file=path)
    ET.SubElement(disk, "target", dev=dev, bus=bus)
    ET.SubElement(disk, "readonly")
    ET.SubElement(disk, "alias", name=SEED_ALIAS)
    # disks come first among the devices (libvirt's order; it would sort them anyway)
    devices.insert(0, disk)
    return ET.tostring(root, encoding="unicode")


def ejected_seed_device(xml: str) -> str | None:
    """The seed cdrom with no medium (``virDomainUpdateDeviceFlags`` input to eject it live), or None."""
    for disk in _root(xml).findall("devices/disk"):
        alias = disk.find("alias")
        if alias is not None and alias.get("name") == SEED_ALIAS:
            for source in disk.findall("source"):
                disk.remove(source)
            return ET.tostring(disk, encoding="unicode")
    return None


def has_guest_agent_channel(xml: str) -> bool:
    """Whether the domain has the qemu guest agent's virtio channel (``setUserPassword`` needs it)."""
    return any(t.get("name") == GUEST_AGENT for t in _root(xml).findall("devices/channel/target"))


def with_vnc_listen(xml: str, address: IPAddress) -> str:
    """The same domain XML with VNC listening on ``address`` (a VNC device is added if absent)."""
    root = _root(xml)
    devices = root.find("devices")
    if devices is None:
        devices = ET.SubElement(root, "devices")
    graphics = _vnc(root)
    if graphics is None:
        _vnc_element(devices, address)
    else:
        graphics.set("listen", str(address))
        for el in graphics.findall("listen"):
            graphics.remove(el)
        ET.SubElement(graphics, "listen", type="address", address=str(address))
        if graphics.get("autoport") == "yes":
            graphics.set("port", "-1")  # a live port would pin the old node's port
    return ET.tostring(root, encoding="unicode")


def with_vcpus(xml: str, vcpus: int, cpuset: str | None) -> str:
    """The same domain XML with ``vcpus`` vCPUs; ``cpuset`` replaces the affinity when given."""
    if vcpus < 1:
        raise InvalidInput(f"vcpus: value {vcpus!r}: at least 1")
    root = _root(xml)
    vcpu = root.find("vcpu")
    if vcpu is None:
        vcpu = ET.SubElement(root, "vcpu", placement="static")
    vcpu.text = str(vcpus)
    vcpu.attrib.pop("current", None)
    if cpuset is not None:
        vcpu.set("cpuset", cpuset)
    return ET.tostring(root, encoding="unicode")


def with_name(xml: str, name: str) -> str:
    """The same domain XML under another ``<name>`` (migration's DEST_XML)."""
    root = _root(xml)
    el = root.find("name")
    if el is None:
        el = ET.SubElement(root, "name")
    el.text = name
    return ET.tostring(root, encoding="unicode")


def with_bridge(xml: str, bridge: str) -> str:
    """Every NIC moved to ``bridge`` (a bridged NIC's source; a user-mode NIC's
    recorded bridge in the metadata), MACs unchanged."""
    root = _root(xml)
    metadata = root.find("metadata")
    if metadata is None:
        metadata = ET.SubElement(root, "metadata")
    meta = metadata.find(_q("vds"))
    if meta is None:
        meta = ET.SubElement(metadata, _q("vds"))
    recorded = {n.get("mac", "").lower(): n for n in meta.findall(_q("nic"))}
    for iface in root.findall("devices/interface"):
        mac_el = iface.find("mac")
        mac = (mac_el.get("address", "") if mac_el is not None else "").lower()
        source = iface.find("source")
        if iface.get("type") == "bridge" and source is not None:
            source.set("bridge", bridge)
        if mac:
            entry = recorded.get(mac)
            if entry is None:
                entry = ET.SubElement(meta, _q("nic"), mac=mac)
            entry.set("bridge", bridge)
    return ET.tostring(root, encoding="unicode")


def with_description(xml: str, description: str) -> str:
    """The same domain XML with ipsinfra's description text replaced."""
    root = _root(xml)
    metadata = root.find("metadata")
    if metadata is None:
        metadata = ET.SubElement(root, "metadata")
    meta = metadata.find(_q("vds"))
    if meta is None:
        meta = ET.SubElement(metadata, _q("vds"))
    el = meta.find(_q("description"))
    if not description:
        if el is not None:
            meta.remove(el)
        return ET.tostring(root, encoding="unicode")
    if el is None:
        el = ET.SubElement(meta, _q("description"))
    el.text = description
    return ET.tostring(root, encoding="unicode")


def guest_domain_type(capabilities_xml: str, arch: str = "x86_64") -> str:
    """The best ``<domain type>`` the host offers for ``arch``: kvm, else qemu, else the first.

    Reads ``virConnectGetCapabilities``; the test driver (which lists only
    i686 guests but accepts any arch) answers ``test``.
    """
    try:
        root = ET.fromstring(capabilities_xml)
    except ET.ParseError as exc:
        raise InvalidInput(f"capabilities XML: not well-formed: {exc}") from None
    types: list[str] = []
    other_arch: list[str] = []
    for guest in root.findall("guest"):
        if (guest.findtext("os_type") or "").strip() != "hvm":
            continue
        arch_el = guest.find("arch")
        if arch_el is None:
            continue
        found = [d.get("type", "") for d in arch_el.findall("domain")]
        (types if arch_el.get("name") == arch else other_arch).extend(found)
    if not types and other_arch == ["test"] * len(other_arch):
        types = other_arch[:1]  # the test driver lists i686 only yet accepts any arch
    for preferred in ("kvm", "qemu"):
        if preferred in types:
            return preferred
    if not types:
        raise InvalidInput(f"capabilities: the host offers no hvm guest for arch {arch!r}")
    return types[0]


# --- resize (§6) ------------------------------------------------------------
@dataclass(frozen=True)
class DiskDevice:
    """A real ``<disk device="disk">`` of a domain: its target dev and its source file or volume."""

    target: str
    source: str | None


def with_memory(xml: str, memory_mib: int) -> str:
    """The same domain XML with ``<memory>`` (and ``<currentMemory>``) set to ``memory_mib``.

    >>> xml = build_domain(VdsSpec(name="VPS7(1.2)", vcpus=1, memory_mib=64))
    >>> parse_domain(with_memory(xml, 128), node="n", state=VdsState.STOPPED, autostart=False).memory_mib
    128
    """
    if memory_mib < 16:
        raise InvalidInput(f"memory_mib: value {memory_mib!r}: at least 16")
    root = _root(xml)
    memory = root.find("memory")
    if memory is None:
        memory = ET.SubElement(root, "memory")
    memory.set("unit", "KiB")
    memory.text = str(memory_mib * 1024)
    current = root.find("currentMemory")
    if current is not None:  # the balloon target: never above the new size, and at it after a resize
        current.set("unit", "KiB")
        current.text = str(memory_mib * 1024)
    return ET.tostring(root, encoding="unicode")


def disk_devices(xml: str) -> list[DiskDevice]:
    """The domain's real disks (``device="disk"``), in XML order; CD-ROMs and floppies are left out."""
    found: list[DiskDevice] = []
    for disk in _root(xml).findall("devices/disk"):
        if disk.get("device", "disk") != "disk":
            continue
        target = disk.find("target")
        if target is None or not target.get("dev"):
            continue
        source = disk.find("source")
        path = None
        if source is not None:
            path = source.get("file") or source.get("dev") or source.get("volume")
        found.append(DiskDevice(target=target.get("dev", ""), source=path))
    return found


def recorded_disks(xml: str) -> list[Disk]:
    """The disks ipsinfra recorded in the domain's metadata (the order's disks)."""
    meta = _meta(_root(xml))
    if meta is None:
        return []
    return [
        Disk(name=d.get("name", "disk0"), size_gib=int(d.get("size_gib", "1")), storage=d.get("storage"))
        for d in meta.findall(_q("disk"))
    ]


def with_disk_size(xml: str, disk: str, size_gib: int) -> str:
    """The same domain XML with the recorded size of ``disk`` set to ``size_gib``.

    Raises InvalidInput when the domain records no disk by that name.
    """
    root = _root(xml)
    meta = _meta(root)
    entries = [] if meta is None else meta.findall(_q("disk"))
    for entry in entries:
        if entry.get("name", "disk0") == disk:
            entry.set("size_gib", str(size_gib))
            return ET.tostring(root, encoding="unicode")
    known = ", ".join(e.get("name", "disk0") for e in entries) or "none"
    raise InvalidInput(f"disk: value {disk!r}: the domain records no such disk (recorded: {known})")


def vds_metadata(xml: str) -> str:
    """ipsinfra's ``<ipsinfra:vds>`` element of a domain XML, as ``virDomainSetMetadata`` takes it
    (un-namespaced: libvirt puts the element and its children in :data:`NS`)."""
    meta = _meta(_root(xml))
    if meta is None:
        raise InvalidInput("domain XML: no ipsinfra metadata")
    # Without the namespace: libvirt injects it (a declared prefix makes it fail).
    plain = ET.Element("vds", dict(meta.attrib))
    plain.text = meta.text
    for child in meta:
        copy = ET.SubElement(plain, child.tag.rpartition("}")[2], dict(child.attrib))
        copy.text, copy.tail = child.text, child.tail
    return ET.tostring(plain, encoding="unicode")
