"""Migrating a VDS between nodes (§9): plan (pure), apply, verify — never lost.

§9.1 the vCPU count stays exactly what the SOURCE node's configuration says;
the CPU range follows the house rule (``1-40``) cut to the target's CPUs.
§9.10 the VDS is renamed to the target node's octets, and its VNC address
and every per-node network parameter (bridge, gateway) come from the target
node's inventory.

Verification reads the target twice where the driver can tell them apart:
as it runs (``get_vds``) and as its configuration says (``ex_configured``).
A value written but in force only at the next cold start (on Proxmox the
VNC address in ``args`` of a live-migrated VM: see
:mod:`ipsinfra.hypervisors.proxmox`) is a warning on the result, not a
mismatch; wrong in the configuration it is a mismatch.

Safety: the source copy is released only after the target copy has been
read back and matches the plan. If any step fails, the VDS still exists
exactly once and runs where it ran.
"""

from __future__ import annotations

import contextlib
import ipaddress
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra import locks, naming
from ipsinfra.errors import (
    AlreadyExists,
    InvalidInput,
    IpsinfraError,
    NodeNotFound,
    UnsupportedOperation,
    VdsNotFound,
)
from ipsinfra.hypervisors import DriverPool, HypervisorDriver
from ipsinfra.inventory import Fleet
from ipsinfra.inventory.writeback import InventoryChange, writes_back
from ipsinfra.journal import Journal
from ipsinfra.models import HypervisorKind, IPAddress, Node, Vds, VdsState
from ipsinfra.provision import HOUSE_CPUSET, effective_cpuset
from ipsinfra.steps import with_deadline


class MigrationPlan(BaseModel):
    """What migrating one VDS will do. Pure data, printable with ``--check``."""

    model_config = ConfigDict(frozen=True)

    name: str
    source: str
    target: str
    kind: HypervisorKind
    new_name: str
    backend_new_name: str
    vcpus: int = Field(description="exactly the source configuration's count (§9.1)")
    cpuset: str | None
    vnc_listen: IPAddress
    bridge: str
    gateway: IPAddress | None
    autostart: bool
    live: bool
    was_running: bool

    def describe(self) -> list[str]:
        return [
            f"migrate {self.name} from {self.source} to {self.target} "
            f"({'live' if self.live else 'offline'}, {self.kind.value})",
            f"  rename to {self.new_name}"
            + (f" (backend name {self.backend_new_name})" if self.backend_new_name != self.new_name else ""),
            f"  vCPUs {self.vcpus} exactly as on {self.source} (§9.1), cpuset {self.cpuset or '-'}",
            f"  VNC listen {self.vnc_listen}, bridge {self.bridge}, gateway {self.gateway or '-'} (§9.10)",
            f"  autostart {'on' if self.autostart else 'off'} (set again on the target)",
            f"  release the source only after {self.target} reports the VDS as planned",
        ]


def _networks(node: Node) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for ip in node.ip_pool:
        net = ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False)
        if net not in nets:
            nets.append(net)
    return nets


def plan_migration(
    vds: Vds,
    source: Node,
    target: Node,
    *,
    live: bool = True,
    cpuset_rule: str | None = HOUSE_CPUSET,
) -> MigrationPlan:
    """Plan moving ``vds`` (as the SOURCE hypervisor reports it) to ``target``."""
    if target.name == source.name:
        raise InvalidInput(f"target: value {target.name!r}: the VDS is already on that node")
    if vds.node != source.name:
        raise InvalidInput(f"source: value {source.name!r}: {vds.name} is on node {vds.node}")
    if target.kind is not source.kind:
        raise UnsupportedOperation(
            f"target: value {target.name!r}: {source.kind.value} -> {target.kind.value} is not a migration "
            "this library performs (reinstall instead)"
        )
    if vds.vcpus > target.cpus:
        raise InvalidInput(
            f"target: value {target.name!r}: {target.cpus} CPUs, fewer than the VDS's {vds.vcpus} vCPUs"
        )
    if target.site != source.site:
        nets = _networks(target)
        stranded = [ip for ip in vds.ips if not any(ip in net for net in nets)]
        if stranded or not vds.ips:
            shown = ", ".join(str(ip) for ip in stranded) or "its addresses"
            raise InvalidInput(
                f"target: value {target.name!r}: site {target.site} does not carry the VDS's network "
                f"({shown}, site {source.site})"
            )
    new_name = naming.renamed_for_node(vds.name, target.main_ip)
    backend_new_name = naming.pve_safe_name(new_name) if target.kind is HypervisorKind.PROXMOX else new_name
    was_running = vds.state is VdsState.RUNNING
    return MigrationPlan(
        name=vds.name,
        source=source.name,
        target=target.name,
        kind=target.kind,
        new_name=new_name,
        backend_new_name=backend_new_name,
        vcpus=vds.vcpus,
        # §9.1's range "may be used": kept where the VDS had one, cut to the target's CPUs.
        cpuset=effective_cpuset(cpuset_rule, target.cpus) if vds.cpuset else None,
        vnc_listen=target.vnc_address,
        bridge=target.bridge,
        gateway=target.gateway,
        autostart=vds.autostart,
        live=live and was_running,
        was_running=was_running,
    )


# Planned values a hypervisor may hold written but not yet in force on a running
# VDS: Proxmox keeps ``args`` (the VNC address), ``affinity`` and ``cores`` as
# pending until the next cold start (see ipsinfra.hypervisors.proxmox).
COLD_START_FIELDS = frozenset({"vcpus", "cpuset", "vnc_listen"})


def _checks(plan: MigrationPlan, got: Vds) -> list[tuple[str, object, object]]:
    checks: list[tuple[str, object, object]] = [
        ("name", plan.new_name, got.name),
        ("node", plan.target, got.node),
        ("vcpus", plan.vcpus, got.vcpus),
        ("cpuset", plan.cpuset, got.cpuset),
        ("vnc_listen", str(plan.vnc_listen), str(got.vnc_listen)),
        ("autostart", plan.autostart, got.autostart),
        ("state", "running" if plan.was_running else "stopped", got.state.value),
    ]
    bridges = sorted({n.bridge for n in got.nics if n.bridge})
    if plan.kind is HypervisorKind.PROXMOX or bridges:
        checks.append(("bridge", [plan.bridge], bridges))
    return checks


def target_mismatches(plan: MigrationPlan, got: Vds) -> list[str]:
    """Every planned parameter compared with what the target reports."""
    return [f"{field}: planned {a!r}, target has {b!r}" for field, a, b in _checks(plan, got) if a != b]


def _cold_start_warning(plan: MigrationPlan, field: str, planned: object, running: object) -> str:
    if field == "vnc_listen":
        return (
            f"VNC address {planned} takes effect at the next cold start of {plan.new_name} "
            f"(written to its configuration; the running QEMU keeps listening on {running} "
            "until the hypervisor stops and starts it)"
        )
    return (
        f"{field} {planned!r} takes effect at the next cold start of {plan.new_name} "
        f"(written to its configuration; running with {running!r})"
    )


def verify_target(
    plan: MigrationPlan, got: Vds, configured: Vds | None = None
) -> tuple[list[str], list[str]]:
    """``(mismatches, warnings)`` of the target copy against the plan.

    ``got`` is the VDS as it runs; ``configured`` as its configuration says
    (what the next cold start uses), None where the two cannot differ. A
    :data:`COLD_START_FIELDS` value that is written but not yet in force is a
    warning saying when it will be; wrong in the configuration it is a
    mismatch whatever runs now.
    """
    now = {f: (a, b) for f, a, b in _checks(plan, got) if a != b}
    later = {f: (a, b) for f, a, b in _checks(plan, configured) if a != b} if configured is not None else now
    mismatches: list[str] = []
    warnings: list[str] = []
    for field in [f for f, _a, _b in _checks(plan, got) if f in now or f in later]:
        if field not in later:
            planned, running = now[field]
            if field in COLD_START_FIELDS:
                warnings.append(_cold_start_warning(plan, field, planned, running))
            else:
                mismatches.append(f"{field}: planned {planned!r}, target has {running!r}")
        elif field not in now:
            # Right now, wrong at the next start: the configuration is what lasts.
            planned, written = later[field]
            mismatches.append(
                f"{field}: planned {planned!r}, the target's configuration for the next start has {written!r}"
            )
        else:
            planned, running = now[field]
            text = f"{field}: planned {planned!r}, target has {running!r}"
            if later[field][1] != running:
                text += f" (and its configuration for the next start has {later[field][1]!r})"
            mismatches.append(text)
    return mismatches, warnings


@runtime_checkable
class _ConfiguredView(Protocol):
    def ex_configured(self, name: str) -> Vds: ...


def _configured(driver: HypervisorDriver, name: str) -> Vds | None:
    """The VDS as its configuration says (None where the driver has no separate view)."""
    return driver.ex_configured(name) if isinstance(driver, _ConfiguredView) else None


class MigrationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    plan: MigrationPlan
    changed: bool
    checked_only: bool = False
    vds: Vds | None = None
    mismatches: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list,
        description="true and not failures, e.g. a value in force at the next cold start",
    )
    inventory_change: InventoryChange | None = Field(default=None, description="the write-back, if asked")

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def raise_on_error(self) -> None:
        if self.mismatches:
            raise IpsinfraError(f"{self.plan.name}: migration not verified: " + "; ".join(self.mismatches))


def find_vds(pool: DriverPool, fleet: Fleet, name: str) -> Vds:
    """Where ``name`` is now, by asking the hypervisors (the inventory may be stale)."""
    hint = fleet.vds.get(name)
    order = [hint.node] if hint is not None and hint.node in fleet.nodes else []
    order += [n for n in fleet.nodes if n not in order]
    for node in order:
        try:
            return pool.get(node).get_vds(name)
        except VdsNotFound:
            continue
    raise VdsNotFound(f"vds: value {name!r}: no node reports it")


@writes_back
def migrate(
    name: str,
    target: str,
    fleet: Fleet,
    pool: DriverPool,
    *,
    live: bool = True,
    journal: Journal | None = None,
    check: bool = False,
    cpuset_rule: str | None = HOUSE_CPUSET,
    step_timeout: float = 600.0,
    lock_dir: Path | None = None,
    actor: str | None = None,
    inventory: str | Path | None = None,
) -> MigrationResult:
    """Move VDS ``name`` to node ``target``; verified on the target before the source is released.

    Re-running a finished migration finds the VDS already on the target
    under its new name and reports it unchanged. ``inventory``: the inventory
    directory to update (§9.10 rename of the host_vars file and hosts.yml
    entry, ``vds_name``, ``node``...), in ``result.inventory_change``.
    """
    if target not in fleet.nodes:
        known = ", ".join(sorted(fleet.nodes))
        raise NodeNotFound(f"target: value {target!r}: no such node (known: {known})")
    tgt_node = fleet.nodes[target]
    parsed = naming.parse_vps_name(name)
    done_name = naming.vps_name(parsed.order, tgt_node.main_ip)
    with locks.hold(f"vds-{parsed.order}", f"migrate {name} -> {target}", lock_dir=lock_dir):
        try:
            vds = find_vds(pool, fleet, name)
        except VdsNotFound:
            converged = _converged(name, done_name, target, fleet, pool, live=live, cpuset_rule=cpuset_rule)
            if converged is None:
                raise
            return converged
        if vds.node == target:
            record = fleet.vds.get(name)
            if record is None or record.node == target or record.node not in fleet.nodes:
                raise InvalidInput(f"target: value {target!r}: {name} is already on that node")
            # An earlier run moved it but could not finish (the rename was refused): finish now.
            plan = plan_migration(
                vds.model_copy(update={"node": record.node}),
                fleet.nodes[record.node],
                tgt_node,
                live=live,
                cpuset_rule=cpuset_rule,
            )
            if check:
                return MigrationResult(plan=plan, changed=False, checked_only=True)
            return _finish(plan, pool, journal=journal, step_timeout=step_timeout, actor=actor)
        src_node = fleet.nodes[vds.node]
        plan = plan_migration(vds, src_node, tgt_node, live=live, cpuset_rule=cpuset_rule)
        if check:
            return MigrationResult(plan=plan, changed=False, checked_only=True)
        _clear_interrupted_copy(plan, vds, pool, journal=journal, actor=actor)
        try:
            taken = _still_on(pool.get(plan.target), plan.new_name)
        except IpsinfraError:
            taken = False  # the target cannot be asked now: the migration step says so itself
        if taken:
            # Refused before anything moves: the failure path below removes copies, and a VDS
            # of that name that this run did not make is never its to remove.
            raise AlreadyExists(
                f"{plan.target}: VDS {plan.new_name!r} already exists (another machine, or a running "
                "copy); nothing was changed"
            )
        return _apply(plan, pool, journal=journal, step_timeout=step_timeout, actor=actor)


def _clear_interrupted_copy(
    plan: MigrationPlan, vds: Vds, pool: DriverPool, *, journal: Journal | None, actor: str | None
) -> None:
    """Remove what an interrupted migration left on the target, when it is provably that.

    A target daemon that died mid-migration can come back with the VDS's
    definition persisted under the new name (libvirt's PERSIST_DEST) while the
    source still holds it: two copies. The target's is removed only when it is
    the same machine (same UUID/vmid as the source's) and not running; anything
    else stays and the migration refuses as before (AlreadyExists).
    """
    dst = pool.get(plan.target)
    try:
        left = dst.get_vds(plan.new_name)
    except IpsinfraError:  # none there, or the target cannot be asked: nothing provable to clear
        return
    if left.state is VdsState.RUNNING or not vds.backend_id or left.backend_id != vds.backend_id:
        return
    dst.delete(plan.new_name)
    if journal is not None:
        journal.record(
            "vds.migrate",
            f"{plan.target}/{plan.new_name}",
            result="ok",
            before=_summary(left),
            detail=(
                f"removed the {left.state.value} copy an interrupted migration left on {plan.target} "
                f"(same id {vds.backend_id} as the source's, which still holds {plan.name})"
            ),
            actor=actor,
        )


def _converged(
    name: str,
    done_name: str,
    target: str,
    fleet: Fleet,
    pool: DriverPool,
    *,
    live: bool,
    cpuset_rule: str | None,
) -> MigrationResult | None:
    """A re-run after success: the VDS is on the target under its new name already."""
    record = fleet.vds.get(name)
    if record is None:
        record = _moved_record(name, done_name, target, fleet)
    if record is None or record.node not in fleet.nodes or record.node == target:
        return None
    try:
        got = pool.get(target).get_vds(done_name)
    except VdsNotFound:
        return None
    as_source = got.model_copy(update={"name": name, "node": record.node})
    plan = plan_migration(
        as_source, fleet.nodes[record.node], fleet.nodes[target], live=live, cpuset_rule=cpuset_rule
    )
    mismatches, warnings = verify_target(plan, got, _configured(pool.get(target), done_name))
    return MigrationResult(plan=plan, changed=False, vds=got, mismatches=mismatches, warnings=warnings)


def _moved_record(name: str, done_name: str, target: str, fleet: Fleet) -> Vds | None:
    """The inventory was written back already (§9.10 rename): the old record, its node from its octets."""
    moved = fleet.vds.get(done_name)
    if moved is None or moved.node != target:
        return None
    octets = naming.parse_vps_name(name).octets
    sources = [
        n.name
        for n in fleet.nodes.values()
        if n.name != target
        and isinstance(n.main_ip, ipaddress.IPv4Address)
        and naming.node_octets(n.main_ip) == octets
    ]
    if len(sources) != 1:
        return None
    return moved.model_copy(update={"name": name, "node": sources[0]})


def _apply(
    plan: MigrationPlan,
    pool: DriverPool,
    *,
    journal: Journal | None,
    step_timeout: float,
    actor: str | None,
) -> MigrationResult:
    src = pool.get(plan.source)
    dst = pool.get(plan.target)
    target_label = f"{plan.source}/{plan.name} -> {plan.target}/{plan.new_name}"
    before = src.get_vds(plan.name)
    try:
        with_deadline(
            "migrate",
            step_timeout,
            lambda: src.migrate(plan.name, dst, live=plan.live, new_name=plan.new_name, keep_source=True),
            node=plan.source,
        )
        with_deadline(
            "configure target",
            step_timeout,
            lambda: _configure_target(plan, dst),
            node=plan.target,
        )
        got = with_deadline("verify", step_timeout, lambda: dst.get_vds(plan.new_name), node=plan.target)
        written = with_deadline(
            "verify configuration", step_timeout, lambda: _configured(dst, plan.new_name), node=plan.target
        )
    except IpsinfraError as exc:
        restored = _restore_single_copy(plan, pool)
        if journal is not None:
            journal.record(
                "vds.migrate",
                target_label,
                result="failed",
                before=_summary(before),
                detail=f"{type(exc).__name__}: {exc}; {restored}",
                actor=actor,
            )
        raise
    mismatches, warnings = verify_target(plan, got, written)
    source_left = _still_on(src, plan.name)
    if source_left and not mismatches:
        # Verified: now, and only now, release the source copy.
        with contextlib.suppress(VdsNotFound):
            src.delete(plan.name)
        source_left = _still_on(src, plan.name)
    if source_left:
        mismatches.append(f"source: {plan.source} still holds {plan.name}")
    if journal is not None:
        journal.record(
            "vds.migrate",
            target_label,
            result="ok" if not mismatches else "failed",
            before=_summary(before),
            after=_summary(got),
            detail="; ".join(mismatches + warnings),
            actor=actor,
        )
    return MigrationResult(plan=plan, changed=True, vds=got, mismatches=mismatches, warnings=warnings)


def _finish(
    plan: MigrationPlan,
    pool: DriverPool,
    *,
    journal: Journal | None,
    step_timeout: float,
    actor: str | None,
) -> MigrationResult:
    """The VDS is on the target under its old name: rename, configure, verify."""
    dst = pool.get(plan.target)
    before = dst.get_vds(plan.name)
    with_deadline("rename", step_timeout, lambda: dst.rename(plan.name, plan.new_name), node=plan.target)
    with_deadline("configure target", step_timeout, lambda: _configure_target(plan, dst), node=plan.target)
    got = dst.get_vds(plan.new_name)
    mismatches, warnings = verify_target(plan, got, _configured(dst, plan.new_name))
    if journal is not None:
        journal.record(
            "vds.migrate",
            f"{plan.source}/{plan.name} -> {plan.target}/{plan.new_name}",
            result="ok" if not mismatches else "failed",
            before=_summary(before),
            after=_summary(got),
            detail="finished an interrupted migration on the target; " + "; ".join(mismatches + warnings),
            actor=actor,
        )
    return MigrationResult(plan=plan, changed=True, vds=got, mismatches=mismatches, warnings=warnings)


def _configure_target(plan: MigrationPlan, dst: HypervisorDriver) -> None:
    # Compared with the configuration (what is written), so a value already
    # written but in force only at the next cold start is not written again.
    got = _configured(dst, plan.new_name) or dst.get_vds(plan.new_name)
    if (got.vcpus, got.cpuset) != (plan.vcpus, plan.cpuset):
        dst.set_vcpus(plan.new_name, plan.vcpus, cpuset=plan.cpuset)
    if str(got.vnc_listen) != str(plan.vnc_listen):
        dst.set_vnc_listen(plan.new_name, plan.vnc_listen)
    if got.autostart != plan.autostart:
        dst.set_autostart(plan.new_name, plan.autostart)
    if any(nic.bridge != plan.bridge for nic in got.nics):
        dst.set_bridge(plan.new_name, plan.bridge)


def _still_on(driver: HypervisorDriver, name: str) -> bool:
    try:
        driver.get_vds(name)
    except VdsNotFound:
        return False
    return True


def _same_machine(src: HypervisorDriver, name: str, dst: HypervisorDriver, new_name: str) -> bool:
    """Both copies carry one backend id (libvirt UUID, PVE vmid); False when either cannot be read."""
    try:
        a, b = src.get_vds(name).backend_id, dst.get_vds(new_name).backend_id
    except IpsinfraError:
        return False
    return a is not None and a == b


def _restore_single_copy(plan: MigrationPlan, pool: DriverPool) -> str:
    """After a failure: keep exactly one copy, running where it ran."""
    src = pool.get(plan.source)
    dst = pool.get(plan.target)
    try:
        on_src = _still_on(src, plan.name)
        on_dst = _still_on(dst, plan.new_name)
    except IpsinfraError as exc:
        return f"could not check the copies ({exc}); check both nodes by hand"
    if on_src and on_dst and _same_machine(src, plan.name, dst, plan.new_name):
        # Only the copy this migration made: a VDS of that name that is another
        # machine (another UUID/vmid) is never stopped or deleted here.
        with contextlib.suppress(IpsinfraError):
            dst.stop(plan.new_name, timeout=10)
        with contextlib.suppress(IpsinfraError):
            dst.delete(plan.new_name)
        on_dst = _still_on(dst, plan.new_name)
    if on_src and plan.was_running:
        with contextlib.suppress(IpsinfraError):
            if src.get_vds(plan.name).state is not VdsState.RUNNING:
                src.start(plan.name)
    if not on_src and not on_dst and _still_on(dst, plan.name):
        return (
            f"the VDS is on {plan.target} under its old name {plan.name}; "
            "run the migration again to finish the rename"
        )
    if on_src and not on_dst:
        return f"the VDS stays on {plan.source} as {plan.name}"
    if on_dst and not on_src:
        return f"the VDS is on {plan.target} as {plan.new_name} (the source had already released it)"
    return f"source copy: {on_src}, target copy: {on_dst}; check both nodes by hand"


def _summary(vds: Vds) -> dict[str, object]:
    return {
        "node": vds.node,
        "name": vds.name,
        "state": vds.state.value,
        "vcpus": vds.vcpus,
        "cpuset": vds.cpuset,
        "vnc_listen": str(vds.vnc_listen) if vds.vnc_listen else None,
        "autostart": vds.autostart,
    }
