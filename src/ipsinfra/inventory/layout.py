"""Plain data <-> the inventory layout: load_dict, fleet_to_dict and dump."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from ipsinfra.errors import InvalidName, InventoryError
from ipsinfra.inventory.fleet import Fleet
from ipsinfra.inventory.reading import load
from ipsinfra.inventory.records import ANSIBLE_FIELD_MAP
from ipsinfra.inventory.tree import as_mapping
from ipsinfra.naming import pve_safe_name


def load_dict(data: Mapping[str, Any], *, path: Path | None = None) -> Fleet:
    """A Fleet from plain data, checked exactly like :func:`load`.

    ``data`` has ``sites``, ``nodes``, ``switches``, ``vds`` (keyed by house
    name), ``dedicated`` and ``clients``, each ``{name: {field: value}}`` with
    the models' field names, e.g. ``{"nodes": {"kvm1": {"site": "msk1",
    "main_ip": "203.0.113.10", "kind": "libvirt", "uri": "test:///default",
    "cpus": 8}}}``. Nodes need a ``kind``; a VDS's key is its house name.
    """
    return _from_plain(data, where="<dict>", path=path)


def _from_plain(data: Mapping[str, Any], *, where: str, path: Path | None) -> Fleet:
    import tempfile

    unknown = set(data) - {"sites", "nodes", "switches", "vds", "dedicated", "clients"}
    if unknown:
        raise InventoryError(f"{where}: value {sorted(unknown)!r}: unknown sections")
    # One code path for every check: write the layout dump() writes, read it back.
    with tempfile.TemporaryDirectory(prefix="ipsinfra-inv-") as tmp:
        write_layout(data, Path(tmp))
        try:
            fleet = load(tmp)
        except InventoryError as exc:
            raise InventoryError(str(exc).replace(tmp, where)) from None
    return fleet.model_copy(update={"path": path})


def fleet_to_dict(fleet: Fleet) -> dict[str, Any]:
    """Plain data (JSON-able) of a Fleet, the shape :func:`load_dict` takes."""

    def plain(model: BaseModel, drop: Iterable[str] = ()) -> dict[str, Any]:
        out = model.model_dump(mode="json", exclude_defaults=True)
        for key in drop:
            out.pop(key, None)
        return out

    return {
        "sites": {k: plain(v, ["name"]) for k, v in fleet.sites.items()},
        "nodes": {k: plain(v, ["name"]) | {"kind": v.kind.value} for k, v in fleet.nodes.items()},
        "switches": {k: plain(v, ["name"]) for k, v in fleet.switches.items()},
        "vds": {k: plain(v, ["name"]) for k, v in fleet.vds.items()},
        "dedicated": {k: plain(v, ["name"]) for k, v in fleet.dedicated.items()},
        "clients": {k: plain(v, ["id"]) for k, v in fleet.clients.items()},
    }


def dump(fleet: Fleet | Mapping[str, Any], path: str | Path) -> Path:
    """Write ``fleet`` as an inventory directory at ``path`` (the layout :func:`load` reads).

    Existing ``hosts.yml``, ``group_vars/`` and ``host_vars/`` files it writes
    are replaced; nothing else in ``path`` is touched. Returns ``path``.
    """
    data = fleet_to_dict(fleet) if isinstance(fleet, Fleet) else fleet
    hostnames = fleet.hostnames if isinstance(fleet, Fleet) else {}
    out = Path(path)
    write_layout(data, out, {name: host for host, name in hostnames.items()})
    return out


def _yaml_dump(data: Any, path: Path, header: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(_jsonable(data), sort_keys=False, default_flow_style=False, allow_unicode=True)
    path.write_text(f"---\n{header}{text}", encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, BaseModel):
        return _jsonable(value.model_dump(mode="json", exclude_none=True))
    if isinstance(value, dt.date | str | int | float | bool) or value is None:
        return value
    return str(value)


def write_layout(data: Mapping[str, Any], out: Path, hostname_of: Mapping[str, str] | None = None) -> None:
    hostname_of = hostname_of or {}
    section = {
        k: as_mapping(data.get(k), f"<dict>: {k}")
        for k in ("sites", "nodes", "switches", "vds", "dedicated", "clients")
    }
    site_hosts: dict[str, dict[str, None]] = {str(s): {} for s in section["sites"]}
    node_groups: dict[str, dict[str, None]] = {"libvirt_nodes": {}, "proxmox_nodes": {}}
    host_vars: dict[str, dict[str, Any]] = {}
    maps = {kind: {v: k for k, v in m.items()} for kind, m in ANSIBLE_FIELD_MAP.items()}

    def add_host(kind: str, host: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        hv: dict[str, Any] = {}
        for key, value in fields.items():
            hv[maps.get(kind, {}).get(key, key)] = value
        host_vars[host] = hv
        return hv

    for name, fields in section["nodes"].items():
        fields = as_mapping(fields, f"<dict>: nodes.{name}")
        kind = str(fields.get("kind", ""))
        group = f"{kind}_nodes"
        if group in node_groups:
            node_groups[group][str(name)] = None
        hv = add_host("nodes", str(name), {k: v for k, v in fields.items() if k not in ("name", "kind")})
        if group not in node_groups:
            hv["kind"] = fields.get("kind")
    for kind in ("switches", "dedicated"):
        for name, fields in section[kind].items():
            add_host(
                kind,
                str(name),
                {k: v for k, v in as_mapping(fields, f"<dict>: {kind}.{name}").items() if k != "name"},
            )
    for hosts in (section["nodes"], section["switches"], section["dedicated"]):
        for name, fields in hosts.items():
            site = as_mapping(fields, "<dict>").get("site")
            if isinstance(site, str) and site in site_hosts:
                site_hosts[site][str(name)] = None
                host_vars[str(name)].pop("site", None)
    vds_hosts: dict[str, None] = {}
    for name, fields in section["vds"].items():
        try:
            host = hostname_of.get(str(name)) or pve_safe_name(str(name))
        except InvalidName:
            host = re.sub(r"[^A-Za-z0-9_.-]", "-", str(name)) or "vds"
        vds_hosts[host] = None
        # `order` is left out: the house name carries it (and `order` is an Ansible keyword).
        vfields = {
            k: v for k, v in as_mapping(fields, f"<dict>: vds.{name}").items() if k not in ("name", "order")
        }
        add_host("vds", host, {"vds_name": str(name), **vfields})

    def hosts_block(names: Iterable[str]) -> dict[str, Any]:
        return {"hosts": {n: None for n in names}} if names else {}

    tree: dict[str, Any] = {
        "all": {
            "children": {
                "sites": {"children": {s: hosts_block(h) or None for s, h in site_hosts.items()}},
                "nodes": {"children": {g: hosts_block(h) or None for g, h in node_groups.items()}},
                "switches": hosts_block(section["switches"]) or None,
                "vds": hosts_block(vds_hosts) or None,
                "dedicated": hosts_block(section["dedicated"]) or None,
            }
        }
    }
    out.mkdir(parents=True, exist_ok=True)
    _yaml_dump(
        tree,
        out / "hosts.yml",
        "# Written by ipsinfra.inventory.dump; layout: see ipsinfra/inventory/__init__.py.\n",
    )
    gv = out / "group_vars"
    _yaml_dump({"ipsinfra_clients": section["clients"]}, gv / "all" / "clients.yml")
    _yaml_dump({"kind": "libvirt"}, gv / "libvirt_nodes.yml")
    _yaml_dump({"kind": "proxmox"}, gv / "proxmox_nodes.yml")
    _yaml_dump({"ansible_connection": "local"}, gv / "vds.yml")
    for site, fields in section["sites"].items():
        _yaml_dump(
            {"ipsinfra_site": {k: v for k, v in as_mapping(fields, "<dict>").items() if k != "name"}},
            gv / f"{site}.yml",
        )
    for host, hv in host_vars.items():
        _yaml_dump(hv, out / "host_vars" / f"{host}.yml")
