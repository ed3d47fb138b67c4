"""``ipsinfra portmap``: poll the switches, diff with the recorded map, keep it current (§4.6).

The lead mounts :data:`app` as ``ipsinfra portmap``. ``--check`` touches
nothing; ``--write`` rewrites ``<inventory>/switch_ports.<site>.yml``;
``--set-descriptions`` writes server names into port descriptions on the
switches after printing the diff. Exit status: 0 nothing to do, 1 a switch
failed or the map / descriptions differ and were not updated, 2 bad input.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from ipsinfra.cli_support import dump_json, progress
from ipsinfra.errors import InvalidInput, IpsinfraError
from ipsinfra.inventory_source import OPTION_HELP, resolve_inventory
from ipsinfra.models import DedicatedServer, Switch
from ipsinfra.network.portmap import (
    PortMap,
    PortMapDiff,
    baseline_port_map,
    build_port_map,
    diff_with_baseline,
)
from ipsinfra.network.portmap_file import map_file_path
from ipsinfra.network.portmap_store import MapStore, open_map_store, read_recorded, write_recorded
from ipsinfra.network.switches import SwitchCredentials, collect, set_descriptions

__all__ = ["app", "run_portmap", "server_macs_of"]

app = typer.Typer(help="The switch-port map (§4.6): which server is on which port of which switch.")


def server_macs_of(fleet: Any) -> dict[str, str]:
    """``mac -> server`` from an inventory Fleet: dedicated servers' MACs and VDS NICs."""
    macs: dict[str, str] = {}
    for d in getattr(fleet, "dedicated", {}).values():
        macs.update({m: d.name for m in d.macs})
    for v in getattr(fleet, "vds", {}).values():
        macs.update({m: v.name for m in v.macs})
    return macs


def server_macs_from_hypervisors(
    fleet: Any, *, echo: Any = typer.echo, timeout: float = 60.0
) -> dict[str, str]:
    """``mac -> VDS name`` as every node's hypervisor reports it now (one bulk listing per node).

    A node that does not answer is reported and skipped: its VDS keep the
    inventory's MACs.
    """
    import concurrent.futures

    from ipsinfra.hypervisors import DriverPool

    macs: dict[str, str] = {}
    with DriverPool(fleet.nodes) as pool:
        names = list(fleet.nodes)
        if not names:
            return macs
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(names))) as ex:
            futures = {ex.submit(pool.get(n).list_vds): n for n in names}
            for fut in concurrent.futures.as_completed(futures, timeout=timeout):
                try:
                    for vds in fut.result():
                        macs.update({m: vds.name for m in vds.macs})
                except IpsinfraError as exc:
                    echo(f"node {futures[fut]}: not listed ({exc}); inventory MACs used")
    return macs


def run_portmap(
    switches: list[Switch],
    server_macs: dict[str, str],
    inventory: Path,
    *,
    hosts: set[str] | None = None,
    write: bool = False,
    set_descr: bool = False,
    key_file: str | None = None,
    timeout: float = 20.0,
    workers: int | None = None,
    journal: Any = None,
    echo: Any = typer.echo,
    platforms: Any = None,
    dedicated: Iterable[DedicatedServer] = (),
    record: list[dict[str, Any]] | None = None,
    store: MapStore | None = None,
) -> int:
    """Poll, diff per site, print, and apply what was asked.

    ``record``, when given, gets one dict per site (``--json``): the diff, the
    switches that failed, whether the map file was written.

    ``key_file`` overrides the switches' own ``ssh_key_file``. Where a site has
    no recorded map yet, the ``dedicated`` servers' ``switch``/``switch_port``
    are its baseline (:func:`recorded_or_baseline`).

    Returns the exit status: 0 the map is current (nothing differed, or
    ``write`` wrote it) and every switch answered; 1 a switch failed, a write
    failed, or without ``write``/``set_descr`` the map / descriptions differ
    (bad input is 2, from the CLI). ``write`` fixes the map only: description
    mismatches are still printed, and ``set_descr`` is what writes them.

    ``store`` (:func:`~ipsinfra.network.portmap_store.open_map_store`): the
    state store is the record of each site's map (``portmap:<site>``); the map
    file is still written where the inventory is writable, and where the two
    disagree the line printed says which one was used.
    """
    servers = list(dedicated)

    def creds(sw: Switch) -> SwitchCredentials:
        return SwitchCredentials.for_switch(sw, key_file=key_file)

    report = collect(switches, credentials=creds, timeout=timeout, max_workers=workers, platforms=platforms)
    status = 0
    for name, result in report.results.items():
        if not result.ok:
            echo(f"FAILED    {name}: {result.failure}: {result.reason}")
            status = 1
    by_site: dict[str, list[Switch]] = defaultdict(list)
    for sw in switches:
        by_site[sw.site].append(sw)
    for site, site_switches in sorted(by_site.items()):
        answered = {s.name for s in site_switches if report.results[s.name].ok}
        facts = [f for f in report.facts if f.switch in answered]
        observed = build_port_map(facts, server_macs, hosts=hosts or set())
        path = map_file_path(inventory, site)
        rec = read_recorded(path, site, store)  # the store's map when a store is named, else the file's
        recorded = rec.port_map
        baseline = baseline_port_map(servers, {s.name for s in site_switches})  # while nothing is recorded
        diff = diff_with_baseline(recorded, baseline, observed, switches=answered)
        mapped = f"{len(observed.ports)} ports mapped on {len(answered)}/{len(site_switches)} switches"
        echo(f"site {site}: {mapped}")
        if rec.note:
            echo(f"  {rec.note}")
        for line in diff.lines():
            echo(f"  {line}")
        for c in observed.conflicts:
            echo(f"  conflict  {c.switch} {c.port}: MACs of {', '.join(c.servers)}")
        written = False
        if write and (diff.changed or rec.behind):
            merged = _merge(recorded, observed, answered) if diff.changed else recorded
            done = write_recorded(rec, merged, store)
            written = done.written
            for line in done.lines():
                echo(f"  {line}")
        elif (diff.changed or rec.behind) and status == 0:
            status = 1
        if set_descr and diff.description_mismatches:
            status = max(
                status, _set_descriptions(site_switches, diff, key_file, timeout, journal, echo, platforms)
            )
        elif diff.description_mismatches and not write and status == 0:
            status = 1  # a report: descriptions to fix (--write only fixes the map)
        if record is not None:
            record.append(
                {
                    "site": site,
                    "map_file": str(path),
                    "written": written,
                    "recorded_in": rec.source,
                    "switches": sorted(s.name for s in site_switches),
                    "failed_switches": {
                        s.name: f"{report.results[s.name].failure}: {report.results[s.name].reason}"
                        for s in site_switches
                        if s.name not in answered
                    },
                    "ports_mapped": len(observed.ports),
                    **diff.model_dump(mode="json"),
                    "conflicts": [c.model_dump(mode="json") for c in observed.conflicts],
                }
            )
    return status


def _merge(recorded: PortMap, observed: PortMap, answered: set[str]) -> PortMap:
    """The observed map, plus the recorded ports of switches that did not answer."""
    kept = tuple(p for p in recorded.ports if p.switch not in answered)
    return PortMap(ports=kept + observed.ports, conflicts=observed.conflicts)


def _set_descriptions(
    switches: list[Switch], diff: PortMapDiff, key_file: str | None, timeout: float, journal: Any, echo: Any,
    platforms: Any,
) -> int:  # fmt: skip
    by_switch: dict[str, dict[str, str]] = defaultdict(dict)
    for m in diff.description_mismatches:
        by_switch[m.switch][m.port] = m.server
    status = 0
    for sw in switches:
        wanted = by_switch.get(sw.name)
        if not wanted:
            continue
        try:
            done = set_descriptions(
                sw,
                wanted,
                credentials=SwitchCredentials.for_switch(sw, key_file=key_file),
                timeout=timeout,
                journal=journal,
                platforms=platforms,
            )
        except IpsinfraError as exc:
            echo(f"  FAILED descriptions on {sw.name}: {exc}")
            status = 1
            continue
        for a in done:
            echo(
                f"  described {a.switch} {a.port}: {a.before['description']!r} -> {a.after['description']!r}"
            )
    return status


@app.callback(invoke_without_command=True)
def portmap(
    inventory: Annotated[
        Path | None, typer.Option("--inventory", "-i", help=OPTION_HELP, show_default=False)
    ] = None,
    site: Annotated[list[str] | None, typer.Option(help="only these sites (repeatable)")] = None,
    switch: Annotated[list[str] | None, typer.Option(help="only these switches (repeatable)")] = None,
    check: Annotated[bool, typer.Option("--check", help="print the diff, touch nothing")] = False,
    write: Annotated[
        bool, typer.Option("--write", help="update <inventory>/switch_ports.<site>.yml")
    ] = False,
    set_descriptions_: Annotated[
        bool, typer.Option("--set-descriptions", help="write server names into port descriptions")
    ] = False,
    key_file: Annotated[
        str | None,
        typer.Option(
            help="SSH private key for the switches (default: each switch's ansible_ssh_private_key_file)"
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds per switch login/command")] = 20.0,
    workers: Annotated[
        int | None, typer.Option(help="switches polled at once (default: all, at most 64)")
    ] = None,
    journal_url: Annotated[
        str | None,
        typer.Option(
            "--journal",
            help="state store URL (default $IPSINFRA_JOURNAL): the port map's record, and the journal "
            "of description writes",
        ),
    ] = None,
    hypervisors: Annotated[
        bool,
        typer.Option(
            "--hypervisors/--no-hypervisors",
            help="take VDS MACs from the hypervisors (what runs now), not only the inventory",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress on stderr (shown only on a terminal anyway).")
    ] = False,
) -> None:
    """Poll the switches and print what moved, appeared, vanished and which descriptions are wrong.

    Exit 0: the map is current (or --write wrote it; description mismatches
    are printed, --set-descriptions writes them); 1: a switch did not answer,
    a write failed, or (without --write/--set-descriptions) something differs;
    2: bad input.
    """
    from ipsinfra.inventory import load

    if check and (write or set_descriptions_):
        raise typer.BadParameter("--check touches nothing; drop --write/--set-descriptions")
    inventory = resolve_inventory(inventory)
    fleet = load(inventory)  # bad input: ipsinfra's CLI prints one line and exits 2
    for field, wanted, known in (
        ("site", site, {s.site for s in fleet.switches.values()}),
        ("switch", switch, set(fleet.switches)),
    ):
        for value in wanted or []:
            if value not in known:
                raise InvalidInput(f"{field}: value {value!r}: no switch of the inventory has it")
    switches = [
        s
        for s in fleet.switches.values()
        if (not site or s.site in site) and (not switch or s.name in switch)
    ]
    if not switches:
        typer.echo("no switches selected", err=True)
        raise typer.Exit(1)
    # A store named by --journal or $IPSINFRA_JOURNAL is the map's record; --check creates nothing.
    store = open_map_store(journal_url, create=not check)
    journal = store.journal if store is not None else None
    if set_descriptions_ and journal is None:
        from ipsinfra.journal import Journal

        journal = Journal(journal_url)
    lines: list[str] = []
    echo: Any = lines.append if as_json else typer.echo
    record: list[dict[str, Any]] | None = [] if as_json else None
    try:
        with progress(f"portmap: polling {len(switches)} switch(es)", quiet=quiet):
            macs = server_macs_of(fleet)
            if hypervisors:
                macs.update(server_macs_from_hypervisors(fleet, echo=echo))
            status = run_portmap(
                switches,
                macs,
                inventory,
                hosts=set(fleet.nodes),
                write=write and not check,
                set_descr=set_descriptions_ and not check,
                key_file=key_file,
                timeout=timeout,
                workers=workers,
                journal=journal,
                dedicated=fleet.dedicated.values(),
                echo=echo,
                record=record,
                store=store,
            )
    finally:
        if journal is not None:
            journal.close()
    if as_json:
        print(dump_json({"sites": record, "lines": lines, "exit_code": status}), flush=True)
    raise typer.Exit(status)
