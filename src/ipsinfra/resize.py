"""Upgrades and downgrades of a VDS (§6): plan (pure), apply, verify.

§6: after payment the new parameters are applied and the order gets one line
``Upgrade(Ticket<N>): <param>=<price>`` per parameter; a downgrade is applied,
then handed to sales.

``plan_resize`` takes the VDS (as its hypervisor's *configuration* says: what
the next boot gets), its node and the node's other VDS, and decides what
changes, which way, whether a restart is needed and whether the node has the
room; it never opens a socket. ``resize`` carries a plan out through a
:class:`DriverPool`, reads the configuration back and compares.

Restarts. Neither backend hot-plugs what ipsinfra defines: libvirt domains
have no spare vCPU or memory slots (``<vcpu current>``, ``<maxMemory>``), and
PVE's default ``hotplug`` is ``network,disk,usb``. So vCPUs and memory of a
running VDS are written to its configuration and take effect at its next
start; ``restart=True`` restarts it (stop, start, verify the running guest).
Disks grow online on both (libvirt ``blockResize``, PVE ``resize``).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra import locks, naming
from ipsinfra.errors import InvalidInput, IpsinfraError, NodeNotFound
from ipsinfra.hypervisors import DriverPool, HypervisorDriver
from ipsinfra.inventory import Fleet
from ipsinfra.inventory.writeback import InventoryChange, writes_back
from ipsinfra.journal import Journal
from ipsinfra.migrate import find_vds
from ipsinfra.models import HypervisorKind, Node, Vds, VdsState, parse_cpuset
from ipsinfra.provision import HOUSE_CPUSET, effective_cpuset
from ipsinfra.steps import with_deadline

Param = Literal["cores", "memory", "disk"]
PARAMS: tuple[Param, ...] = ("cores", "memory", "disk")
UNITS: dict[Param, str] = {"cores": "", "memory": " MiB", "disk": " GiB"}
DEFAULT_STEP_TIMEOUT = 300.0


class Direction(enum.StrEnum):
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"


class ParamChange(BaseModel):
    """One parameter that changes."""

    model_config = ConfigDict(frozen=True)

    param: Param
    before: int
    after: int
    direction: Direction
    disk: str | None = Field(default=None, description="the disk's name, for param 'disk'")
    needs_restart: bool = False

    def text(self) -> str:
        """``cores 2 -> 4`` / ``disk disk0 40 -> 80 GiB``."""
        what = f"disk {self.disk}" if self.param == "disk" else self.param
        return f"{what} {self.before} -> {self.after}{UNITS[self.param]}"


class ResizePlan(BaseModel):
    """What resizing one VDS will do. Pure data, printable as a dry run."""

    model_config = ConfigDict(frozen=True)

    name: str
    node: str
    kind: HypervisorKind
    state: VdsState
    order: int | None = None
    changes: list[ParamChange] = Field(default_factory=list)
    unchanged: list[Param] = Field(default_factory=list, description="asked for, already at the target")
    restart_reason: str | None = None
    warnings: list[str] = Field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def needs_restart(self) -> bool:
        return any(c.needs_restart for c in self.changes)

    @property
    def upgrades(self) -> list[ParamChange]:
        return [c for c in self.changes if c.direction is Direction.UPGRADE]

    @property
    def downgrades(self) -> list[ParamChange]:
        return [c for c in self.changes if c.direction is Direction.DOWNGRADE]

    def change(self, param: Param) -> ParamChange | None:
        return next((c for c in self.changes if c.param == param), None)

    def describe(self) -> list[str]:
        """Human lines for ``--check``."""
        if not self.changes:
            return [f"{self.name} on {self.node}: already at the target, nothing to change"]
        lines = [f"resize {self.name} on {self.node} ({self.kind.value}, {self.state.value})"]
        for c in self.changes:
            when = "at the next start" if c.needs_restart else "now"
            lines.append(f"  {c.direction.value}: {c.text()} (takes effect {when})")
        if self.restart_reason:
            lines.append(f"  restart needed: {self.restart_reason}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return lines


def _restart_reason(kind: HypervisorKind) -> str:
    if kind is HypervisorKind.PROXMOX:
        return "PVE keeps vCPU/memory changes of a running VM pending (hotplug lacks cpu,memory)"
    return "libvirt: the domain has no spare vCPU/memory slots to hot-plug; the config changes now"


def plan_resize(
    vds: Vds,
    node: Node,
    *,
    cores: int | None = None,
    memory_mib: int | None = None,
    disk_gib: int | None = None,
    disk: str | None = None,
    cpuset_rule: str | None = HOUSE_CPUSET,
    node_vds: Sequence[Vds] = (),
) -> ResizePlan:
    """Decide what resizing ``vds`` (its configuration, as the hypervisor reports it) does.

    ``node_vds`` is every VDS on ``node`` (``vds`` itself may be among them):
    memory growth must fit in ``node.memory_mib`` minus what the others have.

    Raises:
        InvalidInput: a weak value (0 or negative), a disk shrink, no room on
            the node, or a vCPU count the cpuset rule (§9.1) no longer fits.

    >>> v = Vds(name="VPS7(1.2)", node="n1", vcpus=2, memory_mib=1024, cpuset="1-40")
    >>> n = Node(name="n1", site="s", main_ip="10.0.1.2", kind="libvirt", uri="test:///", cpus=48)
    >>> [c.text() for c in plan_resize(v, n, cores=4).changes]
    ['cores 2 -> 4']
    """
    if cores is None and memory_mib is None and disk_gib is None:
        raise InvalidInput("resize: nothing asked: give cores, memory_mib or disk_gib")
    if cores is not None and cores < 1:
        raise InvalidInput(f"cores: value {cores!r}: a VDS needs at least 1 vCPU")
    if memory_mib is not None and memory_mib < 16:
        raise InvalidInput(f"memory_mib: value {memory_mib!r}: a VDS needs at least 16 MiB")
    if disk_gib is not None and disk_gib < 1:
        raise InvalidInput(f"disk_gib: value {disk_gib!r}: at least 1 GiB")
    if vds.node != node.name:
        raise InvalidInput(f"node: value {node.name!r}: {vds.name} is on node {vds.node}")
    running = vds.state in (VdsState.RUNNING, VdsState.PAUSED)
    changes: list[ParamChange] = []
    unchanged: list[Param] = []
    warnings: list[str] = []

    def direction(before: int, after: int) -> Direction:
        return Direction.UPGRADE if after > before else Direction.DOWNGRADE

    if cores is not None:
        if cores > node.cpus:
            raise InvalidInput(f"cores: value {cores}: node {node.name} has only {node.cpus} CPUs (no room)")
        if cores != vds.vcpus:
            _check_cpuset_fit(vds, node, cores, cpuset_rule)
            changes.append(
                ParamChange(
                    param="cores",
                    before=vds.vcpus,
                    after=cores,
                    direction=direction(vds.vcpus, cores),
                    needs_restart=running,
                )
            )
        else:
            unchanged.append("cores")

    if memory_mib is not None:
        if memory_mib != vds.memory_mib:
            if memory_mib > vds.memory_mib:
                warnings += _check_memory_room(vds, node, memory_mib, node_vds)
            changes.append(
                ParamChange(
                    param="memory",
                    before=vds.memory_mib,
                    after=memory_mib,
                    direction=direction(vds.memory_mib, memory_mib),
                    needs_restart=running,
                )
            )
        else:
            unchanged.append("memory")

    if disk_gib is not None:
        if not vds.disks:
            raise InvalidInput(f"disk_gib: value {disk_gib}: {vds.name} has no disk on record")
        target = next((d for d in vds.disks if d.name == disk), None) if disk else vds.disks[0]
        if target is None:
            known = ", ".join(d.name for d in vds.disks)
            raise InvalidInput(f"disk: value {disk!r}: {vds.name} has no such disk (disks: {known})")
        if disk_gib < target.size_gib:
            raise InvalidInput(
                f"disk_gib: value {disk_gib}: disk {target.name} of {vds.name} has {target.size_gib} GiB; "
                "a disk only grows (shrinking is refused)"
            )
        if disk_gib > target.size_gib:
            changes.append(
                ParamChange(
                    param="disk",
                    before=target.size_gib,
                    after=disk_gib,
                    direction=Direction.UPGRADE,
                    disk=target.name,
                )
            )
        else:
            unchanged.append("disk")

    restart = any(c.needs_restart for c in changes)
    return ResizePlan(
        name=vds.name,
        node=node.name,
        kind=node.kind,
        state=vds.state,
        order=vds.order,
        changes=changes,
        unchanged=unchanged,
        restart_reason=_restart_reason(node.kind) if restart else None,
        warnings=warnings,
    )


def _check_cpuset_fit(vds: Vds, node: Node, cores: int, cpuset_rule: str | None) -> None:
    """§9.1: the vCPUs must fit the CPU range (the VDS's own, and the house rule's on this node)."""
    node_cpus = set(range(node.cpus))
    if vds.cpuset:
        pinned = parse_cpuset(vds.cpuset) & node_cpus
        if cores > len(pinned):
            raise InvalidInput(
                f"cores: value {cores}: {vds.name} is pinned to CPUs {vds.cpuset} "
                f"({len(pinned)} on node {node.name}); {cores} vCPUs would no longer fit"
            )
    rule = effective_cpuset(cpuset_rule, node.cpus)
    if rule is not None and cores > len(parse_cpuset(rule)):
        raise InvalidInput(
            f"cores: value {cores}: the cpuset rule {cpuset_rule} gives {rule} on node {node.name} "
            f"({len(parse_cpuset(rule))} CPUs); {cores} vCPUs would no longer fit"
        )


def _check_memory_room(vds: Vds, node: Node, memory_mib: int, node_vds: Sequence[Vds]) -> list[str]:
    if node.memory_mib is None:
        return [f"node {node.name} declares no memory_mib: its room for {memory_mib} MiB was not checked"]
    others = [v for v in node_vds if v.name != vds.name and v.node == node.name and not v.cancelled]
    used = sum(v.memory_mib for v in others)
    free = node.memory_mib - used
    if memory_mib > free:
        raise InvalidInput(
            f"memory_mib: value {memory_mib}: node {node.name} has no room: {node.memory_mib} MiB, "
            f"{used} MiB held by {len(others)} other VDS, {max(free, 0)} MiB free"
        )
    return []


# --------------------------------------------------------------- prices, lines


def price_text(value: str | int | Decimal) -> str:
    """A price as the order line shows it; refuses what is not a non-negative number.

    >>> price_text("300"), price_text(Decimal("12.50"))
    ('300', '12.50')
    """
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(f"price: value {value!r}: not a number") from None
    if not number.is_finite() or number < 0:
        raise InvalidInput(f"price: value {value!r}: a price is a non-negative number")
    return str(number)


def upgrade_line(ticket: int, param: Param, price: str) -> str:
    """§6: exactly ``Upgrade(Ticket<N>): <param>=<price>``.

    >>> upgrade_line(4711, "cores", "300")
    'Upgrade(Ticket4711): cores=300'
    """
    return f"Upgrade(Ticket{ticket}): {param}={price}"


def downgrade_line(ticket: int, change: ParamChange) -> str:
    """The line handed to sales for a downgrade (§6: applied, then sales)."""
    what = f"{change.param}({change.disk})" if change.disk else change.param
    return (
        f"Downgrade(Ticket{ticket}): {what}={change.before}->{change.after}{UNITS[change.param]}; "
        "applied, hand to sales"
    )


def order_prices(plan: ResizePlan, prices: Mapping[str, str | int | Decimal] | None) -> dict[Param, str]:
    """The price of every upgraded parameter; an upgrade without a price is refused (after payment only)."""
    given = dict(prices or {})
    unknown = sorted(set(given) - set(PARAMS))
    if unknown:
        raise InvalidInput(f"prices: value {unknown[0]!r}: not a parameter (one of {', '.join(PARAMS)})")
    out: dict[Param, str] = {}
    for change in plan.upgrades:
        if change.param not in given:
            raise InvalidInput(
                f"prices.{change.param}: missing: an upgrade is applied after payment; give its price"
            )
        try:
            out[change.param] = price_text(given[change.param])
        except InvalidInput as exc:
            raise InvalidInput(f"prices.{change.param}: {exc}") from None
    return out


# --------------------------------------------------------------- result


class ResizeResult(BaseModel):
    """The outcome of one resize. ``order_lines`` go to the order, ``sales_handoff`` to sales."""

    model_config = ConfigDict(frozen=True)

    plan: ResizePlan
    ticket: int
    changed: bool
    checked_only: bool = False
    vds: Vds | None = Field(default=None, description="the configuration read back")
    order_lines: list[str] = Field(default_factory=list, description="Upgrade(Ticket<N>): <param>=<price>")
    sales_handoff: list[str] = Field(default_factory=list, description="downgrades: applied, for sales")
    restart_needed: bool = Field(default=False, description="new vCPUs/memory wait for the next start")
    restarted: bool = False
    mismatches: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    inventory_change: InventoryChange | None = Field(default=None, description="the write-back, if asked")

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def raise_on_error(self) -> None:
        if self.mismatches:
            raise IpsinfraError(f"{self.plan.name}: resize not verified: " + "; ".join(self.mismatches))

    def describe(self) -> list[str]:
        lines = self.plan.describe()
        if self.checked_only:
            lines.append("  (check only: nothing was changed)")
        lines += [f"  order: {line}" for line in self.order_lines]
        lines += [f"  sales: {line}" for line in self.sales_handoff]
        if self.restart_needed:
            lines.append(
                "  the new vCPUs/memory take effect at the VDS's next start (restart it with the client)"
            )
        if self.restarted:
            lines.append("  restarted and verified running")
        lines += [f"  MISMATCH: {m}" for m in self.mismatches]
        lines += [f"  warning: {w}" for w in self.warnings]
        return lines


# --------------------------------------------------------------- apply


@runtime_checkable
class _ConfiguredView(Protocol):
    def ex_configured(self, name: str) -> Vds: ...


def configured(driver: HypervisorDriver, name: str) -> Vds:
    """The VDS as its configuration says (what the next boot gets); ``get_vds`` where the
    driver has no separate view."""
    if isinstance(driver, _ConfiguredView):
        return driver.ex_configured(name)
    return driver.get_vds(name)


def mismatches_of(plan: ResizePlan, got: Vds) -> list[str]:
    """Every planned parameter compared with what the hypervisor reports."""
    out: list[str] = []
    for c in plan.changes:
        if c.param == "cores":
            have: int | None = got.vcpus
        elif c.param == "memory":
            have = got.memory_mib
        else:
            have = next((d.size_gib for d in got.disks if d.name == c.disk), None)
        if have != c.after:
            out.append(f"{c.param}: planned {c.after}, hypervisor has {have}")
    return out


@writes_back
def resize(
    name: str,
    fleet: Fleet,
    pool: DriverPool,
    *,
    ticket: int,
    cores: int | None = None,
    memory_mib: int | None = None,
    disk_gib: int | None = None,
    disk: str | None = None,
    prices: Mapping[str, str | int | Decimal] | None = None,
    journal: Journal | None = None,
    check: bool = False,
    restart: bool = False,
    cpuset_rule: str | None = HOUSE_CPUSET,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    stop_timeout: float = 60.0,
    lock_dir: Path | None = None,
    actor: str | None = None,
    inventory: str | Path | None = None,
) -> ResizeResult:
    """Resize VDS ``name`` under ``ticket``: plan, apply, read back (§6).

    ``inventory``: the inventory directory whose record of the VDS follows
    (vcpus, memory_mib, disks), in ``result.inventory_change``.

    Idempotent: a VDS already at the target is verified and reported
    unchanged; no order line and no journal line are written. ``check`` plans only.
    ``restart`` restarts a running VDS when the change needs it (else the
    result says ``restart_needed``). Refusals (InvalidInput) happen before
    anything is changed.
    """
    if not isinstance(ticket, int) or isinstance(ticket, bool) or ticket < 1:
        raise InvalidInput(f"ticket: value {ticket!r}: a ticket number (1 or more)")
    parsed = naming.parse_vps_name(name)
    with locks.hold(f"vds-{parsed.order}", f"resize {name} (Ticket{ticket})", lock_dir=lock_dir):
        where = find_vds(pool, fleet, name)
        node = fleet.nodes.get(where.node)
        if node is None:
            raise NodeNotFound(f"node: value {where.node!r}: {name} runs on a node not in the inventory")
        driver = pool.get(node.name)
        current = with_deadline("read", step_timeout, lambda: configured(driver, name), node=node.name)
        wants_room = memory_mib is not None and memory_mib > current.memory_mib
        node_vds = (
            with_deadline("list_vds", step_timeout, driver.list_vds, node=node.name) if wants_room else []
        )
        plan = plan_resize(
            current,
            node,
            cores=cores,
            memory_mib=memory_mib,
            disk_gib=disk_gib,
            disk=disk,
            cpuset_rule=cpuset_rule,
            node_vds=node_vds,
        )
        priced = order_prices(plan, prices)
        lines = [upgrade_line(ticket, c.param, priced[c.param]) for c in plan.upgrades]
        handoff = [downgrade_line(ticket, c) for c in plan.downgrades]
        if check:
            return ResizeResult(
                plan=plan,
                ticket=ticket,
                changed=False,
                checked_only=True,
                vds=current,
                order_lines=lines,
                sales_handoff=handoff,
                restart_needed=plan.needs_restart,
                warnings=plan.warnings,
            )
        if not plan.changed:  # already at the target: nothing done, so no journal line
            return ResizeResult(plan=plan, ticket=ticket, changed=False, vds=current, warnings=plan.warnings)
        return _apply(
            plan,
            driver,
            current,
            ticket=ticket,
            lines=dict(zip([c.param for c in plan.upgrades], lines, strict=True)),
            journal=journal,
            restart=restart,
            step_timeout=step_timeout,
            stop_timeout=stop_timeout,
            actor=actor,
        )


def _apply(
    plan: ResizePlan,
    driver: HypervisorDriver,
    before: Vds,
    *,
    ticket: int,
    lines: Mapping[Param, str],
    journal: Journal | None,
    restart: bool,
    step_timeout: float,
    stop_timeout: float,
    actor: str | None,
) -> ResizeResult:
    name, node = plan.name, plan.node
    label = f"{node}/{name}"
    steps: list[tuple[str, Callable[[], Vds]]] = [
        (_STEP_NAMES[c.param], functools.partial(_change, driver, name, c)) for c in plan.changes
    ]
    done: list[str] = []
    restarted = False
    try:
        for (step, action), change in zip(steps, plan.changes, strict=True):
            with_deadline(step, step_timeout, action, node=node)
            done.append(change.text())
        if plan.needs_restart and restart:
            with_deadline(
                "stop",
                step_timeout + stop_timeout,
                lambda: driver.stop(name, timeout=stop_timeout),
                node=node,
            )
            with_deadline("start", step_timeout, lambda: driver.start(name), node=node)
            restarted = True
        got = with_deadline("verify", step_timeout, lambda: configured(driver, name), node=node)
        live = with_deadline("verify", step_timeout, lambda: driver.get_vds(name), node=node)
    except IpsinfraError as exc:
        if journal is not None:
            journal.record(
                "vds.resize",
                label,
                result="failed",
                before=_summary(before),
                detail=f"Ticket{ticket}: {type(exc).__name__}: {exc}; applied before the failure: "
                + (", ".join(done) or "nothing"),
                actor=actor,
            )
        raise
    mismatches = mismatches_of(plan, got)
    if restarted:
        mismatches += [f"running guest: {m}" for m in mismatches_of(plan, live)]
        if live.state is not VdsState.RUNNING:
            mismatches.append(f"state: restarted, hypervisor has {live.state.value}")
    bad = {m.split(":", 1)[0] for m in mismatches}
    order_lines = [lines[c.param] for c in plan.upgrades if c.param not in bad]
    handoff = [downgrade_line(ticket, c) for c in plan.downgrades if c.param not in bad]
    if journal is not None:
        journal.record(
            "vds.resize",
            label,
            result="ok" if not mismatches else "failed",
            before=_summary(before),
            after={**_summary(got), "ticket": ticket, "restarted": restarted},
            detail="; ".join([c.text() for c in plan.changes] + mismatches),
            actor=actor,
        )
        target = f"order {plan.order}" if plan.order else label
        for line in order_lines:
            journal.record("order.upgrade", target, result="ok", detail=line, actor=actor)
        for line in handoff:
            journal.record("order.downgrade", target, result="ok", detail=line + " (§6)", actor=actor)
        if order_lines or handoff:
            state = journal.get_state(f"vds:{name}") or {}
            history = list(state.get("order_lines") or [])
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            history += [{"ts": stamp, "line": line} for line in [*order_lines, *handoff]]
            journal.set_state(f"vds:{name}", {**state, "order_lines": history})
    return ResizeResult(
        plan=plan,
        ticket=ticket,
        changed=True,
        vds=got,
        order_lines=order_lines,
        sales_handoff=handoff,
        restart_needed=plan.needs_restart and not restarted,
        restarted=restarted,
        mismatches=mismatches,
        warnings=plan.warnings,
    )


_STEP_NAMES: dict[Param, str] = {"cores": "set_vcpus", "memory": "set_memory", "disk": "grow_disk"}


def _change(driver: HypervisorDriver, name: str, change: ParamChange) -> Vds:
    if change.param == "cores":
        return driver.set_vcpus(name, change.after)  # cpuset None: the VDS keeps its CPU range
    if change.param == "memory":
        return driver.set_memory(name, change.after)
    return driver.grow_disk(name, change.disk or "", change.after)


def _summary(vds: Vds) -> dict[str, Any]:
    return {
        "state": vds.state.value,
        "vcpus": vds.vcpus,
        "cpuset": vds.cpuset,
        "memory_mib": vds.memory_mib,
        "disks": {d.name: d.size_gib for d in vds.disks},
    }


__all__ = [
    "Direction",
    "ParamChange",
    "ResizePlan",
    "ResizeResult",
    "configured",
    "downgrade_line",
    "mismatches_of",
    "order_prices",
    "plan_resize",
    "price_text",
    "resize",
    "upgrade_line",
]
