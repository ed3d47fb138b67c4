"""How far one complaint may act on its own: the blast radius (§7.2, §7.3, §11.8).

The abuse mailbox is public, so a complaint blocks at once only within limits
the operator set, per site (:class:`ipsinfra.models.Site`):

* ``abuse_trusted_senders``: the complaint's From is one of these addresses
  (or at one of these ``@domains``) for EVERY site whose servers it names;
* an SBL notice (§7.2) is also confirmed by a DNSBL look-up of every target
  (an SBL, CSS or DROP code: 127.0.0.2/.3/.9; a failed query, 127.255.255.x,
  or no answer confirms nothing);
* it names at most ``abuse_max_targets`` of our servers (default 1; the
  smallest of the sites named; ``--max-targets`` overrides it);
* in an unattended run (``abuse watch``, many messages), the run has not yet
  blocked its :class:`BlockBudget`: at most ``abuse_max_blocks_per_run``
  servers in all (default 5; the smallest of the inventory's sites;
  ``--max-blocks`` overrides it). Without it, a mailbox full of one-server
  notices from a trusted (or a spoofed trusted) sender would block one server
  per message, without end.

Anything else becomes a :class:`Proposal`: the verdict, the proven targets,
the deadline and the letters drafted, stored in the journal's state
(``abuse.proposal:<id>``) until a person runs ``ipsinfra abuse handle
--confirm <id>``. Every proposal and every decision is a journal line.

The decision functions here are pure; storing and loading take a journal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ipsinfra.abuse.block import TargetProof
from ipsinfra.abuse.classify import Verdict
from ipsinfra.abuse.dnsbl import DnsblResult
from ipsinfra.abuse.intake import CLASSIFY_CHARS, Complaint
from ipsinfra.errors import InvalidInput, IpsinfraError
from ipsinfra.journal import Journal
from ipsinfra.models import Site

__all__ = [
    "BUDGET_REASON",
    "DEFAULT_MAX_BLOCKS_PER_RUN",
    "DEFAULT_MAX_TARGETS",
    "PROPOSAL_PREFIX",
    "SBL_CODES",
    "BlockBudget",
    "Proposal",
    "ProposedTarget",
    "load_proposal",
    "max_targets_for",
    "parse_proposal_id",
    "proposal_id",
    "run_budget_for",
    "sbl_confirmation",
    "sender_trusted",
    "store_proposal",
    "why_not_now",
]

DEFAULT_MAX_TARGETS = 1
DEFAULT_MAX_BLOCKS_PER_RUN = 5  # the Site field's default: an inventory without sites gets it too
BUDGET_REASON = "this run already blocked "  # how a reason of BlockBudget.why_not begins
PROPOSAL_PREFIX = "abuse.proposal:"
# What confirms an SBL notice (§7.2): the SBL listing proper, its CSS part, DROP.
SBL_CODES = frozenset({"SBL", "CSS", "DROP"})
_ID_RE = re.compile(r"^P-[0-9a-f]{12}$")


class ProposedTarget(BaseModel):
    """One IP of a proposal and the proof it passed when proposed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ip: str
    server: str
    proof: TargetProof


class Proposal(BaseModel):
    """A complaint held for a person: what it would do, and why it did not do it at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    status: Literal["proposed", "confirmed"] = "proposed"
    created_at: dt.datetime
    complaint: Complaint = Field(description="as received; statement and evidence cut to 64 KiB")
    verdict: Verdict
    deadline: dt.datetime
    reasons: list[str] = Field(description="why it waits for a person, one line each")
    targets: list[ProposedTarget]
    letters: list[str] = Field(default_factory=list, description="the letters drafted: kind, to, subject")
    dc_names: dict[str, str] = Field(default_factory=dict, description="the DC's names of the targets")
    decided_at: dt.datetime | None = None
    decided_by: str | None = None
    outcome: list[str] = Field(default_factory=list, description="what the confirmation did, per IP")

    @property
    def servers(self) -> list[str]:
        return sorted({t.server for t in self.targets})


def sender_trusted(sender: str | None, site: Site | None) -> bool:
    """Whether ``sender`` (a parsed, lower-case address) is one of ``site``'s trusted senders."""
    if not sender or site is None:
        return False
    sender = sender.strip().lower()
    domain = sender.rpartition("@")[2]
    return any(sender == t or t == f"@{domain}" for t in site.abuse_trusted_senders)


def max_targets_for(sites: Iterable[Site | None], override: int | None = None) -> int:
    """The limit for a complaint naming servers of ``sites``: ``override`` when given,
    else the smallest ``abuse_max_targets`` of the sites (a site we do not know: 1)."""
    if override is not None:
        if override < 1:
            raise InvalidInput(f"max_targets: value {override!r}: must be at least 1")
        return override
    limits = [s.abuse_max_targets if s is not None else DEFAULT_MAX_TARGETS for s in sites]
    return min(limits, default=DEFAULT_MAX_TARGETS)


class BlockBudget(BaseModel):
    """How many servers one run may still block at once, over all the complaints it handles.

    ``limit`` the run's most, ``blocked`` how many it has blocked so far, ``unsure`` how many
    a handling that failed half-way may have blocked (counted as blocked: the run never blocks
    more than allowed), ``source`` what set the limit, as the reason a held complaint gives
    names it (default ``--max-blocks <limit>``). A person's ``--confirm`` spends none.

    Example::

        >>> BlockBudget(limit=2).spent(2).why_not(1)
        'this run already blocked 2 servers (--max-blocks 2)'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(ge=1)
    blocked: int = Field(default=0, ge=0)
    unsure: int = Field(default=0, ge=0)
    source: str | None = None

    @property
    def named(self) -> str:
        return self.source or f"--max-blocks {self.limit}"

    @property
    def left(self) -> int:
        return max(self.limit - self.blocked - self.unsure, 0)

    def spent(self, servers: int, *, unsure: bool = False) -> BlockBudget:
        """The budget after ``servers`` more were blocked (``unsure``: may have been)."""
        field = "unsure" if unsure else "blocked"
        return self.model_copy(update={field: getattr(self, field) + max(servers, 0)})

    def why_not(self, servers: int) -> str | None:
        """``None`` when blocking ``servers`` more stays within the budget; else why not."""
        if servers <= self.left:
            return None
        said = f"{BUDGET_REASON}{self.blocked} server{'' if self.blocked == 1 else 's'}"
        if self.unsure:
            said += f" and may have blocked {self.unsure} more (a handling that failed half-way)"
        if not self.left:
            return f"{said} ({self.named})"
        return f"{said}; {servers} more would pass the run's limit of {self.limit} ({self.named})"


def run_budget_for(sites: Iterable[Site | None], override: int | None = None) -> BlockBudget:
    """The block budget of one run over a fleet of ``sites``: ``override`` (``--max-blocks``)
    when given, else the smallest ``abuse_max_blocks_per_run`` of the sites (none: 5).

    Raises:
        InvalidInput: ``override`` below 1 (``max_blocks``).
    """
    if override is not None:
        if isinstance(override, bool) or not isinstance(override, int) or override < 1:
            raise InvalidInput(f"max_blocks: value {override!r}: must be a whole number, at least 1")
        return BlockBudget(limit=override)
    limits = [(s.abuse_max_blocks_per_run, s.name) for s in sites if s is not None]
    if not limits:
        limit = DEFAULT_MAX_BLOCKS_PER_RUN
        return BlockBudget(limit=limit, source=f"abuse_max_blocks_per_run {limit}, the default")
    limit, name = min(limits)
    return BlockBudget(
        limit=limit, source=f"abuse_max_blocks_per_run {limit} of site {name}; --max-blocks for one run"
    )


def sbl_confirmation(ip: str, result: DnsblResult | str | None) -> str | None:
    """``None`` when the DNSBL answer confirms an SBL listing of ``ip``; else why not.

    ``result`` is the answer, or the text of the look-up's error, or None (no look-up).
    """
    if result is None:
        return f"{ip}: no DNSBL look-up configured; an SBL notice is confirmed by one (§7.2)"
    if isinstance(result, str):
        return f"{ip}: the DNSBL look-up failed ({result}); it confirms nothing"
    if result.error is not None:
        return f"{ip}: the DNSBL query failed ({result.error}); it confirms nothing"
    listed = SBL_CODES.intersection(result.listed_in)
    if not listed:
        shown = ", ".join(result.listed_in) or "not listed"
        return f"{ip}: {result.zone} does not list it in SBL ({shown})"
    return None


def why_not_now(
    complaint: Complaint,
    sites: Mapping[str, Site | None],
    *,
    max_targets: int | None = None,
    run_budget: BlockBudget | None = None,
) -> list[str]:
    """Why an immediate complaint naming ``sites`` (server -> its site) may not act at once.

    Empty: the sender is trusted for every site named, the count is within the limit and
    within what ``run_budget`` has left (an SBL notice still needs :func:`sbl_confirmation`
    for each target).
    """
    reasons: list[str] = []
    limit = max_targets_for(sites.values(), max_targets)
    if len(sites) > limit:
        reasons.append(
            f"names {len(sites)} of our servers; the limit is {limit} "
            "(site abuse_max_targets or --max-targets)"
        )
    untrusted = sorted(
        {(s.name if s else "(no site)") for s in sites.values() if not sender_trusted(complaint.sender, s)}
    )
    if untrusted:
        who = complaint.sender or "(no From address)"
        reasons.append(
            f"sender {who} is not a trusted sender of {', '.join(untrusted)} (abuse_trusted_senders)"
        )
    spent = run_budget.why_not(len(sites)) if run_budget is not None else None
    if spent is not None:
        reasons.append(spent)
    return reasons


def proposal_id(complaint: Complaint, servers: Iterable[str]) -> str:
    """Stable for one complaint and its servers: handling the same mail twice finds the same proposal."""
    digest = hashlib.sha256("\n".join([complaint.id, *sorted(set(servers))]).encode("utf-8", "replace"))
    return f"P-{digest.hexdigest()[:12]}"


def parse_proposal_id(value: str) -> str:
    """The id as typed (``P-`` and 12 hex digits), or InvalidInput naming it."""
    text = value.strip()
    if not _ID_RE.fullmatch(text):
        raise InvalidInput(
            f"confirm: value {value!r}: a proposal id is P- and 12 hex digits (P-0123456789ab)"
        )
    return text


def trimmed(complaint: Complaint) -> Complaint:
    """What a proposal keeps of the complaint: statement and evidence cut to 64 KiB."""
    update: dict[str, Any] = {}
    for field in ("statement", "evidence"):
        text = getattr(complaint, field)
        if len(text) > CLASSIFY_CHARS:
            update[field] = (
                text[:CLASSIFY_CHARS] + f"\n[... cut at {CLASSIFY_CHARS} characters of {len(text)}]"
            )
    return complaint.model_copy(update=update) if update else complaint


def store_proposal(journal: Journal, proposal: Proposal) -> bool:
    """Store a new proposal and journal it. False when that id is already stored (left as it is)."""
    key = PROPOSAL_PREFIX + proposal.id
    if journal.get_state(key) is not None:
        return False
    journal.set_state(key, proposal.model_dump(mode="json"))
    journal.record(
        "abuse.proposal",
        proposal.id,
        result="planned",
        detail=f"{proposal.verdict.category} [{proposal.complaint.sbl_ref or proposal.complaint.id}] "
        f"from {proposal.complaint.sender or '(unknown)'}: "
        f"{', '.join(f'{t.ip} ({t.server})' for t in proposal.targets)}; held: {'; '.join(proposal.reasons)}",
    )
    return True


def load_proposal(journal: Journal, pid: str) -> Proposal:
    """The stored proposal ``pid``. Raises InvalidInput when there is none (or it cannot be read)."""
    pid = parse_proposal_id(pid)
    data = journal.get_state(PROPOSAL_PREFIX + pid)
    if data is None:
        raise InvalidInput(f"confirm: value {pid!r}: no such proposal in this journal")
    try:
        return Proposal.model_validate(data)
    except ValidationError as exc:
        raise IpsinfraError(
            f"proposal {pid}: the stored record is not readable: {exc.error_count()} error(s)"
        ) from None


def record_decision(journal: Journal, proposal: Proposal) -> None:
    """Store the decided proposal (status, who, when, outcome); the caller journals the actions."""
    journal.set_state(PROPOSAL_PREFIX + proposal.id, proposal.model_dump(mode="json"))
