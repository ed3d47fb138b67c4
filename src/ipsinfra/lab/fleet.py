"""The embedded lab: ``inventory/example`` brought to life on real test backends.

One call starts a small fleet matching the example inventory and hands back
an inventory (models, and a directory Ansible reads) pointing at it:

* the libvirt nodes: real session-mode ``libvirtd`` daemons with qemu guests
  when the machine can run them (root, Debian's libvirt and qemu), else
  libvirt's in-process test driver (which cannot migrate or reboot);
* each libvirt node's SSH side: an sshd test host with its own boot id, which
  the reboot check reads over SSH as it does on a real node;
* the Proxmox node(s): ``fakepve`` over HTTPS (a dev/test-only dependency).

Every VDS of the inventory is defined on its node and started when it should
run. Nothing here talks to an address outside 127.0.0.0/8.

>>> with Lab() as lab:                        # doctest: +SKIP
...     lab.pool.get("kvm1").list_vds()
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import secrets
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from ipsinfra import inventory, metadata, naming
from ipsinfra.errors import NodeNotFound, UnsupportedOperation
from ipsinfra.hypervisors import DriverPool, HypervisorDriver, connect
from ipsinfra.inventory import Fleet
from ipsinfra.journal import Journal
from ipsinfra.models import (
    Client,
    DedicatedServer,
    DirectBootSpec,
    HypervisorKind,
    Node,
    SecretRef,
    Switch,
    Vds,
    VdsSpec,
)

Mode = Literal["auto", "daemon", "test"]
REPO_INVENTORY = Path(__file__).resolve().parents[3] / "inventory" / "example"
LAB_PARENT = Path("/var/tmp")  # not under a 0700 tmp root: qemu runs as nobody
DAEMON_MEMORY_MIB = 64  # diskless TCG guests; the inventory's sizes would be wasted here
SPARE_PVE_NODE = "pve2"  # a second cluster node, so Proxmox migration can be shown

TEST_NODE_XML = """<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads>
  <active>{cpus}</active><mhz>2400</mhz><model>x86_64</model></cpu>
  <memory>{memory_kib}</memory>
</node>
"""


def daemons_possible() -> str | None:
    """None if real libvirtd nodes can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (session daemons run as nobody through setpriv)"
    from ipsinfra.lab.libvirtd import LabUnavailable, check_requirements

    try:
        check_requirements()
    except LabUnavailable as exc:
        return str(exc)
    return None


def spec_from_record(vds: Vds, node: Node) -> VdsSpec:
    """The spec that recreates an inventory record on its node, facts in the description."""
    facts: dict[str, object] = {
        "order": vds.order,
        "client": vds.client,
        "os": vds.os,
        "arch": vds.arch,
        "install": vds.install_type,
        "ips": " ".join(str(ip) for ip in vds.ips),
        "comment": vds.comment,
        "activated": vds.activated.isoformat() if vds.activated else None,
        "trial-end": vds.trial_end.isoformat() if vds.trial_end else None,
        "blocked": vds.blocked_reason or ("yes" if vds.blocked else None),
        "status": "Cancelled" if vds.cancelled else "Active",
    }
    return VdsSpec(
        name=vds.name,
        vcpus=vds.vcpus,
        cpuset=vds.cpuset,
        memory_mib=vds.memory_mib,
        disks=vds.disks,
        nics=[n.model_copy(update={"bridge": n.bridge or node.bridge}) for n in vds.nics],
        ips=vds.ips,
        vnc_listen=node.vnc_address,
        autostart=vds.autostart,
        description=metadata.render(facts, vds.description),
        os=vds.os,
        arch=vds.arch or "x86_64",
    )


class Lab:
    """A running lab. Use as a context manager; :meth:`stop` ends every process it started.

    Args:
        base_dir: where the lab keeps its files (a fresh directory under /var/tmp when None).
        source: the inventory the lab brings to life.
        mode: ``daemon`` real libvirtd + qemu, ``test`` libvirt's test driver,
            ``auto`` daemons where possible.
        ssh: start an sshd test host per libvirt node (boot ids over SSH); default: when root.
        password_method: the libvirt nodes' ``password_method``. ``nocloud``: new VDS
            boot the lab guest's nocloud variant (no guest agent; it applies the
            NoCloud seed and prints the shadow line on its console, see
            :mod:`ipsinfra.lab.guest`), each node gets a ``default`` storage pool
            for the seeds, and the guests' serial console goes to
            :meth:`console_log` (daemon mode).
    """

    def __init__(
        self,
        base_dir: str | Path | None = None,
        *,
        source: str | Path = REPO_INVENTORY,
        mode: Mode = "auto",
        ssh: bool | None = None,
        populate: bool = True,
        password_method: Literal["agent", "nocloud"] = "agent",
    ) -> None:
        self._requested_base = Path(base_dir) if base_dir is not None else None
        self.source = Path(source)
        self.requested_mode: Mode = mode
        self.ssh = ssh
        self.populate_vds = populate
        self.password_method: Literal["agent", "nocloud"] = password_method
        self.mode: Literal["daemon", "test"] = "test"
        self.base_dir = Path()
        self.fleet: Fleet | None = None
        self.pool: DriverPool | None = None
        self.daemons: dict[str, Any] = {}
        self.ssh_hosts: dict[str, Any] = {}
        self.pve: Any = None
        self.services: dict[str, socket.socket] = {}
        self.switch_servers: dict[str, Any] = {}
        self._boot: DirectBootSpec | Literal[False] | None = None
        self.notes: list[str] = []
        self._stack = contextlib.ExitStack()
        self._owns_base = False

    # --- life cycle -------------------------------------------------------
    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Lab:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        self._stack.close()
        if self._owns_base and self.base_dir.is_dir():
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def _start(self) -> None:
        if self._requested_base is None:
            LAB_PARENT.mkdir(parents=True, exist_ok=True)
            self.base_dir = Path(tempfile.mkdtemp(prefix="ipsinfra-lab-", dir=LAB_PARENT))
            self._owns_base = True
        else:
            self.base_dir = self._requested_base
            self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o755)
        source = inventory.load(self.source)
        why_not = daemons_possible()
        if self.requested_mode == "daemon" and why_not:
            raise UnsupportedOperation(f"lab: real libvirt daemons cannot run here: {why_not}")
        self.mode = "daemon" if self.requested_mode != "test" and why_not is None else "test"
        if self.mode == "test" and why_not:
            self.notes.append(f"libvirt nodes use the in-process test driver: {why_not}")
        want_ssh = self.ssh if self.ssh is not None else os.geteuid() == 0

        nodes: dict[str, Node] = {}
        libvirt_nodes = [n for n in source.nodes.values() if n.kind is HypervisorKind.LIBVIRT]
        for index, node in enumerate(libvirt_nodes):
            nodes[node.name] = self._libvirt_node(node, index)
        if want_ssh and libvirt_nodes:
            nodes.update(self._ssh_sides([nodes[n.name] for n in libvirt_nodes]))
        pve_nodes = [n for n in source.nodes.values() if n.kind is HypervisorKind.PROXMOX]
        if pve_nodes:
            nodes.update(self._pve(pve_nodes))

        switches, dedicated = self._switches(source)
        vds = {name: self._lab_record(v) for name, v in source.vds.items()}
        vds = {name: v.model_copy(update={"probe": self._service(name)}) for name, v in vds.items()}
        self.fleet = source.model_copy(
            update={
                "nodes": nodes,
                "vds": vds,
                "switches": switches,
                "dedicated": dedicated,
                "path": self.inventory_dir,
            }
        )
        drivers: dict[str, HypervisorDriver] = {name: self._connect(node) for name, node in nodes.items()}
        self.pool = DriverPool(nodes, drivers=drivers)
        if self.populate_vds:
            # The inventory's own VDS are diskless guests (instant, 64 MiB); only VDS
            # created later boot the lab's kernel with a guest agent.
            plain = {
                n: connect(node.model_copy(update={"direct_boot": None}))
                for n, node in nodes.items()
                if node.direct_boot is not None
            }
            try:
                for record in vds.values():
                    driver = plain.get(record.node) or self.pool.get(record.node)
                    spec = spec_from_record(record, nodes[record.node])
                    start = record.autostart and not record.blocked and not record.cancelled
                    driver.define(spec, start=start)
            finally:
                for driver in plain.values():
                    driver.close()
        inventory.dump(self.fleet, self.inventory_dir)

    # --- pieces -----------------------------------------------------------
    def _libvirt_node(self, node: Node, index: int) -> Node:
        vnc = ipaddress.ip_address(f"127.0.0.{11 + index}")
        if self.mode == "daemon":
            from ipsinfra.lab.libvirtd import LibvirtDaemon

            daemon = LibvirtDaemon(node.name, self.base_dir / "libvirt", index=index)
            self._stack.callback(daemon.stop)
            daemon.start()
            self.daemons[node.name] = daemon
            if self.password_method == "nocloud":
                daemon.ensure_pool(node.seed_pool)
            uri = daemon.uri
        else:
            path = self.base_dir / f"{node.name}.xml"
            path.write_text(
                TEST_NODE_XML.format(cpus=node.cpus, memory_kib=(node.memory_mib or 65536) * 1024)
            )
            uri = f"test://{path}"
        return node.model_copy(
            update={
                "uri": uri,
                "vnc_listen": vnc,
                "migration_address": ipaddress.ip_address("127.0.0.1"),
                "ssh_host": None,
                "direct_boot": self._guest_boot() if self.mode == "daemon" else None,
                "password_method": self.password_method,
            }
        )

    def _connect(self, node: Node) -> HypervisorDriver:
        """``connect(node)``; in a nocloud lab, libvirt guests write their console to :meth:`console_log`."""
        driver = connect(node)
        if self.password_method == "nocloud" and node.name in self.daemons:
            from ipsinfra.hypervisors.libvirt import LibvirtDriver

            if isinstance(driver, LibvirtDriver) and driver.ex_boot is not None:
                driver.ex_boot = dataclasses.replace(driver.ex_boot, serial_log=self.console_log(node.name))
        return driver

    def console_log(self, node: str) -> Path:
        """The file the serial console of the node's newest lab guest is written to (qemu truncates it
        at each guest start; daemon mode, ``password_method="nocloud"``)."""
        return Path(self.daemons[node].home) / "console.log"

    def _guest_boot(self) -> DirectBootSpec | None:
        """The lab's tiny guest (a kernel + an initramfs running qemu-ga), so new VDS
        really take a password through the guest agent. None, with a note, if the
        machine lacks the packages it is built from."""
        from ipsinfra.lab.guest import GuestImageUnavailable, ensure_guest_image

        if self._boot is None:
            try:
                image = ensure_guest_image(variant=self.password_method)
            except GuestImageUnavailable as exc:
                self.notes.append(f"new VDS boot no OS (no guest agent, no password): {exc}")
                self._boot = False
                return None
            self._boot = DirectBootSpec(
                kernel=str(image.kernel), initrd=str(image.initrd), cmdline=image.cmdline
            )
        return self._boot or None

    def _ssh_sides(self, nodes: list[Node]) -> dict[str, Node]:
        from ipsinfra.lab.sshd import SshHostPool

        pool = SshHostPool(base_dir=self.base_dir / "ssh")
        self._stack.callback(pool.stop)
        updated: dict[str, Node] = {}
        for host in pool.start([n.name for n in nodes]):
            self.ssh_hosts[host.name] = host
            node = next(n for n in nodes if n.name == host.name)
            updated[node.name] = node.model_copy(
                update={
                    "ssh_host": host.host,
                    "ssh_port": host.port,
                    "ssh_user": host.user,
                    "ssh_key_file": str(host.key_file),
                    "ssh_known_hosts": str(host.known_hosts),
                }
            )
        return updated

    def _pve(self, nodes: list[Node]) -> dict[str, Node]:
        from ipsinfra.lab.pve import start_fake_pve

        cluster = {n.pve_node or n.name: n.cpus for n in nodes}
        cluster.setdefault(SPARE_PVE_NODE, max(cluster.values()))
        handle = self._stack.enter_context(start_fake_pve(cluster, workdir=self.base_dir / "pve"))
        self.pve = handle
        spare_of = nodes[0]
        spare = spare_of.model_copy(
            update={
                "name": SPARE_PVE_NODE,
                "dc_name": None,
                "pve_node": SPARE_PVE_NODE,
                "main_ip": spare_of.main_ip + 1,
                "ip_pool": [],
            }
        )
        if all(n.name != SPARE_PVE_NODE for n in nodes):
            nodes = [*nodes, spare]
            self.notes.append(f"{SPARE_PVE_NODE}: a second node of {spare_of.name}'s cluster, for migrations")
        return {
            n.name: n.model_copy(
                update={
                    "uri": handle.uri,
                    "api_user": handle.user,
                    "api_token_id": handle.token_id,
                    "secret": SecretRef(file=str(handle.secrets_dir / "token")),
                    "ca_file": handle.cafile,
                    "verify_tls": True,
                    "ssh_host": None,
                    "vnc_listen": ipaddress.ip_address("127.0.0.30"),
                }
            )
            for n in nodes
        }

    def _service(self, name: str) -> str:
        """A loopback TCP service standing in for the VDS's SSH/RDP port (§4.10).

        Every lab VDS gets one, so the audit's reachability probe never leaves
        127.0.0.0/8 (the VDS's own addresses are documentation ranges). The
        kernel completes the handshake from the listen backlog; closing it
        (:meth:`break_service`) makes the probe fail as a dead sshd would.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self._stack.callback(sock.close)
        self.services[name] = sock
        return f"127.0.0.1:{sock.getsockname()[1]}"

    def probe_for(self, observed: Vds, record: Vds | None) -> str | None:
        """The audit's probe target in the lab: the VDS's loopback stand-in, or
        nothing (a VDS created after the lab started has only documentation
        addresses, which are never probed)."""
        target = record.probe if record is not None else None
        if target and ipaddress.ip_address(target.rpartition(":")[0].strip("[]")).is_loopback:
            return target
        return None

    def break_service(self, vds_name: str) -> None:
        """Make the VDS's SSH/RDP stand-in stop answering."""
        self.services.pop(vds_name).close()

    def _switches(self, source: Fleet) -> tuple[dict[str, Switch], dict[str, DedicatedServer]]:
        """cisco_ios switches become in-process SSH switches that netmiko logs into.

        Each learns, on the port the inventory names, the MACs of the dedicated
        servers there, and the VDS MACs of the libvirt nodes on ports Gi0/1..;
        Gi0/24 is an uplink (an LLDP switch neighbour). Switches of platforms
        the lab cannot run, and the servers behind them, are left out (never
        pointed at their documentation addresses).
        """
        from ipsinfra.lab.switches import IosSwitchServer, IosSwitchState

        switches: dict[str, Switch] = {}
        kept = {n for n, s in source.switches.items() if s.platform == "cisco_ios"}
        libvirt_nodes = [n for n in source.nodes.values() if n.kind is HypervisorKind.LIBVIRT]
        for name in sorted(kept):
            switch = source.switches[name]
            state = IosSwitchState(hostname=name, ports=[f"Gi0/{i}" for i in range(1, 25)])
            state.neighbor("Gi0/24", "core1.msk1", "B,R")
            for i, node in enumerate(libvirt_nodes, start=1):
                for vds in source.vds_on(node.name):
                    for mac in vds.macs:
                        state.learn(mac, f"Gi0/{i}")
            for ded in source.dedicated.values():
                if ded.switch == name and ded.port:
                    for mac in ded.macs:
                        state.learn(mac, ded.port)
            password = secrets.token_urlsafe(18)
            secret_file = self.base_dir / f"{name}.secret"
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(password + "\n")
            ios = IosSwitchServer(state, username=switch.username, password=password).start()
            self._stack.callback(ios.stop)
            self.switch_servers[name] = ios
            # Pinned, as a real switch's key is after `ipsinfra trust`: sessions check it.
            known_hosts = ios.write_known_hosts(self.base_dir / "switches_known_hosts")
            switches[name] = switch.model_copy(
                update={
                    "host": ios.host,
                    "port": ios.port,
                    "secret": SecretRef(file=str(secret_file)),
                    "ssh_known_hosts": str(known_hosts),
                }
            )
        dropped = sorted(set(source.switches) - kept)
        if dropped:
            self.notes.append(f"switches left out of the lab (no lab backend for their platform): {dropped}")
        dedicated = {n: d for n, d in source.dedicated.items() if d.switch is None or d.switch in kept}
        return switches, dedicated

    def _lab_record(self, vds: Vds) -> Vds:
        if self.mode == "daemon" and vds.memory_mib > DAEMON_MEMORY_MIB:
            return vds.model_copy(update={"memory_mib": DAEMON_MEMORY_MIB})
        return vds

    # --- what tests and the demo use ----------------------------------------
    @property
    def inventory_dir(self) -> Path:
        return self.base_dir / "inventory"

    @property
    def journal_path(self) -> Path:
        return self.base_dir / "journal.sqlite3"

    def journal(self) -> Journal:
        return Journal(self.journal_path)

    def driver(self, node: str) -> HypervisorDriver:
        assert self.pool is not None, "the lab is not started"
        return self.pool.get(node)

    def reboot(self, node: str) -> None:
        """Reboot a lab node the honest way: every guest dies, the boot id changes,
        and the hypervisor's own autostart brings back what it should."""
        assert self.fleet is not None, "the lab is not started"
        if node not in self.fleet.nodes:
            raise NodeNotFound(f"node: value {node!r}: not a lab node")
        kind = self.fleet.nodes[node].kind
        if kind is HypervisorKind.PROXMOX:
            self.pve.reboot(self.fleet.nodes[node].pve_node or node)
            return
        daemon = self.daemons.get(node)
        if daemon is None:
            raise UnsupportedOperation(f"{node}: libvirt's test driver cannot reboot; the lab needs daemons")
        assert self.pool is not None
        self.pool.get(node).close()
        daemon.restart()
        host = self.ssh_hosts.get(node)
        if host is not None:
            # In place: the file is bind-mounted over /proc/sys/kernel/random/boot_id.
            with open(host.boot_id_file, "r+", encoding="ascii") as fh:
                fh.write(str(uuid.uuid4()) + "\n")
        fresh = self._connect(self.fleet.nodes[node])
        self.pool = DriverPool(
            self.fleet.nodes,
            drivers={**{n: self.pool.get(n) for n in self.fleet.nodes if n != node}, node: fresh},
        )

    def update_inventory(self, *, vds: Vds | None = None, client: Client | None = None) -> Fleet:
        """Record a new VDS or client in the lab's inventory (as sales would), rewrite it."""
        assert self.fleet is not None, "the lab is not started"
        changes: dict[str, Any] = {}
        if vds is not None:
            changes["vds"] = {**self.fleet.vds, vds.name: vds}
            changes["hostnames"] = {**self.fleet.hostnames, naming.pve_safe_name(vds.name): vds.name}
        if client is not None:
            changes["clients"] = {**self.fleet.clients, client.id: client}
        self.fleet = self.fleet.model_copy(update=changes)
        inventory.dump(self.fleet, self.inventory_dir)
        return self.fleet

    def describe(self) -> list[str]:
        assert self.fleet is not None
        lines = [f"lab at {self.base_dir} ({self.mode} libvirt nodes)"]
        for node in self.fleet.nodes.values():
            where = (
                node.uri
                if node.kind is HypervisorKind.PROXMOX
                else ("libvirtd" if self.mode == "daemon" else "test driver")
            )
            lines.append(f"  {node.name}: {node.kind.value} at {where}, main IP {node.main_ip}")
        lines += [f"  note: {n}" for n in self.notes]
        return lines


def start_lab(**kwargs: Any) -> Lab:
    """Start a :class:`Lab` (remember to ``stop()`` it)."""
    return Lab(**kwargs).start()


__all__ = ["Lab", "daemons_possible", "spec_from_record", "start_lab"]
