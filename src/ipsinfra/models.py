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
from pydantic.config import JsonDict

from ipsinfra.errors import InvalidInput, SecretMissing
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
MAX_CPU = 8191  # the highest CPU number a cpuset may name (Linux's NR_CPUS is at most 8192)
MAX_CPUSET_CHARS = 4096
# Field names whose values are (or may be) secrets: never echoed in messages.
SECRET_FIELD_RE = re.compile(r"pass|pwd|secret|token(?!_id)|cipassword", re.IGNORECASE)
# A DNS label-ish identifier: node, site, switch and client ids.
IDENT_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


def needs(feature: str, kind: str | None = None) -> JsonDict:
    """A field's ``json_schema_extra``: which feature needs it (docs/inventory.md's "needed by"),
    and for a node field that only one hypervisor kind reads, which (``libvirt``/``proxmox``)."""
    return {"needed_by": feature} if kind is None else {"needed_by": feature, "node_kind": kind}


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
    if len(cpuset) > MAX_CPUSET_CHARS or not CPUSET_RE.fullmatch(cpuset):
        raise ValueError(f"not a cpuset: {cpuset[:64]!r}")
    cpus: set[int] = set()
    for part in cpuset.split(","):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if last < first:
            raise ValueError(f"not a cpuset: {cpuset!r} (range {part} runs backwards)")
        if last > MAX_CPU:
            # a hypervisor's answer or an inventory value: "0-99999999" would build a set
            # of 10^8 ints (48 s, gigabytes); Linux's NR_CPUS is at most 8192
            raise ValueError(f"not a cpuset: {cpuset!r} (CPU {last} > {MAX_CPU})")
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

    env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="the name of the environment variable holding the secret (read when it is needed)",
        examples=["IPSINFRA_PVE1_TOKEN"],
    )
    file: str | None = Field(
        default=None,
        description="a file whose first line is the secret (~ expanded; ansible-vault can encrypt it, "
        "ipsinfra reads it decrypted)",
        examples=["~/.config/ipsinfra/sw2-msk1.secret"],
    )

    def model_post_init(self, __context: Any) -> None:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference needs exactly one of 'env' or 'file'")

    def resolve(self, owner: str | None = None, field: str = "secret") -> str:
        """Read the secret now.

        Args:
            owner: who needs it, for the message (``"node pve1"``, ``"switch sw1"``).
            field: the field holding this reference.

        Raises:
            SecretMissing: the variable is unset or the file unreadable/empty; the
                message names ``owner``, the variable or file and ``field``, never a value:
                ``node pve1: environment variable IPSINFRA_PVE1_TOKEN (secret) is not set``.
        """
        import os
        from pathlib import Path

        from ipsinfra.redact import register as register_secret  # masked in every log line from now on

        who = f"{owner}: " if owner else ""
        where = f" ({field})" if owner else ""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise SecretMissing(
                    f"{who or 'secret: '}environment variable {self.env if owner else repr(self.env)}"
                    f"{where} is not set",
                    owner=owner,
                    field=field,
                    reference=f"env {self.env}",
                )
            register_secret(value)
            return value
        assert self.file is not None
        path = Path(self.file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SecretMissing(
                f"{who or 'secret: '}file {self.file!r}{where} cannot be read: {exc.strerror}",
                owner=owner,
                field=field,
                reference=f"file {self.file}",
            ) from None
        value = text.splitlines()[0].strip() if text.strip() else ""
        if not value:
            raise SecretMissing(
                f"{who or 'secret: '}file {self.file!r}{where} is empty",
                owner=owner,
                field=field,
                reference=f"file {self.file}",
            )
        register_secret(value)
        return value


class Site(Frozen):
    """A site: one datacenter (DC) where the provider has equipment."""

    name: str = Field(
        pattern=IDENT_RE,
        description="the site's id: the name of its group under `sites` in hosts.yml "
        "(not set in ipsinfra_site)",
        examples=["msk1"],
        json_schema_extra=needs("every command (a host's site)"),
    )
    dc: str = Field(
        min_length=1,
        description="the datacenter's name, as letters to the DC and outage notices print it",
        examples=["IPS Moscow M1"],
        json_schema_extra=needs("abuse letters (§7.2), outage notices (§5.1)"),
    )
    location: str = Field(
        default="", description="free text for people: city, country", examples=["Moscow, RU"]
    )
    own_network: bool = Field(
        default=False,
        description="our own network (Moscow): abuse handle writes to Spamhaus directly "
        "instead of a DC (§7.2)",
        examples=[True],
        json_schema_extra=needs("abuse handle (§7.2)"),
    )
    dc_abuse_email: EmailAddress | None = Field(
        default=None,
        description="the DC's abuse address: after a block the DC is sent the client's details (§7.2); "
        "required for a site that is not own_network once a block there writes letters",
        examples=["abuse@dc-fra.example"],
        json_schema_extra=needs("abuse handle letters (§7.2)"),
    )
    dc_reaction_hours: int | None = Field(
        default=None,
        ge=1,
        le=24 * 14,
        description="the DC's stated reaction time for complaints (§7.3), 1-336 hours; a complaint's own "
        "stated time wins; unset: 24-48 hours",
        examples=[24],
        json_schema_extra=needs("abuse handle deadlines (§7.3)"),
    )
    abuse_trusted_senders: tuple[str, ...] = Field(
        default=(),
        description="complaint senders that may block this site's servers at once (§7.2, §7.3): "
        "an address (abuse@dc.example) or a whole domain (@spamhaus.org); anyone else only proposes",
        examples=[["abuse@dc-fra.example", "@spamhaus.example"]],
        json_schema_extra=needs("abuse handle (immediate blocks)"),
    )
    abuse_max_targets: int = Field(
        default=1,
        ge=1,
        le=10_000,
        description="a complaint naming more of our servers than this only proposes (abuse handle --confirm)",
        examples=[1],
        json_schema_extra=needs("abuse handle"),
    )
    abuse_max_blocks_per_run: int = Field(
        default=5,
        ge=1,
        le=10_000,
        description="an unattended run (abuse watch) blocks at most this many servers in all; every "
        "further immediate complaint of the run only proposes. The run's limit is the smallest of "
        "the inventory's sites (--max-blocks for one run)",
        examples=[5],
        json_schema_extra=needs("abuse watch"),
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

    kernel: str = Field(
        min_length=1,
        description="path ON the node of the kernel new VDS boot (libvirt <os><kernel>)",
        examples=["/var/lib/ipsinfra/vmlinuz"],
        json_schema_extra=needs("provision (libvirt, direct boot)"),
    )
    initrd: str | None = Field(
        default=None,
        description="path ON the node of the initrd",
        examples=["/var/lib/ipsinfra/initrd.img"],
        json_schema_extra=needs("provision (libvirt, direct boot)"),
    )
    cmdline: str = Field(
        default="",
        description="the kernel command line",
        examples=["console=ttyS0 root=/dev/vda"],
        json_schema_extra=needs("provision (libvirt, direct boot)"),
    )


# What virsh on a node may be given as its URI (shell-quoted as well).
LOCAL_URI_PATTERN = r"^[A-Za-z0-9+._:/?=&,@%-]+$"


class Node(Frozen):
    """A hypervisor node: a libvirt/KVM host or a Proxmox VE cluster node."""

    name: str = Field(
        pattern=IDENT_RE,
        description="our name for the node, equal to the DC's (§4.4): the inventory host name",
        examples=["kvm1"],
        json_schema_extra=needs("every command"),
    )
    dc_name: str | None = Field(
        default=None,
        description="the DC's own name for the node when it differs from ours (§4.4)",
        examples=["fra-srv-0030"],
        json_schema_extra=needs("audit dc_name check (§4.4)"),
    )
    site: str = Field(
        pattern=IDENT_RE,
        description="the site: the site group the host is in under `sites` (or a `site:` var naming one)",
        examples=["msk1"],
        json_schema_extra=needs("every command"),
    )
    main_ip: IPAddress = Field(
        description="the node's main IP: its last two octets are in the name of every VDS on it (§8.5)",
        examples=["203.0.113.10"],
        json_schema_extra=needs("naming (§8.5), provision, migrate, inventory sync"),
    )
    kind: HypervisorKind = Field(
        description="libvirt or proxmox; set by the group the node is in (libvirt_nodes / proxmox_nodes)",
        examples=["libvirt"],
        json_schema_extra=needs("every command (which driver)"),
    )
    uri: str = Field(
        min_length=1,
        description=(
            "libvirt: a libvirt URI (qemu+ssh://root@kvm1.example/system, qemu:///system, "
            "qemu+tls://...). Proxmox: the API's host or host:port, without https:// (a leading "
            "https:// is accepted and dropped; port 8006, proxmoxer's default, when none is given)"
        ),
        examples=["qemu+ssh://root@kvm1.msk1.example/system", "pve1.fra1.example:8006"],
        json_schema_extra=needs("every command that talks to the node"),
    )
    pve_node: str | None = Field(
        default=None,
        description="Proxmox: the node's name inside the PVE cluster (as `pvecm nodes` shows it); "
        "unset: the inventory host name",
        examples=["pve1"],
        json_schema_extra=needs("Proxmox: every command", "proxmox"),
    )
    cpus: int = Field(
        ge=1,
        le=4096,
        description="the node's CPU (thread) count: provision and migrate refuse more vCPUs or a cpuset "
        "past it (§9.1)",
        examples=[48],
        json_schema_extra=needs("provision, migrate, resize (§9.1)"),
    )
    memory_mib: int | None = Field(
        default=None,
        ge=1,
        description="the node's RAM in MiB; set: a VDS asking for more is refused",
        examples=[262144],
        json_schema_extra=needs("provision, resize"),
    )
    bridge: str = Field(
        default="br0",
        description="the bridge new VDS NICs join (libvirt br0, Proxmox vmbr0); changed on migration (§9.10)",
        examples=["br0", "vmbr0"],
        json_schema_extra=needs("provision, migrate (§9.10)"),
    )
    gateway: IPAddress | None = Field(
        default=None,
        description="the default gateway of this node's VDS network; changed on migration (§9.10)",
        examples=["203.0.113.1"],
        json_schema_extra=needs("provision, migrate (§9.10)"),
    )
    vnc_listen: IPAddress | None = Field(
        default=None,
        description="the address VDS consoles (VNC) listen on; unset: the main IP. "
        "Changed on migration (§9.10)",
        examples=["203.0.113.10"],
        json_schema_extra=needs("provision, migrate (§9.10)"),
    )
    ip_pool: list[IPAddress] = Field(
        default_factory=list,
        description="free IPs for new VDS on this node",
        examples=[["203.0.113.110", "203.0.113.111"]],
        json_schema_extra=needs("provision, migrate (new IPs)"),
    )
    migration_address: IPAddress | None = Field(
        default=None,
        description="libvirt: where migration data to this node goes (tcp://<address>), e.g. a "
        "storage/backplane network; unset: the main IP",
        examples=["10.0.0.10"],
        json_schema_extra=needs("migrate (libvirt)", "libvirt"),
    )
    direct_boot: DirectBootSpec | None = Field(
        default=None,
        description="libvirt: boot new VDS from this kernel/initrd on the node (labs, netboot "
        "installers) instead of their disk; see DirectBootSpec below",
        examples=[{"kernel": "/var/lib/ipsinfra/vmlinuz", "initrd": "/var/lib/ipsinfra/initrd.img"}],
        json_schema_extra=needs("provision (libvirt)", "libvirt"),
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
        examples=["nocloud"],
        json_schema_extra=needs("provision (libvirt)", "libvirt"),
    )
    seed_pool: str = Field(
        default="default",
        pattern=IDENT_RE,
        description="libvirt, password_method nocloud: the storage pool on the node seeds are uploaded to",
        examples=["default"],
        json_schema_extra=needs("provision (libvirt, nocloud)", "libvirt"),
    )
    ssh_host: str | None = Field(
        default=None,
        description=(
            "the node's SSH address (`ansible_host`). libvirt: REQUIRED for reboot detection "
            "(libvirt has no API for boot time: the audit reads the boot id over SSH; without it "
            "node_reboot is never found) and for libvirt_listing ssh; unset: the main IP for other "
            "SSH uses. Playbooks use it too"
        ),
        examples=["203.0.113.10"],
        json_schema_extra=needs("audit reboot check (§5.2, libvirt), libvirt_listing ssh, ipsinfra trust"),
    )
    ssh_port: int = Field(
        default=22,
        ge=1,
        le=65535,
        description="the node's SSH port (`ansible_port`)",
        examples=[22],
        json_schema_extra=needs("audit reboot check (libvirt), libvirt_listing ssh"),
    )
    ssh_user: str = Field(
        default="root",
        description="the SSH login (`ansible_user`)",
        examples=["root"],
        json_schema_extra=needs("audit reboot check (libvirt), libvirt_listing ssh"),
    )
    ssh_key_file: str | None = Field(
        default=None,
        description="the SSH private key (`ansible_ssh_private_key_file`); unset: ssh's own defaults "
        "(~/.ssh/config, the agent)",
        examples=["~/.ssh/id_ed25519_ipsinfra"],
        json_schema_extra=needs("audit reboot check (libvirt), libvirt_listing ssh"),
    )
    ssh_known_hosts: str | None = Field(
        default=None,
        description="known_hosts file holding the node's pinned SSH host key; unset: "
        "~/.ssh/known_hosts. An unknown or changed key is refused (`ipsinfra trust kvm1` pins one)",
        examples=["~/.config/ipsinfra/known_hosts"],
        json_schema_extra=needs("audit reboot check (libvirt), libvirt_listing ssh, ipsinfra trust"),
    )
    libvirt_listing: Literal["auto", "rpc", "ssh"] = Field(
        default="auto",
        description=(
            "libvirt: how list_vds reads the node. rpc: libvirt RPCs, 2 + one XMLDesc per domain; "
            "ssh: one SSH exec running virsh on the node (ssh_* fields), whatever the domain count "
            "(B3); auto: ssh the way a qemu+ssh:// URI's own SSH goes, rpc for other transports "
            "or when that fails"
        ),
        examples=["ssh"],
        json_schema_extra=needs("audit, portmap, inventory sync (libvirt listing)", "libvirt"),
    )
    libvirt_local_uri: str = Field(
        default="qemu:///system",
        pattern=LOCAL_URI_PATTERN,
        description="libvirt: the URI virsh uses ON the node for libvirt_listing=ssh",
        examples=["qemu:///system"],
        json_schema_extra=needs("libvirt_listing ssh", "libvirt"),
    )
    api_user: str | None = Field(
        default=None,
        description="Proxmox: the API user with its realm; unset: root@pam. Ignored when "
        "api_token_id is the full `user@realm!name` form",
        examples=["ipsinfra@pve"],
        json_schema_extra=needs("Proxmox: every command", "proxmox"),
    )
    api_token_id: str | None = Field(
        default=None,
        description=(
            "Proxmox: the API token, either its name alone (`pg`: the token of api_user) or in full "
            "(`root@pam!pg`: user and name, api_user then unused). Set: `secret` is the token's "
            "secret (the UUID PVE showed once). Unset: `secret` is api_user's password (ticket login)"
        ),
        examples=["ipsinfra", "root@pam!pg"],
        json_schema_extra=needs("Proxmox: every command", "proxmox"),
    )
    secret: SecretRef | None = Field(
        default=None,
        description="Proxmox: the token secret (with api_token_id) or the password, as a reference: "
        "{env: NAME} or {file: path}, never literal. Required on a Proxmox node; a missing variable "
        "is reported naming the node, the variable and this field",
        examples=[{"env": "IPSINFRA_PVE1_TOKEN"}],
        json_schema_extra=needs("Proxmox: every command", "proxmox"),
    )
    ca_file: str | None = Field(
        default=None,
        description="Proxmox: PEM CA file the API's TLS certificate is verified against (a stock PVE "
        "signs with its own CA: copy /etc/pve/pve-root-ca.pem from the cluster); unset: the system's "
        "CAs (REQUESTS_CA_BUNDLE). An absolute path (~ is not expanded here)",
        examples=["/etc/ipsinfra/pve-root-ca.pem"],
        json_schema_extra=needs("Proxmox: every command", "proxmox"),
    )
    verify_tls: bool = Field(
        default=True,
        description="Proxmox: false turns TLS verification off: the only way to; never on a real fleet",
        examples=[True],
        json_schema_extra=needs("Proxmox: every command", "proxmox"),
    )

    @property
    def vnc_address(self) -> IPAddress:
        return self.vnc_listen or self.main_ip


class Disk(Frozen):
    """One disk of a VDS (an item of its ``disks`` list)."""

    name: str = Field(
        default="disk0",
        min_length=1,
        description="the disk's name: libvirt's volume/target, Proxmox's bus+index (scsi0)",
        examples=["disk0", "scsi0"],
        json_schema_extra=needs("provision, order check (§8.1)"),
    )
    size_gib: int = Field(
        ge=1, le=65536, description="size in GiB", examples=[40], json_schema_extra=needs("provision, resize")
    )
    storage: str | None = Field(
        default=None,
        description="Proxmox: the storage it lives on; libvirt: the storage pool",
        examples=["local-lvm"],
        json_schema_extra=needs("provision"),
    )


class Nic(Frozen):
    """One network card of a VDS (an item of its ``nics`` list)."""

    mac: str = Field(
        description="its MAC, any common spelling (aa:bb:.., aabb.ccdd.eeff), stored as aa:bb:cc:dd:ee:ff",
        examples=["52:54:00:10:01:01"],
        json_schema_extra=needs("portmap (§4.6), abuse block (target proof)"),
    )
    bridge: str | None = Field(
        default=None,
        description="the bridge it joins; unset: the node's bridge",
        examples=["vmbr0"],
        json_schema_extra=needs("provision, migrate (§9.10)"),
    )
    model: str = Field(
        default="virtio",
        description="the NIC model",
        examples=["virtio"],
        json_schema_extra=needs("provision"),
    )

    @field_validator("mac", mode="before")
    @classmethod
    def _mac(cls, v: Any) -> str:
        return normalize_mac(str(v))


class Vds(Mutable):
    """A VDS (VPS) as the inventory records it or a hypervisor reports it."""

    name: str = Field(
        min_length=1,
        description="house name VPS<order>(<a>.<b>) (§8.5), inventory key `vds_name`; the Ansible host is "
        "its DNS-safe twin (VPS1001-113-10), from which it is read when vds_name is absent",
        examples=["VPS1001(113.10)"],
        json_schema_extra=needs("every command"),
    )
    order: int | None = Field(
        default=None,
        ge=1,
        description="the order number, inventory key `vds_order`; unset: the one the house name carries "
        "(set, it must match it)",
        examples=[1001],
        json_schema_extra=needs("naming (§8.5), upgrades (§6)"),
    )
    node: str = Field(
        pattern=IDENT_RE,
        description="the node it runs on (an inventory node); its main IP's octets are in the name",
        examples=["kvm1"],
        json_schema_extra=needs("every command"),
    )
    vcpus: int = Field(
        ge=1,
        le=4096,
        description="vCPU count; a migration keeps exactly this (§9.1)",
        examples=[2],
        json_schema_extra=needs("audit drift, migrate (§9.1), provision"),
    )
    cpuset: str | None = Field(
        default=None,
        description="vCPU affinity (libvirt <vcpu cpuset>); `1-40` may be used everywhere (§9.1)",
        examples=["1-40"],
        json_schema_extra=needs("audit drift, migrate (§9.1)"),
    )
    memory_mib: int = Field(
        ge=16, description="RAM in MiB", examples=[2048], json_schema_extra=needs("audit drift, provision")
    )
    disks: list[Disk] = Field(
        default_factory=list,
        description="its disks; see Disk below",
        examples=[[{"name": "disk0", "size_gib": 40}]],
        json_schema_extra=needs("audit drift, provision, resize"),
    )
    ips: list[IPAddress] = Field(
        default_factory=list,
        description="its IP addresses: the audit's SSH/RDP probe (§4.10), abuse complaint targets (§7)",
        examples=[["203.0.113.101"]],
        json_schema_extra=needs("abuse handle, audit reachability, order check (§8.2)"),
    )
    nics: list[Nic] = Field(
        default_factory=list,
        description="its network cards (MACs); see Nic below",
        examples=[[{"mac": "52:54:00:10:01:01"}]],
        json_schema_extra=needs("portmap (§4.6), abuse block"),
    )
    vnc_listen: IPAddress | None = Field(
        default=None,
        description="its VNC listen address as the hypervisor reports it; unset in the inventory: the node's",
        examples=["203.0.113.10"],
        json_schema_extra=needs("migrate (§9.10)"),
    )
    vnc_port: int | None = Field(
        default=None,
        ge=-1,
        le=65535,
        description="its VNC port as the hypervisor reports it (-1: chosen at start)",
        examples=[5901],
    )
    autostart: bool = Field(
        default=False,
        description="starts with the node: the §5.2 check expects it running after a reboot",
        examples=[True],
        json_schema_extra=needs("audit (§5.2)"),
    )
    state: VdsState = Field(
        default=VdsState.UNKNOWN,
        description="what the hypervisor reports (running, stopped...); not written in the inventory",
        examples=["running"],
    )
    client: str | None = Field(
        default=None,
        description="the client's id in ipsinfra_clients",
        examples=["c1"],
        json_schema_extra=needs("abuse handle (§7.1, §7.2), outage notices (§5.1)"),
    )
    os: str | None = Field(
        default=None,
        description="the OS and version installed (§8.1)",
        examples=["debian-12"],
        json_schema_extra=needs("order check (§8.1), panel warning (§4.1)"),
    )
    arch: str | None = Field(
        default=None,
        description="the architecture (§8.1)",
        examples=["x86_64"],
        json_schema_extra=needs("order check (§8.1)"),
    )
    install_type: str | None = Field(
        default=None,
        description="how it was installed: template, iso... (§8.1)",
        examples=["template"],
        json_schema_extra=needs("order check (§8.1)"),
    )
    panel: str | None = Field(
        default=None,
        description="the control panel the client chose (§4.1)",
        examples=["ispmanager"],
        json_schema_extra=needs("panel warning (§4.1)"),
    )
    comment: str = Field(
        default="",
        description="the order comment, e.g. software to install (§8.4, §10.5)",
        examples=["install: MSSQL Express (§10.5)"],
        json_schema_extra=needs("order check (§8.4)"),
    )
    activated: dt.date | None = Field(
        default=None,
        description="the day the service was activated: a client new this month with one service is "
        "cancelled after an SBL block (§7.2)",
        examples=[dt.date(2016, 4, 1)],
        json_schema_extra=needs("abuse handle (§7.2), trials (§2.1)"),
    )
    trial_end: dt.date | None = Field(
        default=None,
        description="a trial's end date, 7 days after activation (§2.1)",
        examples=[dt.date(2017, 6, 8)],
        json_schema_extra=needs("audit trials (§2.1)"),
    )
    blocked: bool = Field(
        default=False,
        description="blocked for abuse (§7.2): never started by the audit, expected off autostart",
        examples=[True],
        json_schema_extra=needs("audit, abuse block/unblock"),
    )
    blocked_reason: str | None = Field(
        default=None,
        description="why it was blocked",
        examples=["Spamhaus SBL listing (§7.2)"],
        json_schema_extra=needs("abuse block"),
    )
    cancelled: bool = Field(
        default=False,
        description="the service was cancelled (§7.2): never started by the audit",
        examples=[False],
        json_schema_extra=needs("audit, abuse handle"),
    )
    backend_id: str | None = Field(
        default=None,
        description='the Proxmox vmid (quoted: "105") or the libvirt UUID',
        examples=["105"],
        json_schema_extra=needs("Proxmox: every VDS command"),
    )
    probe: str | None = Field(
        default=None,
        description="host:port the audit's SSH/RDP check connects to instead of the first IP (NAT, lab)",
        examples=["127.0.0.1:2222"],
        json_schema_extra=needs("audit reachability (§4.10)"),
    )
    description: str = Field(
        default="",
        description="the backend's free text, with ipsinfra-* lines; written by ipsinfra, not by hand",
        examples=["ipsinfra-order: 1001"],
    )

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
    """A client, in ``ipsinfra_clients:`` (group_vars/all/clients.yml), keyed by id."""

    id: str = Field(
        pattern=IDENT_RE,
        description="the client's id: the key under ipsinfra_clients, named by VDS/servers' `client`",
        examples=["c1"],
        json_schema_extra=needs("every record naming a client"),
    )
    name: str = Field(
        min_length=1,
        description="the client's name, sent to the DC after an abuse cancellation (§7.2)",
        examples=["Example Hosting Ltd"],
        json_schema_extra=needs("abuse letters (§7.2), outage notices"),
    )
    address: str = Field(
        default="",
        description="postal address, sent to the DC after an abuse cancellation (§7.2)",
        examples=["1 Example Street, Moscow"],
        json_schema_extra=needs("abuse letters (§7.2)"),
    )
    email: EmailAddress | None = Field(
        default=None,
        description="where the client's tickets and notices go (§7.1, §5.1)",
        examples=["admin@c1.example"],
        json_schema_extra=needs("abuse tickets (§7.1), outage notices (§5.1)"),
    )
    activated: dt.date | None = Field(
        default=None,
        description="the day the client's first service was activated: new this month = new client (§7.2)",
        examples=[dt.date(2016, 3, 14)],
        json_schema_extra=needs("abuse handle (§7.2)"),
    )
    services: int = Field(
        default=1,
        ge=0,
        description="how many services the client has: a new client with a single service is cancelled "
        "after an SBL block (§7.2)",
        examples=[3],
        json_schema_extra=needs("abuse handle (§7.2)"),
    )


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
    """An Ethernet switch ipsinfra logs into over SSH (netmiko)."""

    name: str = Field(
        pattern=IDENT_RE,
        description="the switch's name: the inventory host name",
        examples=["sw1-msk1"],
        json_schema_extra=needs("portmap, abuse block (dedicated servers)"),
    )
    site: str = Field(
        pattern=IDENT_RE,
        description="the site: the site group the host is in (or a `site:` var naming one)",
        examples=["msk1"],
        json_schema_extra=needs("portmap (one map per site)"),
    )
    host: str = Field(
        min_length=1,
        description="the management address (`ansible_host`)",
        examples=["203.0.113.2"],
        json_schema_extra=needs("portmap, abuse block, ipsinfra trust"),
    )
    port: int = Field(
        default=22,
        ge=1,
        le=65535,
        description="the SSH port (`ansible_port`; `port` is an Ansible keyword)",
        examples=[22],
        json_schema_extra=needs("portmap, abuse block, ipsinfra trust"),
    )
    platform: str = Field(
        min_length=1,
        description=(
            "netmiko device_type: cisco_ios, cisco_nxos, arista_eos, hp_procurve, huawei_vrp, "
            "juniper_junos and the others ipsinfra.network.switches.default_platforms() lists; "
            "`linux` for a Linux bridge (Cumulus/SONiC-style: `bridge -j fdb show`, `ip -j link`, lldpd)"
        ),
        examples=["cisco_ios", "linux"],
        json_schema_extra=needs("portmap, abuse block"),
    )
    username: str = Field(
        default="admin",
        description="the SSH login (`ansible_user`)",
        examples=["netops"],
        json_schema_extra=needs("portmap, abuse block"),
    )
    secret: SecretRef | None = Field(
        default=None,
        description="the login password, as {env: NAME} or {file: path}; unset on a key-only switch "
        "(ssh_key_file). At least one of the two is needed",
        examples=[{"env": "IPSINFRA_SW1_MSK1_PASSWORD"}],
        json_schema_extra=needs("portmap, abuse block"),
    )
    ssh_key_file: str | None = Field(
        default=None,
        description=(
            "the SSH private key ipsinfra logs in with (`ansible_ssh_private_key_file`, Ansible's "
            "name; ~ expanded), alone (key-only switch) or with `secret`. The agent and ~/.ssh keys "
            "are never tried. `ipsinfra portmap --key-file` and the modules' key_file override it"
        ),
        examples=["~/.ssh/id_ed25519_switches"],
        json_schema_extra=needs("portmap, abuse block (dedicated servers), switch_port_map, server_block"),
    )
    ssh_known_hosts: str | None = Field(
        default=None,
        description=(
            "known_hosts file holding the switch's pinned host key (as nodes' ssh_known_hosts); "
            "unset: the user's ~/.ssh/known_hosts. An unknown or changed key is refused before "
            "anything is sent (`ipsinfra trust sw1-msk1` pins one)"
        ),
        examples=["~/.config/ipsinfra/known_hosts"],
        json_schema_extra=needs("portmap, abuse block, ipsinfra trust"),
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
    """A dedicated server: blocked by shutting its switch port (§7.2, §11.8)."""

    name: str = Field(
        min_length=1,
        description="our name for it, equal to the DC's (§4.4): the inventory host name",
        examples=["ded1"],
        json_schema_extra=needs("every command"),
    )
    dc_name: str | None = Field(
        default=None,
        description="the DC's own name for it when it differs from ours (§4.4)",
        examples=["msk-srv-0101"],
        json_schema_extra=needs("abuse handle (DC letters)"),
    )
    site: str = Field(
        pattern=IDENT_RE,
        description="the site: the site group the host is in (or a `site:` var naming one)",
        examples=["msk1"],
        json_schema_extra=needs("abuse handle, portmap"),
    )
    ips: list[IPAddress] = Field(
        default_factory=list,
        description="its IP addresses: how a complaint finds it (§7)",
        examples=[["203.0.113.200"]],
        json_schema_extra=needs("abuse handle"),
    )
    macs: list[str] = Field(
        default_factory=list,
        description="its NICs' MACs, any common spelling: seen on the switch port they prove the "
        "target before a block (§11.8) and place it on the port map (§4.6)",
        examples=[["52:54:00:aa:00:01"]],
        json_schema_extra=needs("abuse block (target proof), portmap"),
    )
    switch: str | None = Field(
        default=None,
        description="the switch it is cabled to (an inventory switch); with switch_port, its place on "
        "the map before any map was recorded (the port map's baseline)",
        examples=["sw1-msk1"],
        json_schema_extra=needs("abuse block (dedicated servers), portmap baseline"),
    )
    port: str | None = Field(
        default=None,
        description="the switch port, inventory key `switch_port` (`port` is an Ansible keyword), one word "
        "as the switch prints it (Gi0/5, swp3, an HP number)",
        examples=["Gi0/5"],
        json_schema_extra=needs("abuse block (dedicated servers), portmap baseline"),
    )
    client: str | None = Field(
        default=None,
        description="the client's id in ipsinfra_clients",
        examples=["c1"],
        json_schema_extra=needs("abuse handle (§7.1, §7.2)"),
    )
    activated: dt.date | None = Field(
        default=None,
        description="the day the service was activated (§7.2 new client)",
        examples=[dt.date(2016, 3, 14)],
        json_schema_extra=needs("abuse handle (§7.2)"),
    )
    blocked: bool = Field(
        default=False,
        description="blocked for abuse: its switch port is shut",
        examples=[False],
        json_schema_extra=needs("abuse block/unblock"),
    )

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
