"""The libvirt/KVM backend of :class:`HypervisorDriver`.

House names go in as libvirt domain names unchanged. Every ``libvirtError`` is
translated where it happens (:meth:`LibvirtDriver._errors`) into an
``ipsinfra.errors`` type naming the node. Domain XML is read and written only
by :mod:`ipsinfra.hypervisors.domxml`.

Backend calls made by :meth:`LibvirtDriver.list_vds` for N domains (RPCs to the
daemon): ``getAllDomainStats(STATE)`` once (all domains and their states),
``listAllDomains(AUTOSTART)`` once (the autostart set) and ``XMLDesc`` once
per domain. libvirt has no bulk call for domain XML, and vCPU/cpuset, memory,
MACs, VNC and the metadata exist only there (``getAllDomainStats`` gives vCPU
and balloon numbers for *running* qemu domains only, never MACs, VNC or cpuset).

Passwords (``node.password_method``): ``agent`` sets them in the running guest
through qemu-ga (``setUserPassword``); ``nocloud`` writes a cloud-init NoCloud
seed (:mod:`~ipsinfra.hypervisors.nocloud`) into a volume of the node's
``seed_pool`` (:mod:`~ipsinfra.hypervisors.libvirt_seed`) and attaches it as a
read-only cdrom; the guest's cloud-init applies the hash at its next boot.
``ex_detach_seed`` removes it after that boot (migration refuses a VDS that
still has one: the seed volume exists only on this node).

The guest-agent channel gets an explicit short socket path
(``ga-<uuid>.sock`` in :func:`domxml.agent_socket_dir`), never the one
libvirt builds from the domain name, which passes the 108-byte UNIX socket
limit with house names under a deep session root.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from typing import Any

import libvirt
import libvirt_qemu  # type: ignore[import-untyped]  # no stubs (pyproject lists only libvirt)

from ipsinfra import naming
from ipsinfra.errors import (
    AlreadyExists,
    Conflict,
    HypervisorApiError,
    HypervisorError,
    InvalidInput,
    IpsinfraError,
    NodeUnreachable,
    OperationTimeout,
    UnsupportedOperation,
    VdsNotFound,
)
from ipsinfra.hypervisors import domxml, libvirt_seed, nocloud, nodeshell
from ipsinfra.hypervisors.base import HypervisorDriver
from ipsinfra.models import IPAddress, Node, NodeFacts, Vds, VdsSpec, VdsState

log = logging.getLogger(__name__)


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; ipsinfra raises them instead."""


libvirt.registerErrorHandler(_quiet, None)

_UNREACHABLE_DOMAINS = {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE}
_UNREACHABLE_HINTS = ("client socket is closed", "connection closed", "end of file", "cannot recv data")
_POLL_S = 0.1
_AGENT_POLL_S = 0.25
_AGENT_PING_S = 5  # longest single guest-ping wait (whole seconds: libvirt's unit)
_NO_AGENT_SUPPORT = (
    libvirt.VIR_ERR_NO_SUPPORT,
    libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
)


class LibvirtDriver(HypervisorDriver):
    """One libvirt node.

    Args:
        node: the node; ``node.uri`` is opened when ``conn`` is None.
        conn: a ready ``virConnect`` (tests hand in ``test:///...`` or a lab daemon's).
        nic_backend: ``"bridge"`` (production) or ``"user"`` (slirp; session-mode
            daemons cannot attach to bridges). The MAC is kept either way.
        migration_address: where migration data for THIS node (as a target)
            goes: qemu listens there. Default ``node.main_ip``.
        ex_boot: boot every VDS this driver defines from this kernel/initrd
            (direct kernel boot; the lab's tiny guest from
            :func:`ipsinfra.lab.guest.ensure_guest_image` via ``.direct_boot()``).
            The files must exist on the node; the lab image needs
            ``memory_mib >= ipsinfra.lab.guest.MIN_MEMORY_MIB`` (128).
    """

    # the guest agent answers only in a running guest (password_method nocloud: ex_password_at_boot)
    password_when_running = True

    def __init__(
        self,
        node: Node,
        conn: Any = None,
        *,
        nic_backend: domxml.NicBackend = "bridge",
        migration_address: IPAddress | None = None,
        ex_boot: domxml.DirectBoot | None = None,
    ) -> None:
        self.node = node
        self.ex_boot = ex_boot
        self.nic_backend: domxml.NicBackend = nic_backend
        self.migration_address: IPAddress = migration_address or node.main_ip
        self._domain_type: str | None = None
        runtime = os.environ.get("XDG_RUNTIME_DIR") or os.path.expanduser("~/.cache")
        #: where this node's daemon binds guest-agent sockets (None: libvirt's own path)
        self.agent_socket_dir: str | None = domxml.agent_socket_dir(
            node.uri, local_runtime_dir=os.path.join(runtime, "libvirt")
        )
        if conn is None:
            with self._errors(f"open {node.uri}"):
                conn = libvirt.open(node.uri)
        self._conn: Any = conn
        # How list_vds reads the node: over SSH (one exec) or libvirt RPCs (see Node.libvirt_listing).
        self._ssh_listing: tuple[nodeshell.SshTarget, str] | None = None
        if node.libvirt_listing == "ssh":
            self._ssh_listing = (nodeshell.SshTarget.of(node), node.libvirt_local_uri)
        elif node.libvirt_listing == "auto":
            self._ssh_listing = nodeshell.libvirt_ssh(node)

    # --- libvirt-only ---------------------------------------------------
    @property
    def ex_conn(self) -> Any:
        """The underlying ``libvirt.virConnect``."""
        return self._conn

    @property
    def process_local(self) -> bool:
        """libvirt's test driver (``test:///...``) lives in this process's memory:
        a forked child keeps its copy (a fresh open would have no domains)."""
        return self.node.uri.split(":", 1)[0] == "test"

    def ex_xml(self, name: str, *, inactive: bool = False) -> str:
        """The domain XML as libvirt has it (``inactive``: the persistent config)."""
        with self._errors("read XML", name):
            dom = self._conn.lookupByName(name)
            return str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0))

    # --- errors ---------------------------------------------------------
    def _translate(self, exc: Any, what: str, name: str | None) -> IpsinfraError:
        code = exc.get_error_code()
        domain = exc.get_error_domain()
        message = exc.get_error_message() or str(exc)
        node = self.node.name
        subject = f"VDS {name!r}" if name else "node"
        if code == libvirt.VIR_ERR_NO_DOMAIN:
            return VdsNotFound(f"{node}: {subject} not found ({what})")
        if code == libvirt.VIR_ERR_DOM_EXIST or (
            code in (libvirt.VIR_ERR_OPERATION_FAILED, libvirt.VIR_ERR_OPERATION_INVALID)
            and "already exists" in message
        ):
            return AlreadyExists(f"{node}: {what}: {message}")
        if code in (
            libvirt.VIR_ERR_NO_SUPPORT,
            libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
            libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
        ):
            return UnsupportedOperation(f"{node}: {what} on {subject}: {message}")
        if code == libvirt.VIR_ERR_NO_CONNECT or (
            code in (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_ERR_RPC)
            and (
                domain in _UNREACHABLE_DOMAINS
                or any(h in message.lower() for h in _UNREACHABLE_HINTS)
                or not self._alive()
            )
        ):
            return NodeUnreachable(f"{what}: {message}", node=node)
        return HypervisorApiError(f"{what} on {subject}: {message}", node=node)

    def _alive(self) -> bool:
        conn = getattr(self, "_conn", None)
        if conn is None:
            return False
        try:
            return bool(conn.isAlive())
        except libvirt.libvirtError:
            return False

    @contextlib.contextmanager
    def _errors(self, what: str, name: str | None = None) -> Iterator[None]:
        """Translate ``libvirtError`` into the ipsinfra tree, naming the node."""
        try:
            yield
        except libvirt.libvirtError as exc:
            raise self._translate(exc, what, name) from exc

    # --- helpers --------------------------------------------------------
    def _lookup(self, name: str) -> Any:
        with self._errors("look up", name):
            return self._conn.lookupByName(name)

    def _read(self, dom: Any, *, inactive: bool = False) -> Vds:
        name = dom.name()
        with self._errors("read", name):
            state, reason = dom.state()
            autostart = bool(dom.autostart())
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0)
        return domxml.parse_domain(
            xml, node=self.node.name, state=domxml.state_from_libvirt(state, reason), autostart=autostart
        )

    def _state(self, dom: Any) -> VdsState:
        with self._errors("read state", dom.name()):
            state, reason = dom.state()
        return domxml.state_from_libvirt(state, reason)

    def _guest_type(self) -> str:
        if self._domain_type is None:
            with self._errors("read capabilities"):
                caps = self._conn.getCapabilities()
            self._domain_type = domxml.guest_domain_type(caps)
        return self._domain_type

    def _redefine(self, name: str, xml: str) -> None:
        with self._errors("redefine", name):
            self._conn.defineXML(xml)

    def _rewrite(self, name: str, change: Callable[[str], str]) -> Vds:
        """Read the saved config, change it with a pure :mod:`domxml` function, define it
        again; returns what the CONFIG now says (a running VDS takes it at its next start)."""
        dom = self._lookup(name)
        with self._errors("read XML", name):
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        self._redefine(name, change(xml))
        return self._read(dom, inactive=True)

    # --- reading --------------------------------------------------------
    def list_vds(self) -> list[Vds]:
        """Every domain on the node. Calls: 2 per node + one ``XMLDesc`` per domain (see module doc);
        over SSH (``node.libvirt_listing``: ``ssh``, or ``auto`` on a qemu+ssh URI), one SSH
        exec (:mod:`nodeshell`)."""
        if self._ssh_listing is not None:
            try:
                return self._list_over_ssh(self._ssh_listing)
            except IpsinfraError as exc:
                if self.node.libvirt_listing == "ssh":
                    raise
                # auto: libvirt's own SSH works (it is how we are connected); the
                # listing script did not (no virsh, another URI on the node...).
                log.warning("%s: listing over SSH failed, libvirt RPCs from now on: %s", self.node.name, exc)
                self._ssh_listing = None
        with self._errors("list domains"):
            stats = self._conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0)
            autostart = {
                d.name() for d in self._conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)
            }
        result: list[Vds] = []
        for dom, values in stats:
            name = dom.name()
            try:
                xml = dom.XMLDesc(0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # undefined between the two calls
                raise self._translate(exc, "read", name) from exc
            state = domxml.state_from_libvirt(values.get("state.state", 0), values.get("state.reason", 0))
            result.append(
                domxml.parse_domain(xml, node=self.node.name, state=state, autostart=name in autostart)
            )
        return sorted(result, key=lambda v: v.name)

    def _list_over_ssh(self, via: tuple[nodeshell.SshTarget, str]) -> list[Vds]:
        listing = nodeshell.list_domains(self.node, via=via)
        result: list[Vds] = []
        for d in listing.domains:
            if d.xml is None or d.state is None:
                # Undefined (or changed) between virsh's list and its dumpxml: ask libvirt itself.
                try:
                    with self._errors("look up", d.uuid):
                        dom = self._conn.lookupByUUIDString(d.uuid)
                except VdsNotFound:
                    continue
                result.append(self._read(dom))
                continue
            state = domxml.state_from_libvirt(d.state, d.reason or 0)
            autostart = d.uuid in listing.autostart
            result.append(domxml.parse_domain(d.xml, node=self.node.name, state=state, autostart=autostart))
        return sorted(result, key=lambda v: v.name)

    def get_vds(self, name: str) -> Vds:
        """One VDS by name; VNC and vCPUs as the running domain has them (config when shut off)."""
        return self._read(self._lookup(name))

    def node_facts(self) -> NodeFacts:
        """Hostname, CPUs and memory from libvirt. libvirt has no boot id: ``boot_id`` is None."""
        with self._errors("read node info"):
            hostname = self._conn.getHostname()
            info = self._conn.getInfo()
        return NodeFacts(node=self.node.name, hostname=hostname, cpus=int(info[2]), memory_mib=int(info[1]))

    # --- changing -------------------------------------------------------
    def define(self, spec: VdsSpec, *, start: bool = False) -> Vds:
        """Define (and optionally start) a VDS; on any later failure the new domain is removed again.

        The domain gets a fresh UUID and its guest-agent socket at
        ``<agent_socket_dir>/ga-<uuid>.sock`` (see the module docstring).
        """
        naming.parse_vps_name(spec.name)
        self._check_vcpus(spec.vcpus, spec.cpuset)
        if spec.vnc_listen is None:
            spec = spec.model_copy(update={"vnc_listen": self.node.vnc_address})
        with contextlib.suppress(VdsNotFound):
            self._lookup(spec.name)
            raise AlreadyExists(f"{self.node.name}: VDS {spec.name!r} already exists")
        uuid = str(uuidlib.uuid4())
        socket = None
        if self.agent_socket_dir is not None:
            socket = domxml.agent_socket_path(self.agent_socket_dir, uuid)
        xml = domxml.build_domain(
            spec,
            domain_type=self._guest_type(),
            nic_backend=self.nic_backend,
            boot=self.ex_boot,
            uuid=uuid,
            agent_socket=socket,
        )
        with self._errors("define", spec.name):
            dom = self._conn.defineXML(xml)
        try:
            with self._errors("configure", spec.name):
                if spec.autostart:
                    dom.setAutostart(1)
                if start:
                    dom.create()
        except HypervisorError:
            with contextlib.suppress(libvirt.libvirtError):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            raise
        return self._read(dom)

    def start(self, name: str) -> Vds:
        dom = self._lookup(name)
        if self._state(dom) != VdsState.RUNNING:
            with self._errors("start", name):
                dom.create()
        return self._read(dom)

    def stop(self, name: str, *, timeout: float = 60.0, force: bool = True) -> Vds:
        """ACPI shutdown, then ``destroy`` after ``timeout`` s when ``force`` (else OperationTimeout).

        A guest without an OS (or with ACPI off) ignores the shutdown request:
        only the forced path stops it.
        """
        dom = self._lookup(name)
        if self._state(dom) == VdsState.STOPPED:
            return self._read(dom)
        with self._errors("shut down", name):
            dom.shutdown()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._state(dom) == VdsState.STOPPED:
                return self._read(dom)
            time.sleep(_POLL_S)
        if not force:
            raise OperationTimeout(
                f"VDS {name!r} still running {timeout:g} s after the shutdown request", node=self.node.name
            )
        try:
            dom.destroy()
        except libvirt.libvirtError as exc:
            if self._state(dom) != VdsState.STOPPED:  # it may have stopped on its own meanwhile
                raise self._translate(exc, "destroy", name) from exc
        return self._read(dom)

    def set_autostart(self, name: str, enabled: bool) -> Vds:
        dom = self._lookup(name)
        with self._errors("set autostart", name):
            dom.setAutostart(1 if enabled else 0)
        return self._read(dom)

    def set_vcpus(self, name: str, vcpus: int, *, cpuset: str | None = None) -> Vds:
        """Set the configured vCPU count (and affinity; ``cpuset=None`` keeps the current one).

        The persistent config is rewritten: a running domain gets it at its next
        start. Returns the config as libvirt now holds it.
        """
        self._check_vcpus(vcpus, cpuset)
        return self._rewrite(name, lambda xml: domxml.with_vcpus(xml, vcpus, cpuset))

    def ex_configured(self, name: str) -> Vds:
        """The VDS as its persistent config says (what the next boot gets), with its live state.

        ``get_vds`` shows a running domain as it runs; after a change that needs
        a restart the two differ until the next boot.
        """
        return self._read(self._lookup(name), inactive=True)

    def set_memory(self, name: str, memory_mib: int) -> Vds:
        """Set ``<memory>`` (and the balloon's ``<currentMemory>``) in the persistent config.

        A running domain gets it at its next start (no memory hot-plug: the
        domains ipsinfra defines have no ``<maxMemory>`` slots). Returns the
        config as libvirt now holds it.
        """
        if memory_mib < 16:
            raise InvalidInput(f"memory_mib: value {memory_mib!r}: a VDS needs at least 16 MiB")
        if self.node.memory_mib is not None and memory_mib > self.node.memory_mib:
            raise InvalidInput(
                f"memory_mib: value {memory_mib!r}: more than node {self.node.name}'s "
                f"{self.node.memory_mib} MiB"
            )
        return self._rewrite(name, lambda xml: domxml.with_memory(xml, memory_mib))

    def grow_disk(self, name: str, disk: str, size_gib: int) -> Vds:
        """Grow ``disk`` to ``size_gib``: the real volume where one backs it, then the record.

        The disks of an order are recorded in the domain's metadata
        (:mod:`~ipsinfra.hypervisors.domxml`); the n-th recorded disk is backed
        by the n-th ``<disk device="disk">`` when the domain has one. A running
        domain's volume grows live (``blockResize``); a shut-off one's through
        its storage volume (``virStorageVolResize``; UnsupportedOperation, with
        nothing changed, when the file is in no storage pool). The record is
        updated in the live and the persistent metadata. Growth only.
        """
        if size_gib < 1:
            raise InvalidInput(f"disk_gib: value {size_gib!r}: at least 1")
        dom = self._lookup(name)
        with self._errors("read XML", name):
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
            active = dom.isActive() == 1
        recorded = domxml.recorded_disks(xml)
        index = next((i for i, d in enumerate(recorded) if d.name == disk), None)
        if index is None:
            known = ", ".join(d.name for d in recorded) or "none"
            raise InvalidInput(f"disk: value {disk!r}: VDS {name!r} has no such disk (disks: {known})")
        current = recorded[index].size_gib
        if size_gib < current:
            raise InvalidInput(
                f"disk_gib: value {size_gib!r}: disk {disk} of {name} has {current} GiB; "
                "a disk only grows (shrinking is refused)"
            )
        if size_gib == current:
            return self._read(dom, inactive=True)
        devices = domxml.disk_devices(xml)
        if index < len(devices):
            self._resize_volume(dom, name, devices[index], size_gib, active=active)
        meta = domxml.vds_metadata(domxml.with_disk_size(xml, disk, size_gib))
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if active else 0)
        with self._errors("record disk size", name):
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, meta, domxml.NS_PREFIX, domxml.NS, flags)
        return self._read(dom, inactive=True)

    def _resize_volume(
        self, dom: Any, name: str, device: domxml.DiskDevice, size_gib: int, *, active: bool
    ) -> None:
        size = size_gib * 1024**3
        if active:
            with self._errors(f"grow {device.target} (blockResize)", name):
                dom.blockResize(device.target, size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
            return
        if device.source is None:
            raise UnsupportedOperation(
                f"{self.node.name}: grow {device.target} of {name!r}: it has no source"
            )
        try:
            vol = self._conn.storageVolLookupByPath(device.source)
        except libvirt.libvirtError:
            raise UnsupportedOperation(
                f"{self.node.name}: grow {device.target} of {name!r}: {device.source} is in no storage "
                "pool of the node; start the VDS and grow it live (blockResize)"
            ) from None
        with self._errors(f"grow {device.target} (volume resize)", name):
            vol.resize(size, 0)

    def rename(self, name: str, new_name: str) -> Vds:
        """Rename a shut-off VDS (``virDomainRename``). A running one raises Conflict."""
        naming.parse_vps_name(new_name)
        dom = self._lookup(name)
        if self._state(dom) != VdsState.STOPPED:
            raise Conflict(
                f"{self.node.name}: VDS {name!r} is running; libvirt renames only shut-off domains"
            )
        with contextlib.suppress(VdsNotFound):
            self._lookup(new_name)
            raise AlreadyExists(f"{self.node.name}: cannot rename {name!r}: {new_name!r} already exists")
        with self._errors(f"rename to {new_name!r}", name):
            dom.rename(new_name, 0)
        return self.get_vds(new_name)

    def set_vnc_listen(self, name: str, address: IPAddress) -> Vds:
        """Set the VNC listen address in the persistent config.

        A running domain keeps its current listener until its next start; the
        returned VDS is what the CONFIG says.
        """
        return self._rewrite(name, lambda xml: domxml.with_vnc_listen(xml, address))

    def set_bridge(self, name: str, bridge: str) -> Vds:
        """Move every NIC to ``bridge`` in the persistent config (next start for a running VDS)."""
        return self._rewrite(name, lambda xml: domxml.with_bridge(xml, bridge))

    def set_description(self, name: str, description: str) -> Vds:
        """Replace ipsinfra's description text (kept in the domain's metadata).

        Both the saved config and, for a running domain, the live definition
        change at once (``setMetadata`` with AFFECT_LIVE), so a block marker is
        visible to every reader right away.
        """
        dom = self._lookup(name)
        with self._errors("read XML", name):
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
            active = dom.isActive() == 1
        new_xml = domxml.with_description(xml, description)
        self._redefine(name, new_xml)
        if active:
            with self._errors("set live metadata", name):
                dom.setMetadata(
                    libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                    domxml.vds_metadata(new_xml),
                    domxml.NS_PREFIX,
                    domxml.NS,
                    libvirt.VIR_DOMAIN_AFFECT_LIVE,
                )
        return self._read(dom)

    @property
    def ex_password_at_boot(self) -> bool:
        """True when this node hands passwords over at boot (``password_method: nocloud``):
        :meth:`set_password` then needs the VDS shut off, and it takes effect at its next start."""
        return self.node.password_method == "nocloud"

    def set_password(self, name: str, user: str, password: str, *, agent_timeout: float = 30.0) -> None:
        """Set a guest user's password the node's way (``node.password_method``).

        ``nocloud``: see :meth:`ex_set_password_seed`. ``agent`` (the default):
        through the qemu guest agent (``setUserPassword``); the guest must be
        running. A freshly started guest needs seconds before its agent
        answers: ``guest-ping`` is retried for up to ``agent_timeout`` s first
        (OperationTimeout when it never answers). Raises
        UnsupportedOperation when the domain has no agent channel or the
        backend no agent support (the test driver), Conflict when the VDS is
        not running, HypervisorApiError otherwise; no message carries the
        password, and no libvirt error is chained (it could).
        """
        if self.ex_password_at_boot:
            self.ex_set_password_seed(name, user, password)
            return
        dom = self._lookup(name)
        what = f"set password of guest user {user!r} on VDS {name!r}"
        with self._errors("read XML", name):
            xml = dom.XMLDesc(0)
        if not domxml.has_guest_agent_channel(xml):
            raise UnsupportedOperation(
                f"{self.node.name}: {what}: the domain has no guest agent channel "
                "(images without qemu-guest-agent: password_method nocloud)"
            )
        self._wait_for_agent(dom, name, what, agent_timeout)
        try:
            dom.setUserPassword(user, password, 0)
        except libvirt.libvirtError as exc:
            code = exc.get_error_code()
            message = exc.get_error_message() or ""
            if password:
                message = message.replace(password, "***")
            if code in _NO_AGENT_SUPPORT:
                raise UnsupportedOperation(f"{self.node.name}: {what}: {message}") from None
            if code == libvirt.VIR_ERR_AGENT_UNRESPONSIVE:  # it answered the ping, then went away
                raise OperationTimeout(
                    f"{what}: the guest agent stopped answering ({message})", node=self.node.name
                ) from None
            # the agent ran the command and it failed in the guest (unknown user, chpasswd error)
            raise HypervisorApiError(f"{what}: {message}", node=self.node.name) from None

    def ex_set_password_seed(self, name: str, user: str, password: str) -> str:
        """Hand a password to cloud-init: a NoCloud seed on a read-only cdrom; returns its path on the node.

        The VDS must be shut off (Conflict otherwise): cloud-init reads the seed
        at boot. The seed holds a SHA-512 crypt hash (never the clear text),
        ``instance-id`` ``<uuid>-<UTC time>`` (new per seed, so cloud-init applies
        each one; on an installed system that also reruns its other
        per-instance modules, e.g. new SSH host keys) and ``local-hostname``
        the DNS-safe twin of the name. It is uploaded as volume
        ``<uuid>-cidata.iso`` of ``node.seed_pool`` (replacing an older seed)
        and attached in the persistent config. No message carries the password.
        """
        dom = self._lookup(name)
        what = f"set password of guest user {user!r} on VDS {name!r} (NoCloud seed)"
        if self._state(dom) != VdsState.STOPPED:
            raise Conflict(f"{self.node.name}: {what}: cloud-init reads the seed at boot; stop the VDS first")
        with self._errors("read XML", name):
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
            uuid = str(dom.UUIDString())
        try:
            hostname = naming.pve_safe_name(name)
        except InvalidInput:
            hostname = "vds-" + uuid[:8]
        seed = nocloud.Seed(
            instance_id=f"{uuid}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}",
            hostname=hostname,
            user=user,
            password_hash=nocloud.hash_password(password),
        )
        data = seed.iso()
        with self._errors(f"upload NoCloud seed to pool {self.node.seed_pool!r}", name):
            path = libvirt_seed.upload_seed(
                self._conn,
                self.node.seed_pool,
                libvirt_seed.seed_volume_name(uuid),
                data,
                node=self.node.name,
            )
        self._redefine(name, domxml.with_seed(xml, path))
        return path

    def ex_seed_path(self, name: str) -> str | None:
        """The VDS's NoCloud seed volume on the node (persistent config first), None without one."""
        dom = self._lookup(name)
        with self._errors("read XML", name):
            config = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            live = dom.XMLDesc(0)
        return domxml.seed_path(config) or domxml.seed_path(live)

    def ex_detach_seed(self, name: str) -> bool:
        """Remove the NoCloud seed once the guest has booted with it; True if there was one.

        The cdrom leaves the persistent config; a running guest's cdrom is
        ejected live (the device stays until the next start, empty); the
        volume is deleted. A guest not yet booted with the seed never gets its
        password: call this after the first boot.
        """
        dom = self._lookup(name)
        with self._errors("read XML", name):
            config = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
            live = dom.XMLDesc(0)
            active = dom.isActive() == 1
        path = domxml.seed_path(config) or domxml.seed_path(live)
        if active and domxml.seed_path(live) is not None:
            ejected = domxml.ejected_seed_device(live)
            if ejected is not None:
                with self._errors("eject the NoCloud seed", name):
                    dom.updateDeviceFlags(ejected, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        if domxml.seed_path(config) is not None:
            self._redefine(name, domxml.with_seed(config, None))
        if path is None:
            return False
        with self._errors("delete the NoCloud seed volume", name):
            libvirt_seed.delete_seed(self._conn, path)
        return True

    def _wait_for_agent(self, dom: Any, name: str, what: str, timeout: float) -> None:
        """Retry ``guest-ping`` until the agent answers; OperationTimeout after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            left = deadline - time.monotonic()
            wait_s = max(1, min(_AGENT_PING_S, math.ceil(left)))
            try:
                libvirt_qemu.qemuAgentCommand(dom, json.dumps({"execute": "guest-ping"}), wait_s, 0)
                return
            except libvirt.libvirtError as exc:
                code = exc.get_error_code()
                last = exc.get_error_message() or str(exc)
                if code in _NO_AGENT_SUPPORT:
                    raise UnsupportedOperation(f"{self.node.name}: {what}: {last}") from None
                if code == libvirt.VIR_ERR_OPERATION_INVALID and self._state(dom) != VdsState.RUNNING:
                    raise Conflict(
                        f"{self.node.name}: {what}: the VDS is not running (the guest agent needs it running)"
                    ) from None
                if code not in (libvirt.VIR_ERR_AGENT_UNRESPONSIVE, libvirt.VIR_ERR_OPERATION_TIMEOUT):
                    raise self._translate(exc, "ping guest agent", name) from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise OperationTimeout(
                    f"{what}: no guest agent answered within {timeout:g} s ({last})", node=self.node.name
                )
            time.sleep(min(_AGENT_POLL_S, left))

    def migrate(
        self,
        name: str,
        target: HypervisorDriver,
        *,
        live: bool = True,
        new_name: str | None = None,
        keep_source: bool = False,
    ) -> Vds:
        """Move a VDS to ``target`` (another :class:`LibvirtDriver`), renamed to ``new_name``.

        A running VDS goes by ``migrate3`` (LIVE when ``live``) with the target's
        connection as ``dconn``: DEST_NAME, DEST_XML and PERSIST_XML (VNC listen
        rewritten to the target node's ``vnc_address``), data over
        tcp://<target.migration_address>;
        PERSIST_DEST | UNDEFINE_SOURCE. A shut-off VDS is moved offline: the XML
        is defined on the target, read back and checked, and only then undefined
        here. Disk images are not copied (libvirt's offline migration does not
        copy them either). libvirt drops the autostart flag: it is set again on
        the target. ``keep_source``: leave the (shut-off) source definition for
        the caller to delete once it has verified the target.
        """
        if not isinstance(target, LibvirtDriver):
            raise UnsupportedOperation(
                f"{self.node.name}: libvirt migrates only to libvirt nodes, not {type(target).__name__}"
            )
        dest_name = new_name or name
        naming.parse_vps_name(dest_name)
        dom = self._lookup(name)
        with self._errors("read for migration", name):
            autostart = bool(dom.autostart())
            running = dom.isActive() == 1
            flags_xml = libvirt.VIR_DOMAIN_XML_SECURE | (
                libvirt.VIR_DOMAIN_XML_MIGRATABLE if running else libvirt.VIR_DOMAIN_XML_INACTIVE
            )
            xml = dom.XMLDesc(flags_xml)
            config_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_INACTIVE)
            uuid = str(dom.UUIDString())
        if domxml.seed_path(xml) or domxml.seed_path(config_xml):
            raise Conflict(
                f"{self.node.name}: VDS {name!r} still has its NoCloud seed (a volume on this node): "
                "detach it first (ex_detach_seed, after the guest's first boot)"
            )
        with contextlib.suppress(VdsNotFound):
            target._lookup(dest_name)
            raise AlreadyExists(f"{target.node.name}: VDS {dest_name!r} already exists")
        # §9.10: the target's VNC address and bridge, in the live and the saved config.
        dest_xml = target._with_own_agent_socket(
            domxml.with_bridge(domxml.with_vnc_listen(xml, target.node.vnc_address), target.node.bridge),
            uuid,
        )
        if running:
            # DEST_XML must keep the source's name; DEST_NAME renames on arrival.
            # PERSIST_DEST alone would persist the SOURCE's config (old VNC address).
            persist_xml = target._with_own_agent_socket(
                domxml.with_bridge(
                    domxml.with_vnc_listen(config_xml, target.node.vnc_address), target.node.bridge
                ),
                uuid,
            )
            self._migrate_running(
                name, dom, target, dest_name, dest_xml, persist_xml, live=live, keep_source=keep_source
            )
        else:
            self._migrate_offline(
                name, dom, target, dest_name, domxml.with_name(dest_xml, dest_name), keep_source=keep_source
            )
        if autostart:
            target.set_autostart(dest_name, True)
        return target.get_vds(dest_name)

    def _with_own_agent_socket(self, xml: str, uuid: str) -> str:
        """``xml`` with an explicit guest-agent socket moved into THIS node's socket directory."""
        if domxml.agent_socket(xml) is None or self.agent_socket_dir is None:
            return xml
        return domxml.with_agent_socket(xml, domxml.agent_socket_path(self.agent_socket_dir, uuid))

    def _migrate_running(
        self,
        name: str,
        dom: Any,
        target: LibvirtDriver,
        dest_name: str,
        dest_xml: str,
        persist_xml: str,
        *,
        live: bool,
        keep_source: bool,
    ) -> None:
        address = target.migration_address
        host = f"[{address}]" if address.version == 6 else str(address)
        params = {
            libvirt.VIR_MIGRATE_PARAM_DEST_NAME: dest_name,
            libvirt.VIR_MIGRATE_PARAM_DEST_XML: dest_xml,
            libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persist_xml,
            libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: str(address),
            libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{host}",
        }
        flags = libvirt.VIR_MIGRATE_PERSIST_DEST
        if not keep_source:
            flags |= libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        if live:
            flags |= libvirt.VIR_MIGRATE_LIVE
        with self._errors(f"migrate to {target.node.name} as {dest_name!r}", name):
            dom.migrate3(target.ex_conn, params, flags)

    def _migrate_offline(
        self, name: str, dom: Any, target: LibvirtDriver, dest_name: str, dest_xml: str, *, keep_source: bool
    ) -> None:
        with target._errors(f"define migrated {name!r}", dest_name):
            target.ex_conn.defineXML(dest_xml)
        got = target.get_vds(dest_name)
        want = domxml.parse_domain(dest_xml, node=target.node.name, state=VdsState.STOPPED, autostart=False)
        if (got.vcpus, got.cpuset, got.memory_mib, got.macs, got.vnc_listen) != (
            want.vcpus,
            want.cpuset,
            want.memory_mib,
            want.macs,
            want.vnc_listen,
        ):
            target.delete(dest_name)
            raise HypervisorApiError(
                f"migrate {name!r}: {target.node.name} holds a different definition; source kept",
                node=self.node.name,
            )
        if keep_source:
            return
        with self._errors("undefine migrated source", name):
            self._undefine(dom)

    def _undefine(self, dom: Any) -> None:
        flags = (
            libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        )
        try:
            dom.undefineFlags(flags)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_INVALID_ARG):
                raise
            dom.undefine()

    def delete(self, name: str) -> None:
        """Undefine a shut-off VDS (and delete its NoCloud seed volume). A running one raises Conflict."""
        dom = self._lookup(name)
        if self._state(dom) not in (VdsState.STOPPED, VdsState.CRASHED):
            raise Conflict(f"{self.node.name}: VDS {name!r} is running; stop it before deleting it")
        with self._errors("read XML", name):
            seed = domxml.seed_path(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        with self._errors("undefine", name):
            self._undefine(dom)
        if seed is not None:
            with self._errors("delete the NoCloud seed volume", name):
                libvirt_seed.delete_seed(self._conn, seed)

    def close(self) -> None:
        """Close the connection (errors on an already dead connection are ignored)."""
        with contextlib.suppress(libvirt.libvirtError):
            self._conn.close()
