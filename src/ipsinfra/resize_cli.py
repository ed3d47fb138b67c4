"""``ipsinfra resize``: upgrade or downgrade a VDS (§6).

Register it on the main CLI as a command (not a sub-app: a click group would
take options only before NAME): ``app.command("resize")(resize_cli.resize_cmd)``,
then ``ipsinfra resize NAME --ticket N --vcpus 4 --price vcpus=300``.
``app`` is a stand-alone Typer with that one command (``python -m`` style use).
``--cores`` is the old name of ``--vcpus``: it still works, hidden, with a
warning on stderr.

Exit codes, as the main CLI's: 0 done (or nothing to do), 1 not verified,
2 refused (InvalidInput and friends, raised for ``ipsinfra.cli.main`` to map;
nothing was changed).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from ipsinfra.cli_support import VDS_NAME_HELP, dump_json, progress, vds_name, warn_deprecated
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
    """``["vcpus=300"]`` -> ``{"vcpus": "300"}``; InvalidInput names the malformed item."""
    prices: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidInput(f"price: value {item!r}: write <param>=<price>, e.g. vcpus=300")
        prices[key.strip()] = value.strip()
    return prices


def resize_cmd(
    name: Annotated[str, typer.Argument(help=VDS_NAME_HELP, show_default=False)],
    ticket: Annotated[int, typer.Option(help="The ticket the change was ordered (and paid) in.")],
    vcpus: Annotated[int | None, typer.Option("--vcpus", help="New vCPU count.", show_default=False)] = None,
    memory: Annotated[int | None, typer.Option(help="New memory, MiB.", show_default=False)] = None,
    disk: Annotated[
        int | None, typer.Option(help="New disk size, GiB (growth only).", show_default=False)
    ] = None,
    disk_name: Annotated[
        str | None, typer.Option(help="Which disk (disk0, scsi0...); the first when unset.")
    ] = None,
    price: Annotated[
        list[str] | None,
        typer.Option(
            "--price",
            help="Price of an upgraded parameter, PARAM=PRICE with PARAM vcpus, memory or disk (repeatable).",
        ),
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
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress on stderr (shown only on a terminal anyway).")
    ] = False,
    cores: Annotated[
        int | None, typer.Option("--cores", hidden=True, help="Deprecated: use --vcpus.")
    ] = None,
) -> None:
    """Resize a VDS: the order gets a line Upgrade(Ticket<N>): <param>=<price> per upgraded parameter."""
    from ipsinfra import inventory as inv
    from ipsinfra.hypervisors import DriverPool
    from ipsinfra.journal import Journal, default_journal_url
    from ipsinfra.resize import resize

    if cores is not None:
        warn_deprecated("--cores", "--vcpus")
        if vcpus is not None and vcpus != cores:
            raise InvalidInput(f"vcpus: value {vcpus}: --cores (deprecated) says {cores}; give only --vcpus")
        vcpus = cores
    if vcpus is not None and vcpus < 1:
        raise InvalidInput(f"vcpus: value {vcpus}: a VDS needs at least 1 vCPU")
    name = vds_name(name)
    prices = parse_prices(price)
    if "vcpus" in prices:  # the order line keeps the library's (and the house's) word
        prices["cores"] = prices.pop("vcpus")
    inventory = resolve_inventory(inventory)
    fleet = inv.load(inventory)
    with (
        DriverPool(fleet.nodes) as pool,
        Journal(journal or default_journal_url()) as jr,
        progress(f"resize {name}" + (": planning" if check else ""), quiet=quiet),
        _vcpus_named_as_given(),
    ):
        result = resize(
            name,
            fleet,
            pool,
            ticket=ticket,
            cores=vcpus,
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
        print(dump_json(result.model_dump(mode="json")))
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


@contextlib.contextmanager
def _vcpus_named_as_given() -> Iterator[None]:
    """The library calls the vCPU count ``cores``; the CLI's flag is ``--vcpus``: errors say so."""
    try:
        yield
    except InvalidInput as exc:
        text = str(exc)
        for old, new in (("prices.cores:", "price vcpus:"), ("cores:", "vcpus:")):
            if text.startswith(old):
                raise type(exc)(new + text.removeprefix(old)) from None
        raise


app.command("resize")(resize_cmd)
