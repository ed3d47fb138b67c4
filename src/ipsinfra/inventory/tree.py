"""Ansible's group tree and variable merging (all < parent < child < host), in pure Python."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ipsinfra.errors import InventoryError

YAML_SUFFIXES = ("", ".yml", ".yaml", ".json")


class _Group:
    def __init__(self, name: str) -> None:
        self.name = name
        self.hosts: dict[str, None] = {}  # ordered set
        self.children: dict[str, None] = {}
        self.parents: set[str] = set()
        self.vars: dict[str, Any] = {}
        self.defined = False  # has hosts, children or vars somewhere


class GroupTree:
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
        for host, hvars in as_mapping(body.get("hosts"), f"{self.shown}: {where}.{name}.hosts").items():
            if not isinstance(host, str) or not host:
                raise InventoryError(f"{self.shown}: {where}.{name}.hosts: value {host!r}: bad host name")
            group.hosts[host] = None
            merged = self.host_vars.setdefault(host, {})
            merged.update(as_mapping(hvars, f"{self.shown}: {where}.{name}.hosts.{host}"))
        group.vars.update(as_mapping(body.get("vars"), f"{self.shown}: {where}.{name}.vars"))
        for child, child_body in as_mapping(
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


def as_mapping(value: Any, where: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        shown = value if isinstance(value, str | int | float | bool) else type(value).__name__
        raise InventoryError(f"{where}: value {shown!r}: expected a mapping")
    return dict(value)


def vars_files(base: Path, name: str) -> list[Path]:
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


class Source:
    """Vars of one host with the file each key came from (for error messages)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.origin: dict[str, str] = {}

    def update(self, data: Mapping[str, Any], shown: str) -> None:
        for key, value in data.items():
            self.values[key] = value
            self.origin[key] = shown
