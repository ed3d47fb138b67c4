"""``ipsinfra abuse fetch`` and ``ipsinfra abuse watch``: the abuse mailbox from the command line.

``fetch SOURCE``: read the new messages, classify each, print them; nothing is
marked, stored or acted on. Exit 0 nothing immediate, 1 an immediate complaint
or a message that cannot be read, 2 bad input or a mailbox that cannot be read.

``watch SOURCE -i INVENTORY``: what a schedule runs (see
:mod:`ipsinfra.abuse.watch`). Exit 0: every new message handled (or none
new) and nothing waits for a person; 1: a message rejected or failed, a target
refused, a letter not written, the inventory not updated after a block (the
block stands; the diff to apply by hand is printed), or a proposal waiting for
``ipsinfra abuse handle --confirm <id>`` (among them the complaints past the run's ``--max-blocks``),
or another watch of the same mailbox still running
(nothing done by this one); 2: bad input, or the mailbox unreachable, its
certificate not verified, the login or folder refused (one line naming the
server and the reason; nothing was done).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ipsinfra.abuse import dnsbl as dnsbl_module
from ipsinfra.abuse.cli import (
    EXIT_BAD_INPUT,
    EXIT_FINDING,
    AbuseFromOpt,
    InventoryOpt,
    JournalOpt,
    JsonOpt,
    OutboxOpt,
    _dnsbl_lookup,
    _fail,
    _print_json,
)
from ipsinfra.abuse.intake import DEFAULT_LIMITS
from ipsinfra.abuse.mailbox import PASSWORD_ENV, Mailbox, MailboxError, Source, open_mailbox, parse_source
from ipsinfra.errors import InvalidInput, Locked
from ipsinfra.inventory_source import resolve_inventory

__all__ = ["fetch_cmd", "watch_cmd"]

SourceArg = Annotated[
    str,
    typer.Argument(
        help="imaps://user@host:port/FOLDER (port 993 and INBOX by default), maildir:PATH or mbox:PATH.",
        show_default=False,
    ),
]
CaFileOpt = Annotated[
    Path | None, typer.Option(help="CA certificate(s) to verify the IMAP server with (a private CA).")
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        help=f"File holding the IMAP password, mode 0600 (else ${PASSWORD_ENV}).", show_default=False
    ),
]
TimeoutOpt = Annotated[float, typer.Option(min=1, help="Seconds to wait for the IMAP server.")]
MaxBytesOpt = Annotated[
    int, typer.Option(min=1, help="A message larger than this is refused, not read (bytes).")
]


def _open(
    source: str | Source,
    *,
    ca_file: Path | None,
    password_file: Path | None,
    timeout: float,
    max_bytes: int,
    read_only: bool,
    done_folder: str | None = None,
    mark_seen: bool = False,
) -> Mailbox:
    try:
        return open_mailbox(
            source,
            password_file=password_file,
            ca_file=ca_file,
            done_folder=done_folder,
            mark_seen=mark_seen,
            read_only=read_only,
            timeout=timeout,
            max_bytes=max_bytes,
        )
    except (InvalidInput, MailboxError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)


def fetch_cmd(
    source: SourceArg,
    ca_file: CaFileOpt = None,
    password_file: PasswordFileOpt = None,
    journal: Annotated[
        str | None, typer.Option(help="Journal URL or SQLite path: messages it remembers show as seen.")
    ] = None,
    timeout: TimeoutOpt = 30.0,
    max_bytes: MaxBytesOpt = DEFAULT_LIMITS.max_bytes,
    as_json: JsonOpt = False,
) -> None:
    """Read the new complaints of a mailbox and classify each; nothing is marked or acted on."""
    from ipsinfra.abuse.watch import fetch
    from ipsinfra.journal import Journal, JournalNotFound, default_journal_url

    limits = DEFAULT_LIMITS.model_copy(update={"max_bytes": max_bytes})
    store: Journal | None = None
    try:
        store = Journal(journal or default_journal_url(create=False), create=False)
    except JournalNotFound:
        store = None  # no journal yet: everything is new
    except InvalidInput as exc:
        _fail(str(exc))
    mailbox = _open(
        source,
        ca_file=ca_file,
        password_file=password_file,
        timeout=timeout,
        max_bytes=max_bytes,
        read_only=True,
    )
    try:
        with mailbox:
            found = fetch(mailbox, journal=store, limits=limits)
    except MailboxError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    finally:
        if store is not None:
            store.close()
    if as_json:
        _print_json({"source": str(mailbox.source), "messages": [m.model_dump(mode="json") for m in found]})
    else:
        for m in found:
            if m.status == "new":
                targets = ", ".join(m.targets) or "(none)"
                urgency = "IMMEDIATE" if m.immediate else m.detail
                print(f"{m.id}\n  from {m.sender or '(unknown)'}: {m.subject}")
                print(f"  {m.category}, {urgency}; {targets}")
            else:
                print(f"{m.id}\n  {m.status}: {m.detail}")
        print(f"{mailbox.source}: {sum(1 for m in found if m.status == 'new')} new, {len(found)} read")
    if any(m.status == "rejected" or m.immediate for m in found):
        raise typer.Exit(EXIT_FINDING)


def watch_cmd(
    source: SourceArg,
    abuse_from: AbuseFromOpt = "",
    outbox: OutboxOpt = None,
    inventory: InventoryOpt = None,
    journal: JournalOpt = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Read, prove and plan only: nothing blocked, written, stored or marked."
        ),
    ] = False,
    ca_file: CaFileOpt = None,
    password_file: PasswordFileOpt = None,
    done_folder: Annotated[
        str | None, typer.Option(help="IMAP: move each processed message to this folder.")
    ] = None,
    seen: Annotated[
        bool, typer.Option("--seen", help="IMAP: also set \\Seen on processed messages.")
    ] = False,
    lang: Annotated[str, typer.Option(help="The client's ticket language: en or ru.")] = "en",
    dc_list: Annotated[Path | None, typer.Option(help="The DC's server list, CSV ip,name (§4.4).")] = None,
    max_targets: Annotated[
        int | None,
        typer.Option(min=1, help="Act at once on a complaint naming up to this many of our servers."),
    ] = None,
    max_blocks: Annotated[
        int | None,
        typer.Option(
            help="Block at most this many servers in this run, in all; every further immediate "
            "complaint is only proposed. Default: the smallest abuse_max_blocks_per_run of the "
            "inventory's sites (5 unless set).",
            show_default=False,
        ),
    ] = None,
    dnsbl: Annotated[
        bool, typer.Option("--dnsbl/--no-dnsbl", help="Confirm SBL notices by a DNSBL look-up (§7.2).")
    ] = True,
    dnsbl_resolver: Annotated[str | None, typer.Option(help="Name server for the DNSBL look-up.")] = None,
    dnsbl_port: Annotated[int, typer.Option(help="Its port.")] = 53,
    dnsbl_zone: Annotated[str, typer.Option(help="DNSBL zone.")] = dnsbl_module.DEFAULT_ZONE,
    dqs_key: Annotated[
        str | None, typer.Option(help="Spamhaus DQS key (or env IPSINFRA_DQS_KEY).", show_default=False)
    ] = None,
    timeout: TimeoutOpt = 30.0,
    max_bytes: MaxBytesOpt = DEFAULT_LIMITS.max_bytes,
    as_json: JsonOpt = False,
) -> None:
    """Handle every new complaint of a mailbox once (§7, within the blast-radius limits), write the
    letters, mark the mail; exit 0 done, 1 something failed or waits for a person, 2 bad input or
    the mailbox cannot be read."""
    from ipsinfra import inventory as inv
    from ipsinfra.abuse.watch import watch
    from ipsinfra.audit import load_dc_names
    from ipsinfra.hypervisors import DriverPool
    from ipsinfra.journal import Journal, default_journal_url

    try:
        where = parse_source(source)  # a bad source fails before anything is read or opened
    except InvalidInput as exc:
        _fail(str(exc))
    if max_blocks is not None and max_blocks < 1:
        _fail(f"--max-blocks: value {max_blocks}: must be at least 1 (the most servers this run blocks)")
    if not abuse_from:
        _fail("abuse_from: value '': --abuse-from is required (the letters' sender)")
    if outbox is None and not check:
        _fail("outbox: value None: --outbox is required (where the letters are written)")
    try:
        dc_names = load_dc_names(dc_list) if dc_list is not None else None
        inventory = resolve_inventory(inventory)
        fleet = inv.load(inventory)
    except InvalidInput as exc:
        _fail(str(exc))
    lookup = _dnsbl_lookup(dnsbl, dqs_key, dnsbl_resolver, dnsbl_port, dnsbl_zone)

    mailbox = _open(
        where,
        ca_file=ca_file,
        password_file=password_file,
        timeout=timeout,
        max_bytes=max_bytes,
        read_only=check,
        done_folder=done_folder,
        mark_seen=seen,
    )
    limits = DEFAULT_LIMITS.model_copy(update={"max_bytes": max_bytes})
    try:
        with mailbox, DriverPool(fleet.nodes) as pool, Journal(journal or default_journal_url()) as jr:
            report = watch(
                mailbox,
                fleet,
                pool,
                journal=jr,
                abuse_from=abuse_from,
                outbox=outbox,
                check=check,
                limits=limits,
                lang=lang,
                inventory=inventory,
                dc_names=dc_names,
                max_targets=max_targets,
                max_blocks=max_blocks,
                dnsbl_lookup=lookup,
            )
    except MailboxError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    except Locked as exc:  # the previous run has not finished: nothing done now, it does the work
        _fail(str(exc), EXIT_FINDING)
    if as_json:
        _print_json(
            {
                **report.model_dump(mode="json"),
                "summary": report.summary(),
                "exit_code": report.exit_code,
            }
        )
    else:
        _print_report(report)
    raise typer.Exit(report.exit_code)


def _print_report(report: Any) -> None:
    for m in report.messages:
        if m.status == "seen":
            continue  # an mbox read again: the store skips what it processed; not news
        head = f"{m.id}: {m.status}"
        if m.category:
            head += f", {m.category} ({m.detail})"
        elif m.detail:
            head += f": {m.detail}"
        print(head)
        for line in m.services:
            print(f"  {line}")
        if m.proposal:
            print(
                f"  PROPOSAL {m.proposal}: nothing was blocked; ipsinfra abuse handle --confirm {m.proposal}"
            )
            for why in m.held:
                print(f"    held: {why}")
        inventory = m.inventory_change
        for line in inventory.notes() if inventory is not None else []:
            print(f"  {line}")
        for line in m.letters:
            print(f"  letter {line}")
        for line in m.problems:
            print(f"  PROBLEM: {line}")
        if inventory is not None and (inventory.error or inventory.checked_only):
            for line in inventory.diff.splitlines():  # what to apply by hand (--check: what it would write)
                print(f"    {line}")
    print(report.summary() + (" (--check: nothing changed)" if report.check else ""))
