"""Blocking an abusive server (§7.2, §7.3) — and never the wrong one (§11.8, §11.9).

Every block first proves its target; any doubt refuses and changes nothing:

1. the IP belongs to exactly one service in the inventory;
2. that service's name equals the DC's name for the IP (§4.4), where the DC
   has one;
3. a VDS: its hypervisor reports that very VDS, on the node the inventory
   says, holding that IP and the inventory's MACs;
   a dedicated server: its switch port sees the server's MAC right now (the
   port shutdown re-reads the MAC table itself, in the same session).

Idempotent, and silent when idle: a target already in the wanted state is
reported unchanged and nothing is sent or journalled. A dedicated server
blocked before has its port shut, so its MAC is learnt nowhere: the proof is
then the inventory's port for it, read back as administratively down, with
the MAC on no other port (re-enabling or re-shutting would change nothing).

A blocked VDS is stopped, its autostart turned OFF (so a node reboot does not
bring it back) and the block recorded on the hypervisor (``ipsinfra-blocked``
in its description) and in the journal. A dedicated server's switch port is
shut down. :func:`unblock` reverses both.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra import locks, metadata, naming
from ipsinfra.errors import InvalidInput, IpsinfraError, SwitchError, TargetProofFailed, VdsNotFound
from ipsinfra.hypervisors import DriverPool
from ipsinfra.identity import InterfaceNames
from ipsinfra.inventory import Fleet
from ipsinfra.inventory.writeback import InventoryChange, writes_back
from ipsinfra.journal import Journal
from ipsinfra.models import DedicatedServer, Vds, VdsState

Kind = Literal["vds", "dedicated"]
BLOCK_KEYS = ("blocked", "blocked-at", "blocked-ref", "blocked-autostart")


class ProofStep(BaseModel):
    model_config = ConfigDict(frozen=True)

    check: str
    ok: bool
    detail: str


class TargetProof(BaseModel):
    """What was checked before touching anything, and what each check saw."""

    model_config = ConfigDict(frozen=True)

    ip: str
    server: str | None = None
    kind: Kind | None = None
    node: str | None = None
    switch: str | None = None
    port: str | None = None
    port_admin_up: bool | None = Field(
        default=None, description="a dedicated server's port: administratively up, as the switch reads it"
    )
    steps: list[ProofStep] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    def failures(self) -> list[str]:
        return [f"{s.check}: {s.detail}" for s in self.steps if not s.ok]


class BlockResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Literal["block", "unblock"]
    proof: TargetProof
    changed: bool
    checked_only: bool = False
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    inventory_change: InventoryChange | None = Field(default=None, description="the write-back, if asked")

    @property
    def target(self) -> str:
        p = self.proof
        return f"{p.node}/{p.server}" if p.kind == "vds" else f"{p.switch}:{p.port} ({p.server})"


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise InvalidInput(f"ip: value {value!r}: not an IPv4 or IPv6 address") from None


def prove_target(
    ip: str,
    fleet: Fleet,
    pool: DriverPool,
    *,
    dc_names: Mapping[str, str] | None = None,
    credentials: Any = None,
    switch_timeout: float = 30.0,
    for_unblock: bool = False,
) -> TargetProof:
    """Check that ``ip`` leads to exactly one server and that the devices agree (§11.8)."""
    ip = _ip(ip)
    steps: list[ProofStep] = []
    owners = fleet.owners_of_ip(ip)
    if len(owners) != 1:
        detail = f"{ip} belongs to {len(owners)} services in the inventory" + (
            f" ({', '.join(owners)})" if owners else ""
        )
        return TargetProof(ip=ip, steps=[ProofStep(check="inventory_owner", ok=False, detail=detail)])
    name = owners[0]
    steps.append(ProofStep(check="inventory_owner", ok=True, detail=f"{ip} belongs to {name} only"))
    vds = fleet.vds.get(name)
    dedicated = fleet.dedicated.get(name)
    ours = (dedicated.dc_name or dedicated.name) if dedicated is not None else name
    theirs = (dc_names or {}).get(ip)
    if theirs is None:
        steps.append(
            ProofStep(check="dc_name", ok=True, detail="the DC has no name for it; ours stands (§4.4)")
        )
    else:
        steps.append(
            ProofStep(
                check="dc_name",
                ok=theirs == ours,
                detail=f"the DC calls {ip} {theirs!r}, we call it {ours!r}"
                + ("" if theirs == ours else " (§4.4: names must match)"),
            )
        )
    if vds is not None:
        steps.append(_prove_vds(ip, vds, pool, fleet))
        return TargetProof(ip=ip, server=name, kind="vds", node=vds.node, steps=steps)
    assert dedicated is not None
    step, admin_up = _prove_port_state(dedicated, fleet, credentials, switch_timeout, for_unblock)
    steps.append(step)
    return TargetProof(
        ip=ip,
        server=name,
        kind="dedicated",
        switch=dedicated.switch,
        port=dedicated.port,
        port_admin_up=admin_up,
        steps=steps,
    )


def _prove_vds(ip: str, record: Vds, pool: DriverPool, fleet: Fleet) -> ProofStep:
    try:
        seen = pool.get(record.node).get_vds(record.name)
    except VdsNotFound:
        elsewhere = []
        for node in fleet.nodes:
            if node == record.node:
                continue
            try:
                pool.get(node).get_vds(record.name)
                elsewhere.append(node)
            except IpsinfraError:
                continue
        where = f"; it is on {', '.join(elsewhere)}" if elsewhere else ""
        return ProofStep(
            check="hypervisor", ok=False, detail=f"node {record.node} does not report {record.name}{where}"
        )
    except IpsinfraError as exc:
        return ProofStep(check="hypervisor", ok=False, detail=f"node {record.node} cannot be asked: {exc}")
    problems = []
    if ipaddress.ip_address(ip) not in seen.ips:
        shown = ", ".join(str(i) for i in seen.ips) or "no address"
        problems.append(f"{record.node} reports {record.name} with {shown}, not {ip}")
    missing = sorted(set(record.macs) - set(seen.macs))
    if not record.macs:
        # Nothing to compare is no proof: the MAC check must not pass vacuously.
        problems.append(
            f"the inventory records no NIC (MAC) for {record.name}, so its MACs cannot be compared "
            f"with what {record.node} reports ({', '.join(seen.macs) or 'none'}); add its nics"
        )
    elif missing:
        problems.append(
            f"{record.name} on {record.node} has no NIC {', '.join(missing)} (it has {seen.macs})"
        )
    if problems:
        return ProofStep(check="hypervisor", ok=False, detail="; ".join(problems))
    return ProofStep(
        check="hypervisor",
        ok=True,
        detail=f"{record.node} reports {record.name} with {ip} and MAC(s) {', '.join(seen.macs) or '-'}",
    )


def _prove_port(
    server: DedicatedServer, fleet: Fleet, credentials: Any, timeout: float, for_unblock: bool
) -> ProofStep:
    return _prove_port_state(server, fleet, credentials, timeout, for_unblock)[0]


def _prove_port_state(
    server: DedicatedServer, fleet: Fleet, credentials: Any, timeout: float, for_unblock: bool
) -> tuple[ProofStep, bool | None]:
    """The switch-port proof step, and the port's administrative state as the switch reads it."""
    if not server.switch or not server.port or not server.macs:
        return ProofStep(
            check="switch_port", ok=False, detail=f"{server.name} has no switch, port or MAC in the inventory"
        ), None
    switch = fleet.switches.get(server.switch)
    if switch is None:
        return ProofStep(
            check="switch_port", ok=False, detail=f"switch {server.switch!r} is not in the inventory"
        ), None
    from ipsinfra.network.switches import credentials_for, open_session, read_interfaces, read_mac_table

    # the inventory's `Gi0/5` and the MAC table's `GigabitEthernet0/5` are one port
    names = InterfaceNames.of(switch.platform)
    wanted = names.key(server.port)
    try:
        creds = credentials_for(switch, credentials)
        with open_session(switch, credentials=creds, timeout=timeout) as session:
            table = read_mac_table(session)
            iface = next((i for i in read_interfaces(session) if names.key(i.name) == wanted), None)
    except (SwitchError, IpsinfraError) as exc:
        return ProofStep(
            check="switch_port", ok=False, detail=f"switch {switch.name} cannot be read: {exc}"
        ), None
    admin_up = iface.admin_up if iface is not None else None
    ports = sorted({e.port for e in table if e.mac in server.macs})
    seen = names.keys(ports)
    where = f"{server.name}'s MAC is on {', '.join(ports) or 'no port'} of {switch.name}"
    if for_unblock:
        ok = seen <= {wanted}
        detail = where
    elif not seen and admin_up is False:
        # Blocked before: a shut port learns no MAC. Its recorded port is down and the MAC is
        # nowhere else, so there is nothing to shut (and nothing is touched).
        ok = True
        detail = f"{where}: its port {server.port} is shut down already (blocked)"
    else:
        ok = seen == {wanted}
        detail = where + ("" if ok else f", not (only) on {server.port}")
    return ProofStep(check="switch_port", ok=ok, detail=detail), admin_up


def _refuse(proof: TargetProof, action: str, journal: Journal | None, actor: str | None) -> TargetProofFailed:
    why = "; ".join(proof.failures())
    if journal is not None:
        journal.record(
            f"server.{action}",
            proof.server or proof.ip,
            result="refused",
            detail=f"{proof.ip}: {why}",
            actor=actor,
        )
    return TargetProofFailed(f"refusing to {action} {proof.ip}: {why}; nothing was changed")


def _merge_state(journal: Journal | None, key: str, values: Mapping[str, Any]) -> None:
    if journal is None:
        return
    state = dict(journal.get_state(key) or {})
    state.update(values)
    journal.set_state(key, state)


@writes_back
def block(
    ip: str,
    fleet: Fleet,
    pool: DriverPool,
    *,
    reason: str,
    complaint_ref: str | None = None,
    journal: Journal | None = None,
    check: bool = False,
    dc_names: Mapping[str, str] | None = None,
    credentials: Any = None,
    lock_dir: Path | None = None,
    stop_timeout: float = 30.0,
    actor: str | None = None,
    inventory: str | Path | None = None,
) -> BlockResult:
    """Block the server behind ``ip`` after proving it is the right one. Idempotent.

    ``inventory``: the inventory directory whose record says ``blocked: true``
    afterwards, in ``result.inventory_change``.
    """
    if not reason.strip():
        raise InvalidInput("reason: value '': a block needs a reason (the complaint's category, §7)")
    proof = prove_target(ip, fleet, pool, dc_names=dc_names, credentials=credentials)
    if not proof.ok:
        raise _refuse(proof, "block", journal, actor)
    if check:
        return BlockResult(action="block", proof=proof, changed=False, checked_only=True)
    if proof.kind == "vds":
        return _block_vds(proof, fleet, pool, reason, complaint_ref, journal, lock_dir, stop_timeout, actor)
    if proof.port_admin_up is False:  # shut already: no command, no journal line
        view = _port_view(proof, proof.port_admin_up)
        return BlockResult(action="block", proof=proof, changed=False, before=view, after=view)
    return _block_port(proof, fleet, reason, complaint_ref, journal, credentials, actor)


def _port_view(proof: TargetProof, admin_up: bool | None) -> dict[str, Any]:
    """A dedicated server's block state: its port and whether the switch has it up."""
    return {"switch": proof.switch, "port": proof.port, "admin_up": admin_up}


def _vds_view(vds: Vds) -> dict[str, Any]:
    facts = metadata.parse(vds.description)
    return {
        "state": vds.state.value,
        "autostart": vds.autostart,
        "blocked": facts.get("blocked"),
    }


def _block_vds(
    proof: TargetProof,
    fleet: Fleet,
    pool: DriverPool,
    reason: str,
    ref: str | None,
    journal: Journal | None,
    lock_dir: Path | None,
    stop_timeout: float,
    actor: str | None,
) -> BlockResult:
    assert proof.server is not None and proof.node is not None
    name, node = proof.server, proof.node
    driver = pool.get(node)
    with locks.hold(f"vds-{naming.parse_vps_name(name).order}", f"block {name}", lock_dir=lock_dir):
        before = driver.get_vds(name)
        facts = metadata.parse(before.description)
        if facts.get("blocked") and not before.autostart and before.state is VdsState.STOPPED:
            return BlockResult(action="block", proof=proof, changed=False, before=_vds_view(before))
        # Autostart first: if the stop fails, the VDS at least cannot come back by itself.
        driver.set_autostart(name, False)
        driver.stop(name, timeout=stop_timeout, force=True)
        marker = {
            "blocked": reason,
            "blocked-at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "blocked-ref": ref,
            "blocked-autostart": facts.get("blocked-autostart") or ("yes" if before.autostart else "no"),
        }
        driver.set_description(name, metadata.update(before.description, marker))
        after = driver.get_vds(name)
    ok = (
        after.state is VdsState.STOPPED
        and not after.autostart
        and bool(metadata.parse(after.description).get("blocked"))
    )
    if journal is not None:
        journal.record(
            "vds.block",
            f"{node}/{name}",
            result="ok" if ok else "failed",
            before=_vds_view(before),
            after=_vds_view(after),
            detail=f"{proof.ip}: {reason}" + (f" ({ref})" if ref else ""),
            actor=actor,
        )
        _merge_state(journal, f"vds:{name}", {"blocked": True, "blocked_reason": reason, "complaint": ref})
    if not ok:
        raise IpsinfraError(f"{node}/{name}: block not verified: {_vds_view(after)}")
    return BlockResult(
        action="block", proof=proof, changed=True, before=_vds_view(before), after=_vds_view(after)
    )


def _block_port(
    proof: TargetProof,
    fleet: Fleet,
    reason: str,
    ref: str | None,
    journal: Journal | None,
    credentials: Any,
    actor: str | None,
) -> BlockResult:
    from ipsinfra.network.switches import credentials_for, shutdown_port

    assert proof.server is not None and proof.switch is not None and proof.port is not None
    server = fleet.dedicated[proof.server]
    switch = fleet.switches[proof.switch]
    action = shutdown_port(
        switch,
        proof.port,
        server.macs[0],
        credentials=credentials_for(switch, credentials),
        journal=journal,
        reason=f"{proof.ip}: {reason}" + (f" ({ref})" if ref else ""),
    )
    _merge_state(
        journal, f"dedicated:{server.name}", {"blocked": True, "blocked_reason": reason, "complaint": ref}
    )
    return BlockResult(
        action="block",
        proof=proof,
        changed=action.changed,
        before=_port_view(proof, action.before.get("admin_up")),
        after=_port_view(proof, action.after.get("admin_up")),
    )


@writes_back
def unblock(
    ip: str,
    fleet: Fleet,
    pool: DriverPool,
    *,
    journal: Journal | None = None,
    check: bool = False,
    dc_names: Mapping[str, str] | None = None,
    credentials: Any = None,
    lock_dir: Path | None = None,
    actor: str | None = None,
    inventory: str | Path | None = None,
) -> BlockResult:
    """Reverse :func:`block`: autostart as it was, started again; or the port brought up.

    ``inventory``: the inventory directory whose record follows (``blocked: false``).
    """
    proof = prove_target(ip, fleet, pool, dc_names=dc_names, credentials=credentials, for_unblock=True)
    if not proof.ok:
        raise _refuse(proof, "unblock", journal, actor)
    if check:
        return BlockResult(action="unblock", proof=proof, changed=False, checked_only=True)
    if proof.kind == "dedicated" and proof.port_admin_up is True:  # up already: no command, no journal line
        view = _port_view(proof, proof.port_admin_up)
        return BlockResult(action="unblock", proof=proof, changed=False, before=view, after=view)
    if proof.kind == "dedicated":
        from ipsinfra.network.switches import credentials_for, no_shutdown_port

        assert proof.server is not None and proof.switch is not None and proof.port is not None
        server = fleet.dedicated[proof.server]
        switch = fleet.switches[proof.switch]
        action = no_shutdown_port(
            switch,
            proof.port,
            server.macs[0],
            credentials=credentials_for(switch, credentials),
            journal=journal,
            reason=f"unblock {proof.ip}",
        )
        _merge_state(journal, f"dedicated:{server.name}", {"blocked": False})
        return BlockResult(
            action="unblock",
            proof=proof,
            changed=action.changed,
            before=_port_view(proof, action.before.get("admin_up")),
            after=_port_view(proof, action.after.get("admin_up")),
        )
    assert proof.server is not None and proof.node is not None
    name, node = proof.server, proof.node
    driver = pool.get(node)
    with locks.hold(f"vds-{naming.parse_vps_name(name).order}", f"unblock {name}", lock_dir=lock_dir):
        before = driver.get_vds(name)
        facts = metadata.parse(before.description)
        if not facts.get("blocked"):
            return BlockResult(action="unblock", proof=proof, changed=False, before=_vds_view(before))
        text = metadata.render({k: v for k, v in facts.items() if k not in BLOCK_KEYS}, before.description)
        driver.set_description(name, text)
        if facts.get("blocked-autostart", "yes") == "yes":
            driver.set_autostart(name, True)
        if before.state is not VdsState.RUNNING:
            driver.start(name)
        after = driver.get_vds(name)
    if journal is not None:
        journal.record(
            "vds.unblock",
            f"{node}/{name}",
            result="ok" if after.state is VdsState.RUNNING else "failed",
            before=_vds_view(before),
            after=_vds_view(after),
            detail=f"{proof.ip}: block lifted",
            actor=actor,
        )
        _merge_state(journal, f"vds:{name}", {"blocked": False})
    return BlockResult(
        action="unblock", proof=proof, changed=True, before=_vds_view(before), after=_vds_view(after)
    )
