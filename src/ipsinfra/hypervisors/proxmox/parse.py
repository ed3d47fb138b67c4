"""Pure parsing of PVE API answers into models, and the values we write back.

Nothing here opens a socket: a ``/nodes/{node}/qemu`` row and a VM config
(a dict as ``GET .../config`` answers it) in, a :class:`~ipsinfra.models.Vds` out.
Values may be strings (fakepve, older PVE) or numbers (PVE 9); both coerce.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ipsinfra import naming
from ipsinfra.errors import InvalidInput, IpsinfraError
from ipsinfra.models import Disk, IPAddress, Nic, Vds, VdsState

MiB = 1024 * 1024
HOUSE_TAG = "ipsinfra-name"
IPS_TAG = "ipsinfra-ips"
_META_LINE = re.compile(rf"^(?:{HOUSE_TAG}|{IPS_TAG}):.*$\n?", re.MULTILINE)
_HOUSE_LINE = re.compile(rf"^{HOUSE_TAG}:\s*(\S+)\s*$", re.MULTILINE)
_IPS_LINE = re.compile(rf"^{IPS_TAG}:\s*(.*?)\s*$", re.MULTILINE)
_VNC_ARG = re.compile(r"-vnc\s+(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<v4>[^\s:,\[]+)):(?P<display>\d+)\S*")
_DRIVE_KEY = re.compile(r"^(?:ide|sata|scsi|virtio)\d+$")
_SIZE = re.compile(r"(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)")
_UNITS = {"K": 1 / (1024 * 1024), "M": 1 / 1024, "G": 1.0, "T": 1024.0, "": 1.0}


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


def split_pending(items: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(current, at next start)`` configs from a ``GET .../pending`` answer.

    Each item is ``{key, value?, pending?, delete?}`` (qemu-server
    ``API2/Qemu.pm`` ``vm_pending``, built by ``PVE::GuestHelpers::config_with_pending_array``):
    ``value`` is what the running VM uses, ``pending`` what the next cold start
    will use, ``delete`` a pending removal.

    >>> split_pending([{"key": "args", "value": "-vnc 127.0.0.1:100", "pending": "-vnc 127.0.0.2:100"},
    ...                {"key": "onboot", "value": "1"}])[1]["args"]
    '-vnc 127.0.0.2:100'
    """
    current: dict[str, Any] = {}
    configured: dict[str, Any] = {}
    for item in items:
        key = str(item.get("key", ""))
        if not key:
            continue
        if item.get("value") is not None:
            current[key] = item["value"]
        if _as_bool(item.get("delete", 0)):
            continue
        value = item.get("pending", item.get("value"))
        if value is not None:
            configured[key] = value
    return current, configured
