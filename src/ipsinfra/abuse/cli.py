"""``ipsinfra abuse``: DNSBL checks and complaint classification.

Exit codes: 0 nothing found (not listed / not immediate), 1 a finding (listed,
a failed DNSBL query, an immediate complaint, a letter not written), 2 bad input
(one line naming the field and the value; a complaint that is too large, too
complex or malformed is bad input and nothing is done).

``abuse handle`` also exits 3 when the complaint was turned into a proposal
(past the blast-radius limits of :mod:`ipsinfra.abuse.policy`: nothing was
blocked; ``--confirm <id>`` carries it out). 1 (a refusal, a letter not
written, the inventory not updated after a block: the block stands, the diff
to apply by hand is printed and in ``--json``'s ``inventory_change``) wins
over 3. ``--confirm`` exits 0 when it acted, or when the proposal had been
confirmed before (it says so and does nothing), 1 when a
target was refused (its proof fails now), 2 for an unknown id.

``abuse fetch`` / ``abuse watch`` read the abuse mailbox (IMAP, Maildir, mbox):
see :mod:`ipsinfra.abuse.watch_cli` for their exit codes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from ipsinfra.abuse import dnsbl
from ipsinfra.abuse import dnsbl as dnsbl_module
from ipsinfra.abuse.classify import classify
from ipsinfra.abuse.headers import AddressError
from ipsinfra.abuse.intake import DEFAULT_LIMITS, ComplaintRejected, parse_complaint
from ipsinfra.errors import InvalidInput, OperationTimeout
from ipsinfra.inventory_source import OPTION_HELP, resolve_inventory

__all__ = ["app"]

EXIT_OK, EXIT_FINDING, EXIT_BAD_INPUT, EXIT_PROPOSED = 0, 1, 2, 3

app = typer.Typer(
    help="Abuse complaints (§7): DNSBL checks and complaint classification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
# The options `abuse handle` and `abuse watch` share.
AbuseFromOpt = Annotated[str, typer.Option(help="Our abuse address, the letters' sender.")]
OutboxOpt = Annotated[Path | None, typer.Option(help="Folder the letters are written to (.eml).")]
InventoryOpt = Annotated[Path | None, typer.Option("--inventory", "-i", help=OPTION_HELP, show_default=False)]
JournalOpt = Annotated[str | None, typer.Option(help="Journal URL or SQLite path.")]


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    print(f"ipsinfra: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _dnsbl_lookup(
    enabled: bool, dqs_key: str | None, resolver: str | None, port: int, zone: str
) -> Callable[[str], dnsbl_module.DnsblResult] | None:
    """The ``--dnsbl`` look-up for handling (``None`` when off); the key falls back to $IPSINFRA_DQS_KEY."""
    if not enabled:
        return None
    key = dqs_key or os.environ.get("IPSINFRA_DQS_KEY") or None

    def lookup(ip: str) -> dnsbl_module.DnsblResult:
        return dnsbl_module.check(ip, resolver=resolver, port=port, zone=zone, dqs_key=key)

    return lookup


def _read_complaint(path: Path, field: str, max_bytes: int = DEFAULT_LIMITS.max_bytes) -> bytes:
    """The complaint's bytes; never more than ``max_bytes`` + 1 read (a 50 MB mail is refused, not loaded)."""
    try:
        if str(path) == "-":
            raw = sys.stdin.buffer.read(max_bytes + 1)
        else:
            with path.open("rb") as fh:
                raw = fh.read(max_bytes + 1)
    except OSError as exc:
        _fail(f"{field}: value {str(path)!r}: {exc.strerror}")
    if len(raw) > max_bytes:
        size = "more than" if str(path) == "-" else f"{path.stat().st_size} bytes,"
        _fail(f"{field}: value {str(path)!r}: {size} larger than the limit of {max_bytes} bytes (max_bytes)")
    return raw


RECEIVED_AT_HELP = (
    "When we received it, ISO 8601 (a naive time is UTC); for a file whose headers lie. "
    "Default: the top Received: header, else the mbox From line, else now."
)
ReceivedAtOpt = Annotated[
    str | None, typer.Option("--received-at", help=RECEIVED_AT_HELP, show_default=False)
]


def _received_at(value: str | None) -> dt.datetime | None:
    """``--received-at`` as an aware datetime (naive = UTC); exit 2 naming the flag and the value."""
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        _fail(f"--received-at: value {value!r}: not an ISO 8601 time (e.g. 2025-03-03T10:00:00+03:00)")
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _print_json(data: Any) -> None:
    print(json.dumps(data, default=str, ensure_ascii=False, indent=2))


@app.command("check")
def check_cmd(
    ips: Annotated[list[str], typer.Argument(help="IPv4/IPv6 addresses to look up.")],
    resolver: Annotated[str | None, typer.Option(help="Name server IP (default: the system's).")] = None,
    port: Annotated[int, typer.Option(help="Name server port.")] = 53,
    zone: Annotated[str, typer.Option(help="DNSBL zone.")] = dnsbl.DEFAULT_ZONE,
    dqs_key: Annotated[
        str | None, typer.Option(help="Spamhaus DQS key (or env IPSINFRA_DQS_KEY).", show_default=False)
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per look-up.")] = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Look IPs up in Spamhaus zen: exit 1 when any is listed or a query failed."""
    key = dqs_key or os.environ.get("IPSINFRA_DQS_KEY") or None
    try:
        addrs = [dnsbl.parse_ip(ip) for ip in ips]
        results = [
            dnsbl.check(a, resolver=resolver, port=port, zone=zone, dqs_key=key, timeout=timeout)
            for a in addrs
        ]
    except InvalidInput as exc:
        _fail(str(exc))
    except OperationTimeout as exc:
        _fail(str(exc), EXIT_FINDING)
    if as_json:
        _print_json([r.model_dump(mode="json") for r in results])
    else:
        for r in results:
            if r.error:
                state = f"QUERY FAILED ({r.error}); never block on this"
            elif r.listed_in:
                state = "listed in " + ", ".join(r.listed_in) + (" (actionable)" if r.actionable else "")
            else:
                state = "not listed"
            print(f"{r.ip}\t{state}")
    if any(r.error or r.listed_in for r in results):
        raise typer.Exit(EXIT_FINDING)


@app.command("classify")
def classify_cmd(
    file: Annotated[Path, typer.Argument(help="A complaint: .eml or plain text.")],
    received_at: ReceivedAtOpt = None,
    dc_hours: Annotated[int | None, typer.Option(help="The DC's stated reaction time, hours.")] = None,
    default_hours: Annotated[int, typer.Option(help="Deadline when the DC states none (24-48).")] = 24,
    max_bytes: Annotated[
        int, typer.Option(min=1, help="Refuse complaints larger than this (bytes).")
    ] = DEFAULT_LIMITS.max_bytes,
    as_json: JsonOpt = False,
) -> None:
    """Parse and classify one complaint: exit 1 when it needs an immediate reaction."""
    when = _received_at(received_at)
    raw = _read_complaint(file, "file", max_bytes)
    try:
        complaint = parse_complaint(
            raw,
            received_at=when,
            limits=DEFAULT_LIMITS.model_copy(update={"max_bytes": max_bytes}),
        )
        verdict = classify(complaint, complaint.received_at, dc_hours, default_hours=default_hours)
    except InvalidInput as exc:
        _fail(str(exc))
    if as_json:
        _print_json(
            {
                "complaint": complaint.model_dump(mode="json", exclude={"evidence", "statement"}),
                "verdict": verdict.model_dump(mode="json"),
            }
        )
    else:
        targets = ", ".join(str(x) for x in (*complaint.ips, *complaint.networks)) or "(none)"
        print(f"format:    {complaint.format.value}")
        print(f"from:      {complaint.sender or '(unknown)'}")
        print(f"targets:   {targets}")
        print(f"category:  {verdict.category}")
        print(f"immediate: {'yes' if verdict.immediate else 'no'}")
        print(f"received:  {complaint.received_at.isoformat()} ({complaint.received_source})")
        print(f"deadline:  {verdict.deadline.isoformat()}")
        for reason in verdict.reasons:
            print(f"  - {reason}")
        for case in verdict.cases:
            kind = f"{case.scheme}:{case.report_type or '-'}"
            print(f"case:      {case.ip}\t{kind}\t{case.category}\t{case.deadline.isoformat()}")
        for note in complaint.truncated:
            print(f"limit:     {note}")
        for note in complaint.notes:
            print(f"note:      {note}")
    if verdict.immediate:
        raise typer.Exit(EXIT_FINDING)


@app.command("handle")
def handle_cmd(
    path: Annotated[
        Path | None, typer.Argument(help="The complaint (.eml or text); '-' for stdin. Not with --confirm.")
    ] = None,
    abuse_from: AbuseFromOpt = "",
    outbox: OutboxOpt = None,
    inventory: InventoryOpt = None,
    journal: JournalOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Prove and plan only; change nothing.")] = False,
    lang: Annotated[str, typer.Option(help="The client's ticket language: en or ru.")] = "en",
    dc_list: Annotated[Path | None, typer.Option(help="The DC's server list, CSV ip,name (§4.4).")] = None,
    confirm: Annotated[
        str | None,
        typer.Option(help="Carry out the stored proposal with this id (P-...), each target proven again."),
    ] = None,
    max_targets: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Act at once on a complaint naming up to this many of our servers (default: site's, 1).",
        ),
    ] = None,
    received_at: ReceivedAtOpt = None,
    dnsbl: Annotated[
        bool, typer.Option("--dnsbl/--no-dnsbl", help="Confirm SBL notices by a DNSBL look-up (§7.2).")
    ] = True,
    dnsbl_resolver: Annotated[
        str | None, typer.Option(help="Name server for the DNSBL look-up (default: the system's).")
    ] = None,
    dnsbl_port: Annotated[int, typer.Option(help="Its port.")] = 53,
    dnsbl_zone: Annotated[str, typer.Option(help="DNSBL zone.")] = dnsbl.DEFAULT_ZONE,
    dqs_key: Annotated[
        str | None, typer.Option(help="Spamhaus DQS key (or env IPSINFRA_DQS_KEY).", show_default=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """§7 end to end: classify, block what is immediate (proven first) within the limits, cancel (§7.2),
    write the letters. Past the limits (an untrusted sender, an unconfirmed SBL, more servers than
    --max-targets) nothing is blocked: a proposal is stored and printed with its id (exit 3)."""
    from ipsinfra import inventory as inv
    from ipsinfra.abuse.handle import HandleResult, confirm_proposal, handle_complaint
    from ipsinfra.abuse.mail import SendReport, send
    from ipsinfra.abuse.watch import inventory_outcome
    from ipsinfra.audit import load_dc_names
    from ipsinfra.hypervisors import DriverPool
    from ipsinfra.journal import Journal, default_journal_url

    if not abuse_from:
        _fail("abuse_from: value '': --abuse-from is required (the letters' sender)")
    if outbox is None:
        _fail("outbox: value None: --outbox is required (where the letters are written)")
    if (path is None) == (confirm is None):
        _fail("path: give a complaint file, or --confirm <id>, not both and not neither")
    if confirm is not None and check:
        _fail("check: value True: --confirm carries the proposal out; it has no --check")
    if confirm is not None and received_at is not None:
        _fail(f"--received-at: value {received_at!r}: --confirm acts on a stored proposal; not with it")
    when = _received_at(received_at)
    raw = _read_complaint(path, "path") if path is not None else b""
    try:
        dc_names = load_dc_names(dc_list) if dc_list is not None else None
    except InvalidInput as exc:
        _fail(str(exc))
    lookup = _dnsbl_lookup(dnsbl, dqs_key, dnsbl_resolver, dnsbl_port, dnsbl_zone)

    try:
        inventory = resolve_inventory(inventory)
    except InvalidInput as exc:
        _fail(str(exc))
    fleet = inv.load(inventory)
    result: HandleResult
    with DriverPool(fleet.nodes) as pool, Journal(journal or default_journal_url()) as jr:
        try:
            if confirm is not None:
                result = confirm_proposal(
                    confirm,
                    fleet,
                    pool,
                    abuse_from=abuse_from,
                    journal=jr,
                    dc_names=dc_names,
                    lang=lang,
                    inventory=inventory,
                )
            else:
                result = handle_complaint(
                    raw,
                    fleet,
                    pool,
                    abuse_from=abuse_from,
                    journal=jr,
                    check=check,
                    lang=lang,
                    inventory=inventory,
                    dc_names=dc_names,
                    max_targets=max_targets,
                    dnsbl_lookup=lookup,
                    received_at=when,
                )
        except (ComplaintRejected, AddressError, InvalidInput) as exc:  # before anything is done
            _fail(str(exc))
        # Letters go after the block and never undo or hide it: send() reports each one.
        report = SendReport(deliveries=[]) if check else send(result.letters, smtp=None, outbox=outbox)
    letter_problems = [*result.letter_problems, *(f"{d.kind} to {d.to}: {d.error}" for d in report.failed)]
    inventory_change = inventory_outcome(result.inventory_change, result)
    already = getattr(result, "already", None)
    proposal = result.proposal if confirm is None else None
    if as_json:
        _print_json(
            {
                "verdict": result.verdict.model_dump(mode="json"),
                "services": [s.model_dump(mode="json", exclude={"block"}) for s in result.services],
                "letters": [d.model_dump(mode="json") for d in report.deliveries],
                "letter_problems": letter_problems,
                "received_at": result.complaint.received_at.isoformat(),
                "received_source": result.complaint.received_source,
                "notes": list(result.complaint.notes),
                "limits": list(result.complaint.truncated),
                "proposal": None
                if result.proposal is None
                else {
                    **result.proposal.model_dump(
                        mode="json", include={"id", "status", "reasons", "deadline"}
                    ),
                    "stored": result.proposal_stored,
                    "targets": [f"{t.ip} ({t.server})" for t in result.proposal.targets],
                    "letters": result.proposal.letters,
                },
                "already": already,
                "inventory_change": None
                if inventory_change is None
                else {**inventory_change.model_dump(mode="json"), "problem": inventory_change.problem},
            }
        )
    else:
        v = result.verdict
        if confirm is not None:
            print(f"proposal {confirm}: " + (already or "confirmed"))
        print(f"{v.category}: {'immediate' if v.immediate else 'react by ' + v.deadline.isoformat()}")
        for s in result.services:
            print(f"{s.ip} ({s.server or 'not ours'}): {s.action}{', cancelled' if s.cancelled else ''}")
            if s.action in {"refused", "proposed"} and s.detail:
                print(f"  {s.detail}")
        if proposal is not None:
            _print_proposal(proposal, stored=result.proposal_stored, check=check)
        for d in report.deliveries:
            print(f"letter {d.kind} to {d.to}: {d.path or d.via}" + (f" ({d.error})" if d.error else ""))
        if check:
            for letter in result.letters:
                print(f"letter {letter.kind.value} to {letter.to}: drafted, not sent (--check)")
        for problem in result.letter_problems:
            print(f"letter NOT drafted: {problem}")
        for note in result.complaint.truncated:
            print(f"limit: {note}")
        for note in result.complaint.notes:
            print(f"note: {note}")
        change = result.inventory_change
        if change is not None and (change.edits or change.error):
            print("\n".join(change.describe()))
            if change.edits and (change.checked_only or change.error is not None):
                print(change.diff(), end="")
        for line in inventory_change.by_hand if inventory_change is not None else []:
            print(f"  by hand: {line}")  # no diff could be made: what each record must say
        if inventory_change is not None and inventory_change.journal_error is not None:
            print(inventory_change.problem)
    inventory_problem = inventory_change is not None and inventory_change.problem is not None
    if result.refused or letter_problems or inventory_problem:
        raise typer.Exit(EXIT_FINDING)
    if proposal is not None and proposal.status == "proposed":
        raise typer.Exit(EXIT_PROPOSED)


def _print_proposal(proposal: Any, *, stored: bool, check: bool) -> None:
    state = (
        "not stored (--check)" if check else ("stored" if stored else f"stored before ({proposal.status})")
    )
    print(f"PROPOSAL {proposal.id} ({state}): nothing was blocked; it waits for a person")
    for reason in proposal.reasons:
        print(f"  held: {reason}")
    print(f"  deadline: {proposal.deadline.isoformat()}")
    for t in proposal.targets:
        print(f"  target: {t.ip} ({t.server}), proven: " + "; ".join(s.detail for s in t.proof.steps))
    for letter in proposal.letters:
        print(f"  letter drafted: {letter}")
    if proposal.status == "proposed" and not check:
        print(
            f"  to carry it out: ipsinfra abuse handle --confirm {proposal.id} --abuse-from ... --outbox ..."
        )


# The mailbox commands (ipsinfra.abuse.watch_cli) register here, after app and its helpers exist.
from ipsinfra.abuse import watch_cli  # noqa: E402

app.command("fetch")(watch_cli.fetch_cmd)
app.command("watch")(watch_cli.watch_cmd)
