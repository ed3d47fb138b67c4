"""The abuse mailbox, unattended: read what is new, act on it once, mark it, report.

:func:`fetch` reads and classifies (changes nothing); :func:`watch` is what a
cron / CI / AWX schedule runs: every new message goes through
:func:`ipsinfra.abuse.handle.handle_complaint` (so the blast-radius limits of
:mod:`ipsinfra.abuse.policy` apply to each), its letters are written, the
store remembers it and the mailbox marks it.

A complaint acts once. The store remembers each processed message under
``abuse.seen:<sha256 of its Message-ID>`` (a message without one: of its
bytes): a copy that arrives again (forwarded twice, a second mailbox, an mbox
read again) is marked and skipped as a duplicate. A report's rows that carry
their own time (``Complaint.cases``: a Shadowserver CSV row, an X-ARF report)
are remembered too (``abuse.seen:<sha256 of scheme|ip|type|time>``): a report
sent again under a new Message-ID whose every row was processed is a
duplicate. A report with at least one new row is handled whole (its old rows
come out as "already blocked" or a deadline again; handling is idempotent).

Per message the outcome is one of:

``done``       handled (blocked, deadline recorded, proposed, not ours); marked done.
``duplicate``  the store had it already; marked done, nothing acted on.
``rejected``   the complaint cannot be read (too large, malformed, no address):
               marked failed (not done), remembered, not read again.
``failed``     handling it failed (a node unreachable, a bug): NOT marked and not
               remembered, so the next run tries it again.

A run blocks at most ``max_blocks`` servers in all (a
:class:`~ipsinfra.abuse.policy.BlockBudget`: ``--max-blocks``, else the smallest
``abuse_max_blocks_per_run`` of the inventory's sites, default 5). The per-complaint
limits alone would let a mailbox full of one-server notices from a trusted (or
spoofed trusted) sender block one server per message without end; once the run
has blocked its budget, every further immediate complaint is a proposal ("this run
already blocked N servers (--max-blocks N)"), its letters drafted, nothing blocked.

The inventory follows the fleet (``inventory=``, as for ``abuse handle``): a block
or a §7.2 cancellation is written back into the record (``blocked``, ``blocked_reason``,
``cancelled``). Where that is not possible (a file the write-back refuses, renamed
meanwhile, locked...) the block stands and the message is done all the same, but it
is a problem of that message ("inventory not updated: <why>; apply by hand: <files>"),
with the diff to apply in :attr:`MessageOutcome.inventory_change`.

One message never stops the others. :attr:`WatchReport.exit_code`: 0 every
new message handled and nothing waits for a person; 1 a message rejected or
failed, a target refused, a letter not written, the inventory not updated, or a
proposal waiting for ``ipsinfra abuse handle --confirm <id>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra import locks
from ipsinfra.abuse import policy
from ipsinfra.abuse.classify import classify
from ipsinfra.abuse.intake import DEFAULT_LIMITS, IntakeLimits, parse_complaint
from ipsinfra.abuse.mailbox import Mailbox, MailboxError, MailMessage, dedup_key
from ipsinfra.errors import InvalidInput, Locked
from ipsinfra.hypervisors import DriverPool
from ipsinfra.inventory import Fleet, InventoryChange
from ipsinfra.inventory.writeback import DELETE, VDS_KEYS, RecordUpdate, updates_of
from ipsinfra.inventory.yamledit import flow
from ipsinfra.journal import Journal

__all__ = [
    "SEEN_PREFIX",
    "FetchedMessage",
    "InventoryOutcome",
    "MessageOutcome",
    "WatchReport",
    "fetch",
    "inventory_outcome",
    "seen_state_key",
    "watch",
]

SEEN_PREFIX = "abuse.seen:"
Status = Literal["done", "duplicate", "rejected", "failed", "checked", "new", "seen"]


def seen_state_key(kind: str, value: str) -> str:
    """The store key a complaint is remembered by: ``abuse.seen:<sha256>`` of its identity."""
    return SEEN_PREFIX + hashlib.sha256(f"{kind}:{value}".encode("utf-8", "surrogateescape")).hexdigest()


class InventoryOutcome(BaseModel):
    """The inventory's write-back after one complaint: the Ansible modules' ``inventory_change``.

    ``diff`` is what was written or, when ``error`` is set, what to apply by hand
    (``by_hand`` says what each record must say where not even a diff could be made,
    e.g. a host_vars file the write-back cannot edit).
    """

    model_config = ConfigDict(frozen=True)

    inventory: str
    files: list[str] = Field(default_factory=list, description="the files changed, or to change by hand")
    renamed: dict[str, str] = Field(default_factory=dict)
    written: bool = False
    checked_only: bool = False
    error: str | None = Field(default=None, description="why nothing was written, naming the file")
    by_hand: list[str] = Field(
        default_factory=list, description="'<record>: <key>: <value>, ...' where no diff could be made"
    )
    diff: str = Field(default="", description="a unified diff, paths relative to the inventory")
    journal_seq: int | None = None
    journal_error: str | None = None

    @property
    def problem(self) -> str | None:
        """One line for a person, or None: written (or, with --check, writable)."""
        if self.error is not None:
            what = ", ".join(self.files) or "; ".join(self.by_hand) or "the records above"
            verb = "would not be updated" if self.checked_only else "not updated"
            return f"inventory {verb}: {self.error}; apply by hand: {what}"
        if self.journal_error is not None:
            return f"inventory updated, but no journal line for it: {self.journal_error}"
        return None

    def notes(self) -> list[str]:
        """What was (or, with --check, would be) written; nothing when it failed (see problem)."""
        if self.error is not None:
            return []
        verb = "would update" if self.checked_only else "updated"
        back = {new: old for old, new in self.renamed.items()}
        return [f"inventory {verb}: " + (f"{back[f]} -> {f}" if f in back else f) for f in self.files]


def _must_say(update: RecordUpdate) -> str:
    """What one record must say, e.g. ``VPS1(1.1): blocked: true, blocked_reason: malware``."""
    keys = [
        f"{VDS_KEYS.get(k, k)}: "
        + ("(remove)" if v is DELETE else flow(v))
        + (" (where the record has it)" if k in update.only_if_present else "")
        for k, v in update.values.items()
        if not k.startswith("_")
    ]
    return f"{update.final_name}: " + ", ".join(keys)


def inventory_outcome(change: InventoryChange | None, result: Any) -> InventoryOutcome | None:
    """``result.inventory_change`` for a report, or None when there is nothing to say (no write-back
    asked, or the records say so already). ``result`` gives the values a record must take by hand."""
    if change is None or not (change.edits or change.error or change.journal_error):
        return None
    by_hand = [_must_say(u) for u in updates_of(result)] if change.error and not change.edits else []
    return InventoryOutcome(
        inventory=change.inventory,
        files=[e.path for e in change.edits],
        renamed={e.renamed_from: e.path for e in change.edits if e.renamed_from},
        written=change.written,
        checked_only=change.checked_only,
        error=change.error,
        by_hand=by_hand,
        diff=change.diff(),
        journal_seq=change.journal_seq,
        journal_error=change.journal_error,
    )


class MessageOutcome(BaseModel):
    """What happened to one message."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="the mailbox's stable id of the message")
    message_id: str | None = None
    status: Status
    detail: str = ""
    category: str | None = None
    immediate: bool | None = None
    received_at: dt.datetime | None = None
    services: list[str] = Field(default_factory=list, description="'ip (server): action' per IP")
    proposal: str | None = Field(default=None, description="the proposal id waiting for --confirm")
    held: list[str] = Field(
        default_factory=list, description="why the proposal waits for a person, one line each"
    )
    letters: list[str] = Field(default_factory=list)
    problems: list[str] = Field(
        default_factory=list,
        description="refusals, letters not written, the inventory not updated, marks not set",
    )
    inventory_change: InventoryOutcome | None = Field(
        default=None, description="the inventory's write-back: files, diff, error"
    )

    @property
    def needs_a_person(self) -> bool:
        return self.status in {"rejected", "failed"} or bool(self.problems) or self.proposal is not None


class FetchedMessage(MessageOutcome):
    """What :func:`fetch` saw: the verdict, nothing acted on."""

    sender: str | None = None
    subject: str = ""
    targets: list[str] = Field(default_factory=list)


class WatchReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    check: bool = False
    messages: list[MessageOutcome]
    max_blocks: int | None = Field(default=None, description="the run's block budget (--max-blocks)")
    blocked: int = Field(default=0, description="servers this run blocked (--check: would have blocked)")
    maybe_blocked: int = Field(
        default=0, description="servers a handling that failed half-way may have blocked (counted)"
    )
    budget_reached: bool = Field(
        default=False, description="an immediate complaint was only proposed: the budget was spent"
    )

    def count(self, status: str) -> int:
        return sum(1 for m in self.messages if m.status == status)

    @property
    def exit_code(self) -> int:
        return 1 if any(m.needs_a_person for m in self.messages) else 0

    def summary(self) -> str:
        counts = {s: self.count(s) for s in ("done", "checked", "duplicate", "rejected", "failed")}
        parts = [f"{n} {s}" for s, n in counts.items() if n]
        handled = {"done", "checked", "duplicate"}
        troubled = sum(1 for m in self.messages if m.problems and m.status in handled)
        if troubled:  # handled, but something of it needs a person (a refusal, a letter, the inventory)
            parts.append(f"{troubled} with problems")
        if not parts and self.count("seen"):
            parts.append(f"nothing new ({self.count('seen')} processed before)")
        waiting = [m.proposal for m in self.messages if m.proposal]
        if waiting:
            parts.append(f"{len(waiting)} proposal(s) waiting: {', '.join(waiting)}")
        if self.budget_reached:
            maybe = f", {self.maybe_blocked} more may have been" if self.maybe_blocked else ""
            parts.append(
                f"the run's block limit was reached ({self.blocked} of {self.max_blocks} blocked{maybe})"
            )
        return f"{self.source}: " + (", ".join(parts) if parts else "nothing new")


def row_state_keys(complaint: Any) -> list[str]:
    """The store keys of a report's rows that carry their own time (scheme, IP, type, observed at):
    the same row in a report sent again is the same case. Rows without a time have no identity
    of their own (tomorrow's report naming the IP again is news) and are not remembered."""
    keys = []
    for case in getattr(complaint, "cases", ()):
        if case.observed_at is None:
            continue
        row = f"{case.scheme}|{case.ip}|{case.report_type or ''}|{case.observed_at.isoformat()}"
        keys.append(seen_state_key("row", row))
    return list(dict.fromkeys(keys))


def _message_id(msg: MailMessage) -> tuple[str, str, str | None]:
    assert msg.raw is not None
    kind, value = dedup_key(msg.raw)
    return kind, value, value if kind == "message-id" else None


def fetch(
    mailbox: Mailbox,
    *,
    journal: Journal | None = None,
    limits: IntakeLimits = DEFAULT_LIMITS,
    dc_hours: int | None = None,
) -> list[FetchedMessage]:
    """Read the new messages and classify each; nothing is marked, stored or acted on.

    A message the store remembers (``journal``) is listed with status ``seen``.
    """
    seen = journal.latest_states(SEEN_PREFIX) if journal is not None else {}
    out: list[FetchedMessage] = []
    for msg in mailbox.messages():
        if msg.raw is None:
            out.append(FetchedMessage(id=msg.id, status="rejected", detail=msg.problem or ""))
            continue
        kind, value, mid = _message_id(msg)
        if seen_state_key(kind, value) in seen:
            out.append(FetchedMessage(id=msg.id, message_id=mid, status="seen", detail="processed before"))
            continue
        try:
            complaint = parse_complaint(msg.raw, mailbox_date=msg.mailbox_date, limits=limits)
            verdict = classify(complaint, complaint.received_at, complaint.dc_reaction_hours or dc_hours)
        except InvalidInput as exc:
            out.append(FetchedMessage(id=msg.id, message_id=mid, status="rejected", detail=str(exc)))
            continue
        out.append(
            FetchedMessage(
                id=msg.id,
                message_id=mid,
                status="new",
                category=verdict.category,
                immediate=verdict.immediate,
                received_at=complaint.received_at,
                detail=f"react by {verdict.deadline.isoformat()}",
                sender=complaint.sender,
                subject=complaint.subject,
                targets=[str(x) for x in (*complaint.ips, *complaint.networks)],
            )
        )
    return out


def watch(
    mailbox: Mailbox,
    fleet: Fleet,
    pool: DriverPool,
    *,
    journal: Journal,
    abuse_from: str,
    outbox: Path | None,
    check: bool = False,
    send: Callable[..., Any] | None = None,
    limits: IntakeLimits = DEFAULT_LIMITS,
    max_blocks: int | None = None,
    **handle_kwargs: Any,
) -> WatchReport:
    """Handle every new message of ``mailbox`` once (see the module's docstring).

    ``handle_kwargs`` go to :func:`~ipsinfra.abuse.handle.handle_complaint`
    (``dc_names``, ``max_targets``, ``dnsbl_lookup``, ``lang``, ``inventory``,
    ``lock_dir``, ...). ``send`` writes the letters (default
    :func:`ipsinfra.abuse.mail.send` to ``outbox``). With ``check`` nothing is
    blocked, written, stored or marked.

    ``max_blocks``: the most servers this run blocks in all (default: the smallest
    ``abuse_max_blocks_per_run`` of ``fleet``'s sites); each complaint gets what is
    left as its ``run_budget``, and one past it is only proposed.

    One run at a time per mailbox (a lock, ``lock_dir``): a schedule whose run outlasts its interval
    does not handle the same mail twice at once.

    Raises:
        MailboxError: the mailbox cannot be read at all (before any message).
        Locked: another watch of this mailbox is running.
        InvalidInput: ``max_blocks`` below 1 (before anything is read).
    """
    from ipsinfra.abuse.mail import send as send_letters

    deliver = send or send_letters
    if "run_budget" in handle_kwargs:
        raise TypeError("watch() sets each complaint's run_budget itself: pass max_blocks")
    budget = policy.run_budget_for(fleet.sites.values(), max_blocks)

    def run() -> WatchReport:
        return _watch(
            mailbox, fleet, pool, journal, abuse_from, outbox, check, deliver, limits, budget, handle_kwargs
        )

    if check:  # reads only: no lock
        return run()
    source = str(mailbox.source)
    name = "abuse-watch-" + hashlib.sha256(source.encode()).hexdigest()[:16]
    try:
        with locks.hold(name, f"abuse watch {source}", lock_dir=handle_kwargs.get("lock_dir")):
            return run()
    except Locked as exc:
        if name not in str(exc):
            raise  # a VDS lock from inside handling is not ours to rename
        raise Locked(str(exc).replace(name, f"abuse watch of {source}")) from None


def _watch(
    mailbox: Mailbox,
    fleet: Fleet,
    pool: DriverPool,
    journal: Journal,
    abuse_from: str,
    outbox: Path | None,
    check: bool,
    deliver: Callable[..., Any],
    limits: IntakeLimits,
    budget: policy.BlockBudget,
    handle_kwargs: dict[str, Any],
) -> WatchReport:
    from ipsinfra.abuse.handle import handle_complaint

    seen: dict[str, Mapping[str, Any]] = dict(journal.latest_states(SEEN_PREFIX))
    outcomes: list[MessageOutcome] = []
    budget_reached = False
    for msg in _read(mailbox, outcomes):
        if msg.raw is None:
            kind, value, mid = "source", msg.id, None
        else:
            kind, value, mid = _message_id(msg)
        key = seen_state_key(kind, value)
        if key in seen:
            before = seen[key]
            detail = f"processed before as {before.get('status')} ({before.get('source', '?')})"
            if not mailbox.can_mark:  # an mbox: every run reads it all; the store alone skips
                outcomes.append(MessageOutcome(id=msg.id, message_id=mid, status="seen", detail=detail))
                continue
            problems = [] if check else _mark(mailbox, msg, done=True)
            if not check:
                journal.record("abuse.mail", msg.id, result="ok", detail=f"duplicate, not acted on: {detail}")
            outcomes.append(
                MessageOutcome(
                    id=msg.id, message_id=mid, status="duplicate", detail=detail, problems=problems
                )
            )
            continue
        if msg.raw is None:
            reason = msg.problem or "unreadable"
            outcomes.append(_reject(mailbox, journal, seen, msg, (key, None), reason, check))
            continue
        try:
            # Bounded exactly as the intake bounds anyone's mail; a refusal is this message's.
            complaint = parse_complaint(msg.raw, mailbox_date=msg.mailbox_date, limits=limits)
        except InvalidInput as exc:
            outcomes.append(_reject(mailbox, journal, seen, msg, (key, mid), str(exc), check))
            continue
        rows = row_state_keys(complaint)
        if rows and all(r in seen for r in rows):
            # A report resent under another Message-ID: every row of it was acted on already.
            detail = f"every report row ({len(rows)}) was processed before"
            problems = [] if check else _mark(mailbox, msg, done=True)
            if not check:
                journal.set_state(key, {"status": "duplicate", "source": msg.id, "message_id": mid})
                journal.record("abuse.mail", msg.id, result="ok", detail=f"duplicate, not acted on: {detail}")
            outcomes.append(
                MessageOutcome(
                    id=msg.id, message_id=mid, status="duplicate", detail=detail, problems=problems
                )
            )
            continue
        try:
            result = handle_complaint(
                msg.raw,
                fleet,
                pool,
                abuse_from=abuse_from,
                journal=journal,
                mailbox_date=msg.mailbox_date,
                check=check,
                run_budget=budget,
                **handle_kwargs,
            )
        except InvalidInput as exc:
            budget = budget.spent(_servers_named(fleet, complaint), unsure=True)
            outcomes.append(_reject(mailbox, journal, seen, msg, (key, mid), str(exc), check))
            continue
        except Exception as exc:  # one message never stops the others; reported, retried
            budget = budget.spent(_servers_named(fleet, complaint), unsure=True)
            reason = f"{type(exc).__name__}: {exc}"
            if not check:
                journal.record(
                    "abuse.mail", msg.id, result="failed", detail=f"not handled, retried next run: {reason}"
                )
            outcomes.append(MessageOutcome(id=msg.id, message_id=mid, status="failed", detail=reason))
            continue
        budget = budget.spent(len(result.blocked_servers))
        if result.proposal is not None and any(
            r.startswith(policy.BUDGET_REASON) for r in result.proposal.reasons
        ):
            budget_reached = True
        outcomes.append(
            _handled(mailbox, journal, seen, msg, (key, mid, rows), result, outbox, deliver, check)
        )
    return WatchReport(
        source=str(mailbox.source),
        check=check,
        messages=outcomes,
        max_blocks=budget.limit,
        blocked=budget.blocked,
        maybe_blocked=budget.unsure,
        budget_reached=budget_reached,
    )


def _servers_named(fleet: Fleet, complaint: Any) -> int:
    """How many of our servers ``complaint`` names. A handling that stopped half-way may have
    blocked any of them: the run's budget is charged for all, never for fewer than it did."""
    return len({owners[0] for ip in complaint.ips if (owners := fleet.owners_of_ip(ip))})


def _read(mailbox: Mailbox, outcomes: list[MessageOutcome]) -> Iterator[MailMessage]:
    """The mailbox's messages; a connection lost half-way ends the run with what was done reported
    (a mailbox that cannot be read at all raises: nothing was done)."""
    messages = mailbox.messages()
    while True:
        try:
            msg = next(messages)
        except StopIteration:
            return
        except MailboxError as exc:
            if not outcomes:
                raise
            outcomes.append(
                MessageOutcome(id=str(mailbox.source), status="failed", detail=f"reading stopped: {exc}")
            )
            return
        yield msg


def _handled(
    mailbox: Mailbox,
    journal: Journal,
    seen: dict[str, Mapping[str, Any]],
    msg: MailMessage,
    identity: tuple[str, str | None, list[str]],
    result: Any,
    outbox: Path | None,
    deliver: Callable[..., Any],
    check: bool,
) -> MessageOutcome:
    key, mid, rows = identity
    problems = [f"{s.ip} ({s.server}): refused: {s.detail}" for s in result.refused]
    problems += [f"letter not drafted: {p}" for p in result.letter_problems]
    letters: list[str] = []
    if check:
        letters = [f"{x.kind.value} to {x.to}: drafted, not sent (--check)" for x in result.letters]
    elif result.letters:
        try:
            report = deliver(result.letters, smtp=None, outbox=outbox)
        except Exception as exc:  # the block stands; the letters are reported
            problems.append(f"letters not written: {type(exc).__name__}: {exc}")
        else:
            letters = [f"{d.kind} to {d.to}: {d.path or d.via}" for d in report.deliveries]
            problems += [f"letter {d.kind} to {d.to}: {d.error}" for d in report.failed]
    # The block stands and the message is done; a record that does not follow it needs a person.
    inventory = inventory_outcome(result.inventory_change, result)
    if inventory is not None and inventory.problem is not None:
        problems.append(inventory.problem)
    proposal = (
        result.proposal.id if result.proposal is not None and result.proposal.status == "proposed" else None
    )
    services = [f"{s.ip} ({s.server or 'not ours'}): {s.action}" for s in result.services]
    verdict = result.verdict
    status: Status = "checked" if check else "done"
    if not check:
        state = {
            "status": "done",
            "source": msg.id,
            "message_id": mid,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "category": verdict.category,
            "services": services,
            "proposal": proposal,
        }
        row_state = {"status": "done", "source": msg.id, "message": key}
        journal.set_states({key: state, **dict.fromkeys(rows, row_state)})
        seen[key] = state
        seen.update(dict.fromkeys(rows, row_state))
        journal.record(
            "abuse.mail",
            msg.id,
            result="failed" if problems else "ok",
            detail=f"{verdict.category}: "
            + ("; ".join(services) or "no IP of ours")
            + (f"; proposal {proposal}" if proposal else "")
            + (f"; inventory NOT updated: {inventory.error}" if inventory and inventory.error else ""),
        )
        problems += _mark(mailbox, msg, done=True)
    return MessageOutcome(
        id=msg.id,
        message_id=mid,
        status=status,
        category=verdict.category,
        immediate=verdict.immediate,
        received_at=result.complaint.received_at,
        services=services,
        proposal=proposal,
        held=list(result.proposal.reasons) if proposal is not None else [],
        letters=letters,
        problems=problems,
        inventory_change=inventory,
        detail="immediate" if verdict.immediate else f"react by {verdict.deadline.isoformat()}",
    )


def _reject(
    mailbox: Mailbox,
    journal: Journal,
    seen: dict[str, Mapping[str, Any]],
    msg: MailMessage,
    identity: tuple[str, str | None],
    reason: str,
    check: bool,
) -> MessageOutcome:
    """A message the intake refuses: remembered and marked failed, never retried by itself."""
    key, mid = identity
    if not check:
        state = {
            "status": "rejected",
            "source": msg.id,
            "message_id": mid,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "reason": reason[:500],
        }
        journal.set_state(key, state)
        seen[key] = state
        journal.record("abuse.mail", msg.id, result="refused", detail=reason[:500])
    problems = [] if check else _mark(mailbox, msg, done=False)
    return MessageOutcome(id=msg.id, message_id=mid, status="rejected", detail=reason, problems=problems)


def _mark(mailbox: Mailbox, msg: MailMessage, *, done: bool) -> list[str]:
    if not mailbox.can_mark:
        return []
    try:
        if done:
            mailbox.mark_done(msg)
        else:
            mailbox.mark_failed(msg)
    except MailboxError as exc:
        # The store remembers it all the same: the next run skips it as a duplicate.
        return [f"not marked in the mailbox: {exc}"]
    return []
