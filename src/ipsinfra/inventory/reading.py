"""Reading an inventory directory: hosts.yml, group_vars/ and host_vars/ -> a group tree with merged vars."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ipsinfra.errors import InventoryError
from ipsinfra.inventory.assemble import VarsOf, assemble
from ipsinfra.inventory.fleet import Fleet
from ipsinfra.inventory.literal_secrets import check_no_literal_secrets
from ipsinfra.inventory.tree import GroupTree, Source, as_mapping, vars_files
from ipsinfra.inventory.yamlfile import read_yaml


def load(path: str | Path) -> Fleet:
    """Read an Ansible YAML inventory directory (or its hosts file) into a :class:`Fleet`.

    Raises InventoryError naming the file, the field and the value.
    """
    return assemble(*read_tree(path))


def host_vars(path: str | Path) -> dict[str, dict[str, Any]]:
    """Every host's merged variables, as Ansible would see them (no templating).

    ``!vault`` values stay :class:`VaultedValue` objects.
    """
    tree, vars_of, *_ = read_tree(path)
    return {host: vars_of(host)[0].values for host in tree.host_vars}


def read_tree(path: str | Path) -> tuple[GroupTree, VarsOf, Callable[[str], Source], Path, Path, Path]:
    """The group tree of ``path``, a merged-vars lookup per host and per group, and where they came from."""
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
    # A write-back interrupted midway (a crash) left an intent: roll it back before reading.
    from ipsinfra.inventory.atomic import recover

    recover(base)

    raw = read_yaml(hosts_file, str(hosts_file))
    tree = GroupTree(str(hosts_file))
    check_no_literal_secrets(raw, str(hosts_file), "")
    for name, body in as_mapping(raw, str(hosts_file)).items():
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
            files = vars_files(folder, name)
            if not files:
                continue
            if name not in known:
                raise InventoryError(
                    f"{files[0]}: {what}: value {name!r}: unknown {what} (not in {hosts_file.name})"
                )
            for f in files:
                data = read_yaml(f, str(f))
                check_no_literal_secrets(data, str(f), "")
                out.setdefault(name, []).append((str(f), as_mapping(data, str(f))))
    for name in group_files:
        tree.groups[name].defined = True

    def vars_of(host: str | None) -> tuple[Source, set[str]]:
        src = Source()
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

    def group_src(group: str) -> Source:
        src = Source()
        src.update(tree.groups[group].vars, str(hosts_file))
        for shown, data in group_files.get(group, []):
            src.update(data, shown)
        return src

    return tree, vars_of, group_src, hosts_file, base, given
