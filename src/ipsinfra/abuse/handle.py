"""One complaint, end to end (§7): parse, classify, block what must be blocked
now, cancel where §7.2 says so, and write the letters.

Immediate categories (§7.2/§7.3) are blocked at once — each target proven
first (:mod:`ipsinfra.abuse.block`) — but only within the operator's limits
(:mod:`ipsinfra.abuse.policy`: a trusted sender, an SBL confirmed by the DNSBL,
at most N of our servers); past them the complaint becomes a proposal that
:func:`confirm_proposal` carries out. The others get their deadline recorded
in the journal for the shift. Every IP of the complaint that is not ours is
reported, never touched.

A report listing many IPs (a Shadowserver CSV, a blocklist digest) is one case
per IP, each with the category and deadline of its own rows; the blast-radius
limits apply to the report as a whole, so a long report proposes rather than blocks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra import locks, metadata
from ipsinfra.abuse import policy
from ipsinfra.abuse.block import BlockResult, block, prove_target
from ipsinfra.abuse.cancellation import should_cancel
from ipsinfra.abuse.classify import Verdict, classify
from ipsinfra.abuse.dnsbl import DnsblResult
from ipsinfra.abuse.intake import Complaint, parse_complaint
from ipsinfra.abuse.letters import Letter, draft_letters
from ipsinfra.abuse.policy import Proposal, ProposedTarget
from ipsinfra.errors import IpsinfraError, TargetProofFailed
from ipsinfra.hypervisors import DriverPool
from ipsinfra.inventory import Fleet
from ipsinfra.inventory.writeback import InventoryChange, writes_back
from ipsinfra.journal import Journal, default_actor


class ServiceOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    ip: str
    server: str | None
    action: str = Field(
        description="blocked, already blocked, deadline, refused, not ours, checked, proposed"
    )
    detail: str = ""
    cancelled: bool = False
    block: BlockResult | None = None


class HandleResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    complaint: Complaint
    verdict: Verdict
    services: list[ServiceOutcome]
    letters: list[Letter]
    letter_problems: list[str] = Field(
        default_factory=list, description="letters that could not be drafted, one line each (others still go)"
    )
    inventory_change: InventoryChange | None = Field(default=None, description="the write-back, if asked")
    proposal: Proposal | None = Field(
        default=None, description="what waits for `--confirm <id>` (past the limits of policy)"
    )
    proposal_stored: bool = Field(
        default=False, description="stored now (False: --check, no journal, or stored before)"
    )

    @property
    def refused(self) -> list[ServiceOutcome]:
        return [s for s in self.services if s.action == "refused"]

    @property
    def proposed(self) -> list[ServiceOutcome]:
        return [s for s in self.services if s.action == "proposed"]

    @property
    def blocked_servers(self) -> list[str]:
        """The servers this handling blocked (``--check``: would have blocked), each once;
        what it spent of a run's :class:`~ipsinfra.abuse.policy.BlockBudget`."""
        acted = [s.server for s in self.services if s.action in {"blocked", "checked"} and s.server]
        return list(dict.fromkeys(acted))


class ConfirmResult(HandleResult):
    """What ``--confirm <id>`` did. ``already`` set: it had been confirmed before; nothing was done."""

    already: str | None = None


@writes_back
def handle_complaint(
    raw: bytes | str,
    fleet: Fleet,
    pool: DriverPool,
    *,
    abuse_from: str,
    journal: Journal | None = None,
    received_at: dt.datetime | None = None,
    mailbox_date: dt.datetime | None = None,
    today: dt.date | None = None,
    check: bool = False,
    dc_names: Mapping[str, str] | None = None,
    credentials: Any = None,
    lock_dir: Path | None = None,
    lang: str = "en",
    inventory: str | Path | None = None,
    max_targets: int | None = None,
    dnsbl_lookup: Callable[[str], DnsblResult] | None = None,
    run_budget: policy.BlockBudget | None = None,
) -> HandleResult:
    """Carry out §7 for one complaint; returns what was done per IP and the letters to send.

    An immediate complaint blocks at once only within :mod:`ipsinfra.abuse.policy`'s
    limits; past them nothing is blocked and ``result.proposal`` holds it for
    :func:`confirm_proposal` (stored in ``journal`` unless ``check``).

    ``received_at`` / ``mailbox_date``: the operator's override of the receipt time,
    and the mailbox's date of the message (see :func:`~ipsinfra.abuse.intake.parse_complaint`).
    ``max_targets``: overrides the sites' ``abuse_max_targets``.
    ``run_budget``: what a run over many complaints may still block
    (:class:`~ipsinfra.abuse.policy.BlockBudget`, ``abuse watch --max-blocks``); an
    immediate complaint naming more servers than it has left is only proposed.
    ``result.blocked_servers`` is what this complaint spent of it.
    ``dnsbl_lookup``: looks one IP up (:func:`ipsinfra.abuse.dnsbl.check`); an SBL
    notice without one (or with a failed query) is only proposed.
    ``inventory``: the inventory directory whose records follow (``blocked``,
    ``blocked_reason``, §7.2 ``cancelled``), in ``result.inventory_change``.
    """
    complaint = parse_complaint(raw, received_at, mailbox_date=mailbox_date)
    today = today or complaint.received_at.date()
    outcomes: list[ServiceOutcome] = []
    letters: list[Letter] = []
    letter_problems: list[str] = []
    verdict: Verdict | None = None
    named: list[tuple[str, str, Any, Verdict]] = []  # ip, server, site, verdict
    for ip in complaint.ips:
        owners = fleet.owners_of_ip(ip)
        if not owners:
            outcomes.append(ServiceOutcome(ip=str(ip), server=None, action="not ours"))
            continue
        server = owners[0]
        site = _site_of(fleet, server)
        hours = complaint.dc_reaction_hours or (site.dc_reaction_hours if site else None)
        # One case per IP: its own rows of the report decide its category and deadline.
        named.append((str(ip), server, site, classify(complaint, complaint.received_at, hours, ip=ip)))
    held = _held_reasons(complaint, named, max_targets, dnsbl_lookup, run_budget)
    immediate = {server: site for _, server, site, v in named if v.immediate}
    if immediate and not held and journal is not None and not check:
        # Acting without a person is a decision too: say on what grounds (a spoofed trusted
        # sender shows up here, next to the blocks it caused).
        limit = policy.max_targets_for(immediate.values(), max_targets)
        sites = ", ".join(sorted({s.name for s in immediate.values() if s is not None}))
        journal.record(
            "abuse.immediate",
            complaint.sbl_ref or complaint.id,
            detail=f"from {complaint.sender}: a trusted sender of {sites}; {len(immediate)} of our "
            f"server(s), limit {limit}"
            + ("; the DNSBL confirms the SBL listing" if named[0][3].is_sbl else "")
            + (
                f"; the run may block {run_budget.left} more ({run_budget.named})"
                if run_budget is not None
                else ""
            ),
        )
    proposed: list[ProposedTarget] = []
    drafted_for_proposal: list[str] = []
    for addr, server, site, verdict in named:
        if held and verdict.immediate:
            outcome, proof = _propose(
                addr, server, verdict, fleet, pool, journal, check, dc_names, credentials
            )
            outcomes.append(outcome)
            if proof is not None:
                proposed.append(ProposedTarget(ip=addr, server=server, proof=proof))
                # Drafted for the person who decides; sent only after --confirm (drafted anew then).
                drafts, problems = _letters_for(outcome, verdict, complaint, fleet, site, abuse_from, lang)
                drafted_for_proposal += [f"{x.kind.value} to {x.to}: {x.subject}" for x in drafts]
                drafted_for_proposal += [f"NOT drafted: {x}" for x in problems]
            continue
        outcome = _act(
            addr, server, verdict, complaint, fleet, pool, journal, check, dc_names, credentials, lock_dir
        )
        if outcome.action in {"blocked", "already blocked"} and not check:
            outcome = _maybe_cancel(outcome, verdict, fleet, pool, journal, today)
        outcomes.append(outcome)
        if outcome.action == "refused":
            continue
        more, problems = _letters_for(outcome, verdict, complaint, fleet, site, abuse_from, lang)
        letters += more
        letter_problems += problems
    if verdict is None or complaint.cases:
        # A report of many rows: the verdict on the whole, each row's own in verdict.cases.
        verdict = classify(complaint, complaint.received_at, complaint.dc_reaction_hours)
    proposal: Proposal | None = None
    stored = False
    if proposed:
        first = next(v for _, _, _, v in named if v.immediate)
        proposal = Proposal(
            id=policy.proposal_id(complaint, (t.server for t in proposed)),
            created_at=dt.datetime.now(dt.UTC),
            complaint=policy.trimmed(complaint),
            verdict=first,
            deadline=first.deadline,
            reasons=held,
            targets=proposed,
            letters=drafted_for_proposal,
            dc_names={t.ip: (dc_names or {})[t.ip] for t in proposed if t.ip in (dc_names or {})},
        )
        if journal is not None and not check:
            stored = policy.store_proposal(journal, proposal)
            if not stored:
                proposal = policy.load_proposal(journal, proposal.id)
    return HandleResult(
        complaint=complaint,
        verdict=verdict,
        services=outcomes,
        letters=letters,
        letter_problems=letter_problems,
        proposal=proposal,
        proposal_stored=stored,
    )


def _held_reasons(
    complaint: Complaint,
    named: list[tuple[str, str, Any, Verdict]],
    max_targets: int | None,
    dnsbl_lookup: Callable[[str], DnsblResult] | None,
    run_budget: policy.BlockBudget | None = None,
) -> list[str]:
    """Why the immediate part of the complaint waits for a person; empty: it may act now."""
    immediate = [(ip, server, site, v) for ip, server, site, v in named if v.immediate]
    if not immediate:
        return []
    sites = {server: site for _, server, site, _ in immediate}
    held = policy.why_not_now(complaint, sites, max_targets=max_targets, run_budget=run_budget)
    if held or not immediate[0][3].is_sbl:
        return held
    # A trusted SBL notice within the limit: the DNSBL must confirm every target (§7.2).
    for ip in dict.fromkeys(ip for ip, _, _, _ in immediate):
        answer: DnsblResult | str | None = None
        if dnsbl_lookup is not None:
            try:
                answer = dnsbl_lookup(ip)
            except (IpsinfraError, OSError) as exc:
                answer = f"{type(exc).__name__}: {exc}"
        why = policy.sbl_confirmation(ip, answer)
        if why is not None:
            held.append(why)
    return held


def _propose(
    ip: str,
    server: str,
    verdict: Verdict,
    fleet: Fleet,
    pool: DriverPool,
    journal: Journal | None,
    check: bool,
    dc_names: Mapping[str, str] | None,
    credentials: Any,
) -> tuple[ServiceOutcome, Any]:
    """Prove the target (reading only) and hold it; a target that fails its proof is refused."""
    proof = prove_target(ip, fleet, pool, dc_names=dc_names, credentials=credentials)
    if not proof.ok:
        why = "; ".join(proof.failures())
        if journal is not None and not check:
            journal.record("abuse.proposal", server, result="refused", detail=f"{ip}: {why}")
        return ServiceOutcome(ip=ip, server=server, action="refused", detail=f"{why}; not proposed"), None
    detail = f"{verdict.category}: proven; waits for --confirm (nothing was changed)"
    return ServiceOutcome(ip=ip, server=server, action="proposed", detail=detail), proof


def _letters_for(
    outcome: ServiceOutcome,
    verdict: Verdict,
    complaint: Complaint,
    fleet: Fleet,
    site: Any,
    abuse_from: str,
    lang: str,
) -> tuple[list[Letter], list[str]]:
    server = outcome.server or ""
    client = fleet.clients.get(_client_of(fleet, server) or "")
    if client is None or site is None:
        # Never silent: the block (or deadline) stands, but nobody would be told.
        missing = "client record" if client is None else "site"
        return [], [f"{server}: no {missing} in the inventory; no letters drafted"]
    # Each letter on its own, after the block: one that fails is reported, never
    # raised past the block already done (and the other letters still go).
    drafted = draft_letters(
        complaint,
        verdict,
        server_name=server,
        client=client,
        site=site,
        cancelled=outcome.cancelled,
        abuse_from=abuse_from,
        lang=lang,
    )
    return drafted.letters, drafted.problems


@writes_back
def confirm_proposal(
    proposal_id: str,
    fleet: Fleet,
    pool: DriverPool,
    *,
    abuse_from: str,
    journal: Journal,
    today: dt.date | None = None,
    dc_names: Mapping[str, str] | None = None,
    credentials: Any = None,
    lock_dir: Path | None = None,
    lang: str = "en",
    actor: str | None = None,
    inventory: str | Path | None = None,
) -> ConfirmResult:
    """Carry out a stored proposal once: each target proven again NOW (§11.8), then blocked.

    A target whose proof fails now (moved, renamed, another MAC, the DC's name
    differs) is refused and left alone. The DC names given here, else those the
    proposal was made with, are checked. A proposal confirmed before is not acted
    on again: ``result.already`` says when and by whom. The decision is journalled
    (``abuse.confirm``) and stored with the proposal.

    Raises:
        InvalidInput: no such proposal (or a malformed id).
        Locked: another confirmation of it is running.
    """
    pid = policy.parse_proposal_id(proposal_id)
    with locks.hold(f"abuse-proposal-{pid}", f"confirm {pid}", lock_dir=lock_dir):
        proposal = policy.load_proposal(journal, pid)
        complaint, verdict = proposal.complaint, proposal.verdict
        if proposal.status != "proposed":
            when = proposal.decided_at.isoformat(timespec="seconds") if proposal.decided_at else "?"
            note = (
                f"{pid} was {proposal.status} at {when} by {proposal.decided_by or '?'}; nothing done again"
            )
            return ConfirmResult(
                complaint=complaint, verdict=verdict, services=[], letters=[], proposal=proposal, already=note
            )
        names = dict(dc_names) if dc_names is not None else dict(proposal.dc_names)
        today = today or dt.datetime.now(dt.UTC).date()
        outcomes: list[ServiceOutcome] = []
        letters: list[Letter] = []
        problems: list[str] = []
        for target in proposal.targets:
            outcome = _act(
                target.ip,
                target.server,
                verdict,
                complaint,
                fleet,
                pool,
                journal,
                False,
                names,
                credentials,
                lock_dir,
                actor=actor,
            )
            if outcome.action in {"blocked", "already blocked"}:
                outcome = _maybe_cancel(outcome, verdict, fleet, pool, journal, today)
            outcomes.append(outcome)
            if outcome.action == "refused":
                continue
            more, bad = _letters_for(
                outcome, verdict, complaint, fleet, _site_of(fleet, target.server), abuse_from, lang
            )
            letters += more
            problems += bad
        done = proposal.model_copy(
            update={
                "status": "confirmed",
                "decided_at": dt.datetime.now(dt.UTC),
                "decided_by": actor or default_actor(),
                "outcome": [f"{o.ip} ({o.server}): {o.action}" for o in outcomes],
            }
        )
        policy.record_decision(journal, done)
        refused = [o for o in outcomes if o.action == "refused"]
        journal.record(
            "abuse.confirm",
            pid,
            result="refused" if refused and len(refused) == len(outcomes) else "ok",
            detail="; ".join(done.outcome),
            actor=actor,
        )
    return ConfirmResult(
        complaint=complaint,
        verdict=verdict,
        services=outcomes,
        letters=letters,
        letter_problems=problems,
        proposal=done,
    )


def _site_of(fleet: Fleet, server: str) -> Any:
    if server in fleet.vds:
        node = fleet.nodes.get(fleet.vds[server].node)
        return fleet.sites.get(node.site) if node else None
    ded = fleet.dedicated.get(server)
    return fleet.sites.get(ded.site) if ded else None


def _client_of(fleet: Fleet, server: str) -> str | None:
    if server in fleet.vds:
        return fleet.vds[server].client
    ded = fleet.dedicated.get(server)
    return ded.client if ded else None


def _act(
    ip: str,
    server: str,
    verdict: Verdict,
    complaint: Complaint,
    fleet: Fleet,
    pool: DriverPool,
    journal: Journal | None,
    check: bool,
    dc_names: Mapping[str, str] | None,
    credentials: Any,
    lock_dir: Path | None,
    *,
    actor: str | None = None,
) -> ServiceOutcome:
    ref = complaint.sbl_ref or complaint.id
    if not verdict.immediate:
        detail = f"{verdict.category}: react by {verdict.deadline.isoformat(timespec='minutes')} (§7.3)"
        if journal is not None and not check:
            journal.record("abuse.deadline", server, result="planned", detail=f"{ip}: {detail} [{ref}]")
        return ServiceOutcome(ip=ip, server=server, action="deadline", detail=detail)
    try:
        result = block(
            ip,
            fleet,
            pool,
            reason=verdict.category,
            complaint_ref=ref,
            journal=journal,
            check=check,
            dc_names=dc_names,
            credentials=credentials,
            lock_dir=lock_dir,
            actor=actor,
        )
    except TargetProofFailed as exc:
        return ServiceOutcome(ip=ip, server=server, action="refused", detail=str(exc))
    action = "checked" if check else ("blocked" if result.changed else "already blocked")
    return ServiceOutcome(ip=ip, server=server, action=action, detail=verdict.category, block=result)


def _maybe_cancel(
    outcome: ServiceOutcome,
    verdict: Verdict,
    fleet: Fleet,
    pool: DriverPool,
    journal: Journal | None,
    today: dt.date,
) -> ServiceOutcome:
    """§7.2: an SBL listing of a new (this month) single-service client cancels the service."""
    server = outcome.server
    if server is None or server not in fleet.vds:
        return outcome
    vds = fleet.vds[server]
    client = fleet.clients.get(vds.client or "")
    if client is None:
        return outcome
    decision = should_cancel(verdict, client, today, service_activated=vds.activated)
    if not decision.cancel or client.services != 1:
        return outcome.model_copy(update={"detail": f"{outcome.detail}; not cancelled: {decision.reason}"})
    driver = pool.get(vds.node)
    current = driver.get_vds(server)
    if metadata.parse(current.description).get("status") == "Cancelled":  # a re-run: nothing to change
        detail = f"{outcome.detail}; already cancelled"
        return outcome.model_copy(update={"cancelled": True, "detail": detail})
    driver.set_description(server, metadata.update(current.description, {"status": "Cancelled"}))
    if journal is not None:
        journal.record(
            "vds.cancel",
            f"{vds.node}/{server}",
            before={"status": metadata.parse(current.description).get("status", "Active")},
            after={"status": "Cancelled"},
            detail=f"§7.2: {decision.reason}",
        )
        state = dict(journal.get_state(f"vds:{server}") or {})
        state["status"] = "Cancelled"
        journal.set_state(f"vds:{server}", state)
    return outcome.model_copy(update={"cancelled": True, "detail": f"{outcome.detail}; {decision.reason}"})
