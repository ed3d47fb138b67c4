"""The things the house rules talk about, as pydantic v2 models.

Values (names, addresses, specs) are frozen. Invalid values fail at the
boundary: use :func:`build` (or the ``load`` functions built on it) to get an
:class:`ipsinfra.errors.InvalidInput` that names the field and the value
instead of pydantic's multi-line report.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import ipaddress
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from ipsinfra.errors import InvalidInput
from ipsinfra.identity import (
    PORT_NAME_RULE,
    EmailAddress,
    email_ascii_domain,
    is_interface_name,
    parse_email,
    parse_mac,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
CPUSET_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
# Field names whose values are (or may be) secrets: never echoed in messages.
SECRET_FIELD_RE = re.compile(r"pass|pwd|secret|token(?!_id)|cipassword", re.IGNORECASE)
# A DNS label-ish identifier: node, site, switch and client ids.
IDENT_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class Frozen(BaseModel):
    """Base of value models: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class Mutable(BaseModel):
    """Base of records whose state changes (a VDS's state, a port's MACs)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


_CANONICAL_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


def normalize_mac(value: str) -> str:
    """Return ``aa:bb:cc:dd:ee:ff`` for any common MAC spelling, else ValueError.

    The dialects and their strict grouping are :func:`ipsinfra.identity.parse_mac`'s:
    ``0:1:2:3:4:5`` is accepted, the misgrouped ``a:ab:bc:cd:de:ef:f`` is not.

    >>> normalize_mac("AABB.CCDD.EEFF")
    'aa:bb:cc:dd:ee:ff'
    """
    if _CANONICAL_MAC.fullmatch(value):
        return value  # already aa:bb:cc:dd:ee:ff (libvirt, Proxmox and Linux print it so)
    return parse_mac(value)


@functools.lru_cache(maxsize=1024)
def _check_cpuset(cpuset: str) -> None:
    parse_cpuset(cpuset)  # a node's few cpusets recur in every VDS it lists (B4)


def parse_cpuset(cpuset: str) -> set[int]:
    """The CPUs a cpuset string names: ``"1-3,8"`` -> ``{1, 2, 3, 8}``."""
    if not CPUSET_RE.fullmatch(cpuset):
        raise ValueError(f"not a cpuset: {cpuset!r}")
    cpus: set[int] = set()
    for part in cpuset.split(","):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if last < first:
            raise ValueError(f"not a cpuset: {cpuset!r} (range {part} runs backwards)")
        cpus.update(range(first, last + 1))
    return cpus


class HypervisorKind(enum.StrEnum):
    LIBVIRT = "libvirt"
    PROXMOX = "proxmox"


class VdsState(enum.StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    PAUSED = "paused"
    STARTING = "starting"
    MIGRATING = "migrating"
    BACKUP = "backup"
    CRASHED = "crashed"
    UNKNOWN = "unknown"

    @property
    def transitional(self) -> bool:
        """States worth a short recheck rather than an alarm (§5.2)."""
        return self in {VdsState.STARTING, VdsState.MIGRATING, VdsState.BACKUP}


class SecretRef(Frozen):
    """Where a secret comes from; never the secret itself.

    Exactly one of ``env`` (an environment variable's name) or ``file`` (a path
    whose first line is the secret; ansible-vault decrypts to such files).
    """

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference needs exactly one of 'env' or 'file'")

    def resolve(self) -> str:
        """Read the secret now. Raises InvalidInput naming the reference (not the value)."""
        import os
        from pathlib import Path

        from ipsinfra.redact import register as register_secret  # masked in every log line from now on

        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise InvalidInput(f"secret: environment variable {self.env!r} is not set")
            register_secret(value)
            return value
        assert self.file is not None
        path = Path(self.file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"secret: file {self.file!r} cannot be read: {exc.strerror}") from None
        value = text.splitlines()[0].strip() if text.strip() else ""
        if not value:
            raise InvalidInput(f"secret: file {self.file!r} is empty")
        register_secret(value)
        return value


class Site(Frozen):
    """A site: one datacenter (DC) where the provider has equipment."""

    name: str = Field(pattern=IDENT_RE)
    dc: str = Field(min_length=1, description="the datacenter's name")
    location: str = ""
    own_network: bool = Field(
        default=False, description="our own network (Moscow): write to Spamhaus directly (§7.2)"
    )
    dc_abuse_email: EmailAddress | None = None
    dc_reaction_hours: int | None = Field(default=None, ge=1, le=24 * 14)
    abuse_trusted_senders: tuple[str, ...] = Field(
        default=(),
        description="complaint senders that may block this site's servers at once (§7.2, §7.3): "
        "an address (abuse@dc.example) or a whole domain (@spamhaus.org); anyone else only proposes",
    )
    abuse_max_targets: int = Field(
        default=1, ge=1, le=10_000, description="a complaint naming more of our servers only proposes"
    )

    @field_validator("abuse_trusted_senders", mode="before")
    @classmethod
    def _senders(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return value
        out = []
        for item in value:
            text = str(item).strip()
            # ``@domain`` trusts the whole domain: its syntax is checked as an address's
            # would be. Compared lower case with IDNA A-labels, the form the intake
            # gives the sender (abuse/headers.py).
            try:
                address = parse_email(f"postmaster{text}" if text.startswith("@") else text, field="sender")
            except InvalidInput:
                raise ValueError(
                    f"{item!r}: an address (abuse@dc.example) or a domain (@spamhaus.org)"
                ) from None
            local, domain = address.rpartition("@")[0].lower(), email_ascii_domain(address)
            out.append(f"@{domain}" if text.startswith("@") else f"{local}@{domain}")
        return tuple(out)


class DirectBootSpec(Frozen):
    """libvirt only: boot new VDS from a kernel/initrd on the node (labs, netboot installers)."""

    kernel: str = Field(min_length=1)
    initrd: str | None = None
    cmdline: str = ""


# What virsh on a node may be given as its URI (shell-quoted as well).
LOCAL_URI_PATTERN = r"^[A-Za-z0-9+._:/?=&,@%-]+$"


class Node(Frozen):
    """A hypervisor node."""

    name: str = Field(pattern=IDENT_RE, description="our name, equal to the DC's (§4.4)")
    dc_name: str | None = Field(default=None, description="the DC's name when it has one")
    site: str = Field(pattern=IDENT_RE)
    main_ip: IPAddress
    kind: HypervisorKind
    uri: str = Field(min_length=1, description="libvirt URI or Proxmox API host[:port]")
    pve_node: str | None = Field(default=None, description="node name inside the PVE cluster")
    cpus: int = Field(ge=1, le=4096)
    memory_mib: int | None = Field(default=None, ge=1)
    bridge: str = "br0"
    gateway: IPAddress | None = None
    vnc_listen: IPAddress | None = Field(
        default=None, description="VNC listen address; the main IP when unset"
    )
    ip_pool: list[IPAddress] = Field(default_factory=list, description="free IPs for new VDS")
    migration_address: IPAddress | None = Field(
        default=None, description="where migration data to this node goes; the main IP when unset"
    )
    direct_boot: DirectBootSpec | None = Field(
        default=None, description="libvirt: boot new VDS from this kernel/initrd (the lab's guest)"
    )
    password_method: Literal["agent", "nocloud"] = Field(
        default="agent",
        description=(
            "libvirt: how a new VDS gets its root password. agent: the qemu guest agent "
            "(setUserPassword) in the running guest, for images with qemu-guest-agent; nocloud: a "
            "cloud-init NoCloud seed (a 'cidata' ISO with the SHA-512 hash) uploaded to seed_pool "
            "and attached as a read-only cdrom before the first boot, for images with cloud-init "
            "and no agent"
        ),
    )
    seed_pool: str = Field(
        default="default",
        pattern=IDENT_RE,
        description="libvirt, password_method nocloud: the storage pool on the node seeds are uploaded to",
    )
    ssh_host: str | None = None
    ssh_port: int = Field(default=22, ge=1, le=65535)
    ssh_user: str = "root"
    ssh_key_file: str | None = None
    ssh_known_hosts: str | None = None
    libvirt_listing: Literal["auto", "rpc", "ssh"] = Field(
        default="auto",
        description=(
            "libvirt: how list_vds reads the node. rpc: libvirt RPCs, 2 + one XMLDesc per domain; "
            "ssh: one SSH exec running virsh on the node (ssh_* fields), whatever the domain count "
            "(B3); auto: ssh the way a qemu+ssh:// URI's own SSH goes, rpc for other transports "
            "or when that fails"
        ),
    )
    libvirt_local_uri: str = Field(
        default="qemu:///system",
        pattern=LOCAL_URI_PATTERN,
        description="libvirt: the URI virsh uses ON the node for libvirt_listing=ssh",
    )
    api_user: str | None = None
    api_token_id: str | None = None
    secret: SecretRef | None = None
    ca_file: str | None = None
    verify_tls: bool = True

    @property
    def vnc_address(self) -> IPAddress:
        return self.vnc_listen or self.main_ip


class Disk(Frozen):
    name: str = Field(default="disk0", min_length=1)
    size_gib: int = Field(ge=1, le=65536)
    storage: str | None = None


class Nic(Frozen):
    mac: str
    bridge: str | None = None
    model: str = "virtio"

    @field_validator("mac", mode="before")
    @classmethod
    def _mac(cls, v: Any) -> str:
        return normalize_mac(str(v))


class Vds(Mutable):
    """A VDS (VPS) as the inventory records it or a hypervisor reports it."""

    name: str = Field(min_length=1, description="house name VPS<order>(<a>.<b>) (§8.5)")
    order: int | None = Field(default=None, ge=1)
    node: str = Field(pattern=IDENT_RE)
    vcpus: int = Field(ge=1, le=4096)
    cpuset: str | None = None
    memory_mib: int = Field(ge=16)
    disks: list[Disk] = Field(default_factory=list)
    ips: list[IPAddress] = Field(default_factory=list)
    nics: list[Nic] = Field(default_factory=list)
    vnc_listen: IPAddress | None = None
    vnc_port: int | None = Field(default=None, ge=-1, le=65535)
    autostart: bool = False
    state: VdsState = VdsState.UNKNOWN
    client: str | None = None
    os: str | None = None
    arch: str | None = None
    install_type: str | None = None
    panel: str | None = None
    comment: str = ""
    activated: dt.date | None = None
    trial_end: dt.date | None = None
    blocked: bool = False
    blocked_reason: str | None = None
    cancelled: bool = False
    backend_id: str | None = Field(default=None, description="vmid or libvirt UUID")
    probe: str | None = Field(
        default=None,
        description="host:port the audit's SSH/RDP check connects to instead of the first IP (NAT, lab)",
    )
    description: str = Field(default="", description="the backend's free text, with ipsinfra-* lines")

    @field_validator("cpuset")
    @classmethod
    def _cpuset(cls, v: str | None) -> str | None:
        if v is not None:
            _check_cpuset(v)
        return v

    @property
    def macs(self) -> list[str]:
        return [nic.mac for nic in self.nics]

    @property
    def should_run(self) -> bool:
        """§5.2: autostart on, not blocked, not cancelled (trial expiry is the audit's call)."""
        return self.autostart and not self.blocked and not self.cancelled


class VdsSpec(Frozen):
    """What to create: the input of ``HypervisorDriver.define``."""

    name: str = Field(min_length=1)
    vcpus: int = Field(ge=1, le=4096)
    cpuset: str | None = None
    memory_mib: int = Field(ge=16)
    disks: list[Disk] = Field(default_factory=list)
    nics: list[Nic] = Field(default_factory=list)
    ips: list[IPAddress] = Field(default_factory=list)
    vnc_listen: IPAddress | None = None
    autostart: bool = False
    description: str = ""
    os: str | None = None
    arch: str = "x86_64"

    @field_validator("cpuset")
    @classmethod
    def _cpuset(cls, v: str | None) -> str | None:
        if v is not None:
            _check_cpuset(v)
        return v


class Client(Frozen):
    id: str = Field(pattern=IDENT_RE)
    name: str = Field(min_length=1)
    address: str = ""
    email: EmailAddress | None = None
    activated: dt.date | None = None
    services: int = Field(default=1, ge=0)


class Order(Frozen):
    """An order as sales hands it over (§8.1-8.4)."""

    number: int = Field(ge=1)
    client: str = Field(pattern=IDENT_RE)
    node: str = Field(pattern=IDENT_RE)
    vcpus: int = Field(ge=1, le=4096)
    memory_mib: int = Field(ge=16)
    disk_gib: int = Field(ge=1)
    ips: int = Field(default=1, ge=0, le=256)
    os: str = Field(min_length=1)
    arch: str = "x86_64"
    install_type: str = "template"
    panel: str | None = None
    comment: str = ""
    trial: bool = False

    @field_validator("number", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.isdigit():
            raise ValueError(f"an order number is digits only, got {v!r}")
        return v


class Switch(Frozen):
    name: str = Field(pattern=IDENT_RE)
    site: str = Field(pattern=IDENT_RE)
    host: str = Field(min_length=1, description="management address")
    port: int = Field(default=22, ge=1, le=65535)
    platform: str = Field(min_length=1, description="netmiko device_type, e.g. cisco_ios")
    username: str = "admin"
    secret: SecretRef | None = None
    ssh_known_hosts: str | None = Field(
        default=None,
        description=(
            "known_hosts file holding the switch's pinned host key (as nodes' ssh_known_hosts); "
            "unset: the user's ~/.ssh/known_hosts. An unknown or changed key is refused"
        ),
    )


class SwitchPort(Mutable):
    switch: str = Field(pattern=IDENT_RE)
    port: str = Field(min_length=1)
    description: str = ""
    macs: list[str] = Field(default_factory=list)
    server: str | None = None
    uplink: bool = False

    @field_validator("macs", mode="before")
    @classmethod
    def _macs(cls, v: Any) -> Any:
        return [normalize_mac(str(m)) for m in v] if isinstance(v, list) else v


class DedicatedServer(Frozen):
    name: str = Field(min_length=1)
    dc_name: str | None = None
    site: str = Field(pattern=IDENT_RE)
    ips: list[IPAddress] = Field(default_factory=list)
    macs: list[str] = Field(default_factory=list)
    switch: str | None = None
    port: str | None = None
    client: str | None = None
    activated: dt.date | None = None
    blocked: bool = False

    @field_validator("macs", mode="before")
    @classmethod
    def _macs(cls, v: Any) -> Any:
        return [normalize_mac(str(m)) for m in v] if isinstance(v, list) else v

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, v: Any) -> Any:
        # one word: the name goes into `interface <port>` on the switch (§11.8)
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)  # an HP port number written unquoted in YAML
        if isinstance(v, str) and not is_interface_name(v):
            raise ValueError(PORT_NAME_RULE)
        return v


class NodeFacts(Frozen):
    """What a node says about itself."""

    node: str
    hostname: str | None = None
    main_ip: IPAddress | None = None
    cpus: int | None = None
    memory_mib: int | None = None
    boot_id: str | None = None
    boot_time: dt.datetime | None = None
    uptime_s: float | None = None


M = TypeVar("M", bound=BaseModel)


def describe_validation_error(exc: ValidationError, where: str = "") -> str:
    """One line per problem: ``where.field: value 'x': reason``."""
    lines: list[str] = []
    seen: set[str] = set()
    for err in exc.errors():
        # Drop pydantic's union-branch tags ("lax-or-strict[...]", "function-after[...]").
        parts = [str(p) for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
        loc = ".".join(parts) or "(value)"
        field = f"{where}.{loc}" if where else loc
        if field in seen:  # one line per field: an IP fails both the v4 and the v6 branch
            continue
        seen.add(field)
        value = err.get("input")
        shown = (
            value if isinstance(value, str | int | float | bool) or value is None else type(value).__name__
        )
        if any(SECRET_FIELD_RE.search(p) for p in [where, *parts]) and not isinstance(value, dict):
            shown = "***"  # never echo what may be a literal secret
        if err["type"] == "extra_forbidden":
            shown = "***"  # an unknown field may be a misspelt secret (switch_pwd)
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{field}: value {shown!r}: {msg}")
    return "; ".join(lines)


def build(model: type[M], data: Any, where: str = "") -> M:
    """Validate ``data`` into ``model`` or raise InvalidInput naming field and value."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc, where or model.__name__)) from None


__all__ = [
    "Annotated",
    "Client",
    "DedicatedServer",
    "DirectBootSpec",
    "Disk",
    "HypervisorKind",
    "IPAddress",
    "Nic",
    "Node",
    "NodeFacts",
    "Order",
    "SecretRef",
    "Site",
    "Switch",
    "SwitchPort",
    "Vds",
    "VdsSpec",
    "VdsState",
    "build",
    "describe_validation_error",
    "normalize_mac",
    "parse_cpuset",
]
