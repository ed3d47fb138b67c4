"""Reconcile: bring the inventory in line with what the hypervisors report.

``ipsinfra inventory sync`` reads every node (one result per node: a dead node
is reported, never hides the others) and, for each VDS the inventory knows by
ORDER NUMBER (:func:`ipsinfra.naming.order_of` on the reported names), makes
the record say what its hypervisor says: the node it runs on (moved, with the
§9.10 house name and host_vars file renamed as a migration's write-back does),
its name, vCPUs, cpuset (where the record has one), memory, disk sizes and,
where the hypervisor reports them, its IPs. It never deletes and never guesses:

- a record no node reports is listed ("the inventory has VPS… but no node
  reports it"), and left as it is;
- a VDS no record describes is listed ("kvm2 runs VPS… which no record
  describes");
- the same order number on two nodes (or in two records) is refused: both are
  reported, neither changed;
- a VDS whose name carries another node's octets (moved, not renamed, §9.10)
  is refused: the inventory cannot hold that name on that node;
- the records of an unreachable node are left alone, even where another
  node reports the VDS (the dead node may still hold it).

:func:`reconcile` is pure (fleet + listings in, :class:`SyncPlan` out); its
updates are :class:`~ipsinfra.inventory.writeback.RecordUpdate` values that
:func:`~ipsinfra.inventory.writeback.write_updates` writes (atomic, locked,
validated). :func:`read_nodes` and :func:`sync` are the edge.

    >>> plan = reconcile(fleet, read_nodes(fleet, pool))  # doctest: +SKIP
    >>> [c.describe() for c in plan.changes]  # doctest: +SKIP
    ['VPS1003(113.20) -> VPS1003(113.10): node kvm2 -> kvm1']
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra import metadata, naming
from ipsinfra.errors import InvalidName, IpsinfraError
from ipsinfra.inventory.fleet import Fleet
from ipsinfra.inventory.writeback import DELETE, InventoryChange, RecordUpdate, write_updates
from ipsinfra.inventory.yamledit import plain
from ipsinfra.models import IPAddress, Node, Vds

if TYPE_CHECKING:
    from ipsinfra.hypervisors import DriverPool
    from ipsinfra.journal import Journal

FindingKind = Literal["unreported", "undescribed", "ambiguous", "misnamed", "unreachable", "disks"]


class NodeListing(BaseModel):
    """What one node reported: its VDS, or why it could not be read."""

    model_config = ConfigDict(frozen=True)

    node: str
    vds: list[Vds] = Field(default_factory=list)
    error: str | None = Field(default=None, description="None: the node answered")

    @property
    def reachable(self) -> bool:
        return self.error is None


class SyncFinding(BaseModel):
    """Something sync listed and did not change: a human decides."""

    model_config = ConfigDict(frozen=True)

    kind: FindingKind
    target: str = Field(description="a house name, or a node for 'unreachable'")
    nodes: list[str] = Field(default_factory=list)
    message: str


class FieldChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str
    before: Any
    after: Any


class SyncChange(BaseModel):
    """One record brought in line: its name before and after, and each field's old and new value."""

    model_config = ConfigDict(frozen=True)

    name: str
    new_name: str | None = None
    node: str = Field(description="the node that reports it")
    fields: list[FieldChange] = Field(default_factory=list)

    def describe(self) -> str:
        """``VPS1003(113.20) -> VPS1003(113.10): node kvm2 -> kvm1; vcpus 2 -> 3``."""
        head = f"{self.name} -> {self.new_name}" if self.new_name else self.name
        parts = [f"{f.field} {_shown(f.before)} -> {_shown(f.after)}" for f in self.fields]
        return f"{head}: {'; '.join(parts)}" if parts else f"{head}: renamed"


def _shown(value: Any) -> str:
    value = plain(value)
    if value is None or value is DELETE:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


class SyncPlan(BaseModel):
    """What sync would change (``updates``, described by ``changes``) and what it only lists."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    changes: list[SyncChange] = Field(default_factory=list)
    updates: list[RecordUpdate] = Field(default_factory=list)
    findings: list[SyncFinding] = Field(default_factory=list)
    nodes: list[NodeListing] = Field(default_factory=list)

    @property
    def needs_human(self) -> bool:
        return bool(self.findings)


# --- pure: fleet + listings -> plan ---------------------------------------------------------
def reported_ips(vds: Vds) -> list[IPAddress] | None:
    """The IPs the hypervisor reports (its IP list, else the ``ipsinfra-ips`` line); None: none reported."""
    if vds.ips:
        return list(vds.ips)
    text = metadata.parse(vds.description).get("ips", "")
    ips: list[IPAddress] = []
    for word in text.replace(",", " ").split():
        try:
            ips.append(ipaddress.ip_address(word))
        except ValueError:
            return None  # not ipsinfra's line as written: trust nothing in it
    return ips or None


def _disk_sizes(record: Vds, seen: Vds) -> tuple[dict[str, int], str | None]:
    """``{record disk name: new size}`` for the disks whose size differs, or why they cannot be matched."""
    if not seen.disks or not record.disks:
        return {}, None
    by_name = {d.name: d.size_gib for d in seen.disks}
    if {d.name for d in record.disks} == set(by_name):
        pairs = [(d, by_name[d.name]) for d in record.disks]
    elif len(record.disks) == len(seen.disks):  # the backend names disks its own way (scsi0): by position
        pairs = [(d, s.size_gib) for d, s in zip(record.disks, seen.disks, strict=True)]
    else:
        return {}, (
            f"{seen.name}: the hypervisor reports {len(seen.disks)} disk(s), the inventory "
            f"{len(record.disks)}; disks not changed"
        )
    return {d.name: size for d, size in pairs if d.size_gib != size}, None


def _record_change(record: Vds, seen: Vds, node: str) -> tuple[SyncChange, RecordUpdate] | None:
    fields: list[FieldChange] = []
    values: dict[str, Any] = {}
    present: set[str] = set()

    def put(field: str, before: Any, after: Any, *, only_if_present: bool = False) -> None:
        fields.append(FieldChange(field=field, before=plain(before), after=plain(after)))
        values[field] = after
        if only_if_present:
            present.add(field)

    if record.node != node:
        put("node", record.node, node)
    if record.vcpus != seen.vcpus:
        put("vcpus", record.vcpus, seen.vcpus)
    if record.cpuset is not None and record.cpuset != seen.cpuset:  # the audit checks it only where recorded
        put("cpuset", record.cpuset, seen.cpuset if seen.cpuset is not None else DELETE, only_if_present=True)
    if record.memory_mib != seen.memory_mib:
        put("memory_mib", record.memory_mib, seen.memory_mib)
    sizes, _ = _disk_sizes(record, seen)
    if sizes:
        fields += [
            FieldChange(field=f"disks.{name}", before=d.size_gib, after=sizes[name])
            for d in record.disks
            if (name := d.name) in sizes
        ]
        values["_disks"] = sizes
    ips = reported_ips(seen)
    if ips is not None and [str(i) for i in ips] != [str(i) for i in record.ips]:
        put("ips", record.ips, [str(i) for i in ips])
    if record.vnc_listen is not None and seen.vnc_listen is not None and record.vnc_listen != seen.vnc_listen:
        put("vnc_listen", record.vnc_listen, str(seen.vnc_listen), only_if_present=True)
    if record.backend_id is not None and seen.backend_id and record.backend_id != seen.backend_id:
        put("backend_id", record.backend_id, seen.backend_id, only_if_present=True)
    new_name = seen.name if seen.name != record.name else None
    if not values and new_name is None:
        return None
    change = SyncChange(name=record.name, new_name=new_name, node=node, fields=fields)
    update = RecordUpdate(
        action="sync",
        name=record.name,
        new_name=new_name,
        values=values,
        only_if_present=frozenset(present),
    )
    return change, update


def _misnamed(seen: Vds, node: Node | None) -> str | None:
    """Why the inventory cannot hold ``seen``'s name on its node (§8.5 octets), or None."""
    if node is None or node.main_ip.version != 4:
        return None
    try:
        expected = naming.vps_name(naming.parse_vps_name(seen.name).order, node.main_ip)
    except InvalidName:
        return None
    return None if expected == seen.name else expected


def reconcile(fleet: Fleet, listings: Iterable[NodeListing]) -> SyncPlan:
    """What the inventory must change to say what the nodes report (pure).

    Records and reported VDS are matched by order number. Returns the updates
    for the records that differ, in record-name order, and the findings for
    everything a human must decide (see the module's docstring).
    """
    listed = sorted(listings, key=lambda n: n.node)
    findings: list[SyncFinding] = []
    down = {n.node for n in listed if not n.reachable}
    for n in listed:
        if n.error is not None:
            findings.append(
                SyncFinding(
                    kind="unreachable",
                    target=n.node,
                    nodes=[n.node],
                    message=f"node {n.node} could not be read ({n.error}); its records were left as they are",
                )
            )
    read = {n.node for n in listed if n.reachable}
    unread = sorted(set(fleet.nodes) - read - down)  # not asked (a subset of nodes): records stay

    seen_by_order: dict[int, list[Vds]] = {}
    for n in listed:
        for v in n.vds if n.reachable else ():
            order = naming.order_of(v.name)  # a house name's order, or None: nothing to match
            if order is None:
                findings.append(
                    SyncFinding(
                        kind="undescribed",
                        target=v.name,
                        nodes=[n.node],
                        message=f"{n.node} runs {v.name}, which no record describes (not a house name, §8.5)",
                    )
                )
                continue
            seen_by_order.setdefault(order, []).append(v.model_copy(update={"node": n.node}))
    records_by_order: dict[int, list[Vds]] = {}
    for record in fleet.vds.values():
        order = record.order or naming.order_of(record.name)
        if order is not None:
            records_by_order.setdefault(order, []).append(record)

    changes: list[tuple[SyncChange, RecordUpdate]] = []
    for order in sorted(set(seen_by_order) | set(records_by_order)):
        seen = sorted(seen_by_order.get(order, []), key=lambda v: (v.node, v.name))
        records = sorted(records_by_order.get(order, []), key=lambda r: r.name)
        if len(seen) > 1 or len(records) > 1:
            where = [f"{v.name} on {v.node}" for v in seen]
            recs = [f"{r.name} (on {r.node})" for r in records]
            findings.append(
                SyncFinding(
                    kind="ambiguous",
                    target=f"order {order}",
                    nodes=sorted({v.node for v in seen} | {r.node for r in records}),
                    message=(
                        f"order {order} is ambiguous: reported as {', '.join(where) or 'nothing'}; "
                        f"recorded as {', '.join(recs) or 'nothing'}; nothing changed"
                    ),
                )
            )
            continue
        if not records:
            v = seen[0]
            findings.append(
                SyncFinding(
                    kind="undescribed",
                    target=v.name,
                    nodes=[v.node],
                    message=f"{v.node} runs {v.name}, which no record describes",
                )
            )
            continue
        record = records[0]
        if not seen:
            if record.node in down or record.node in unread:
                continue  # its node was not read: nothing is known about it
            also = f" ({', '.join(sorted(down))} could not be read)" if down else ""
            findings.append(
                SyncFinding(
                    kind="unreported",
                    target=record.name,
                    nodes=[record.node],
                    message=(
                        f"the inventory has {record.name} on {record.node}, but no node reports it{also}; "
                        "the record was left as it is"
                    ),
                )
            )
            continue
        v = seen[0]
        if record.node in down and record.node != v.node:
            # Its node may still hold it too (a copy left behind): nothing changes until it can be read.
            findings.append(
                SyncFinding(
                    kind="unreachable",
                    target=record.name,
                    nodes=[record.node, v.node],
                    message=(
                        f"{v.node} runs {v.name}, but the inventory puts {record.name} on {record.node}, "
                        f"which could not be read; the record was left as it is"
                    ),
                )
            )
            continue
        expected = _misnamed(v, fleet.nodes.get(v.node))
        if expected is not None:
            findings.append(
                SyncFinding(
                    kind="misnamed",
                    target=v.name,
                    nodes=[v.node],
                    message=(
                        f"{v.node} runs {v.name} (the inventory's {record.name} on {record.node}), "
                        f"named for another node: rename it {expected} on {v.node} (§9.10), then sync"
                    ),
                )
            )
            continue
        _, why = _disk_sizes(record, v)
        if why is not None:
            findings.append(SyncFinding(kind="disks", target=record.name, nodes=[v.node], message=why))
        found = _record_change(record, v, v.node)
        if found is not None:
            changes.append(found)
    changes.sort(key=lambda c: c[0].name)
    return SyncPlan(
        changes=[c for c, _ in changes],
        updates=[u for _, u in changes],
        findings=findings,
        nodes=listed,
    )


# --- the edge: read the nodes, write the inventory ---------------------------------------------
def read_nodes(
    fleet: Fleet,
    pool: DriverPool,
    *,
    nodes: Sequence[str] | None = None,
    node_timeout: float = 60.0,
    max_workers: int = 32,
) -> list[NodeListing]:
    """``list_vds`` on every node at once: one :class:`NodeListing` per node, errors as data."""
    from ipsinfra.steps import with_deadline

    names = list(nodes) if nodes is not None else sorted(fleet.nodes)

    def one(name: str) -> NodeListing:
        try:
            driver = pool.get(name)
            got = with_deadline("list_vds", node_timeout, driver.list_vds, node=name)
        except IpsinfraError as exc:
            return NodeListing(node=name, error=f"{type(exc).__name__}: {exc}")
        return NodeListing(node=name, vds=got)

    if not names:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(names)))) as ex:
        return list(ex.map(one, names))


class SyncResult(BaseModel):
    """A sync's plan and what became of it in the inventory."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    plan: SyncPlan
    change: InventoryChange

    @property
    def exit_code(self) -> int:
        """0: nothing to change or all written; 1: something for a human, or not written."""
        return 1 if self.plan.needs_human or self.change.error is not None else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "inventory": self.change.inventory,
            "checked_only": self.change.checked_only,
            "written": self.change.written,
            "error": self.change.error,
            "journal_seq": self.change.journal_seq,
            "changes": [c.model_dump(mode="json") for c in self.plan.changes],
            "findings": [f.model_dump(mode="json") for f in self.plan.findings],
            "nodes": {
                n.node: {"reachable": n.reachable, "vds": len(n.vds), "error": n.error}
                for n in self.plan.nodes
            },
            "files": [e.path for e in self.change.edits],
            "diff": self.change.diff(),
            "exit_code": self.exit_code,
        }


def sync(
    inventory: str | Path,
    fleet: Fleet,
    pool: DriverPool,
    *,
    check: bool = False,
    journal: Journal | None = None,
    actor: str | None = None,
    node_timeout: float = 60.0,
) -> SyncResult:
    """Read every node of ``fleet`` (loaded from ``inventory``) and write what :func:`reconcile` says.

    With ``check`` nothing is written (the change's diff says what would be).
    A written change is one journal line ``inventory.sync`` naming each change.
    """
    plan = reconcile(fleet, read_nodes(fleet, pool, node_timeout=node_timeout))
    change = write_updates(
        plan.updates,
        inventory,
        check=check,
        journal=journal,
        actor=actor,
        journal_action="inventory.sync",
        journal_after={"changes": [c.describe() for c in plan.changes]},
    )
    return SyncResult(plan=plan, change=change)


__all__ = [
    "FieldChange",
    "NodeListing",
    "SyncChange",
    "SyncFinding",
    "SyncPlan",
    "SyncResult",
    "read_nodes",
    "reconcile",
    "reported_ips",
    "sync",
]
