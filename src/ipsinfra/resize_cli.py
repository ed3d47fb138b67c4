"""``ipsinfra resize``: upgrade or downgrade a VDS (§6).

Register it on the main CLI as a command (not a sub-app: a click group would
take options only before NAME): ``app.command("resize")(resize_cli.resize_cmd)``,
then ``ipsinfra resize NAME --ticket N --cores 4 --price cores=300``.
``app`` is a stand-alone Typer with that one command (``python -m`` style use).

Exit codes, as the main CLI's: 0 done (or nothing to do), 1 not verified,
2 refused (InvalidInput and friends, raised for ``ipsinfra.cli.main`` to map;
nothing was changed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ipsinfra.errors import InvalidInput
from ipsinfra.inventory_source import OPTION_HELP, resolve_inventory

__all__ = ["app", "parse_prices", "resize_cmd"]

EXIT_FAILED = 1

app = typer.Typer(
    help="Upgrade or downgrade a VDS (§6): vCPUs, memory, disk growth; verified.",
    add_completion=False,
    pretty_exceptions_enable=False,
)


def parse_prices(values: list[str] | None) -> dict[str, str]:
    """``["cores=300"]`` -> ``{"cores": "300"}``; InvalidInput names the malformed item."""
    prices: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidInput(f"price: value {item!r}: write <param>=<price>, e.g. cores=300")
        prices[key.strip()] = value.strip()
    return prices


def resize_cmd(
    name: Annotated[str, typer.Argument(help="The VDS's house name, e.g. 'VPS1234(34.56)'.")],
    ticket: Annotated[int, typer.Option(help="The ticket the change was ordered (and paid) in.")],
    cores: Annotated[int | None, typer.Option(help="New vCPU count.")] = None,
    memory: Annotated[int | None, typer.Option(help="New memory, MiB.")] = None,
    disk: Annotated[int | None, typer.Option(help="New disk size, GiB (growth only).")] = None,
    disk_name: Annotated[
        str | None, typer.Option(help="Which disk (disk0, scsi0...); the first when unset.")
    ] = None,
    price: Annotated[
        list[str] | None,
        typer.Option("--price", help="Price of an upgraded parameter, <param>=<price> (repeatable)."),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Restart a running VDS when the change needs it.")
    ] = False,
    inventory: Annotated[
        Path | None, typer.Option("--inventory", "-i", help=OPTION_HELP, show_default=False)
    ] = None,
    journal: Annotated[
        str | None, typer.Option("--journal", help="Journal URL or SQLite path (default: IPSINFRA_JOURNAL).")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Plan only: print what would change.")] = False,
    write_back: Annotated[
        bool,
        typer.Option(
            "--write-back/--no-write-back",
            help="Update the inventory's files after the change (with --check: print their diff).",
        ),
    ] = True,
    commit: Annotated[
        bool,
        typer.Option(
            "--commit", help="git commit the inventory files written back (message: action, journal line)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Resize a VDS: the order gets ``Upgrade(Ticket<N>): <param>=<price>`` per upgraded parameter."""
    from ipsinfra import inventory as inv
    from ipsinfra import naming
    from ipsinfra.hypervisors import DriverPool
    from ipsinfra.journal import Journal, default_journal_url
    from ipsinfra.resize import resize

    naming.parse_vps_name(name)
    prices = parse_prices(price)
    inventory = resolve_inventory(inventory)
    fleet = inv.load(inventory)
    with DriverPool(fleet.nodes) as pool, Journal(journal or default_journal_url()) as jr:
        result = resize(
            name,
            fleet,
            pool,
            ticket=ticket,
            cores=cores,
            memory_mib=memory,
            disk_gib=disk,
            disk=disk_name,
            prices=prices,
            journal=jr,
            check=check,
            restart=restart,
            inventory=inventory if write_back else None,
        )
    from ipsinfra.cli import commit_inventory, print_inventory_change

    committed = commit_inventory(result.inventory_change, commit)
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2, default=str))
    else:
        for line in result.describe():
            print(line)
        if not result.checked_only and not result.changed:
            print(f"unchanged: {name} is at the target already")
        elif result.changed and result.ok:
            print(f"resized and verified: {name}")
        sys.stdout.flush()
        print_inventory_change(result.inventory_change, committed)
    sys.stdout.flush()
    if result.mismatches:
        raise typer.Exit(EXIT_FAILED)


app.command("resize")(resize_cmd)
