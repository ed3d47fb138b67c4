"""Provisioning a VDS (§8, §4.8, §2.1, §4.1): plan (pure), apply, verify.

``plan_provision`` takes the order, the fleet and what the hypervisors
report, and returns what will be created; it never opens a socket.
``provision`` carries a plan out through a :class:`DriverPool`, reads the VDS
back from the hypervisor and compares it with the order.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ipsinfra import metadata, naming, passwords
from ipsinfra.errors import Conflict, HypervisorError, InvalidInput, IpsinfraError, NodeNotFound
from ipsinfra.hypervisors import DriverPool, HypervisorDriver
from ipsinfra.inventory import Fleet
from ipsinfra.inventory.writeback import InventoryChange, writes_back
from ipsinfra.journal import Journal
from ipsinfra.models import (
    Disk,
    HypervisorKind,
    IPAddress,
    Nic,
    Order,
    Vds,
    VdsSpec,
    VdsState,
    parse_cpuset,
)
from ipsinfra.steps import with_deadline

TRIAL_DAYS = 7  # §2.1
HOUSE_CPUSET = "1-40"  # §9.1: "a CPU range of 1-40 may be used everywhere"
DEFAULT_STEP_TIMEOUT = 300.0


def format_cpuset(cpus: Iterable[int]) -> str:
    """``{1, 2, 3, 8}`` -> ``"1-3,8"``."""
    ordered = sorted(set(cpus))
    if not ordered:
        raise ValueError("an empty cpuset")
    runs: list[str] = []
    start = prev = ordered[0]
    for cpu in [*ordered[1:], None]:
        if cpu is not None and cpu == prev + 1:
            prev = cpu
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if cpu is not None:
            start = prev = cpu
    return ",".join(runs)


def effective_cpuset(rule: str | None, node_cpus: int) -> str | None:
    """The house CPU range cut to the CPUs ``node_cpus`` really has (§9.1).

    >>> effective_cpuset("1-40", 8)
    '1-7'
    >>> effective_cpuset("1-40", 64)
    '1-40'
    """
    if rule is None:
        return None
    try:
        wanted = parse_cpuset(rule)
    except ValueError as exc:
        raise InvalidInput(f"cpuset: value {rule!r}: {exc}") from None
    present = {cpu for cpu in wanted if cpu < node_cpus}
    if not present:
        raise InvalidInput(
            f"cpuset: value {rule!r}: none of these CPUs exists on a node with {node_cpus} CPU(s)"
        )
    return format_cpuset(present)


def mac_for(order: int, nic: int = 0) -> str:
    """A stable locally administered MAC for an order's NIC (qemu's 52:54 prefix).

    Stable, so a re-run of the same order plans the same MAC.
    """
    if not 0 <= nic < 256:
        raise InvalidInput(f"nic: value {nic!r}: 0-255")
    low = order % (1 << 24)
    return f"52:54:{nic:02x}:{low >> 16:02x}:{(low >> 8) & 0xFF:02x}:{low & 0xFF:02x}"


@functools.cache
def panel_table() -> dict[str, tuple[str, ...]]:
    """§4.1 panel -> supported OS prefixes, from the package's data file."""
    text = resources.files("ipsinfra").joinpath("data/panels.yml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    return {str(k).lower(): tuple(str(v).lower() for v in vals) for k, vals in data.items()}


def panel_warnings(
    panel: str | None, os_name: str, table: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """§4.1: a warning when the chosen control panel does not support the OS."""
    if not panel:
        return []
    table = panel_table() if table is None else table
    supported = table.get(panel.lower())
    if supported is None:
        return []
    if any(os_name.lower().startswith(prefix) for prefix in supported):
        return []
    return [
        f"§4.1: panel {panel!r} does not support OS {os_name!r} (supported: {', '.join(supported)}); "
        "warn the client"
    ]


class ProvisionPlan(BaseModel):
    """What provisioning an order will do. Pure data, printable as a dry run."""

    model_config = ConfigDict(frozen=True)

    order: Order
    node: str
    kind: HypervisorKind
    name: str
    backend_name: str = Field(description="the name on the hypervisor (Proxmox: the DNS-safe twin)")
    spec: VdsSpec
    activated: dt.date
    trial_end: dt.date | None = None
    warnings: list[str] = Field(default_factory=list)
    existing: Vds | None = Field(default=None, description="already provisioned: nothing to create")

    @property
    def facts(self) -> dict[str, str]:
        return metadata.parse(self.spec.description)

    def describe(self) -> list[str]:
        """Human lines for ``--check``."""
        if self.existing is not None:
            return [f"{self.name} already exists on {self.node}: nothing to create"]
        s = self.spec
        lines = [
            f"create {self.name} on {self.node} ({self.kind.value}, backend name {self.backend_name})",
            f"  vCPUs {s.vcpus} cpuset {s.cpuset or '-'}, memory {s.memory_mib} MiB, "
            f"disk {sum(d.size_gib for d in s.disks)} GiB",
            f"  IPs {' '.join(str(ip) for ip in s.ips) or '-'}, MAC {' '.join(n.mac for n in s.nics)}",
            f"  VNC listen {s.vnc_listen}, autostart {'on' if s.autostart else 'off'}",
            "  root password: generated (§4.8), set through the hypervisor, shown once",
        ]
        if self.trial_end:
            lines.append(f"  trial: Active, ends {self.trial_end.isoformat()} (§2.1)")
        lines += [f"  warning: {w}" for w in self.warnings]
        return lines


def known_vds(fleet: Fleet, observed: Mapping[str, Sequence[Vds]]) -> list[Vds]:
    """What the hypervisors report, and the inventory's records for nodes not observed."""
    found = [v for vs in observed.values() for v in vs]
    found += [v for v in fleet.vds.values() if v.node not in observed]
    return found


def plan_provision(
    order: Order,
    fleet: Fleet,
    observed: Mapping[str, Sequence[Vds]],
    *,
    today: dt.date,
    cpuset_rule: str | None = HOUSE_CPUSET,
    panels: Mapping[str, Sequence[str]] | None = None,
) -> ProvisionPlan:
    """Decide what to create for ``order``. Raises InvalidInput/NodeNotFound/Conflict."""
    node = fleet.nodes.get(order.node)
    if node is None:
        known = ", ".join(sorted(fleet.nodes))
        raise NodeNotFound(f"order.node: value {order.node!r}: no such node (known: {known})")
    if order.client not in fleet.clients:
        raise InvalidInput(f"order.client: value {order.client!r}: no such client in the inventory")
    name = naming.vps_name(order.number, node.main_ip)
    if order.vcpus > node.cpus:
        raise InvalidInput(f"order.vcpus: value {order.vcpus}: node {node.name} has only {node.cpus} CPUs")

    existing: Vds | None = None
    used_ips: set[IPAddress] = {ip for d in fleet.dedicated.values() for ip in d.ips}
    for vds in known_vds(fleet, observed):
        used_ips.update(vds.ips)
        if not naming.is_vps_name(vds.name) or naming.parse_vps_name(vds.name).order != order.number:
            continue
        if vds.node == node.name and vds.name == name:
            existing = vds
            continue
        raise Conflict(f"order.number: value {order.number}: already in use by {vds.name} on node {vds.node}")

    if existing is not None and existing.ips:
        ips = list(existing.ips)
    else:
        free = [ip for ip in node.ip_pool if ip not in used_ips]
        if len(free) < order.ips:
            raise InvalidInput(
                f"order.ips: value {order.ips}: node {node.name} has {len(free)} free IP(s) in its pool"
            )
        ips = free[: order.ips]

    trial_end = today + dt.timedelta(days=TRIAL_DAYS) if order.trial else None
    facts: dict[str, object] = {
        "order": order.number,
        "client": order.client,
        "os": order.os,
        "arch": order.arch,
        "install": order.install_type,
        "ips": " ".join(str(ip) for ip in ips),
        "panel": order.panel,
        "comment": order.comment,
        "activated": today.isoformat(),
        "status": "Active",
        "trial-end": trial_end.isoformat() if trial_end else None,
    }
    spec = VdsSpec(
        name=name,
        vcpus=order.vcpus,
        cpuset=effective_cpuset(cpuset_rule, node.cpus),
        memory_mib=order.memory_mib,
        disks=[Disk(size_gib=order.disk_gib)],
        nics=[Nic(mac=mac_for(order.number), bridge=node.bridge)],
        ips=ips,
        vnc_listen=node.vnc_address,
        autostart=True,
        description=metadata.render(facts),
        os=order.os,
        arch=order.arch,
    )
    backend_name = naming.pve_safe_name(name) if node.kind is HypervisorKind.PROXMOX else name
    return ProvisionPlan(
        order=order,
        node=node.name,
        kind=node.kind,
        name=name,
        backend_name=backend_name,
        spec=spec,
        activated=today,
        trial_end=trial_end,
        warnings=panel_warnings(order.panel, order.os, panels),
        existing=existing,
    )


def order_mismatches(plan: ProvisionPlan, got: Vds) -> list[str]:
    """§8.1-8.4: every parameter of the order compared with what the hypervisor reports."""
    facts = metadata.parse(got.description)
    want = plan.spec
    checks: list[tuple[str, object, object]] = [
        ("name", want.name, got.name),
        ("vcpus", want.vcpus, got.vcpus),
        ("cpuset", want.cpuset, got.cpuset),
        ("memory_mib", want.memory_mib, got.memory_mib),
        ("autostart", want.autostart, got.autostart),
        ("vnc_listen", str(want.vnc_listen), str(got.vnc_listen)),
        ("macs", [n.mac for n in want.nics], got.macs),
        ("os", plan.order.os, facts.get("os")),
        ("arch", plan.order.arch, facts.get("arch")),
        ("install_type", plan.order.install_type, facts.get("install")),
        ("ips", plan.order.ips, len(got.ips)),
        ("comment", " ".join(plan.order.comment.split()), facts.get("comment", "")),
    ]
    return [f"{field}: ordered {a!r}, hypervisor has {b!r}" for field, a, b in checks if a != b]


class ProvisionResult(BaseModel):
    """The outcome of one order. ``password`` is shown once, to the caller only."""

    model_config = ConfigDict(frozen=True)

    plan: ProvisionPlan
    changed: bool
    checked_only: bool = False
    vds: Vds | None = None
    password: SecretStr | None = None
    mismatches: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    inventory_change: InventoryChange | None = Field(default=None, description="the write-back, if asked")

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def record(self) -> Vds:
        """The inventory record for the new VDS (what to add to host_vars)."""
        plan, spec = self.plan, self.plan.spec
        return Vds(
            name=plan.name,
            order=plan.order.number,
            node=plan.node,
            vcpus=spec.vcpus,
            cpuset=spec.cpuset,
            memory_mib=spec.memory_mib,
            disks=spec.disks,
            ips=spec.ips,
            nics=spec.nics,
            autostart=spec.autostart,
            client=plan.order.client,
            os=plan.order.os,
            arch=plan.order.arch,
            install_type=plan.order.install_type,
            panel=plan.order.panel,
            comment=plan.order.comment,
            activated=plan.activated,
            trial_end=plan.trial_end,
        )

    def raise_on_error(self) -> None:
        if self.mismatches:
            raise IpsinfraError(f"{self.plan.name}: the order does not match: " + "; ".join(self.mismatches))


def observe(
    pool: DriverPool, nodes: Iterable[str], *, timeout: float = 60.0
) -> tuple[dict[str, list[Vds]], list[str]]:
    """List VDS on ``nodes`` concurrently: (observed per node, warnings for nodes that failed)."""
    names = list(nodes)
    observed: dict[str, list[Vds]] = {}
    warnings: list[str] = []
    if not names:
        return observed, warnings
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(names))) as ex:
        futures = {
            ex.submit(with_deadline, "list_vds", timeout, pool.get(n).list_vds, node=n): n for n in names
        }
        for fut in concurrent.futures.as_completed(futures):
            node = futures[fut]
            try:
                observed[node] = fut.result()
            except HypervisorError as exc:
                warnings.append(f"node {node} could not be listed ({exc}); its inventory records were used")
    return observed, warnings


def password_when_running(driver: HypervisorDriver) -> bool:
    """Whether ``driver`` sets a password in the running guest (set it after the start).

    A libvirt node with ``password_method: nocloud`` hands it over at boot (a
    cloud-init seed): set it before the first start, like Proxmox's cloud-init.
    """
    at_boot = getattr(driver, "ex_password_at_boot", False)
    return driver.password_when_running and not (isinstance(at_boot, bool) and at_boot)


@writes_back
def provision(
    order: Order,
    fleet: Fleet,
    pool: DriverPool,
    *,
    journal: Journal | None = None,
    password: str | None = None,
    user: str = "root",
    check: bool = False,
    today: dt.date | None = None,
    cpuset_rule: str | None = HOUSE_CPUSET,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    actor: str | None = None,
    inventory: str | Path | None = None,
) -> ProvisionResult:
    """Provision ``order``: plan, create, set the password, start, read back.

    Idempotent: an order already provisioned is verified and reported
    unchanged (its password is not touched, no journal line unless it does not match
    the order). ``check`` plans only.
    ``inventory``: the inventory directory to write the new VDS's record into
    (``result.inventory_change``; with ``check``, the diff only).
    """
    today = today or dt.date.today()
    observed, warnings = observe(pool, fleet.nodes, timeout=step_timeout)
    if order.node in fleet.nodes and order.node not in observed:
        # The target must answer: we will not create blind.
        pool.get(order.node).list_vds()
    plan = plan_provision(order, fleet, observed, today=today, cpuset_rule=cpuset_rule)
    warnings = [*plan.warnings, *warnings]
    if check:
        return ProvisionResult(plan=plan, changed=False, checked_only=True, warnings=warnings)
    driver = pool.get(plan.node)
    target = f"{plan.node}/{plan.name}"

    if plan.existing is not None:
        got = driver.get_vds(plan.name)
        mismatches = order_mismatches(plan, got)
        # Verified and unchanged: no journal line. A VDS that does not match its order is one.
        if journal is not None and mismatches:
            journal.record(
                "vds.provision",
                target,
                result="failed",
                after={"state": got.state.value, "changed": False},
                detail="already provisioned; verified: " + "; ".join(mismatches),
                actor=actor,
            )
        return ProvisionResult(plan=plan, changed=False, vds=got, mismatches=mismatches, warnings=warnings)

    if password is not None:
        passwords.check(password, name=plan.name, order=order.number)
        secret = password
    else:
        secret = passwords.generate()

    created = False
    try:
        with_deadline("define", step_timeout, lambda: driver.define(plan.spec), node=plan.node)
        created = True
        steps = [
            ("set_password", lambda: driver.set_password(plan.name, user, secret)),
            ("start", lambda: driver.start(plan.name)),
        ]
        if password_when_running(driver):  # a guest agent needs a running guest
            steps.reverse()
        for step, action in steps:
            with_deadline(step, step_timeout, action, node=plan.node)
        got = with_deadline("verify", step_timeout, lambda: driver.get_vds(plan.name), node=plan.node)
    except IpsinfraError as exc:
        rolled_back = False
        if created:
            with contextlib.suppress(IpsinfraError):
                driver.stop(plan.name, timeout=10)
            try:
                driver.delete(plan.name)
                rolled_back = True
            except IpsinfraError:
                pass
        if journal is not None:
            journal.record(
                "vds.provision",
                target,
                result="failed",
                detail=f"{type(exc).__name__}: {exc}" + ("; rolled back" if rolled_back else ""),
                secrets=[secret],
                actor=actor,
            )
        raise
    mismatches = order_mismatches(plan, got)
    if got.state is not VdsState.RUNNING:
        mismatches.append(f"state: expected running, hypervisor has {got.state.value}")
    if journal is not None:
        journal.record(
            "vds.provision",
            target,
            result="ok" if not mismatches else "failed",
            after=_summary(got, plan),
            detail="; ".join(mismatches),
            secrets=[secret],
            actor=actor,
        )
        journal.set_state(
            f"vds:{plan.name}",
            {
                "order": order.number,
                "node": plan.node,
                "status": "Active",
                "activated": plan.activated.isoformat(),
                "trial_end": plan.trial_end.isoformat() if plan.trial_end else None,
            },
        )
    return ProvisionResult(
        plan=plan,
        changed=True,
        vds=got,
        password=SecretStr(secret),
        mismatches=mismatches,
        warnings=warnings,
    )


def _summary(vds: Vds, plan: ProvisionPlan) -> dict[str, Any]:
    return {
        "state": vds.state.value,
        "vcpus": vds.vcpus,
        "cpuset": vds.cpuset,
        "memory_mib": vds.memory_mib,
        "ips": [str(ip) for ip in plan.spec.ips],
        "autostart": vds.autostart,
        "trial_end": plan.trial_end.isoformat() if plan.trial_end else None,
    }
