"""The fleet as an Ansible YAML inventory (``inventory/<name>/``) -> models.

One inventory serves both Ansible and this library. Layout (see
``inventory/example/hosts.yml`` for the commented original):

- ``hosts.yml``: groups ``sites`` (children: one group per site, holding that
  site's nodes, switches and dedicated servers), ``nodes`` (children
  ``libvirt_nodes``, ``proxmox_nodes``), ``switches``, ``vds``, ``dedicated``.
- A VDS is an Ansible host named by its DNS-safe twin (``VPS1001-113-10``);
  its house name (``VPS1001(113.10)``, §8.5) is the ``vds_name`` variable.
- ``group_vars/<site>.yml``: ``ipsinfra_site:`` (dc, own_network, ...).
- ``group_vars/all/clients.yml``: ``ipsinfra_clients:`` keyed by client id.
- ``host_vars/<host>.yml``: a host's fields, flat, named as in
  :mod:`ipsinfra.models` (``main_ip``, ``kind``, ``cpus``...). Ansible's own
  ``ansible_host``/``ansible_port``/``ansible_user`` fill the SSH address,
  port and user; a dedicated server's switch port is ``switch_port``.

Variables merge the way Ansible merges them (all < parent group < child group
< host; inventory-file vars < ``group_vars/`` < ``host_vars/``), in pure Python
with ``yaml.safe_load`` semantics: no Ansible import, no side effects.
Secrets are references only (``{env: NAME}``, ``{file: path}``, a Jinja
template or an ``!vault`` value); a literal secret is refused without being
echoed.

    >>> fleet = load("inventory/example")  # doctest: +SKIP
    >>> fleet.node_of("VPS1001(113.10)").name  # doctest: +SKIP
    'kvm1'
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ipsinfra.errors import InvalidName, InventoryError
from ipsinfra.models import (
    Client,
    DedicatedServer,
    IPAddress,
    Node,
    Site,
    Switch,
    Vds,
)
from ipsinfra.naming import check_order, from_pve_safe_name, node_octets, parse_vps_name, pve_safe_name

# Keys whose values are secrets and must be references. ``*_id`` (api_token_id)
# and ``*_file`` (ansible_ssh_private_key_file) name secrets, they are not secrets.
SECRET_KEY_RE = re.compile(r"pass|secret|token|key", re.IGNORECASE)
_NOT_SECRET_KEY_RE = re.compile(r"(_id|_file|_path|_env)$", re.IGNORECASE)
YAML_SUFFIXES = ("", ".yml", ".yaml", ".json")
KIND_GROUPS = {"nodes": "nodes", "switches": "switches", "vds": "vds", "dedicated": "dedicated"}
NODE_KIND_GROUPS = {"libvirt_nodes": "libvirt", "proxmox_nodes": "proxmox"}


# --- YAML -----------------------------------------------------------------
class VaultedValue:
    """An ``!vault`` value: opaque, never decrypted, never printed."""

    __slots__ = ("_ciphertext",)

    def __init__(self, ciphertext: str) -> None:
        self._ciphertext = ciphertext

    def __repr__(self) -> str:
        return "<vaulted>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VaultedValue) and other._ciphertext == self._ciphertext

    def __hash__(self) -> int:
        return hash(self._ciphertext)


class _Loader(yaml.SafeLoader):
    """safe_load plus Ansible's ``!vault``/``!unsafe`` tags and a duplicate-key check."""


def _construct_vault(loader: yaml.SafeLoader, node: yaml.Node) -> VaultedValue:
    return VaultedValue(str(loader.construct_scalar(node)))  # type: ignore[arg-type]


def _construct_unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    assert isinstance(node, yaml.MappingNode)
    return loader.construct_mapping(node, deep=True)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor("!vault", _construct_vault)
_Loader.add_constructor("!unsafe", _construct_unsafe)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path, shown: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{shown}: cannot be read: {exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InventoryError(f"{shown}: {where}: malformed YAML: {problem}") from None


# --- Fleet ----------------------------------------------------------------
class InventoryGroup(BaseModel):
    """One Ansible group: its direct hosts and child groups."""

    model_config = ConfigDict(frozen=True)

    name: str
    hosts: list[str] = Field(default_factory=list)
    children: list[str] = Field(default_factory=list)


class Fleet(BaseModel):
    """Everything the inventory describes, keyed by name (VDS by house name)."""

    model_config = ConfigDict(frozen=True)

    path: Path | None = None
    sites: dict[str, Site] = Field(default_factory=dict)
    nodes: dict[str, Node] = Field(default_factory=dict)
    vds: dict[str, Vds] = Field(default_factory=dict)
    clients: dict[str, Client] = Field(default_factory=dict)
    switches: dict[str, Switch] = Field(default_factory=dict)
    dedicated: dict[str, DedicatedServer] = Field(default_factory=dict)
    groups: dict[str, InventoryGroup] = Field(default_factory=dict, description="Ansible groups, as loaded")
    hostnames: dict[str, str] = Field(
        default_factory=dict, description="inventory_hostname -> record name (a VDS's house name)"
    )

    def node_of(self, vds_name: str) -> Node:
        """The node a VDS runs on. Raises VdsNotFound / NodeNotFound."""
        from ipsinfra.errors import NodeNotFound, VdsNotFound

        vds = self.vds.get(vds_name)
        if vds is None:
            raise VdsNotFound(f"vds: value {vds_name!r}: not in the inventory")
        node = self.nodes.get(vds.node)
        if node is None:  # load() refuses this; only a hand-built Fleet gets here
            raise NodeNotFound(f"vds.{vds_name}.node: value {vds.node!r}: no such node")
        return node

    def vds_on(self, node: Node | str) -> list[Vds]:
        """Every VDS the inventory puts on ``node``, by house name."""
        name = node.name if isinstance(node, Node) else node
        return sorted((v for v in self.vds.values() if v.node == name), key=lambda v: v.name)

    def owners_of_ip(self, ip: str | IPAddress) -> list[str]:
        """Names of every VDS and dedicated server holding ``ip`` (abuse wants exactly one)."""
        try:
            wanted = ipaddress.ip_address(str(ip).strip())
        except ValueError:
            raise InventoryError(f"ip: value {str(ip)!r}: not an IP address") from None
        owners = [v.name for v in self.vds.values() if wanted in v.ips]
        owners += [d.name for d in self.dedicated.values() if wanted in d.ips]
        return sorted(owners)

    def inventory_hostname(self, name: str) -> str:
        """The Ansible host name of a record (a VDS's DNS-safe twin)."""
        for host, record in self.hostnames.items():
            if record == name:
                return host
        raise InventoryError(f"name: value {name!r}: not a host in the inventory")


# --- group tree and variable merging ---------------------------------------
class _Group:
    def __init__(self, name: str) -> None:
        self.name = name
        self.hosts: dict[str, None] = {}  # ordered set
        self.children: dict[str, None] = {}
        self.parents: set[str] = set()
        self.vars: dict[str, Any] = {}
        self.defined = False  # has hosts, children or vars somewhere


class _Tree:
    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.groups: dict[str, _Group] = {"all": _Group("all")}
        self.host_vars: dict[str, dict[str, Any]] = {}
        self.groups["all"].defined = True

    def group(self, name: str) -> _Group:
        if name not in self.groups:
            self.groups[name] = _Group(name)
        return self.groups[name]

    def parse_group(self, name: Any, body: Any, where: str) -> None:
        if not isinstance(name, str) or not name:
            raise InventoryError(f"{self.shown}: {where}: value {name!r}: a group name is a string")
        group = self.group(name)
        if body is None:
            return
        if not isinstance(body, Mapping):
            raise InventoryError(f"{self.shown}: {where}.{name}: value {body!r}: a group is a mapping")
        unknown = set(body) - {"hosts", "vars", "children"}
        if unknown:
            raise InventoryError(
                f"{self.shown}: {where}.{name}: value {sorted(map(str, unknown))!r}: "
                "a group holds only hosts, vars and children"
            )
        group.defined = True
        for host, hvars in _mapping(body.get("hosts"), f"{self.shown}: {where}.{name}.hosts").items():
            if not isinstance(host, str) or not host:
                raise InventoryError(f"{self.shown}: {where}.{name}.hosts: value {host!r}: bad host name")
            group.hosts[host] = None
            merged = self.host_vars.setdefault(host, {})
            merged.update(_mapping(hvars, f"{self.shown}: {where}.{name}.hosts.{host}"))
        group.vars.update(_mapping(body.get("vars"), f"{self.shown}: {where}.{name}.vars"))
        for child, child_body in _mapping(
            body.get("children"), f"{self.shown}: {where}.{name}.children"
        ).items():
            if child == name or child == "all":
                raise InventoryError(
                    f"{self.shown}: {where}.{name}.children: value {child!r}: a group cannot contain itself"
                )
            group.children[child] = None
            self.group(child).parents.add(name)
            self.parse_group(child, child_body, f"{where}.{name}.children")

    def finish(self) -> None:
        root = self.groups["all"]
        for g in self.groups.values():
            if g.name != "all" and not g.parents:
                g.parents.add("all")
                root.children[g.name] = None
        # Hosts in no group but all go to "ungrouped", as Ansible does.
        grouped = {h for g in self.groups.values() if g.name != "all" for h in g.hosts}
        loose = [h for h in root.hosts if h not in grouped]
        if loose or "ungrouped" not in self.groups:
            ung = self.group("ungrouped")
            ung.parents.add("all")
            ung.defined = True
            root.children["ungrouped"] = None
            for h in loose:
                ung.hosts[h] = None
        root.hosts.clear()
        self._check_cycles()

    def _check_cycles(self) -> None:
        state: dict[str, int] = {}

        def visit(name: str, trail: list[str]) -> None:
            if state.get(name) == 1:
                raise InventoryError(f"{self.shown}: children: value {name!r}: groups form a cycle {trail}")
            if state.get(name) == 2:
                return
            state[name] = 1
            for child in self.groups[name].children:
                visit(child, [*trail, child])
            state[name] = 2

        visit("all", ["all"])

    def depth(self, name: str, _memo: dict[str, int] | None = None) -> int:
        memo = {} if _memo is None else _memo
        if name == "all":
            return 0
        if name not in memo:
            memo[name] = 1 + max(self.depth(p, memo) for p in self.groups[name].parents)
        return memo[name]

    def ancestors(self, group: str) -> set[str]:
        out: set[str] = set()
        todo = [group]
        while todo:
            g = todo.pop()
            if g in out:
                continue
            out.add(g)
            todo.extend(self.groups[g].parents)
        return out

    def groups_of(self, host: str) -> set[str]:
        direct = {g.name for g in self.groups.values() if host in g.hosts}
        out: set[str] = {"all"}
        for g in direct:
            out |= self.ancestors(g)
        return out


def _mapping(value: Any, where: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        shown = value if isinstance(value, str | int | float | bool) else type(value).__name__
        raise InventoryError(f"{where}: value {shown!r}: expected a mapping")
    return dict(value)


def _vars_files(base: Path, name: str) -> list[Path]:
    """``group_vars/<name>{,.yml,.yaml,.json}`` or every file of ``group_vars/<name>/``."""
    out: list[Path] = []
    for suffix in YAML_SUFFIXES:
        candidate = base / f"{name}{suffix}"
        if candidate.is_file():
            out.append(candidate)
    folder = base / name
    if folder.is_dir():
        out += sorted(
            p
            for p in folder.rglob("*")
            if p.is_file() and p.suffix in YAML_SUFFIXES and not p.name.startswith(".")
        )
    return out


class _Source:
    """Vars of one host with the file each key came from (for error messages)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.origin: dict[str, str] = {}

    def update(self, data: Mapping[str, Any], shown: str) -> None:
        for key, value in data.items():
            self.values[key] = value
            self.origin[key] = shown


# --- secrets ----------------------------------------------------------------
def _is_reference(value: Any) -> bool:
    if value is None or isinstance(value, VaultedValue):
        return True
    if isinstance(value, str):
        return value == "" or "{{" in value  # a Jinja template names a secret elsewhere
    if isinstance(value, Mapping):
        return set(value) in ({"env"}, {"file"}) and all(isinstance(v, str) for v in value.values())
    return False


def _check_no_literal_secrets(data: Any, shown: str, where: str) -> None:
    """Refuse ``password: hunter2`` anywhere; the message names the field, never the value."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            if (
                isinstance(key, str)
                and SECRET_KEY_RE.search(key)
                and not _NOT_SECRET_KEY_RE.search(key)
                and not isinstance(value, list)
            ):
                if not _is_reference(value):
                    raise InventoryError(
                        f"{shown}: {path}: a literal secret is not allowed here (value not shown); "
                        "use a reference: {env: NAME}, {file: path} or an ansible-vault value"
                    )
                continue
            _check_no_literal_secrets(value, shown, path)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            _check_no_literal_secrets(item, shown, f"{where}[{i}]")


# --- building records -------------------------------------------------------
def _field_error(shown: str, where: str, field: str, value: Any, reason: str) -> InventoryError:
    if isinstance(value, VaultedValue) or (
        SECRET_KEY_RE.search(field) and not _NOT_SECRET_KEY_RE.search(field)
    ):
        value = "***"
    elif not (isinstance(value, str | int | float | bool) or value is None):
        value = str(value) if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address) else value
    return InventoryError(f"{shown}: {where}.{field}: value {value!r}: {reason}")


def _validate(
    model: type[BaseModel], data: dict[str, Any], src: _Source, default_file: str, where: str
) -> Any:
    for key, value in data.items():
        if isinstance(value, VaultedValue):
            raise _field_error(
                src.origin.get(key, default_file),
                where,
                key,
                value,
                "an inline !vault value cannot be read by ipsinfra; "
                "use {file: <ansible-vault file>} or {env: NAME}",
            )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        parts = [str(p) for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
        field = ".".join(parts) or "(value)"
        top = parts[0] if parts else ""
        value = err.get("input")
        if isinstance(value, Mapping) and top in data and not isinstance(data[top], Mapping):
            value = data[top]
        if isinstance(value, Mapping | list):
            value = type(value).__name__
        reason = str(err["msg"]).removeprefix("Value error, ")
        # Count problems per field: an IP fails both the IPv4 and the IPv6 branch.
        fields = {tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p)) for e in exc.errors()}
        more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
        raise _field_error(src.origin.get(top, default_file), where, field, value, reason + more) from None


_ANSIBLE_FIELD_MAP = {
    "nodes": {
        "ansible_host": "ssh_host",
        "ansible_port": "ssh_port",
        "ansible_user": "ssh_user",
        "ansible_ssh_private_key_file": "ssh_key_file",
    },
    "switches": {"ansible_host": "host", "ansible_port": "port", "ansible_user": "username"},
    "vds": {"vds_name": "name", "vds_order": "order"},
    "dedicated": {"switch_port": "port"},
}


_MODELS: dict[str, type[BaseModel]] = {
    "nodes": Node,
    "switches": Switch,
    "vds": Vds,
    "dedicated": DedicatedServer,
}
_NAME_FROM_HOST = "the name is the inventory host name; do not set it"
_RESERVED = {
    "nodes": {"name": _NAME_FROM_HOST},
    "switches": {
        "name": _NAME_FROM_HOST,
        "port": "the SSH port is `ansible_port` (`port` is an Ansible keyword)",
    },
    "dedicated": {
        "name": _NAME_FROM_HOST,
        "port": "the switch port is `switch_port` (`port` is an Ansible keyword)",
    },
    "vds": {
        "name": "a VDS's house name is `vds_name`",
        "order": "the order number is `vds_order` (`order` is an Ansible keyword), or left to `vds_name`",
    },
}


def _record_data(
    kind: str, model: type[BaseModel], host: str, src: _Source, host_keys: set[str], default_file: str
) -> dict[str, Any]:
    """The model's fields out of a host's merged vars.

    Keys set on the host itself must be model fields (typos fail loudly); keys
    inherited from groups that the model does not know are for playbooks.
    """
    mapping = _ANSIBLE_FIELD_MAP.get(kind, {})
    reserved = _RESERVED.get(kind, {})
    fields = set(model.model_fields)
    data: dict[str, Any] = {}
    for key, value in src.values.items():
        target = mapping.get(key, key)
        if key in reserved:
            if key in host_keys:
                raise InventoryError(
                    f"{src.origin.get(key, default_file)}: {kind}.{host}.{key}: value {_shown(value)!r}: "
                    f"{reserved[key]}"
                )
            continue
        if key in mapping and target in src.values:
            continue  # an explicit field wins over the ansible_* spelling
        if target in fields:
            data[target] = value
        elif key in host_keys and not key.startswith(("ansible_", "ipsinfra_")):
            raise InventoryError(
                f"{src.origin.get(key, default_file)}: {kind}.{host}.{key}: value "
                f"{_shown(value)!r}: not a field of {model.__name__} "
                f"(known: {', '.join(sorted((fields | set(mapping)) - set(reserved)))})"
            )
    return data


def _shown(value: Any) -> Any:
    if isinstance(value, VaultedValue):
        return "***"
    return value if isinstance(value, str | int | float | bool) or value is None else type(value).__name__


# --- public: load ------------------------------------------------------------
def load(path: str | Path) -> Fleet:
    """Read an Ansible YAML inventory directory (or its hosts file) into a :class:`Fleet`.

    Raises InventoryError naming the file, the field and the value.
    """
    return _assemble(*_read_tree(path))


def host_vars(path: str | Path) -> dict[str, dict[str, Any]]:
    """Every host's merged variables, as Ansible would see them (no templating).

    ``!vault`` values stay :class:`VaultedValue` objects.
    """
    tree, vars_of, *_ = _read_tree(path)
    return {host: vars_of(host)[0].values for host in tree.host_vars}


_VarsOf = Callable[[str | None], tuple[_Source, set[str]]]


def _read_tree(path: str | Path) -> tuple[_Tree, _VarsOf, Callable[[str], _Source], Path, Path, Path]:
    given = Path(path)
    if given.is_dir():
        for name in ("hosts.yml", "hosts.yaml"):
            if (given / name).is_file():
                hosts_file = given / name
                break
        else:
            raise InventoryError(f"{given}: no hosts.yml in the inventory directory")
    elif given.is_file():
        hosts_file = given
    else:
        raise InventoryError(f"{given}: no such inventory")
    base = hosts_file.parent

    raw = _read_yaml(hosts_file, str(hosts_file))
    tree = _Tree(str(hosts_file))
    _check_no_literal_secrets(raw, str(hosts_file), "")
    for name, body in _mapping(raw, str(hosts_file)).items():
        tree.parse_group(name, body, "")
    tree.finish()

    # group_vars / host_vars files must name a group / host that exists: Ansible
    # ignores a typo there silently, which is how a setting quietly stops applying.
    group_files: dict[str, list[tuple[str, Any]]] = {}
    host_files: dict[str, list[tuple[str, Any]]] = {}
    for folder, known, out, what in (
        (base / "group_vars", tree.groups, group_files, "group"),
        (base / "host_vars", tree.host_vars, host_files, "host"),
    ):
        if not folder.is_dir():
            continue
        names = {p.name if p.is_dir() else p.name.removesuffix(p.suffix) for p in folder.iterdir()}
        for name in sorted(n for n in names if not n.startswith(".")):
            files = _vars_files(folder, name)
            if not files:
                continue
            if name not in known:
                raise InventoryError(
                    f"{files[0]}: {what}: value {name!r}: unknown {what} (not in {hosts_file.name})"
                )
            for f in files:
                data = _read_yaml(f, str(f))
                _check_no_literal_secrets(data, str(f), "")
                out.setdefault(name, []).append((str(f), _mapping(data, str(f))))
    for name in group_files:
        tree.groups[name].defined = True

    def vars_of(host: str | None) -> tuple[_Source, set[str]]:
        src = _Source()
        groups = tree.groups_of(host) if host is not None else {"all"}

        def order(g: str) -> tuple[int, int, str]:
            prio = tree.groups[g].vars.get("ansible_group_priority", 1)
            for _, data in group_files.get(g, []):
                prio = data.get("ansible_group_priority", prio)
            return (tree.depth(g), int(prio), g)

        ordered = sorted(groups, key=order)
        for g in ordered:  # inventory-file group vars
            src.update(tree.groups[g].vars, str(hosts_file))
        for g in ordered:  # group_vars/ beat every inventory-file group var
            for shown, data in group_files.get(g, []):
                src.update(data, shown)
        host_keys: set[str] = set()
        if host is not None:
            src.update(tree.host_vars.get(host, {}), str(hosts_file))
            for shown, data in host_files.get(host, []):
                src.update(data, shown)
            host_keys = set(tree.host_vars.get(host, {}))
            for _, data in host_files.get(host, []):
                host_keys |= set(data)
        return src, host_keys

    def group_src(group: str) -> _Source:
        src = _Source()
        src.update(tree.groups[group].vars, str(hosts_file))
        for shown, data in group_files.get(group, []):
            src.update(data, shown)
        return src

    return tree, vars_of, group_src, hosts_file, base, given


def _assemble(
    tree: _Tree,
    vars_of: _VarsOf,
    group_src: Callable[[str], _Source],
    hosts_file: Path,
    base: Path,
    given: Path,
) -> Fleet:
    shown_hosts = str(hosts_file)
    host_file = {h: str(base / "host_vars" / f"{h}.yml") for h in tree.host_vars}

    def default_file(host: str) -> str:
        return host_file[host] if Path(host_file[host]).exists() else shown_hosts

    # Which kind of record is each host?
    members: dict[str, set[str]] = {}
    for kind in KIND_GROUPS:
        if kind in tree.groups:
            for host in tree.host_vars:
                if kind in tree.groups_of(host):
                    members.setdefault(host, set()).add(kind)
    for host, kinds in members.items():
        if len(kinds) > 1:
            raise InventoryError(
                f"{shown_hosts}: hosts.{host}: value {sorted(kinds)!r}: a host is one of nodes, switches, "
                "vds, dedicated"
            )

    # Sites: the children of `sites`, each with `ipsinfra_site` in its group vars.
    sites: dict[str, Site] = {}
    site_groups = list(tree.groups["sites"].children) if "sites" in tree.groups else []
    for site in site_groups:
        src = group_src(site)
        origin = src.origin.get("ipsinfra_site", str(base / "group_vars" / f"{site}.yml"))
        data = src.values.get("ipsinfra_site")
        if data is None:
            raise InventoryError(
                f"{origin}: sites.{site}.ipsinfra_site: value None: a site group needs its site data "
                f"(dc, own_network...) in group_vars/{site}.yml"
            )
        site_data = {"name": site, **_mapping(data, f"{origin}: sites.{site}.ipsinfra_site")}
        if site_data["name"] != site:
            raise _field_error(
                origin, f"sites.{site}", "name", site_data["name"], "must equal the group name"
            )
        sites[site] = _validate(Site, site_data, src, origin, f"sites.{site}")

    all_src, _ = vars_of(None)
    clients: dict[str, Client] = {}
    clients_origin = all_src.origin.get("ipsinfra_clients", shown_hosts)
    for cid, cdata in _mapping(
        all_src.values.get("ipsinfra_clients"), f"{clients_origin}: ipsinfra_clients"
    ).items():
        csrc = _Source()
        csrc.update(_mapping(cdata, f"{clients_origin}: clients.{cid}"), clients_origin)
        clients[str(cid)] = _validate(
            Client, {"id": str(cid), **csrc.values}, csrc, clients_origin, f"clients.{cid}"
        )

    records: dict[str, dict[str, tuple[dict[str, Any], _Source, str]]] = {k: {} for k in KIND_GROUPS}
    for host in tree.host_vars:
        kinds = members.get(host, set())
        if not kinds:
            continue  # a host ipsinfra has no model for (a monitoring box...): Ansible's business
        (kind,) = kinds
        src, host_keys = vars_of(host)
        model = _MODELS[kind]
        data = _record_data(kind, model, host, src, host_keys, default_file(host))
        # A host's site: its `site` var, else the one site group it sits in.
        if kind != "vds":
            in_sites = sorted(g for g in tree.groups_of(host) if g in site_groups)
            if "site" in data:
                if data["site"] not in sites:
                    raise _field_error(
                        src.origin.get("site", default_file(host)),
                        f"{kind}.{host}",
                        "site",
                        data["site"],
                        "unknown group: not a site under `sites` "
                        f"(known: {', '.join(sorted(sites)) or 'none'})",
                    )
            elif len(in_sites) == 1:
                data["site"] = in_sites[0]
            elif len(in_sites) > 1:
                raise _field_error(
                    shown_hosts, f"{kind}.{host}", "site", in_sites, "a host sits in one site group"
                )
            data.setdefault("name", host)
        records[kind][host] = (data, src, default_file(host))

    nodes: dict[str, Node] = {}
    for host, (data, src, df) in records["nodes"].items():
        if "kind" not in data:
            for group, hkind in NODE_KIND_GROUPS.items():
                if group in tree.groups_of(host):
                    data["kind"] = hkind
        nodes[host] = _validate(Node, data, src, df, f"nodes.{host}")
    switches = {
        host: _validate(Switch, data, src, df, f"switches.{host}")
        for host, (data, src, df) in records["switches"].items()
    }
    dedicated: dict[str, DedicatedServer] = {}
    for host, (data, src, df) in records["dedicated"].items():
        d = _validate(DedicatedServer, data, src, df, f"dedicated.{host}")
        if d.switch is not None and d.switch not in switches:
            raise _field_error(
                src.origin.get("switch", df), f"dedicated.{host}", "switch", d.switch, "no such switch"
            )
        if d.client is not None and d.client not in clients:
            raise _field_error(
                src.origin.get("client", df), f"dedicated.{host}", "client", d.client, "no such client"
            )
        dedicated[d.name] = d

    vds: dict[str, Vds] = {}
    hostnames: dict[str, str] = {h: h for h in (*nodes, *switches, *records["dedicated"])}
    for host, (data, src, df) in records["vds"].items():
        where = f"vds.{host}"
        if "name" not in data:
            try:
                data["name"] = from_pve_safe_name(host)
            except InvalidName:
                raise _field_error(
                    df, where, "vds_name", None, "needed: the host name is not a house name's DNS-safe twin"
                ) from None
        name = data["name"]
        origin = src.origin.get("vds_name", df)
        try:
            parsed = parse_vps_name(name)
        except InvalidName as exc:
            raise InventoryError(f"{origin}: {where}.vds_name: {exc}".replace(": name: ", ": ", 1)) from None
        where = f"vds.{name}"
        if "order" in data:
            try:
                order = check_order(data["order"])
            except InvalidName as exc:
                raise _field_error(
                    src.origin.get("vds_order", df),
                    where,
                    "vds_order",
                    data["order"],
                    str(exc).split(": ", 2)[-1],
                ) from None
            if order != parsed.order:
                raise _field_error(
                    src.origin.get("vds_order", df),
                    where,
                    "vds_order",
                    data["order"],
                    f"does not match the name {name}",
                )
            data["order"] = order
        else:
            data["order"] = parsed.order
        if name in vds:
            first = next(h for h, n in hostnames.items() if n == name)
            raise _field_error(
                origin, where, "vds_name", name, f"duplicate house name: host {first} has it too"
            )
        node_name = data.get("node")
        if node_name not in nodes:
            raise _field_error(
                src.origin.get("node", df),
                where,
                "node",
                node_name,
                f"no such node (known: {', '.join(sorted(nodes)) or 'none'})",
            )
        node = nodes[node_name]
        expected = node_octets(node.main_ip) if isinstance(node.main_ip, ipaddress.IPv4Address) else None
        if expected is not None and parsed.octets != expected:
            raise _field_error(
                origin,
                where,
                "vds_name",
                name,
                f"§8.5: the octets {parsed.octets} do not match node {node.name}'s main IP {node.main_ip} "
                f"(expected VPS{parsed.order}({expected}))",
            )
        v = _validate(Vds, data, src, df, where)
        if v.client is not None and v.client not in clients:
            raise _field_error(src.origin.get("client", df), where, "client", v.client, "no such client")
        vds[name] = v
        hostnames[host] = name

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


# --- public: load_dict / dump ---------------------------------------------------
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
        _write_layout(data, Path(tmp))
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
    _write_layout(data, out, {name: host for host, name in hostnames.items()})
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


def _write_layout(data: Mapping[str, Any], out: Path, hostname_of: Mapping[str, str] | None = None) -> None:
    hostname_of = hostname_of or {}
    section = {
        k: _mapping(data.get(k), f"<dict>: {k}")
        for k in ("sites", "nodes", "switches", "vds", "dedicated", "clients")
    }
    site_hosts: dict[str, dict[str, None]] = {str(s): {} for s in section["sites"]}
    node_groups: dict[str, dict[str, None]] = {"libvirt_nodes": {}, "proxmox_nodes": {}}
    host_vars: dict[str, dict[str, Any]] = {}
    maps = {kind: {v: k for k, v in m.items()} for kind, m in _ANSIBLE_FIELD_MAP.items()}

    def add_host(kind: str, host: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        hv: dict[str, Any] = {}
        for key, value in fields.items():
            hv[maps.get(kind, {}).get(key, key)] = value
        host_vars[host] = hv
        return hv

    for name, fields in section["nodes"].items():
        fields = _mapping(fields, f"<dict>: nodes.{name}")
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
                {k: v for k, v in _mapping(fields, f"<dict>: {kind}.{name}").items() if k != "name"},
            )
    for hosts in (section["nodes"], section["switches"], section["dedicated"]):
        for name, fields in hosts.items():
            site = _mapping(fields, "<dict>").get("site")
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
            k: v for k, v in _mapping(fields, f"<dict>: vds.{name}").items() if k not in ("name", "order")
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
        tree, out / "hosts.yml", "# Written by ipsinfra.inventory.dump; layout: see ipsinfra/inventory.py.\n"
    )
    gv = out / "group_vars"
    _yaml_dump({"ipsinfra_clients": section["clients"]}, gv / "all" / "clients.yml")
    _yaml_dump({"kind": "libvirt"}, gv / "libvirt_nodes.yml")
    _yaml_dump({"kind": "proxmox"}, gv / "proxmox_nodes.yml")
    _yaml_dump({"ansible_connection": "local"}, gv / "vds.yml")
    for site, fields in section["sites"].items():
        _yaml_dump(
            {"ipsinfra_site": {k: v for k, v in _mapping(fields, "<dict>").items() if k != "name"}},
            gv / f"{site}.yml",
        )
    for host, hv in host_vars.items():
        _yaml_dump(hv, out / "host_vars" / f"{host}.yml")


__all__ = [
    "Fleet",
    "InventoryGroup",
    "VaultedValue",
    "dump",
    "fleet_to_dict",
    "host_vars",
    "load",
    "load_dict",
]
