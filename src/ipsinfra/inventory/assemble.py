"""A read group tree with merged vars -> a checked :class:`Fleet`.

One step per function: which kind each host is, sites, clients, each host's
record, then nodes, switches, dedicated servers and VDS (the §8.5 checks).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipsinfra.errors import InvalidName, InventoryError
from ipsinfra.inventory.fleet import Fleet, InventoryGroup
from ipsinfra.inventory.records import MODELS, field_error, record_data, validate
from ipsinfra.inventory.tree import GroupTree, Source, as_mapping
from ipsinfra.models import Client, DedicatedServer, Node, Site, Switch, Vds
from ipsinfra.naming import check_order, from_pve_safe_name, node_octets, parse_vps_name

KIND_GROUPS = {"nodes": "nodes", "switches": "switches", "vds": "vds", "dedicated": "dedicated"}
NODE_KIND_GROUPS = {"libvirt_nodes": "libvirt", "proxmox_nodes": "proxmox"}

VarsOf = Callable[[str | None], tuple[Source, set[str]]]
_Record = tuple[dict[str, Any], Source, str]  # (fields, their sources, the host's default file)


@dataclass(frozen=True)
class _Read:
    """What :func:`ipsinfra.inventory.reading.read_tree` found."""

    tree: GroupTree
    vars_of: VarsOf
    group_src: Callable[[str], Source]
    hosts_file: Path
    base: Path

    @property
    def shown_hosts(self) -> str:
        return str(self.hosts_file)

    def default_file(self, host: str) -> str:
        """The file to blame for a host's field that no file claims: its host_vars file, or hosts.yml."""
        path = self.base / "host_vars" / f"{host}.yml"
        return str(path) if path.exists() else self.shown_hosts


def assemble(
    tree: GroupTree,
    vars_of: VarsOf,
    group_src: Callable[[str], Source],
    hosts_file: Path,
    base: Path,
    given: Path,
) -> Fleet:
    """Every record of the tree, checked, as a Fleet. Raises InventoryError naming file, field, value."""
    read = _Read(tree, vars_of, group_src, hosts_file, base)
    members = _kinds(read)
    sites = _sites(read)
    clients = _clients(read)
    records = _records(read, members, sites)
    nodes = _nodes(read, records["nodes"])
    switches = {
        host: validate(Switch, data, src, df, f"switches.{host}")
        for host, (data, src, df) in records["switches"].items()
    }
    dedicated = _dedicated(records["dedicated"], switches, clients)
    hostnames: dict[str, str] = {h: h for h in (*nodes, *switches, *records["dedicated"])}
    vds = _vds(records["vds"], nodes, clients, hostnames)
    groups = {
        g.name: InventoryGroup(name=g.name, hosts=list(g.hosts), children=list(g.children))
        for g in tree.groups.values()
    }
    return Fleet(
        path=given,
        sites=sites,
        nodes=nodes,
        vds=vds,
        clients=clients,
        switches=switches,
        dedicated=dedicated,
        groups=groups,
        hostnames=hostnames,
    )


def _kinds(read: _Read) -> dict[str, set[str]]:
    """Which kind of record is each host (nodes, switches, vds, dedicated)? At most one."""
    tree = read.tree
    members: dict[str, set[str]] = {}
    for kind in KIND_GROUPS:
        if kind in tree.groups:
            for host in tree.host_vars:
                if kind in tree.groups_of(host):
                    members.setdefault(host, set()).add(kind)
    for host, kinds in members.items():
        if len(kinds) > 1:
            raise InventoryError(
                f"{read.shown_hosts}: hosts.{host}: value {sorted(kinds)!r}: a host is one of nodes, "
                "switches, vds, dedicated"
            )
    return members


def _site_groups(tree: GroupTree) -> list[str]:
    return list(tree.groups["sites"].children) if "sites" in tree.groups else []


def _sites(read: _Read) -> dict[str, Site]:
    """The children of `sites`, each with `ipsinfra_site` in its group vars."""
    sites: dict[str, Site] = {}
    for site in _site_groups(read.tree):
        src = read.group_src(site)
        origin = src.origin.get("ipsinfra_site", str(read.base / "group_vars" / f"{site}.yml"))
        data = src.values.get("ipsinfra_site")
        if data is None:
            raise InventoryError(
                f"{origin}: sites.{site}.ipsinfra_site: value None: a site group needs its site data "
                f"(dc, own_network...) in group_vars/{site}.yml"
            )
        site_data = {"name": site, **as_mapping(data, f"{origin}: sites.{site}.ipsinfra_site")}
        if site_data["name"] != site:
            raise field_error(origin, f"sites.{site}", "name", site_data["name"], "must equal the group name")
        sites[site] = validate(Site, site_data, src, origin, f"sites.{site}")
    return sites


def _clients(read: _Read) -> dict[str, Client]:
    all_src, _ = read.vars_of(None)
    clients: dict[str, Client] = {}
    clients_origin = all_src.origin.get("ipsinfra_clients", read.shown_hosts)
    for cid, cdata in as_mapping(
        all_src.values.get("ipsinfra_clients"), f"{clients_origin}: ipsinfra_clients"
    ).items():
        csrc = Source()
        csrc.update(as_mapping(cdata, f"{clients_origin}: clients.{cid}"), clients_origin)
        clients[str(cid)] = validate(
            Client, {"id": str(cid), **csrc.values}, csrc, clients_origin, f"clients.{cid}"
        )
    return clients


def _records(
    read: _Read, members: dict[str, set[str]], sites: dict[str, Site]
) -> dict[str, dict[str, _Record]]:
    """Each host's model fields by kind; a non-VDS host's site from its `site` var or its site group."""
    tree = read.tree
    site_groups = _site_groups(tree)
    records: dict[str, dict[str, _Record]] = {k: {} for k in KIND_GROUPS}
    for host in tree.host_vars:
        kinds = members.get(host, set())
        if not kinds:
            continue  # a host ipsinfra has no model for (a monitoring box...): Ansible's business
        (kind,) = kinds
        src, host_keys = read.vars_of(host)
        df = read.default_file(host)
        data = record_data(kind, MODELS[kind], host, src, host_keys, df)
        if kind != "vds":
            in_sites = sorted(g for g in tree.groups_of(host) if g in site_groups)
            if "site" in data:
                if data["site"] not in sites:
                    raise field_error(
                        src.origin.get("site", df),
                        f"{kind}.{host}",
                        "site",
                        data["site"],
                        "unknown group: not a site under `sites` "
                        f"(known: {', '.join(sorted(sites)) or 'none'})",
                    )
            elif len(in_sites) == 1:
                data["site"] = in_sites[0]
            elif len(in_sites) > 1:
                raise field_error(
                    read.shown_hosts, f"{kind}.{host}", "site", in_sites, "a host sits in one site group"
                )
            data.setdefault("name", host)
        records[kind][host] = (data, src, df)
    return records


def _nodes(read: _Read, records: dict[str, _Record]) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    for host, (data, src, df) in records.items():
        if "kind" not in data:
            for group, hkind in NODE_KIND_GROUPS.items():
                if group in read.tree.groups_of(host):
                    data["kind"] = hkind
        nodes[host] = validate(Node, data, src, df, f"nodes.{host}")
    return nodes


def _dedicated(
    records: dict[str, _Record], switches: dict[str, Switch], clients: dict[str, Client]
) -> dict[str, DedicatedServer]:
    dedicated: dict[str, DedicatedServer] = {}
    for host, (data, src, df) in records.items():
        d = validate(DedicatedServer, data, src, df, f"dedicated.{host}")
        if d.switch is not None and d.switch not in switches:
            raise field_error(
                src.origin.get("switch", df), f"dedicated.{host}", "switch", d.switch, "no such switch"
            )
        if d.client is not None and d.client not in clients:
            raise field_error(
                src.origin.get("client", df), f"dedicated.{host}", "client", d.client, "no such client"
            )
        dedicated[d.name] = d
    return dedicated


def _vds(
    records: dict[str, _Record],
    nodes: dict[str, Node],
    clients: dict[str, Client],
    hostnames: dict[str, str],
) -> dict[str, Vds]:
    """VDS by house name; fills ``hostnames`` (inventory host -> house name) as it goes."""
    vds: dict[str, Vds] = {}
    for host, (data, src, df) in records.items():
        name = _vds_name(host, data, df)
        origin = src.origin.get("vds_name", df)
        try:
            parsed = parse_vps_name(name)
        except InvalidName as exc:
            raise InventoryError(
                f"{origin}: vds.{host}.vds_name: {exc}".replace(": name: ", ": ", 1)
            ) from None
        where = f"vds.{name}"
        data["order"] = _vds_order(data, parsed.order, name, src, df, where)
        if name in vds:
            first = next(h for h, n in hostnames.items() if n == name)
            raise field_error(
                origin, where, "vds_name", name, f"duplicate house name: host {first} has it too"
            )
        node_name = data.get("node")
        if node_name not in nodes:
            raise field_error(
                src.origin.get("node", df),
                where,
                "node",
                node_name,
                f"no such node (known: {', '.join(sorted(nodes)) or 'none'})",
            )
        node = nodes[node_name]
        expected = node_octets(node.main_ip) if isinstance(node.main_ip, ipaddress.IPv4Address) else None
        if expected is not None and parsed.octets != expected:
            raise field_error(
                origin,
                where,
                "vds_name",
                name,
                f"§8.5: the octets {parsed.octets} do not match node {node.name}'s main IP {node.main_ip} "
                f"(expected VPS{parsed.order}({expected}))",
            )
        v = validate(Vds, data, src, df, where)
        if v.client is not None and v.client not in clients:
            raise field_error(src.origin.get("client", df), where, "client", v.client, "no such client")
        vds[name] = v
        hostnames[host] = name
    return vds


def _vds_name(host: str, data: dict[str, Any], df: str) -> Any:
    """`vds_name`, else the house name the host name is the DNS-safe twin of."""
    if "name" not in data:
        try:
            data["name"] = from_pve_safe_name(host)
        except InvalidName:
            raise field_error(
                df,
                f"vds.{host}",
                "vds_name",
                None,
                "needed: the host name is not a house name's DNS-safe twin",
            ) from None
    return data["name"]


def _vds_order(data: dict[str, Any], from_name: int, name: str, src: Source, df: str, where: str) -> int:
    """`vds_order` when given (it must match the name), else the order the name carries."""
    if "order" not in data:
        return from_name
    try:
        order = check_order(data["order"])
    except InvalidName as exc:
        raise field_error(
            src.origin.get("vds_order", df), where, "vds_order", data["order"], str(exc).split(": ", 2)[-1]
        ) from None
    if order != from_name:
        raise field_error(
            src.origin.get("vds_order", df),
            where,
            "vds_order",
            data["order"],
            f"does not match the name {name}",
        )
    return order
