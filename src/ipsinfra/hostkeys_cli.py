"""``ipsinfra trust``: show a switch's or node's SSH host key and pin it on purpose.

Exit codes: 0 the key is pinned (now or already), 1 not pinned (declined, or
no ``--yes`` without a terminal to ask on; or nothing answered), 2 a different
key is already pinned (possibly someone else answering) or bad input.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ipsinfra import hostkeys
from ipsinfra.cli_support import dump_json
from ipsinfra.errors import InvalidInput
from ipsinfra.inventory_source import SOURCES_HELP, find_inventory

__all__ = ["resolve_target", "trust_cmd"]

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._-]+))(?::(?P<port>\d{1,5}))?$")


def resolve_target(target: str, inventory: Path | None) -> tuple[str, str, int, str | None]:
    """(label, host, port, known_hosts file or None) of a switch, a node, or ``host[:port]``.

    A name the inventory knows wins: a switch's ``ansible_host``/``ansible_port``
    and ``ssh_known_hosts``, a node's ``ssh_host`` (else its main IP),
    ``ssh_port`` and ``ssh_known_hosts``.
    """
    if inventory is not None and inventory.exists():
        from ipsinfra import inventory as inv

        fleet = inv.load(inventory)
        if target in fleet.switches:
            sw = fleet.switches[target]
            return target, sw.host, sw.port, sw.ssh_known_hosts
        if target in fleet.nodes:
            node = fleet.nodes[target]
            return target, node.ssh_host or str(node.main_ip), node.ssh_port, node.ssh_known_hosts
    match = _HOST_PORT.fullmatch(target)
    if match is None:
        raise InvalidInput(
            f"target: value {target!r}: not a switch or node of the inventory, nor host[:port]"
        )
    port = int(match.group("port") or hostkeys.SSH_PORT)
    if not 1 <= port <= 65535:
        raise InvalidInput(f"target: value {target!r}: port {port} is out of range")
    return target, match.group("v6") or match.group("host"), port, None


def trust_cmd(
    target: Annotated[str, typer.Argument(help="A switch or node of the inventory, or host[:port].")],
    inventory: Annotated[
        Path | None,
        typer.Option(
            "--inventory",
            "-i",
            help=f"Inventory directory, to find TARGET by name (host:port needs none). {SOURCES_HELP}",
            show_default=False,
        ),
    ] = None,
    known_hosts: Annotated[
        Path | None,
        typer.Option(
            "--known-hosts",
            help="Pin into this file (default: the target's ssh_known_hosts, else ~/.ssh/known_hosts).",
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Pin without asking (after checking the fingerprint).")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the key exchange.")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Fetch TARGET's SSH host key, print its SHA256 fingerprint, and pin it with --yes or on confirmation.

    Compare the fingerprint with one read on the device's console before
    pinning (a Linux switch or node: `ssh-keygen -lf
    /etc/ssh/ssh_host_ed25519_key.pub`). Without ipsinfra: `ssh-keyscan -p PORT HOST > k; ssh-keygen
    -lf k; cat k >> FILE`. Exit 0 pinned, 1 not pinned, 2 another key is pinned.
    """
    found = find_inventory(inventory)  # optional here: host[:port] works without one
    label, host, port, inventory_file = resolve_target(target, found[0] if found else None)
    path = known_hosts.expanduser() if known_hosts is not None else hostkeys.known_hosts_file(inventory_file)
    key = hostkeys.fetch_host_key(host, port, timeout=timeout)
    name = hostkeys.known_hosts_name(host, port)
    pinned = hostkeys.lookup(path, host, port)
    info = {
        "target": label,
        "host": name,
        "key_type": key.key_type,
        "fingerprint": key.fingerprint,
        "known_hosts": str(path),
    }
    if not as_json:
        out.print(f"{label} ({name}) offers {key.key_type} {key.fingerprint}", markup=False, highlight=False)
    if key in pinned:
        _done({**info, "pinned": True, "already": True}, as_json, f"already pinned in {path}")
        return
    if pinned:
        hostkeys.pin(path, host, port, key)  # raises HostKeyChanged with both fingerprints (exit 2)
    if not yes:
        if not sys.stdin.isatty():
            _done(
                {**info, "pinned": False},
                as_json,
                f"not pinned: check the fingerprint, then run again with --yes (pins into {path})",
            )
            raise typer.Exit(1)
        if not typer.confirm(f"Pin {key.key_type} {key.fingerprint} for {name} in {path}?", default=False):
            _done({**info, "pinned": False}, as_json, "not pinned")
            raise typer.Exit(1)
    hostkeys.pin(path, host, port, key)
    _done({**info, "pinned": True, "already": False}, as_json, f"pinned in {path}")


def _done(info: dict[str, object], as_json: bool, line: str) -> None:
    if as_json:
        print(dump_json(info), flush=True)
    else:
        out.print(line, markup=False, highlight=False)
