"""Proxmox VE backend: :class:`ProxmoxDriver` over proxmoxer's HTTPS API.

Choices this module makes, and why:

* **Names.** PVE's ``name`` is a dns-name, so a VM is named by the DNS-safe
  twin (``VPS1234-34-56``); the house name lives in the ``description`` as a
  line ``ipsinfra-name: VPS1234(34.56)`` (other description text is kept).
  Rename changes both in one config write.
* **vCPUs.** Configured vCPUs = ``vcpus`` when set, else ``cores * sockets``.
  We write ``cores=<n>, sockets=1`` and drop ``vcpus``; ``affinity`` (PVE 7.3+)
  is the cpuset.
* **VNC.** PVE has no per-VM VNC listen address (its own console is a unix
  socket behind vncproxy), so the listen address is what PVE admins do by
  hand: ``args: -vnc <addr>:<display>`` with display = vmid by default (port
  5900 + vmid). Other ``args`` text is kept. On a real cluster ``args`` can
  only be written by ``root@pam`` (ticket, or a root token without privilege
  separation).
* **Listing in bounded calls.** ``/nodes/{node}/qemu`` has state, name, cpus
  and memory but not the config (onboot, affinity, net0, description, args),
  and neither ``?full=1`` nor ``/cluster/resources`` carries it. The real API
  has a batch endpoint, ``POST /nodes/{node}/execute`` (root@pam only), which
  runs many ``GET qemu/<vmid>/config`` in one request: a listing is 2 calls
  per node (one more per ``EXECUTE_BATCH`` VMs). When the endpoint is refused
  (a non-root user or token), the driver falls back to one config call per
  VM, and says so in ``ex_listing_mode``.
* **Tasks.** Every UPID is waited on with a deadline; a timeout raises
  :class:`OperationTimeout` and a non-OK exit status raises
  :class:`HypervisorApiError` naming the step.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import logging
import math
import re
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import requests

from ipsinfra import naming
from ipsinfra.errors import (
    AlreadyExists,
    Conflict,
    HypervisorApiError,
    InvalidInput,
    IpsinfraError,
    NodeUnreachable,
    OperationTimeout,
    UnsupportedOperation,
    VdsNotFound,
)
from ipsinfra.hypervisors.base import HypervisorDriver
from ipsinfra.models import (
    Disk,
    IPAddress,
    Nic,
    Node,
    NodeFacts,
    Vds,
    VdsSpec,
    VdsState,
)

if TYPE_CHECKING:
    from proxmoxer import ProxmoxAPI

MiB = 1024 * 1024
HOUSE_TAG = "ipsinfra-name"
IPS_TAG = "ipsinfra-ips"
EXECUTE_BATCH = 500  # commands per /execute request: well under PVE's 64 KiB body limit
DEFAULT_STORAGE = "local-lvm"
_META_LINE = re.compile(rf"^(?:{HOUSE_TAG}|{IPS_TAG}):.*$\n?", re.MULTILINE)
_HOUSE_LINE = re.compile(rf"^{HOUSE_TAG}:\s*(\S+)\s*$", re.MULTILINE)
_IPS_LINE = re.compile(rf"^{IPS_TAG}:\s*(.*?)\s*$", re.MULTILINE)
_VNC_ARG = re.compile(r"-vnc\s+(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<v4>[^\s:,\[]+)):(?P<display>\d+)\S*")
_DRIVE_KEY = re.compile(r"^(?:ide|sata|scsi|virtio)\d+$")
_SIZE = re.compile(r"(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)")
_UNITS = {"K": 1 / (1024 * 1024), "M": 1 / 1024, "G": 1.0, "T": 1024.0, "": 1.0}
_log = logging.getLogger(__name__)


class ProxmoxQuorumLost(HypervisorApiError):
    """The PVE cluster has no quorum: /etc/pve is read-only, changes and VM actions fail."""


# --------------------------------------------------------------- parsing


def _as_int(value: Any, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(float(text)) if re.fullmatch(r"-?\d+(\.\d+)?", text) else default


def _as_bool(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _memory_mib(value: Any) -> int | None:
    """PVE 9 ``memory`` is a property string: ``2048`` or ``current=2048``."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    for part in str(value).split(","):
        key, _, val = part.rpartition("=")
        if key in {"", "current"}:
            return _as_int(val)
    return None


def _natural(key: str) -> tuple[str, int]:
    m = re.fullmatch(r"(\D+)(\d+)", key)
    return (m[1], int(m[2])) if m else (key, 0)


def _props(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in str(value).split(","):
        key, sep, val = part.partition("=")
        out[key.strip()] = val.strip() if sep else ""
    return out


def parse_nic(value: str) -> Nic | None:
    """``virtio=52:54:00:00:01:01,bridge=vmbr0,firewall=1`` -> Nic (None without a MAC)."""
    props = _props(value)
    model = props.get("model")
    mac = props.get("macaddr")
    first = str(value).split(",", 1)[0]
    key, sep, val = first.partition("=")
    if sep and key not in {"bridge", "firewall", "tag", "rate", "mtu", "queues", "link_down"}:
        model, mac = model or key, mac or val
    if not mac:
        return None
    return Nic(mac=mac, bridge=props.get("bridge") or None, model=model or "virtio")


def parse_vnc(args: str | None) -> tuple[IPAddress | None, int | None]:
    """The (listen address, port) of a ``-vnc addr:display`` in ``args``."""
    m = _VNC_ARG.search(args or "")
    if m is None:
        return None, None
    try:
        addr = ipaddress.ip_address(m["v6"] or m["v4"])
    except ValueError:
        return None, None
    return addr, 5900 + int(m["display"])


def parse_disk(key: str, value: str) -> Disk | None:
    """A data disk from ``scsi0: local-lvm:vm-100-disk-1,size=1G`` (None for CD-ROMs and cloud-init)."""
    text = str(value)
    volume = text.split(",", 1)[0]
    if "media=cdrom" in text or "cloudinit" in volume or volume in {"none", "cdrom"}:
        return None
    m = _SIZE.search(text)
    size = max(1, math.ceil(float(m[1]) * _UNITS[m[2]])) if m else 1
    storage = volume.split(":", 1)[0] if ":" in volume else None
    return Disk(name=key, size_gib=size, storage=storage)


def house_name(description: str | None, pve_name: str | None) -> str:
    """The house name: from the description's ``ipsinfra-name:`` line, else from the DNS-safe twin."""
    m = _HOUSE_LINE.search(description or "")
    if m and naming.is_vps_name(m[1]):
        return m[1]
    try:
        return naming.from_pve_safe_name(pve_name or "")
    except IpsinfraError:
        return pve_name or ""


def with_meta(description: str | None, name: str, ips: list[IPAddress] | None = None) -> str:
    """The description with our metadata lines set (first) and the rest of the text kept."""
    keep = ips
    if keep is None:
        m = _IPS_LINE.search(description or "")
        keep = [ipaddress.ip_address(x) for x in m[1].split(",") if x.strip()] if m else []
    rest = _META_LINE.sub("", description or "").strip("\n")
    lines = [f"{HOUSE_TAG}: {name}"]
    if keep:
        lines.append(f"{IPS_TAG}: {','.join(str(ip) for ip in keep)}")
    return "\n".join(lines + ([rest] if rest else []))


def _state(row: Mapping[str, Any], config: Mapping[str, Any]) -> VdsState:
    lock = str(row.get("lock") or config.get("lock") or "")
    if lock == "migrate":
        return VdsState.MIGRATING
    if lock == "backup":
        return VdsState.BACKUP
    status = str(row.get("status") or "")
    qmp = str(row.get("qmpstatus") or "")
    if status == "running":
        return VdsState.PAUSED if qmp in {"paused", "prelaunch", "suspended"} else VdsState.RUNNING
    if status == "stopped":
        return VdsState.STOPPED
    return VdsState.UNKNOWN


def parse_vm(status_row: Mapping[str, Any], config: Mapping[str, Any], node: str) -> Vds:
    """One VM as a :class:`Vds`, from a ``/nodes/{node}/qemu`` row and its config.

    Values may be strings (fakepve, older PVE) or numbers (PVE 9); both coerce.

    >>> parse_vm({"vmid": 100, "status": "running", "name": "VPS7-1-2"},
    ...          {"cores": "2", "memory": "64", "onboot": 1, "affinity": "1-3",
    ...           "net0": "virtio=52:54:00:00:01:01,bridge=vmbr0"}, "pve1").vcpus
    2
    """
    pve_name = str(config.get("name") or status_row.get("name") or "")
    description = str(config.get("description") or "")
    name = house_name(description, pve_name) or f"vm{status_row.get('vmid')}"
    vcpus = _as_int(config.get("vcpus"))
    if not vcpus:
        vcpus = (_as_int(config.get("cores"), 1) or 1) * (_as_int(config.get("sockets"), 1) or 1)
        if "cores" not in config and "sockets" not in config:
            vcpus = _as_int(status_row.get("cpus"), 1) or 1
    memory = _memory_mib(config.get("memory"))
    if memory is None:
        memory = (_as_int(status_row.get("maxmem"), 512 * MiB) or 512 * MiB) // MiB
    nics = [
        nic
        for key in sorted((k for k in config if re.fullmatch(r"net\d+", k)), key=_natural)
        if (nic := parse_nic(str(config[key]))) is not None
    ]
    disks = [
        disk
        for key in sorted((k for k in config if _DRIVE_KEY.match(k)), key=_natural)
        if (disk := parse_disk(key, str(config[key]))) is not None
    ]
    vnc_listen, vnc_port = parse_vnc(str(config.get("args") or ""))
    ips_line = _IPS_LINE.search(description)
    ips: list[IPAddress] = []
    if ips_line:
        for text in ips_line[1].split(","):
            with contextlib.suppress(ValueError):
                ips.append(ipaddress.ip_address(text.strip()))
    affinity = str(config.get("affinity") or "").strip() or None
    comment = _META_LINE.sub("", description).strip()
    return Vds(
        name=name,
        order=naming.order_of(name),
        node=node,
        vcpus=max(1, vcpus),
        cpuset=affinity,
        memory_mib=max(16, memory),
        disks=disks,
        ips=ips,
        nics=nics,
        vnc_listen=vnc_listen,
        vnc_port=vnc_port,
        autostart=_as_bool(config.get("onboot", 0)),
        state=_state(status_row, config),
        comment=comment,
        description=description,
        backend_id=str(status_row.get("vmid") or "") or None,
    )


# --------------------------------------------------------------- transport


class _RedactSecrets(logging.Filter):
    """proxmoxer logs request data at INFO: keep cloud-init passwords out of it."""

    _SECRET = re.compile(r"('(?:cipassword|password|token_value)':\s*)'[^']*'")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "password" in message:
            record.msg, record.args = self._SECRET.sub(r"\1'***'", message), None
        return True


_redactor = _RedactSecrets()
for _name in ("proxmoxer.core", "proxmoxer"):
    if _redactor not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_redactor)


def connect(node: Node, *, timeout: float = 30.0) -> ProxmoxAPI:
    """A proxmoxer ``ProxmoxAPI`` for ``node``: token auth when ``api_token_id`` is set, else a ticket.

    TLS is verified (against ``node.ca_file`` when set); ``node.verify_tls=False``
    is the only way to turn it off.
    """
    from proxmoxer import ProxmoxAPI

    host = re.sub(r"^https?://", "", node.uri).rstrip("/")
    user = node.api_user or "root@pam"
    if node.secret is None:
        raise InvalidInput(f"node {node.name}: secret: a Proxmox node needs a token or password reference")
    secret = node.secret.resolve()
    verify: bool | str = (node.ca_file or True) if node.verify_tls else False
    kwargs: dict[str, Any] = {"user": user, "verify_ssl": verify, "timeout": timeout}
    if node.api_token_id:
        token_user, sep, token_name = node.api_token_id.rpartition("!")
        kwargs.update(token_name=token_name, token_value=secret, user=token_user if sep else user)
    else:
        kwargs["password"] = secret
    with _edge(node.name, "connect", secret=secret):
        return ProxmoxAPI(host, **kwargs)


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _translate(exc: Exception, node: str, step: str, vds: str | None, secret: str | None) -> IpsinfraError:
    from proxmoxer.core import AuthenticationError, ResourceException

    if isinstance(exc, ResourceException):
        status = int(exc.status_code)
        text = _scrub(f"{exc.content} {exc.errors or ''}".strip(), secret)
        low = text.lower()
        if (
            status == 595
            or "no route to host" in low
            or "hostname lookup" in low
            or "no such cluster node" in low
        ):
            return NodeUnreachable(
                f"{step}: node does not answer through the cluster API ({status} {text})", node=node
            )
        if status == 404 or ("does not exist" in low and "configuration file" in low):
            return VdsNotFound(f"{step}: {vds or 'VM'}: no such VDS on the node ({status} {text})")
        if "no quorum" in low:
            return ProxmoxQuorumLost(
                f"{step}: cluster has no quorum, nothing changed ({status} {text})", node=node
            )
        return HypervisorApiError(f"{step}: API error {status}: {text}", node=node)
    if isinstance(exc, requests.exceptions.SSLError):
        return NodeUnreachable(
            f"{step}: TLS verification of the API failed: {_scrub(str(exc), secret)}", node=node
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return OperationTimeout(f"{step}: the API did not answer in time", node=node)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return NodeUnreachable(f"{step}: cannot connect to the API: {_scrub(str(exc), secret)}", node=node)
    if isinstance(exc, AuthenticationError):
        return HypervisorApiError(f"{step}: authentication failed: {_scrub(str(exc), secret)}", node=node)
    return HypervisorApiError(f"{step}: {type(exc).__name__}: {_scrub(str(exc), secret)}", node=node)


@contextlib.contextmanager
def _edge(node: str, step: str, *, vds: str | None = None, secret: str | None = None) -> Iterator[None]:
    """Translate proxmoxer/requests errors into ipsinfra's, naming the node and the step.

    With ``secret`` set the secret is scrubbed from the message and the
    original exception is not chained (its text could carry the secret).
    """
    from proxmoxer.core import AuthenticationError, ResourceException

    try:
        yield
    except IpsinfraError:
        raise
    except (ResourceException, AuthenticationError, requests.exceptions.RequestException) as exc:
        err = _translate(exc, node, step, vds, secret)
        if secret:
            raise err from None
        raise err from exc


# --------------------------------------------------------------- driver


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
        self._batch_ok = True

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
        """``batch`` (2 calls per listing) or ``per-vm`` (1 + one per VM, when /execute is refused)."""
        return "batch" if self._batch_ok else "per-vm"

    def _edge(self, step: str, *, vds: str | None = None, secret: str | None = None) -> Any:
        return _edge(self.node.name, step, vds=vds, secret=secret)

    def _vm_api(self, vmid: int) -> Any:
        return self._api.nodes(self.pve_node).qemu(vmid)

    def _wait(self, upid: Any, step: str, *, timeout: float | None = None) -> None:
        """Wait for a task to stop; raise OperationTimeout at the deadline, HypervisorApiError unless OK."""
        if not isinstance(upid, str) or not upid.startswith("UPID:"):
            raise HypervisorApiError(f"{step}: expected a task id (UPID), got {upid!r}", node=self.node.name)
        task_node = upid.split(":")[1]
        limit = self.task_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            with self._edge(f"{step} (task status)"):
                status = self._api.nodes(task_node).tasks(upid).status.get()
            if status.get("status") == "stopped":
                exit_status = str(status.get("exitstatus") or "")
                if exit_status == "OK" or exit_status.startswith("WARNINGS"):
                    return
                raise HypervisorApiError(
                    f"{step}: task {status.get('type', '?')} failed: "
                    f"{exit_status or 'no exit status'} ({upid})",
                    node=self.node.name,
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OperationTimeout(
                    f"{step}: task {upid} still running after {limit:g} s", node=self.node.name
                )
            time.sleep(min(self.poll_interval, remaining))

    def _rows(self) -> list[dict[str, Any]]:
        with self._edge("list VMs"):
            rows = self._api.nodes(self.pve_node).qemu.get()
        return [dict(r) for r in rows or [] if not _as_bool(r.get("template", 0))]

    def _cluster_vms(self) -> list[dict[str, Any]]:
        with self._edge("list cluster VMs"):
            return [
                dict(r) for r in self._api.cluster.resources.get(type="vm") or [] if r.get("type") == "qemu"
            ]

    def _config(self, vmid: int, name: str) -> dict[str, Any]:
        with self._edge("read config", vds=name):
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

    def _configs(self, vmids: list[int]) -> dict[int, dict[str, Any]]:
        """Configs of many VMs: one ``/execute`` request per EXECUTE_BATCH, else one call each."""
        out: dict[int, dict[str, Any]] = {}
        if self._batch_ok:
            try:
                for start in range(0, len(vmids), EXECUTE_BATCH):
                    chunk = vmids[start : start + EXECUTE_BATCH]
                    commands = [{"method": "GET", "path": f"qemu/{vmid}/config"} for vmid in chunk]
                    with self._edge("read configs (batch)"):
                        answers = self._api.nodes(self.pve_node).execute.post(commands=json.dumps(commands))
                    for vmid, answer in zip(chunk, answers or [], strict=False):
                        if int(answer.get("status", 500)) == 200 and isinstance(answer.get("data"), dict):
                            out[vmid] = answer["data"]
                return out
            except HypervisorApiError as exc:
                if "403" not in str(exc) and "501" not in str(exc):
                    raise
                _log.info("%s: /execute refused (%s); reading configs one VM at a time", self.node.name, exc)
                self._batch_ok = False
        for vmid in vmids:
            with contextlib.suppress(VdsNotFound):
                out[vmid] = self._config(vmid, f"vmid {vmid}")
        return out

    # --- reading ---------------------------------------------------------
    def list_vds(self) -> list[Vds]:
        rows = self._rows()
        if not rows:
            return []
        configs = self._configs([int(r["vmid"]) for r in rows])
        # A VM deleted between the two calls has no config: it is gone, not listed.
        return [
            parse_vm(r, configs[int(r["vmid"])], self.node.name) for r in rows if int(r["vmid"]) in configs
        ]

    def get_vds(self, name: str) -> Vds:
        row = self._find(name)
        return parse_vm(row, self._config(int(row["vmid"]), name), self.node.name)

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
        """The VDS as its configuration will be at the next start: pending changes applied.

        PVE keeps a running VM's changes that cannot be hot-plugged (cores and
        memory without ``hotplug=cpu,memory``) as *pending*; ``GET .../pending``
        lists the current and the pending value of every key.
        """
        row = self._find(name)
        vmid = int(row["vmid"])
        with self._edge("read pending config", vds=name):
            items = self._vm_api(vmid).pending.get()
        config: dict[str, Any] = {}
        for item in items or []:
            key = str(item.get("key", ""))
            if not key or _as_bool(item.get("delete", 0)):
                continue
            value = item.get("pending", item.get("value"))
            if value is not None:
                config[key] = value
        return parse_vm(row, config, self.node.name)

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
        vmid = self.ex_vmid(name)
        config = self._config(vmid, name)
        self._put(
            name,
            vmid,
            "set vnc",
            args=_vnc_args(str(config.get("args") or ""), address, vmid),
            digest=config.get("digest"),
        )
        return self.get_vds(name)

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


def _vnc_args(args: str | None, address: IPAddress, vmid: int) -> str:
    """``args`` with its ``-vnc`` set to ``address``, keeping the display (vmid by default) and other args."""
    m = _VNC_ARG.search(args or "")
    display = int(m["display"]) if m else vmid
    if 5900 + display > 65535:
        raise InvalidInput(f"vnc: vmid {vmid} gives no valid VNC port (5900 + display must be <= 65535)")
    host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    vnc = f"-vnc {host}:{display}"
    if m:
        return (args or "")[: m.start()] + vnc + (args or "")[m.end() :]
    return f"{args} {vnc}".strip() if args else vnc


__all__ = [
    "ProxmoxDriver",
    "ProxmoxQuorumLost",
    "connect",
    "house_name",
    "parse_disk",
    "parse_nic",
    "parse_vm",
    "parse_vnc",
    "with_meta",
]
