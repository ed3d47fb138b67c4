"""``ProxmoxDriver``: one PVE node through the cluster's API (reads and writes).

See the package docstring (:mod:`ipsinfra.hypervisors.proxmox`) for what PVE
does with a change to a running VM and what this driver can and cannot verify.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import TYPE_CHECKING, Any

from ipsinfra import naming
from ipsinfra.errors import (
    AlreadyExists,
    Conflict,
    HypervisorApiError,
    InvalidInput,
    OperationTimeout,
    UnsupportedOperation,
    VdsNotFound,
)
from ipsinfra.hypervisors.base import HypervisorDriver
from ipsinfra.hypervisors.proxmox.api import connect, edge, wait_task
from ipsinfra.hypervisors.proxmox.listing import ConfigReader
from ipsinfra.hypervisors.proxmox.parse import (
    _DRIVE_KEY,
    MiB,
    _as_bool,
    _as_int,
    _natural,
    _vnc_args,
    parse_disk,
    parse_vm,
    split_pending,
    with_meta,
)
from ipsinfra.models import IPAddress, Node, NodeFacts, Vds, VdsSpec

if TYPE_CHECKING:
    from proxmoxer import ProxmoxAPI

DEFAULT_STORAGE = "local-lvm"


class ProxmoxDriver(HypervisorDriver):
    """One PVE node of a cluster, through the cluster's API.

    Args:
        node: the node model; ``pve_node`` (default ``name``) is its name in the cluster.
        api: a ready ``ProxmoxAPI``; built from ``node`` (:func:`connect`) when None.
        task_timeout: seconds to wait for a task (create, start, migrate...) to end.
        poll_interval: seconds between task status polls.
        storage: where new disks (and the cloud-init drive) are allocated.
    """

    def __init__(
        self,
        node: Node,
        api: ProxmoxAPI | None = None,
        *,
        task_timeout: float = 120.0,
        poll_interval: float = 0.2,
        storage: str = DEFAULT_STORAGE,
    ) -> None:
        self.node = node
        self.pve_node = node.pve_node or node.name
        self.task_timeout = task_timeout
        self.poll_interval = poll_interval
        self.storage = storage
        self._api: ProxmoxAPI = api if api is not None else connect(node)
        self._reader = ConfigReader(self._api, self.pve_node, node.name)

    def close(self) -> None:
        """Close the HTTPS session (its pooled keep-alive connections)."""
        session = getattr(self._api, "_store", {}).get("session")
        if session is not None:
            session.close()

    # --- plumbing --------------------------------------------------------
    @property
    def ex_api(self) -> ProxmoxAPI:
        """The proxmoxer API object (PVE-only features)."""
        return self._api

    @property
    def ex_listing_mode(self) -> str:
        """``batch`` (2 calls per listing) or ``per-vm`` (1 + one per VM): see :attr:`ex_listing_reason`."""
        return self._reader.mode

    @property
    def ex_listing_reason(self) -> str | None:
        """Why the listing reads one config per VM (/execute refused, or answered in a shape not PVE's)."""
        return self._reader.reason

    def _edge(self, step: str, *, vds: str | None = None, secret: str | None = None) -> Any:
        return edge(self.node.name, step, vds=vds, secret=secret)

    def _vm_api(self, vmid: int) -> Any:
        return self._api.nodes(self.pve_node).qemu(vmid)

    def _wait(self, upid: Any, step: str, *, timeout: float | None = None) -> None:
        """Wait for a task to stop; raise OperationTimeout at the deadline, HypervisorApiError unless OK."""
        wait_task(
            self._api,
            upid,
            step,
            node=self.node.name,
            timeout=self.task_timeout if timeout is None else timeout,
            poll_interval=self.poll_interval,
        )

    def _rows(self) -> list[dict[str, Any]]:
        with self._edge("list VMs"):
            rows = self._api.nodes(self.pve_node).qemu.get()
        return [dict(r) for r in rows or [] if not _as_bool(r.get("template", 0))]

    def _cluster_vms(self) -> list[dict[str, Any]]:
        with self._edge("list cluster VMs"):
            return [
                dict(r) for r in self._api.cluster.resources.get(type="vm") or [] if r.get("type") == "qemu"
            ]

    def _config(self, vmid: int, name: str, *, current: bool = False) -> dict[str, Any]:
        """The config: with pending values merged in (PVE's default, the base for a write),
        or ``current=True`` for what the running VM uses (what we report)."""
        with self._edge("read config", vds=name):
            if current:
                return dict(self._vm_api(vmid).config.get(current=1))
            return dict(self._vm_api(vmid).config.get())

    def _find(self, name: str) -> dict[str, Any]:
        """The ``/nodes/{node}/qemu`` row of the VDS (house name or, for foreign VMs, PVE name)."""
        wanted = naming.pve_safe_name(name) if naming.is_vps_name(name) else name
        for row in self._rows():
            if row.get("name") == wanted:
                return row
        raise VdsNotFound(f"{name}: no such VDS on node {self.node.name}")

    def _refuse_duplicate(self, name: str) -> None:
        safe = naming.pve_safe_name(name)
        for row in self._cluster_vms():
            if row.get("name") == safe:
                raise AlreadyExists(
                    f"{name}: a VM by that name already exists in the cluster "
                    f"(vmid {row.get('vmid')} on {row.get('node')})"
                )

    # --- reading ---------------------------------------------------------
    def list_vds(self) -> list[Vds]:
        """Every VM of the node with its current config.

        A VM is left out only when PVE itself says its config does not exist
        (deleted or moved away between the two calls); anything else the
        listing cannot account for raises HypervisorApiError.
        """
        rows = self._rows()
        if not rows:
            return []
        configs, gone = self._reader.read([int(r["vmid"]) for r in rows])
        listed = [
            parse_vm(r, configs[int(r["vmid"])], self.node.name) for r in rows if int(r["vmid"]) in configs
        ]
        if len(listed) != len(rows) - len(gone):
            raise HypervisorApiError(
                f"list VMs: the node reports {len(rows)} VMs, {len(gone)} proven gone, "
                f"but {len(listed)} listed",
                node=self.node.name,
            )
        return listed

    def get_vds(self, name: str) -> Vds:
        """The VDS as it runs now (the current config, not pending changes: see :meth:`ex_configured`)."""
        row = self._find(name)
        return parse_vm(row, self._config(int(row["vmid"]), name, current=True), self.node.name)

    def ex_vmid(self, name: str) -> int:
        """The PVE vmid of a VDS."""
        return int(self._find(name)["vmid"])

    def node_facts(self) -> NodeFacts:
        with self._edge("node status"):
            status = self._api.nodes(self.pve_node).status.get()
        cpuinfo = status.get("cpuinfo") or {}
        memory = status.get("memory") or {}
        uptime = _as_int(status.get("uptime"))
        total = _as_int(memory.get("total"))
        boot = None
        if uptime is not None:
            boot = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=uptime)).replace(microsecond=0)
        return NodeFacts(
            node=self.node.name,
            hostname=self.pve_node,
            cpus=_as_int(cpuinfo.get("cpus")),
            memory_mib=total // MiB if total else None,
            boot_time=boot,
            uptime_s=float(uptime) if uptime is not None else None,
        )

    # --- changing --------------------------------------------------------
    def define(self, spec: VdsSpec, *, start: bool = False) -> Vds:
        naming.parse_vps_name(spec.name)  # InvalidName before any API call
        self._check_vcpus(spec.vcpus, spec.cpuset)
        self._refuse_duplicate(spec.name)
        with self._edge("next vmid"):
            vmid = int(self._api.cluster.nextid.get())
        params: dict[str, Any] = {
            "vmid": vmid,
            "name": naming.pve_safe_name(spec.name),
            "description": with_meta(spec.description, spec.name, list(spec.ips)),
            "cores": spec.vcpus,
            "sockets": 1,
            "memory": spec.memory_mib,
            "onboot": int(spec.autostart),
            "scsihw": "virtio-scsi-single",
            "ide2": f"{self.storage}:cloudinit",
        }
        if spec.cpuset:
            params["affinity"] = spec.cpuset
        for i, nic in enumerate(spec.nics):
            params[f"net{i}"] = f"{nic.model}={nic.mac.upper()},bridge={nic.bridge or self.node.bridge}"
        for i, disk in enumerate(spec.disks):
            params[f"scsi{i}"] = f"{disk.storage or self.storage}:{disk.size_gib}"
        params["args"] = _vnc_args(None, spec.vnc_listen or self.node.vnc_address, vmid)
        if start:
            params["start"] = 1
        with self._edge("create", vds=spec.name):
            upid = self._api.nodes(self.pve_node).qemu.post(**params)
        self._wait(upid, f"create {spec.name}")
        return self.get_vds(spec.name)

    def start(self, name: str) -> Vds:
        row = self._find(name)
        if row.get("status") != "running":
            with self._edge("start", vds=name):
                upid = self._vm_api(int(row["vmid"])).status.start.post()
            self._wait(upid, f"start {name}")
        return self.get_vds(name)

    def stop(self, name: str, *, timeout: float = 60.0, force: bool = True) -> Vds:
        row = self._find(name)
        vmid = int(row["vmid"])
        if row.get("status") == "running":
            try:
                with self._edge("shutdown", vds=name):
                    upid = self._vm_api(vmid).status.shutdown.post(timeout=max(1, math.ceil(timeout)))
                self._wait(upid, f"shutdown {name}", timeout=max(self.task_timeout, timeout + 30))
            except (HypervisorApiError, OperationTimeout) as exc:
                if not force:
                    raise OperationTimeout(
                        f"stop {name}: no clean shutdown within {timeout:g} s ({exc})", node=self.node.name
                    ) from exc
            if force and self._find(name).get("status") == "running":
                with self._edge("stop", vds=name):
                    upid = self._vm_api(vmid).status.stop.post()
                self._wait(upid, f"stop {name}")
        return self.get_vds(name)

    def _put(self, vds: str, vmid: int, step: str, /, **values: Any) -> None:
        with self._edge(step, vds=vds):
            self._vm_api(vmid).config.put(**values)

    def set_autostart(self, name: str, enabled: bool) -> Vds:
        self._put(name, self.ex_vmid(name), "set onboot", onboot=int(enabled))
        return self.get_vds(name)

    def set_vcpus(self, name: str, vcpus: int, *, cpuset: str | None = None) -> Vds:
        self._check_vcpus(vcpus, cpuset)
        vmid = self.ex_vmid(name)
        values: dict[str, Any] = {"cores": vcpus, "sockets": 1, "delete": "vcpus"}
        if cpuset is not None:
            values["affinity"] = cpuset
        self._put(name, vmid, "set vcpus", **values)
        return self.get_vds(name)

    def ex_configured(self, name: str) -> Vds:
        """The VDS as its configuration will be at the next cold start: pending changes applied.

        PVE keeps a running VM's changes that cannot be hot-plugged (``args``,
        ``affinity``, ``cores``; memory without ``hotplug=memory``) as *pending*;
        ``GET .../pending`` lists the current and the pending value of every key.
        For a stopped VM nothing is pending and this equals :meth:`get_vds`.
        """
        row = self._find(name)
        vmid = int(row["vmid"])
        with self._edge("read pending config", vds=name):
            items = self._vm_api(vmid).pending.get()
        _current, configured = split_pending(i for i in items or [] if isinstance(i, dict))
        return parse_vm(row, configured, self.node.name)

    def set_memory(self, name: str, memory_mib: int) -> Vds:
        """Set ``memory`` (MiB). A running VM gets it at its next start unless the VM hot-plugs
        memory; returns the configuration with pending changes applied."""
        if memory_mib < 16:
            raise InvalidInput(f"memory_mib: value {memory_mib!r}: a VDS needs at least 16 MiB")
        if self.node.memory_mib is not None and memory_mib > self.node.memory_mib:
            raise InvalidInput(
                f"memory_mib: value {memory_mib!r}: more than node {self.node.name}'s "
                f"{self.node.memory_mib} MiB"
            )
        vmid = self.ex_vmid(name)
        self._put(name, vmid, "set memory", memory=memory_mib)
        return self.ex_configured(name)

    def grow_disk(self, name: str, disk: str, size_gib: int) -> Vds:
        """Grow drive ``disk`` (``scsi0``...) to ``size_gib`` with ``PUT .../resize`` (online on PVE).

        Growth only: a smaller size raises InvalidInput before any change (PVE
        itself refuses to shrink). The size is read back from the config; a task
        that ends OK without growing the drive raises HypervisorApiError.
        """
        if size_gib < 1:
            raise InvalidInput(f"disk_gib: value {size_gib!r}: at least 1")
        vmid = self.ex_vmid(name)
        config = self._config(vmid, name)
        drives = {
            key: d for key in config if _DRIVE_KEY.match(key) and (d := parse_disk(key, str(config[key])))
        }
        if disk not in drives:
            known = ", ".join(sorted(drives, key=_natural)) or "none"
            raise InvalidInput(f"disk: value {disk!r}: VDS {name!r} has no such disk (disks: {known})")
        current = drives[disk].size_gib
        if size_gib < current:
            raise InvalidInput(
                f"disk_gib: value {size_gib!r}: disk {disk} of {name} has {current} GiB; "
                "a disk only grows (shrinking is refused)"
            )
        if size_gib > current:
            with self._edge("resize disk", vds=name):
                upid = self._vm_api(vmid).resize.put(
                    disk=disk, size=f"{size_gib}G", digest=config.get("digest")
                )
            if upid is not None:  # PVE 8+ answers with a task; older versions resize synchronously
                self._wait(upid, f"resize {disk} of {name}")
            got = parse_disk(disk, str(self._config(vmid, name).get(disk, "")))
            if got is None or got.size_gib < size_gib:
                raise HypervisorApiError(
                    f"resize {disk} of {name}: the task ended OK but the config reports "
                    f"{got.size_gib if got else '?'} GiB, not {size_gib} GiB",
                    node=self.node.name,
                )
        return self.ex_configured(name)

    def rename(self, name: str, new_name: str) -> Vds:
        naming.parse_vps_name(new_name)
        vmid = self.ex_vmid(name)
        if new_name == name:
            return self.get_vds(name)
        self._refuse_duplicate(new_name)
        config = self._config(vmid, name)
        self._put(
            name,
            vmid,
            "rename",
            name=naming.pve_safe_name(new_name),
            description=with_meta(str(config.get("description") or ""), new_name),
            digest=config.get("digest"),
        )
        return self.get_vds(new_name)

    def set_bridge(self, name: str, bridge: str) -> Vds:
        """Move every NIC (``netN``) to ``bridge``; other NIC options are kept."""
        vmid = self.ex_vmid(name)
        config = self._config(vmid, name)
        values: dict[str, Any] = {}
        for key in sorted(k for k in config if re.fullmatch(r"net\d+", k)):
            parts = [p for p in str(config[key]).split(",") if not p.startswith("bridge=")]
            values[key] = ",".join([*parts, f"bridge={bridge}"])
        if values:
            self._put(name, vmid, "set bridge", digest=config.get("digest"), **values)
        return self.get_vds(name)

    def set_description(self, name: str, description: str) -> Vds:
        """Replace the description text; the house-name and IP lines are kept."""
        vmid = self.ex_vmid(name)
        ips = self.get_vds(name).ips
        config = self._config(vmid, name)
        self._put(
            name,
            vmid,
            "set description",
            description=with_meta(description, name, list(ips)),
            digest=config.get("digest"),
        )
        return self.get_vds(name)

    def set_vnc_listen(self, name: str, address: IPAddress) -> Vds:
        """Write ``-vnc <address>:<display>`` into ``args``; returns the configuration at the next start.

        ``args`` is not hot-pluggable: on a running VM PVE keeps the change as
        pending and the running QEMU keeps its old address until the next cold
        start (see the package docstring). :meth:`get_vds` shows what runs,
        :meth:`ex_configured` what is written.
        """
        vmid = self.ex_vmid(name)
        config = self._config(vmid, name)  # pending values merged: keep other pending args text
        self._put(
            name,
            vmid,
            "set vnc",
            args=_vnc_args(str(config.get("args") or ""), address, vmid),
            digest=config.get("digest"),
        )
        return self.ex_configured(name)

    def set_password(self, name: str, user: str, password: str) -> None:
        """Set the cloud-init user and password (applied at the guest's next boot).

        The password is never part of an exception or log line: errors are
        re-raised with it scrubbed and without the original chained.
        """
        if not user or not password:
            raise InvalidInput("set_password: user and password must be non-empty")
        vmid = self.ex_vmid(name)
        with self._edge("set cloud-init password", vds=name, secret=password):
            self._vm_api(vmid).config.put(ciuser=user, cipassword=password)

    def migrate(
        self,
        name: str,
        target: HypervisorDriver,
        *,
        live: bool = True,
        new_name: str | None = None,
        keep_source: bool = False,  # a PVE cluster moves the config atomically: nothing to keep
    ) -> Vds:
        """Migrate inside the cluster (``POST .../migrate``), verify, then rename to ``new_name``."""
        if not isinstance(target, ProxmoxDriver):
            raise UnsupportedOperation(
                f"migrate {name}: a Proxmox VM migrates only to another node of its PVE cluster, "
                f"not to a {type(target).__name__}"
            )
        if new_name is not None:
            naming.parse_vps_name(new_name)
        if target.pve_node == self.pve_node:
            raise InvalidInput(
                f"target: value {target.node.name!r}: the VDS is already on PVE node {self.pve_node}"
            )
        self._same_cluster(target)
        row = self._find(name)
        vmid = int(row["vmid"])
        running = row.get("status") == "running"
        if running and not live:
            raise Conflict(f"migrate {name}: it is running and live=False; stop it first or migrate live")
        if new_name is not None and new_name != name:
            self._refuse_duplicate(new_name)
        params: dict[str, Any] = {"target": target.pve_node}
        if running:
            params.update({"online": 1, "with-local-disks": 1})
        with self._edge("migrate", vds=name):
            upid = self._vm_api(vmid).migrate.post(**params)
        self._wait(upid, f"migrate {name} to {target.pve_node}")
        if not any(int(r["vmid"]) == vmid for r in target._rows()):
            raise HypervisorApiError(
                f"migrate {name}: the task ended OK but vmid {vmid} is not on {target.pve_node}",
                node=self.node.name,
            )
        if new_name is not None and new_name != name:
            return target.rename(name, new_name)
        return target.get_vds(name)

    def _cluster_identity(self) -> tuple[str, set[str]]:
        with self._edge("cluster status"):
            items = self._api.cluster.status.get()
        cluster = next((str(i.get("name")) for i in items if i.get("type") == "cluster"), "")
        return cluster, {str(i.get("name")) for i in items if i.get("type") == "node"}

    def _same_cluster(self, target: ProxmoxDriver) -> None:
        mine, my_nodes = self._cluster_identity()
        theirs, their_nodes = target._cluster_identity()
        if target.pve_node not in my_nodes or mine != theirs or my_nodes != their_nodes:
            raise UnsupportedOperation(
                f"migrate: {target.node.name} (PVE node {target.pve_node}, cluster {theirs or 'none'!r}) "
                f"is not in the cluster of {self.node.name} (cluster {mine or 'none'!r}, nodes "
                f"{', '.join(sorted(my_nodes))}); a PVE migration stays inside one cluster - "
                "move it across clusters with backup/restore or qm remote-migrate"
            )

    def delete(self, name: str) -> None:
        row = self._find(name)
        if row.get("status") == "running":
            raise Conflict(f"delete {name}: it is running; stop it first")
        with self._edge("delete", vds=name):
            upid = self._vm_api(int(row["vmid"])).delete(purge=1, **{"destroy-unreferenced-disks": 1})
        self._wait(upid, f"delete {name}")
