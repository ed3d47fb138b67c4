"""The ``ipsinfra`` command line.

Exit codes: 0 done, 1 the operation failed or found problems, 2 bad input
(a one-line error naming the field and the value; nothing was changed).
``--json`` gives machines a stable document; people get tables.
The inventory is ``-i DIR``, else ``IPSINFRA_INVENTORY``, else Ansible's own
(``ANSIBLE_INVENTORY``, ansible.cfg); there is no default
(:mod:`ipsinfra.inventory_source`).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ipsinfra import naming, passwords
from ipsinfra.cli_support import (
    VDS_NAME_HELP,
    check_password_file,
    counted_progress,
    dump_json,
    progress,
    settings,
    vds_name,
    warn_deprecated,
    write_password_file,
)
from ipsinfra.errors import Conflict, InvalidInput, IpsinfraError, NotFound, TargetProofFailed
from ipsinfra.inventory_source import OPTION_HELP, resolve_inventory

EXIT_CODES = (
    "Exit codes, every command: 0 done; 1 failed, or findings to act on; 2 bad input "
    "(one line naming the field and the value; nothing was changed). "
    "abuse handle also: 3 proposed, waiting for --confirm."
)

app = typer.Typer(
    name="ipsinfra",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
journal_app = typer.Typer(help="The append-only action journal (§11.6).", no_args_is_help=True)
inventory_app = typer.Typer(help="The fleet as the inventory describes it.", no_args_is_help=True)
app.add_typer(journal_app, name="journal")
app.add_typer(inventory_app, name="inventory")


def _mount_subapps() -> None:
    from ipsinfra.abuse.cli import app as abuse_app
    from ipsinfra.hostkeys_cli import trust_cmd
    from ipsinfra.network.cli import app as portmap_app
    from ipsinfra.resize_cli import resize_cmd

    app.add_typer(abuse_app, name="abuse")
    if portmap_app.registered_commands or portmap_app.registered_groups:
        app.add_typer(portmap_app, name="portmap")  # subcommands: a group that lists them
    else:  # one job: a plain command, so its help shows no COMMAND placeholder
        assert portmap_app.registered_callback is not None
        callback = portmap_app.registered_callback.callback
        assert callback is not None
        app.command("portmap")(callback)
    app.command("resize")(resize_cmd)
    app.command("trust")(trust_cmd)


_mount_subapps()

# Pipes and CI logs get wide tables rather than truncated cells.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress on stderr (shown only on a terminal anyway).")
]
# No default: resolve_inventory() takes -i, else IPSINFRA_INVENTORY, else Ansible's own setting.
InventoryOpt = Annotated[Path | None, typer.Option("--inventory", "-i", help=OPTION_HELP, show_default=False)]

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    err.print(f"ipsinfra: error: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        print_json(data)
    else:
        render()


def print_json(data: Any) -> None:
    """JSON on stdout in the CLI's one style (UTF-8 as is: ``§``, never ``\\u00a7``)."""
    print(dump_json(data), flush=True)  # not through rich: no markup, no :emoji: codes


def version_string() -> str:
    """The installed distribution's version (importlib.metadata), else the package's own."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ipsinfra")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from ipsinfra import __version__

        return __version__


def _show_version(value: bool) -> None:
    if value:
        out.print(f"ipsinfra {version_string()}", markup=False, highlight=False)
        raise typer.Exit(EXIT_OK)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """A hosting provider's support rules as code (see RULES.md section numbers).

    Every command that reports takes --json; every VDS argument takes the house
    name VPS1234(34.56) or its DNS-safe twin VPS1234-34-56. Long steps show
    progress on stderr when it is a terminal (--quiet: never). Shell
    completion: --install-completion, or `ipsinfra completion bash|zsh|fish`.
    """
    settings.quiet = quiet


@app.command("completion")
def completion_cmd(
    shell: Annotated[str, typer.Argument(help="bash, zsh, fish or powershell.")],
) -> None:
    """Print the shell completion script for SHELL (to source, or to save where the shell looks).

    bash: ipsinfra completion bash > ~/.local/share/bash-completion/completions/ipsinfra
    """
    from typer._completion_shared import Shells, get_completion_script

    shells = [s.value for s in Shells]
    if shell not in shells:
        fail(f"shell: value {shell!r}: use one of {', '.join(shells)}")
    script = get_completion_script(prog_name="ipsinfra", complete_var="_IPSINFRA_COMPLETE", shell=shell)
    print(script, flush=True)


@app.command("name")
def name_cmd(
    order: Annotated[str, typer.Option(help="Order number.")],
    node_ip: Annotated[str, typer.Option(help="The node's main IPv4 address.")],
    as_json: JsonOpt = False,
) -> None:
    """Print the §8.5 house name (and the Proxmox-safe twin)."""
    house = naming.vps_name(order, node_ip)
    data = {"name": house, "pve_name": naming.pve_safe_name(house)}
    emit(data, as_json, lambda: out.print(f"{house}\t{data['pve_name']}", markup=False, highlight=False))


@app.command("password")
def password_cmd(
    length: Annotated[int, typer.Option(help="Length, 12-128.")] = 20,
    check: Annotated[
        bool, typer.Option("--check", help="Read a password on stdin and say what is wrong with it.")
    ] = False,
    order: Annotated[str | None, typer.Option(help="With --check: the order number.")] = None,
    name: Annotated[str | None, typer.Option(help="With --check: the VDS name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a §4.8 password, or --check one read from stdin (never from argv)."""
    if not check:
        pw = passwords.generate(length)
        emit({"password": pw}, as_json, lambda: out.print(pw, markup=False, highlight=False))
        return
    candidate = sys.stdin.readline().rstrip("\n")
    found = passwords.problems(candidate, name=name, order=order)
    if as_json:
        print_json({"acceptable": not found, "problems": found})
    else:
        for p in found:
            out.print(f"- {p}", markup=False)
        out.print("acceptable" if not found else "refused (§4.8)")
    if found:
        raise typer.Exit(EXIT_FAILED)


@inventory_app.command("show")
def inventory_show(inventory: InventoryOpt = None, as_json: JsonOpt = False) -> None:
    """Load the inventory and print the fleet: sites, nodes, VDS, switches."""
    from ipsinfra import inventory as inv

    fleet = inv.load(resolve_inventory(inventory))
    print_fleet(fleet, as_json)


@inventory_app.command("sync")
def inventory_sync(
    inventory: InventoryOpt = None,
    journal: Annotated[
        str | None, typer.Option("--journal", help="Journal URL or SQLite path (default: IPSINFRA_JOURNAL).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Print the inventory's diff; write nothing.")
    ] = False,
    commit: Annotated[
        bool, typer.Option("--commit", help="git commit the files written (message names the journal line).")
    ] = False,
    node_timeout: Annotated[float, typer.Option(help="Seconds to wait for one node's listing.")] = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Bring the inventory in line with what the nodes report (moved, renamed, resized, IPs).

    Records are matched to VDS by order number. Records no node reports, VDS no
    record describes, and an order number seen twice are listed, never changed.
    Exit 0: nothing to change or all written; 1: something listed for a human,
    a node unreachable, or the inventory not writable; 2: bad input.
    """
    from ipsinfra import inventory as inv
    from ipsinfra.hypervisors import DriverPool
    from ipsinfra.inventory.sync import sync
    from ipsinfra.journal import Journal, default_journal_url

    path = resolve_inventory(inventory)
    fleet = inv.load(path)
    with DriverPool(fleet.nodes) as pool:
        if check:
            result = sync(path, fleet, pool, check=True, node_timeout=node_timeout)
        else:
            with Journal(journal or default_journal_url()) as jr:
                result = sync(path, fleet, pool, journal=jr, node_timeout=node_timeout)
    committed = commit_inventory(result.change, commit)

    def render() -> None:
        for n in result.plan.nodes:
            state = f"{len(n.vds)} VDS" if n.reachable else f"UNREACHABLE: {n.error}"
            out.print(f"node {n.node}: {state}", markup=False, highlight=False)
        for c in result.plan.changes:
            verb = "would change" if check else "changed"
            out.print(f"{verb}: {c.describe()}", markup=False, highlight=False)
        for f in result.plan.findings:
            out.print(f"NEEDS A HUMAN ({f.kind}): {f.message}", markup=False, highlight=False)
        print_inventory_change(result.change, committed)
        if check and result.change.edits:
            out.print("--check: nothing was written", markup=False)

    data = result.to_dict()
    data["committed"] = committed
    emit(data, as_json, render)
    raise typer.Exit(result.exit_code)


def print_fleet(fleet: Any, as_json: bool) -> None:
    if as_json:
        print_json(fleet.model_dump(mode="json"))
        return
    nodes = Table(title="Nodes")
    for col in ("node", "site", "kind", "main IP", "CPUs", "VDS"):
        nodes.add_column(col)
    for node in fleet.nodes.values():
        nodes.add_row(
            node.name,
            node.site,
            node.kind.value,
            str(node.main_ip),
            str(node.cpus),
            str(len(fleet.vds_on(node.name))),
        )
    out.print(nodes)
    vds = Table(title="VDS")
    for col in ("name", "node", "vCPUs", "cpuset", "MiB", "IPs", "autostart", "client", "flags"):
        vds.add_column(col)
    for v in fleet.vds.values():
        flags = ",".join(
            f for f, on in (("blocked", v.blocked), ("cancelled", v.cancelled), ("trial", v.trial_end)) if on
        )
        vds.add_row(
            v.name,
            v.node,
            str(v.vcpus),
            v.cpuset or "",
            str(v.memory_mib),
            " ".join(str(ip) for ip in v.ips),
            "yes" if v.autostart else "no",
            v.client or "",
            flags,
        )
    out.print(vds)
    if fleet.switches:
        sw = Table(title="Switches")
        for col in ("switch", "site", "platform", "host"):
            sw.add_column(col)
        for s in fleet.switches.values():
            sw.add_row(s.name, s.site, s.platform, f"{s.host}:{s.port}")
        out.print(sw)


JournalPathOpt = Annotated[
    str | None,
    typer.Option(
        "--journal", help="Journal URL or SQLite path (default: IPSINFRA_JOURNAL); read only, never created."
    ),
]
# The journal commands' old name for --journal: still works, hidden, with a note on stderr.
UrlAliasOpt = Annotated[str | None, typer.Option("--url", hidden=True, help="Deprecated: use --journal.")]
KeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="File holding the HMAC key (default: IPSINFRA_JOURNAL_KEY_FILE, else the key in "
        "IPSINFRA_JOURNAL_KEY). Never given on the command line.",
    ),
]


def _read_journal(
    journal: str | None, url: str | None, key_file: Path | None = None, *, keyed: bool = False
) -> Any:
    """The journal to read: it must exist (a typo is exit 2, not a new empty journal)."""
    from ipsinfra.journal import Journal, default_journal_url, load_key

    if url is not None:
        err.print("ipsinfra: warning: --url is deprecated; use --journal", markup=False, highlight=False)
        if journal is not None and journal != url:
            fail(f"journal: value {url!r}: --url (deprecated) and --journal name different journals")
        journal = url
    key = load_key(key_file) if keyed else None
    return Journal(journal or default_journal_url(create=False), key=key, create=False)


@journal_app.command("verify")
def journal_verify(
    journal: JournalPathOpt = None,
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            metavar="SEQ:HASH",
            help="A head printed earlier by `journal head`: a removed tail, an emptied table or a "
            "rewritten chain up to it is caught.",
        ),
    ] = None,
    key_file: KeyFileOpt = None,
    url: UrlAliasOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the chain, the state table, the MACs (with a key) and an anchor.

    Exit 0 intact, 1 tampered, 2 the journal cannot be read (missing, not a journal).
    """
    from ipsinfra.journal import parse_anchor

    anchor = parse_anchor(expect_head) if expect_head is not None else None
    with _read_journal(journal, url, key_file, keyed=True) as jr:
        keyed = jr.key is not None
        report = jr.verify(anchor)
    data = {
        "ok": report.ok,
        "checked": report.checked,
        "problems": report.problems,
        "notes": report.notes,
        "head": str(report.head),
        "keyed": keyed,
        "macs_checked": report.macs_checked,
        "state_rows_checked": report.state_rows_checked,
        "expect_head": None if anchor is None else str(anchor),
    }

    def render() -> None:
        for p in report.problems:
            out.print(f"- {p}", markup=False, highlight=False)
        for n in report.notes:
            out.print(f"note: {n}", markup=False, highlight=False)
        counts = f"{report.checked} lines, {report.state_rows_checked} state rows"
        if keyed:
            counts += f", {report.macs_checked} MACs"
        if not report.ok:
            out.print(f"{counts} checked: TAMPERED", markup=False, highlight=False)
            return
        anchored = f"; matches the anchor at seq {anchor.seq}" if anchor is not None else ""
        out.print(
            f"{counts} checked: chain intact{anchored}; head {report.head}", markup=False, highlight=False
        )

    emit(data, as_json, render)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@journal_app.command("head")
def journal_head(journal: JournalPathOpt = None, url: UrlAliasOpt = None, as_json: JsonOpt = False) -> None:
    """Print the chain's head, SEQ:HASH, to keep outside the database (a ticket, a log shipper).

    `journal verify --expect-head SEQ:HASH` later catches a removed tail, an
    emptied table or a chain rewritten up to it. Run `journal verify` first:
    the head of a tampered journal anchors nothing.
    """
    with _read_journal(journal, url) as jr:
        anchor = jr.head()
    data = {"seq": anchor.seq, "hash": anchor.hash, "head": str(anchor)}
    emit(data, as_json, lambda: out.print(str(anchor), markup=False, highlight=False))


@journal_app.command("list")
def journal_list(
    journal: JournalPathOpt = None,
    target: Annotated[str | None, typer.Option(help="Only this target.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many lines, newest last.")] = 50,
    state: Annotated[
        bool, typer.Option("--state", help="Also the state.set lines every state write adds.")
    ] = False,
    url: UrlAliasOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print journal lines (a malformed line is exit 2 naming its seq)."""
    with _read_journal(journal, url) as jr:
        entries = jr.entries(target=target, limit=limit, include_state=state)

    def render() -> None:
        table = Table()
        for col in ("seq", "time", "actor", "action", "target", "result", "detail"):
            table.add_column(col)
        for e in entries:
            table.add_row(str(e.seq), str(e.ts), e.actor, e.action, e.target, e.result, e.detail)
        out.print(table)

    emit([e.model_dump(mode="json") for e in entries], as_json, render)


JournalOpt = Annotated[
    str | None, typer.Option("--journal", help="Journal URL or SQLite path (default: IPSINFRA_JOURNAL).")
]
CheckOpt = Annotated[bool, typer.Option("--check", help="Plan only: print what would change, touch nothing.")]
WriteBackOpt = Annotated[
    bool,
    typer.Option(
        "--write-back/--no-write-back",
        help="Update the inventory's files after the change (with --check: print their diff).",
    ),
]

CommitOpt = Annotated[
    bool,
    typer.Option(
        "--commit", help="git commit the inventory files written back (message: action, journal line)."
    ),
]


def commit_inventory(change: Any, commit: bool) -> str | None:
    """``--commit``: git commit what the write-back wrote; the commit id (a failure is a warning)."""
    from ipsinfra.inventory.writeback import WriteBackError, commit_change

    if not commit or change is None or not change.written:
        return None
    try:
        return commit_change(change)
    except WriteBackError as exc:
        err.print(f"ipsinfra: warning: inventory not committed: {exc}", markup=False, highlight=False)
        return None


def print_inventory_change(change: Any, committed: str | None = None) -> None:
    """What the write-back did; its diff when it only checked or could not write; the commit."""
    if change is None:
        return
    for line in change.describe():
        out.print(line, markup=False, highlight=False)
    if change.edits and (change.checked_only or change.error is not None):
        out.print(change.diff(), markup=False, highlight=False, end="")
    if committed:
        out.print(f"inventory committed: {committed}", markup=False)


def _open(inventory: Path, journal_url: str | None) -> tuple[Any, Any, Any]:
    from ipsinfra import inventory as inv
    from ipsinfra.hypervisors import DriverPool
    from ipsinfra.journal import Journal, default_journal_url

    fleet = inv.load(inventory)
    return fleet, DriverPool(fleet.nodes), Journal(journal_url or default_journal_url())


@app.command("provision")
def provision_cmd(
    order: Annotated[str, typer.Option(help="Order number.")],
    node: Annotated[str, typer.Option(help="Target node.")],
    client: Annotated[str, typer.Option(help="Client id.")],
    vcpus: Annotated[int, typer.Option(help="vCPUs.")],
    memory: Annotated[int, typer.Option(help="Memory, MiB.")],
    disk: Annotated[int, typer.Option(help="Disk, GiB.")],
    os_name: Annotated[str, typer.Option("--os", help="OS and version, e.g. debian-12.")],
    ips: Annotated[int, typer.Option(help="Number of IPv4 addresses.")] = 1,
    arch: Annotated[str, typer.Option(help="Architecture.")] = "x86_64",
    install_type: Annotated[str, typer.Option(help="Install type (template, iso, ...).")] = "template",
    panel: Annotated[str | None, typer.Option(help="Control panel, if any.")] = None,
    comment: Annotated[str, typer.Option(help="The order's comment.")] = "",
    trial: Annotated[bool, typer.Option("--trial", help="A trial order (§2.1).")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the root password from stdin (checked, §4.8).")
    ] = False,
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            help="Write the generated password here, mode 0600. The file must not exist (or be empty): "
            "a password is never overwritten.",
            show_default=False,
        ),
    ] = None,
    show_password: Annotated[
        bool, typer.Option("--show-password", help="Print the generated password on stdout (and in --json).")
    ] = False,
    step_timeout: Annotated[float, typer.Option(help="Deadline per step, seconds.")] = 300.0,
    inventory: InventoryOpt = None,
    journal: JournalOpt = None,
    check: CheckOpt = False,
    write_back: WriteBackOpt = True,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Provision a VDS for an order (§8): plan, create, set a generated password, verify.

    The generated root password goes where you say: --password-file PATH
    (0600, never overwritten), --show-password (stdout), or both; one is
    required unless --password-stdin or --check. It never reaches stderr,
    the journal or a log.
    """
    from ipsinfra.models import Order, build
    from ipsinfra.provision import provision

    if password_file is not None:
        password_file = password_file.expanduser()
    if not (check or password_stdin or show_password or password_file is not None):
        fail(
            "password: value None: the generated root password needs a place: --password-file PATH "
            "(0600) and/or --show-password (stdout); or give one with --password-stdin"
        )
    if password_stdin and password_file is not None:
        fail(f"password_file: value {str(password_file)!r}: --password-stdin gives it; nothing to write")
    if password_file is not None:
        check_password_file(password_file)

    the_order = build(
        Order,
        {
            "number": order,
            "client": client,
            "node": node,
            "vcpus": vcpus,
            "memory_mib": memory,
            "disk_gib": disk,
            "ips": ips,
            "os": os_name,
            "arch": arch,
            "install_type": install_type,
            "panel": panel,
            "comment": comment,
            "trial": trial,
        },
        "order",
    )
    inventory = resolve_inventory(inventory)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    fleet, pool, jr = _open(inventory, journal)
    doing = "planning" if check else "creating"
    with pool, jr, progress(f"provision order {order} on {node}: {doing}", quiet=quiet):
        result = provision(
            the_order,
            fleet,
            pool,
            journal=jr,
            password=password,
            check=check,
            step_timeout=step_timeout,
            inventory=inventory if write_back else None,
        )
    stored = None
    if result.password is not None and password_file is not None and not password_stdin:
        try:
            write_password_file(password_file, result.password.get_secret_value())
            stored = str(password_file)
        except (OSError, InvalidInput) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            err.print(
                f"ipsinfra: error: password_file: value {str(password_file)!r}: {reason}; the VDS was "
                "created, its password is NOT stored: set a new one",
                markup=False,
                highlight=False,
            )
    committed = commit_inventory(result.inventory_change, commit)
    shown = result.password is not None and show_password and not password_stdin
    data = result.model_dump(mode="json", exclude={"password"})
    data["password_file"] = stored
    if shown and result.password is not None:
        data["password"] = result.password.get_secret_value()

    def render() -> None:
        for line in result.plan.describe():
            out.print(line, markup=False, highlight=False)
        for w in result.warnings:
            out.print(f"warning: {w}", markup=False)
        if result.checked_only:
            print_inventory_change(result.inventory_change)
            out.print("--check: nothing was changed", markup=False)
            return
        out.print(
            "created and verified" if result.changed else "unchanged: already provisioned", markup=False
        )
        print_inventory_change(result.inventory_change, committed)
        for m in result.mismatches:
            out.print(f"MISMATCH (§8.1-8.4): {m}", markup=False)
        if stored is not None:
            out.print(f"root password written to {stored} (mode 0600)", markup=False, highlight=False)
        if shown and result.password is not None:
            print(f"root password (shown once): {result.password.get_secret_value()}", flush=True)

    emit(data, as_json, render)
    lost = result.password is not None and password_file is not None and stored is None and not password_stdin
    if result.mismatches or lost:
        raise typer.Exit(EXIT_FAILED)


@app.command("migrate")
def migrate_cmd(
    name: Annotated[str, typer.Argument(help=VDS_NAME_HELP, show_default=False)],
    to: Annotated[str, typer.Option("--to", help="Target node.")],
    offline: Annotated[
        bool, typer.Option("--offline", help="Offline migration (stop, move, start).")
    ] = False,
    inventory: InventoryOpt = None,
    journal: JournalOpt = None,
    check: CheckOpt = False,
    write_back: WriteBackOpt = True,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Migrate a VDS to another node (§9): exact vCPUs, renamed, VNC and network moved, verified."""
    from ipsinfra.migrate import migrate

    name = vds_name(name)
    inventory = resolve_inventory(inventory)
    fleet, pool, jr = _open(inventory, journal)
    how = "planning" if check else "offline" if offline else "live"
    with pool, jr, progress(f"migrate {name} to {to} ({how})", quiet=quiet):
        result = migrate(
            name,
            to,
            fleet,
            pool,
            live=not offline,
            journal=jr,
            check=check,
            inventory=inventory if write_back else None,
        )
    committed = commit_inventory(result.inventory_change, commit)

    def render() -> None:
        for line in result.plan.describe():
            out.print(line, markup=False, highlight=False)
        if result.checked_only:
            out.print("--check: nothing was changed", markup=False)
        elif not result.changed:
            out.print(f"unchanged: {result.plan.new_name} is on {result.plan.target} already", markup=False)
        elif result.ok:
            out.print(f"migrated and verified: {result.plan.new_name} on {result.plan.target}", markup=False)
        for w in result.warnings:
            out.print(f"WARNING: {w}", markup=False)
        for m in result.mismatches:
            out.print(f"MISMATCH: {m}", markup=False)
        print_inventory_change(result.inventory_change, committed)

    emit(result.model_dump(mode="json"), as_json, render)
    if result.mismatches:
        raise typer.Exit(EXIT_FAILED)


@app.command("audit")
def audit_cmd(
    nodes: Annotated[list[str] | None, typer.Option("--node", help="Only these nodes (repeatable).")] = None,
    fix: Annotated[
        bool, typer.Option("--fix", help="Start VDS that should run and don't; re-verify.")
    ] = False,
    dc_list: Annotated[
        Path | None, typer.Option(help="The DC's server list, CSV with ip,name (§4.4).")
    ] = None,
    reach: Annotated[
        bool, typer.Option("--reach/--no-reach", help="Probe SSH/RDP on running VDS (§4.10).")
    ] = True,
    fmt: Annotated[
        str, typer.Option("--format", help="md (default), json (as --json) or junit, on stdout.")
    ] = "md",
    output: Annotated[Path | None, typer.Option(help="Also write the report to this file.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Also write a JUnit XML file here.")] = None,
    recheck_delay: Annotated[float, typer.Option(help="Seconds before re-reading transitional VDS.")] = 5.0,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Worker processes (default: one per 25 nodes, <= 4 per CPU, <= 16; 1 with --fix).",
            show_default=False,
        ),
    ] = None,
    processes: Annotated[
        int | None, typer.Option("--processes", hidden=True, help="Deprecated: use --workers.")
    ] = None,
    notify: Annotated[
        bool, typer.Option("--notify", help="§5.1: notify clients of nodes found down (once per outage).")
    ] = False,
    outbox: Annotated[Path | None, typer.Option(help="With --notify: write the notices here (.eml).")] = None,
    sender: Annotated[str | None, typer.Option("--from", help="With --notify: the notices' sender.")] = None,
    inventory: InventoryOpt = None,
    journal: JournalOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """The nightly audit (§5.2, §4.4, §4.10, §2.1): exit 0 clean, 1 findings, 2 could not run.

    With --fix the report shows the fleet after the fix (what was started is
    counted as running, and listed under "Fixed by this audit").
    """
    from ipsinfra import audit

    if fmt not in {"md", "json", "junit"}:
        fail(f"format: value {fmt!r}: use md, json or junit")
    if as_json:
        if fmt not in {"md", "json"}:
            fail(f"format: value {fmt!r}: --json prints JSON; drop --format {fmt}")
        fmt = "json"
    workers = _workers_option(workers, processes, fix=fix)
    dc_names = audit.load_dc_names(dc_list) if dc_list is not None else None
    if notify and (outbox is None or sender is None):
        fail("notify: value True: --notify needs --outbox DIR and --from ADDRESS")
    fleet, pool, jr = _open(resolve_inventory(inventory), journal)
    handover: list[str] = []
    total = len([n for n in fleet.nodes if not nodes or n in nodes])
    with pool, jr, counted_progress("audit", total, quiet=quiet) as advance:
        report = audit.run(
            fleet,
            pool,
            journal=jr,
            nodes=nodes,
            fix=fix,
            dc_names=dc_names,
            reach=reach,
            recheck_delay=recheck_delay,
            processes=workers,
            progress=lambda node_audit: advance(_node_done(node_audit)),
        )
        if notify:
            from ipsinfra import outage

            assert outbox is not None and sender is not None
            notes = outage.process(report, fleet, jr, outbox=outbox, sender=sender)
            handover = notes.handover
            for problem in notes.problems:
                err.print(f"notify: {problem}", markup=False)
    _print_audit(report, fmt, output, junit)
    for line in handover:  # stdout holds one JSON/JUnit document: the hand-over lines go beside it
        (out if fmt == "md" else err).print(line, markup=False, highlight=False)
    raise typer.Exit(report.exit_code)


def _workers_option(workers: int | None, processes: int | None, *, fix: bool) -> int | None:
    """``--workers`` (or the deprecated ``--processes``), checked here so the error names the flag."""
    flag = "workers"
    if processes is not None:
        warn_deprecated("--processes", "--workers")
        if workers is not None and workers != processes:
            fail(f"workers: value {workers}: --processes (deprecated) says {processes}; give only --workers")
        workers, flag = processes, "processes"
    if workers is not None and workers < 1:
        fail(f"{flag}: value {workers}: must be at least 1")
    if workers is not None and workers > 1 and fix:
        fail(f"{flag}: value {workers}: an audit with --fix runs in one process (its starts are journalled)")
    return workers


def _node_done(node_audit: Any) -> str:
    state = "ok" if node_audit.reachable else "NOT CHECKED" if node_audit.config_error else "UNREACHABLE"
    return f"{node_audit.node}: {state}, {len(node_audit.findings)} finding(s), {node_audit.duration_s:.1f} s"


def _print_audit(report: Any, fmt: str, output: Path | None, junit: Path | None) -> None:
    from ipsinfra import audit

    if fmt == "json":
        text = dump_json(json.loads(audit.to_json(report)), sort_keys=True)  # § as is, not \\u00a7
    else:
        text = {"md": audit.to_markdown, "junit": audit.to_junit}[fmt](report)
    print(text.rstrip("\n"), flush=True)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    if junit is not None:
        junit.write_text(audit.to_junit(report), encoding="utf-8")


@app.command("block")
def block_cmd(
    ip: Annotated[str, typer.Argument(help="The abusive server's IP address.")],
    reason: Annotated[str, typer.Option(help="Why: the complaint's category (spamhaus_sbl, malware...).")],
    ref: Annotated[str | None, typer.Option(help="The complaint's reference (SBL number, ticket).")] = None,
    dc_list: Annotated[Path | None, typer.Option(help="The DC's server list, CSV ip,name (§4.4).")] = None,
    inventory: InventoryOpt = None,
    journal: JournalOpt = None,
    check: CheckOpt = False,
    write_back: WriteBackOpt = True,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Block the server behind IP (§7.2): proven first (§11.8), stopped, autostart off / port down."""
    _block_or_unblock(
        "block",
        ip,
        inventory,
        journal,
        check,
        as_json,
        dc_list,
        reason=reason,
        ref=ref,
        write_back=write_back,
        commit=commit,
        quiet=quiet,
    )


@app.command("unblock")
def unblock_cmd(
    ip: Annotated[str, typer.Argument(help="The server's IP address.")],
    dc_list: Annotated[Path | None, typer.Option(help="The DC's server list, CSV ip,name (§4.4).")] = None,
    inventory: InventoryOpt = None,
    journal: JournalOpt = None,
    check: CheckOpt = False,
    write_back: WriteBackOpt = True,
    commit: CommitOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Lift a block: autostart as it was and started again, or the switch port brought up."""
    _block_or_unblock(
        "unblock",
        ip,
        inventory,
        journal,
        check,
        as_json,
        dc_list,
        write_back=write_back,
        commit=commit,
        quiet=quiet,
    )


def _block_or_unblock(
    action: str,
    ip: str,
    inventory: Path | None,
    journal: str | None,
    check: bool,
    as_json: bool,
    dc_list: Path | None,
    *,
    reason: str = "",
    ref: str | None = None,
    write_back: bool = True,
    commit: bool = False,
    quiet: bool = False,
) -> None:
    from ipsinfra import audit
    from ipsinfra.abuse.block import block, unblock

    try:
        ipaddress.ip_address(ip.strip())
    except ValueError:  # before the journal is opened: bad input changes nothing
        fail(f"ip: value {ip!r}: not an IPv4 or IPv6 address")
    dc_names = audit.load_dc_names(dc_list) if dc_list is not None else None
    inventory = resolve_inventory(inventory)
    written = inventory if write_back else None
    fleet, pool, jr = _open(inventory, journal)
    then = "stopping it (a guest may take 30 s)" if action == "block" else "starting it"
    doing = f"{action} {ip}: proving the target" + ("" if check else f", then {then}")
    with pool, jr, progress(doing, quiet=quiet):
        if action == "block":
            result = block(
                ip,
                fleet,
                pool,
                reason=reason,
                complaint_ref=ref,
                journal=jr,
                check=check,
                dc_names=dc_names,
                inventory=written,
            )
        else:
            result = unblock(ip, fleet, pool, journal=jr, check=check, dc_names=dc_names, inventory=written)
    committed = commit_inventory(result.inventory_change, commit)

    def render() -> None:
        for step in result.proof.steps:
            out.print(f"proof {step.check}: {'ok' if step.ok else 'FAILED'}: {step.detail}", markup=False)
        if result.checked_only:
            print_inventory_change(result.inventory_change)
            out.print(f"--check: {action} {result.target} would proceed; nothing was changed", markup=False)
        else:
            done = "done" if result.changed else "nothing to do (already so)"
            out.print(f"{action} {result.target}: {done}", markup=False)
            print_inventory_change(result.inventory_change, committed)

    emit(result.model_dump(mode="json"), as_json, render)


@app.command("demo")
def demo_cmd(
    lab_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the lab's files here (journal, outbox, node logs), not in a temporary dir."),
    ] = None,
) -> None:
    """The main job on the embedded lab: provision, migrate, block, a reboot, the audit.

    Exit 0 when every step ran (the hand-over's findings are the story), 1 when a step failed.
    """
    from ipsinfra.lab.demo import run_demo

    def say(line: str) -> None:
        out.print(line, markup=False, highlight=False)

    raise typer.Exit(run_demo(say, base_dir=lab_dir))


def main(argv: list[str] | None = None) -> int:
    """Entry point; maps ipsinfra's errors to exit codes and one-line messages.

    Every log record of the run (proxmoxer, urllib3, paramiko, netmiko...) goes
    through :mod:`ipsinfra.redact` first. A refused SSH host key (not pinned,
    or not the pinned one) exits 2: nothing was sent to the host.
    """
    from ipsinfra import redact
    from ipsinfra.hostkeys import HostKeyError

    redact.install()
    settings.quiet = False
    try:
        rv = command().main(args=argv, prog_name="ipsinfra", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (InvalidInput, NotFound, Conflict, TargetProofFailed, HostKeyError) as exc:
        _one_line(exc)
        return EXIT_BAD_INPUT
    except IpsinfraError as exc:
        _one_line(exc)
        return EXIT_FAILED
    except typer.Abort:
        return 130
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _one_line(exc)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    return rv if isinstance(rv, int) else EXIT_OK


@functools.cache
def command() -> Any:
    """The click command tree of :data:`app`, with flags shown without a ``<bool>`` placeholder.

    Built once per process (every command is registered at import).
    """
    from typer.core import TyperOption
    from typer.main import get_command

    def tidy(cmd: Any) -> None:
        ctx = typer.Context(cmd, info_name=cmd.name)
        for param in cmd.get_params(ctx):  # includes --help, created here once and kept
            if isinstance(param, TyperOption) and param.is_bool_flag and param.metavar is None:
                param.metavar = ""
        for sub in getattr(cmd, "commands", {}).values():
            tidy(sub)

    root_command = get_command(app)
    tidy(root_command)
    return root_command


def _one_line(exc: BaseException) -> None:
    text = " ".join(str(exc).split())
    err.print(f"ipsinfra: error: {text}", markup=False, highlight=False)


if __name__ == "__main__":
    sys.exit(main())
