"""The recorded map file, ``<inventory>/switch_ports.<site>.yml``: read and write.

YAML meant for review in git: switches in name order, ports in natural order
(Gi0/2 before Gi0/10), one block per port, the same bytes for the same map::

    # §4.6 network map of site msk1. Written by `ipsinfra portmap --write`.
    site: msk1
    switches:
      sw1-msk1:
        Gi0/5:
          server: ded1
          description: ded1
          macs:
          - 52:54:00:aa:00:01
        Gi0/24:
          uplink: true
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ipsinfra.errors import InvalidInput, InventoryError
from ipsinfra.models import SwitchPort, build
from ipsinfra.network.models import natural_port_key
from ipsinfra.network.portmap import PortMap

__all__ = [
    "MAP_FILE_NAME",
    "dump_port_map",
    "load_port_map",
    "map_file_path",
    "port_block",
    "read_port_map",
    "sorted_ports",
    "write_port_map",
]

MAP_FILE_NAME = "switch_ports.{site}.yml"
# Beside hosts.yml, one file per site; Ansible is told to skip it (ansible.cfg,
# ANSIBLE_INVENTORY_IGNORE_REGEX): a subfolder would be read as an inventory source.
IGNORE_REGEX = r"^switch_ports(\..+)?\.ya?ml$"


def map_file_path(inventory: str | Path, site: str) -> Path:
    """``<inventory>/switch_ports.<site>.yml``."""
    return Path(inventory) / MAP_FILE_NAME.format(site=site)


def sorted_ports(port_map: PortMap) -> list[SwitchPort]:
    """The map's ports in the file's order: by switch, then naturally by port."""
    return sorted(port_map.ports, key=lambda p: (p.switch, natural_port_key(p.port)))


def port_block(p: SwitchPort) -> dict[str, Any]:
    """What the file (and the state store) keeps of one port: only the fields that are set."""
    block: dict[str, Any] = {}
    if p.uplink:
        block["uplink"] = True
    if p.server is not None:
        block["server"] = p.server
    if p.description:
        block["description"] = p.description
    if p.macs:
        block["macs"] = sorted(p.macs)
    return block


def dump_port_map(port_map: PortMap, site: str) -> str:
    """The file's text for ``port_map``: stable, so git shows only real changes."""
    switches: dict[str, dict[str, dict[str, Any]]] = {}
    for p in sorted_ports(port_map):
        switches.setdefault(p.switch, {})[p.port] = port_block(p)
    header = f"# §4.6 network map of site {site}. Written by `ipsinfra portmap --write`; review in git.\n"
    body = yaml.safe_dump(
        {"site": site, "switches": switches}, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return header + body


def load_port_map(text: str, *, where: str = "switch_ports.yml") -> tuple[str, PortMap]:
    """Parse the file's text: ``(site, PortMap)``. Raises InventoryError naming the field."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InventoryError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("switches", {}), dict):
        raise InventoryError(f"{where}: expected a mapping with 'site' and 'switches'")
    site = str(data.get("site", ""))
    ports: list[SwitchPort] = []
    for switch, port_blocks in (data.get("switches") or {}).items():
        place = f"{where}: switches.{switch}"
        if not isinstance(port_blocks, dict):
            raise InventoryError(f"{where}: switches.{switch}: expected a mapping of port -> block")
        for port, block in port_blocks.items():
            if not isinstance(block, dict):
                raise InventoryError(f"{where}: switches.{switch}.{port}: expected a mapping")
            try:
                ports.append(
                    build(SwitchPort, {"switch": switch, "port": str(port), **block}, f"{place}.{port}")
                )
            except InvalidInput as exc:
                raise InventoryError(str(exc)) from None
    ports.sort(key=lambda p: (p.switch, natural_port_key(p.port)))
    return site, PortMap(ports=tuple(ports))


def read_port_map(path: str | Path) -> PortMap:
    """The recorded map; an absent file is an empty map (a site never mapped yet)."""
    path = Path(path)
    if not path.exists():
        return PortMap()
    return load_port_map(path.read_text(encoding="utf-8"), where=str(path))[1]


def write_port_map(path: str | Path, port_map: PortMap, site: str) -> bool:
    """Write the map atomically; returns False (and leaves the file alone) when unchanged."""
    path = Path(path)
    text = dump_port_map(port_map, site)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)  # mkstemp makes 0600; a file reviewed in git is 0644
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
