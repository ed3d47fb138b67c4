"""One complaint, end to end (§7): parse, classify, block what must be blocked
now, cancel where §7.2 says so, and write the letters.

Immediate categories (§7.2/§7.3) are blocked at once — each target proven
first (:mod:`ipsinfra.abuse.block`); the others get their deadline recorded
in the journal for the shift. Every IP of the complaint that is not ours is
reported, never touched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra import metadata
from ipsinfra.abuse.block import BlockResult, block
from ipsinfra.abuse.cancellation import should_cancel
from ipsinfra.abuse.classify import Verdict, classify
from ipsinfra.abuse.intake import Complaint, parse_complaint
from ipsinfra.abuse.letters import Letter, render_letters
from ipsinfra.errors import TargetProofFailed
from ipsinfra.hypervisors import DriverPool
from ipsinfra.inventory import Fleet
from ipsinfra.journal import Journal


class ServiceOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    ip: str
    server: str | None
    action: str = Field(description="blocked, already blocked, deadline, refused, not ours, checked")
    detail: str = ""
    cancelled: bool = False
    block: BlockResult | None = None


class HandleResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    complaint: Complaint
    verdict: Verdict
    services: list[ServiceOutcome]
    letters: list[Letter]

    @property
    def refused(self) -> list[ServiceOutcome]:
        return [s for s in self.services if s.action == "refused"]


def handle_complaint(
    raw: bytes | str,
    fleet: Fleet,
    pool: DriverPool,
    *,
    abuse_from: str,
    journal: Journal | None = None,
    received_at: dt.datetime | None = None,
    today: dt.date | None = None,
    check: bool = False,
    dc_names: Mapping[str, str] | None = None,
    credentials: Any = None,
    lock_dir: Path | None = None,
    lang: str = "en",
) -> HandleResult:
    """Carry out §7 for one complaint; returns what was done per IP and the letters to send."""
    complaint = parse_complaint(raw, received_at)
    today = today or complaint.received_at.date()
    outcomes: list[ServiceOutcome] = []
    letters: list[Letter] = []
    verdict: Verdict | None = None
    for ip in complaint.ips:
        owners = fleet.owners_of_ip(ip)
        if not owners:
            outcomes.append(ServiceOutcome(ip=str(ip), server=None, action="not ours"))
            continue
        server = owners[0]
        site = _site_of(fleet, server)
        hours = complaint.dc_reaction_hours or (site.dc_reaction_hours if site else None)
        verdict = classify(complaint, complaint.received_at, hours)
        outcome = _act(
            str(ip), server, verdict, complaint, fleet, pool, journal, check, dc_names, credentials, lock_dir
        )
        if outcome.action in {"blocked", "already blocked"} and not check:
            outcome = _maybe_cancel(outcome, verdict, fleet, pool, journal, today)
        outcomes.append(outcome)
        client_id = _client_of(fleet, server)
        client = fleet.clients.get(client_id or "")
        if client is not None and site is not None and outcome.action != "refused":
            letters += render_letters(
                complaint,
                verdict,
                server_name=server,
                client=client,
                site=site,
                cancelled=outcome.cancelled,
                abuse_from=abuse_from,
                lang=lang,
            )
    if verdict is None:
        verdict = classify(complaint, complaint.received_at, complaint.dc_reaction_hours)
    return HandleResult(complaint=complaint, verdict=verdict, services=outcomes, letters=letters)


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
