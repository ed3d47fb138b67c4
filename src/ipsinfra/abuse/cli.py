"""``ipsinfra abuse``: DNSBL checks and complaint classification.

Exit codes: 0 nothing found (not listed / not immediate), 1 a finding (listed,
a failed DNSBL query, an immediate complaint), 2 bad input (one line naming the
field and the value).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from ipsinfra.abuse import dnsbl
from ipsinfra.abuse.classify import classify
from ipsinfra.abuse.intake import parse_complaint
from ipsinfra.errors import InvalidInput, OperationTimeout

__all__ = ["app"]

EXIT_OK, EXIT_FINDING, EXIT_BAD_INPUT = 0, 1, 2

app = typer.Typer(
    help="Abuse complaints (§7): DNSBL checks and complaint classification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    print(f"ipsinfra: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


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
    received_at: Annotated[
        str | None, typer.Option(help="ISO time it arrived (default: its Date header, else now).")
    ] = None,
    dc_hours: Annotated[int | None, typer.Option(help="The DC's stated reaction time, hours.")] = None,
    default_hours: Annotated[int, typer.Option(help="Deadline when the DC states none (24-48).")] = 24,
    as_json: JsonOpt = False,
) -> None:
    """Parse and classify one complaint: exit 1 when it needs an immediate reaction."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        _fail(f"file: value {str(file)!r}: {exc.strerror}")
    when: dt.datetime | None = None
    if received_at is not None:
        try:
            when = dt.datetime.fromisoformat(received_at)
        except ValueError:
            _fail(f"received_at: value {received_at!r}: not an ISO 8601 time")
    elif email.message_from_bytes(raw, policy=email.policy.default).get("Date") is None:
        when = dt.datetime.now(dt.UTC)
    try:
        complaint = parse_complaint(raw, received_at=when)
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
        print(f"deadline:  {verdict.deadline.isoformat()}")
        for reason in verdict.reasons:
            print(f"  - {reason}")
    if verdict.immediate:
        raise typer.Exit(EXIT_FINDING)


@app.command("handle")
def handle_cmd(
    path: Annotated[Path, typer.Argument(help="The complaint (.eml or text); '-' for stdin.")],
    abuse_from: Annotated[str, typer.Option(help="Our abuse address, the letters' sender.")],
    outbox: Annotated[Path, typer.Option(help="Folder the letters are written to (.eml).")],
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory directory.")] = Path(
        "inventory/example"
    ),
    journal: Annotated[str | None, typer.Option(help="Journal URL or SQLite path.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Prove and plan only; change nothing.")] = False,
    lang: Annotated[str, typer.Option(help="The client's ticket language: en or ru.")] = "en",
    as_json: JsonOpt = False,
) -> None:
    """§7 end to end: classify, block what is immediate (proven first), cancel (§7.2), write the letters."""
    from ipsinfra import inventory as inv
    from ipsinfra.abuse.handle import handle_complaint
    from ipsinfra.abuse.mail import send
    from ipsinfra.hypervisors import DriverPool
    from ipsinfra.journal import Journal, default_journal_url

    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        _fail(f"path: value {str(path)!r}: {exc.strerror}")
    fleet = inv.load(inventory)
    with DriverPool(fleet.nodes) as pool, Journal(journal or default_journal_url()) as jr:
        result = handle_complaint(raw, fleet, pool, abuse_from=abuse_from, journal=jr, check=check, lang=lang)
        report = send(result.letters, smtp=None, outbox=None if check else outbox)
    if as_json:
        _print_json(
            {
                "verdict": result.verdict.model_dump(mode="json"),
                "services": [s.model_dump(mode="json", exclude={"block"}) for s in result.services],
                "letters": [d.model_dump(mode="json") for d in report.deliveries],
            }
        )
    else:
        v = result.verdict
        print(f"{v.category}: {'immediate' if v.immediate else 'react by ' + v.deadline.isoformat()}")
        for s in result.services:
            print(f"{s.ip} ({s.server or 'not ours'}): {s.action}{', cancelled' if s.cancelled else ''}")
        for d in report.deliveries:
            print(f"letter {d.kind} to {d.to}: {d.path or d.via}")
    if result.refused:
        raise typer.Exit(EXIT_FINDING)
