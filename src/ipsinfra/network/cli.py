"""``ipsinfra portmap``: poll the switches, diff with the recorded map, keep it current (§4.6).

The lead mounts :data:`app` as ``ipsinfra portmap``. ``--check`` touches
nothing; ``--write`` rewrites ``<inventory>/switch_ports.<site>.yml``;
``--set-descriptions`` writes server names into port descriptions on the
switches after printing the diff. Exit status: 0 nothing to do, 1 a switch
failed or the map / descriptions differ and were not updated, 2 bad input.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import typer

from ipsinfra.errors import IpsinfraError
from ipsinfra.inventory_source import OPTION_HELP, resolve_inventory
from ipsinfra.models import Switch
from ipsinfra.network.portmap import PortMap, PortMapDiff, build_port_map, diff_port_map
from ipsinfra.network.portmap_file import map_file_path, read_port_map, write_port_map
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
) -> int:
    """Poll, diff per site, print, and apply what was asked.

    Returns the exit status: 0 the map is current, 1 a switch failed or the map
    / descriptions differ and were not updated (bad input is 2, from the CLI).
    """

    def creds(sw: Switch) -> SwitchCredentials:
        base = SwitchCredentials.for_switch(sw)
        return SwitchCredentials(password=base.password, key_file=key_file)

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
        recorded = read_port_map(path)
        diff = diff_port_map(recorded, observed, switches=answered)
        mapped = f"{len(observed.ports)} ports mapped on {len(answered)}/{len(site_switches)} switches"
        echo(f"site {site}: {mapped}")
        for line in diff.lines():
            echo(f"  {line}")
        for c in observed.conflicts:
            echo(f"  conflict  {c.switch} {c.port}: MACs of {', '.join(c.servers)}")
        if write and diff.changed:
            merged = _merge(recorded, observed, answered)
            write_port_map(path, merged, site)
            echo(f"  wrote {path}")
        elif diff.changed and status == 0:
            status = 1
        if set_descr and diff.description_mismatches:
            status = max(
                status, _set_descriptions(site_switches, diff, key_file, timeout, journal, echo, platforms)
            )
        elif diff.description_mismatches and status == 0:
            status = 1
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
        base = SwitchCredentials.for_switch(sw)
        try:
            done = set_descriptions(
                sw,
                wanted,
                credentials=SwitchCredentials(password=base.password, key_file=key_file),
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
    key_file: Annotated[str | None, typer.Option(help="SSH private key for the switches")] = None,
    timeout: Annotated[float, typer.Option(help="seconds per switch login/command")] = 20.0,
    workers: Annotated[
        int | None, typer.Option(help="switches polled at once (default: all, at most 64)")
    ] = None,
    journal_url: Annotated[
        str | None, typer.Option("--journal", help="journal URL for description writes")
    ] = None,
    hypervisors: Annotated[
        bool,
        typer.Option(
            "--hypervisors/--no-hypervisors",
            help="take VDS MACs from the hypervisors (what runs now), not only the inventory",
        ),
    ] = True,
) -> None:
    """Poll the switches and print what moved, appeared, vanished and which descriptions are wrong."""
    from ipsinfra.inventory import load

    if check and (write or set_descriptions_):
        raise typer.BadParameter("--check touches nothing; drop --write/--set-descriptions")
    inventory = resolve_inventory(inventory)
    fleet = load(inventory)  # bad input: ipsinfra's CLI prints one line and exits 2
    switches = [
        s
        for s in fleet.switches.values()
        if (not site or s.site in site) and (not switch or s.name in switch)
    ]
    if not switches:
        typer.echo("no switches selected", err=True)
        raise typer.Exit(1)
    journal = None
    if set_descriptions_:
        from ipsinfra.journal import Journal

        journal = Journal(journal_url)
    try:
        macs = server_macs_of(fleet)
        if hypervisors:
            macs.update(server_macs_from_hypervisors(fleet, echo=typer.echo))
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
        )
    finally:
        if journal is not None:
            journal.close()
    raise typer.Exit(status)
