"""Editing inventory YAML text in place: values spliced in at the parser's positions.

Every byte outside the changed values stays as it was: comments, key order,
quoting, flow or block style. (A round-trip dump does not: ruamel 0.19
rewrites the example inventory's own ``nics: [{mac: ...}]`` as ``[mac: ...]``.)
Pure functions, text in, text out.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import json
from collections.abc import Iterator, Mapping
from typing import Any

import yaml
from pydantic import BaseModel

from ipsinfra.errors import InventoryError
from ipsinfra.inventory.yamlfile import InventoryLoader


class WriteBackError(InventoryError):
    """The inventory cannot take the change (unreadable, hand-edited out of shape, unwritable)."""


class _Delete(enum.Enum):
    DELETE = "delete"


DELETE = _Delete.DELETE  # a RecordUpdate value: drop the key from the host's file


def _compose(text: str, shown: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=InventoryLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise WriteBackError(f"{shown}: {where}: malformed YAML: {problem}") from None


def plain(value: Any) -> Any:
    """A value as YAML writes it: IPs and dates as text, models as mappings without defaults."""
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="json", exclude_none=True))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address | enum.Enum):
        return str(value.value if isinstance(value, enum.Enum) else value)
    return value


def same(a: Any, b: Any) -> bool:
    def norm(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): norm(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [norm(x) for x in v]
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return str(v)
        return v

    return bool(norm(a) == norm(b))


def flow(value: Any) -> str:
    text = yaml.safe_dump(plain(value), default_flow_style=True, width=1_000_000, allow_unicode=True)
    return text.removesuffix("\n...\n").rstrip("\n")


def _quoted(value: str, style: str) -> str:
    if style == '"':
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted one
    return "'" + value.replace("'", "''") + "'"


def _block(value: Any, indent: int) -> str:
    text = yaml.safe_dump(plain(value), default_flow_style=False, sort_keys=False, allow_unicode=True)
    lines = text.splitlines(keepends=True)
    return lines[0] + "".join(" " * indent + line for line in lines[1:])


def _content_end(text: str, start: int, end: int) -> int:
    """``end`` moved back over trailing blank and comment-only lines (they belong to what follows)."""
    while end > start:
        line_start = text.rfind("\n", start, end - 1) + 1
        line = text[line_start:end].strip()
        if line and not line.startswith("#"):
            break
        end = line_start
    return end


def set_keys(
    text: str, shown: str, values: Mapping[str, Any], only_if_present: frozenset[str] = frozenset()
) -> str:
    """``text`` (a host_vars file: one top-level mapping) with ``values`` set, everything else as it was.

    A key that is there keeps its place, style and trailing comment; a new key
    goes at the end; ``DELETE`` drops the key's lines.
    """
    root = _compose(text, shown)
    if root is None:
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
    elif isinstance(root, yaml.MappingNode) and not root.flow_style:
        pairs = list(root.value)
    else:
        raise WriteBackError(f"{shown}: line 1: expected a block mapping of host variables")
    loaded = yaml.load(text, Loader=InventoryLoader) or {}
    splices: list[tuple[int, int, str]] = []
    appended: list[str] = []
    for key, value in values.items():
        found = next(((k, v) for k, v in pairs if isinstance(k, yaml.ScalarNode) and k.value == key), None)
        if found is None:
            if value is DELETE or key in only_if_present:
                continue
            appended.append(f"{key}: {flow(value)}\n")
            continue
        knode, vnode = found
        if value is DELETE:
            start = text.rfind("\n", 0, knode.start_mark.index) + 1
            end = _content_end(text, vnode.start_mark.index, vnode.end_mark.index)
            splices.append((start, _line_end(text, end), ""))
            continue
        if same(loaded.get(key), plain(value)):
            continue
        start = vnode.start_mark.index
        end = vnode.end_mark.index
        if isinstance(vnode, yaml.CollectionNode) and not vnode.flow_style:
            end = _content_end(text, start, end)
            new = _block(value, vnode.start_mark.column)
            if not text[start:end].endswith("\n"):
                new = new.rstrip("\n")
            if not isinstance(value, list | dict) or not value:
                new = flow(value) + ("\n" if text[start:end].endswith("\n") else "")
        elif isinstance(vnode, yaml.ScalarNode) and vnode.value == "" and vnode.style is None:
            new = " " + flow(value) if text[start - 1 : start] == ":" else flow(value)
        elif isinstance(vnode, yaml.ScalarNode) and vnode.style in ('"', "'") and isinstance(value, str):
            new = _quoted(value, vnode.style)  # "105" stays double-quoted
        else:
            new = flow(value)
        splices.append((start, end, new))
    out = text
    for start, end, new in sorted(splices, reverse=True):
        out = out[:start] + new + out[end:]
    if appended:
        if out and not out.endswith("\n"):
            out += "\n"
        if not out.strip():
            out = "---\n"
        out += "".join(appended)
    return out


def _line_end(text: str, end: int) -> int:
    """The start of the line after the one ``end`` is on (``end`` itself when it starts a line)."""
    if end > 0 and text[end - 1] == "\n":
        return end
    newline = text.find("\n", end)
    return len(text) if newline < 0 else newline + 1


def _hosts_mappings(node: yaml.Node | None) -> Iterator[tuple[str, yaml.MappingNode]]:
    """Every ``<group>: {hosts: {...}}`` mapping in a hosts.yml tree, with its group's name."""
    if not isinstance(node, yaml.MappingNode):
        return
    for k, v in node.value:
        if not isinstance(v, yaml.MappingNode):
            continue
        for kk, vv in v.value:
            if isinstance(kk, yaml.ScalarNode) and kk.value == "hosts" and isinstance(vv, yaml.MappingNode):
                yield str(k.value), vv
            if isinstance(kk, yaml.ScalarNode) and kk.value == "children":
                yield from _hosts_mappings(vv)
        if str(k.value) == "all":
            yield from _hosts_mappings(v)


def rename_host(text: str, shown: str, old: str, new: str) -> str:
    """hosts.yml with host ``old`` renamed ``new`` in every group that lists it."""
    root = _compose(text, shown)
    spans = [
        (k.start_mark.index, k.end_mark.index)
        for _, hosts in _hosts_mappings(root)
        for k, _ in hosts.value
        if isinstance(k, yaml.ScalarNode) and k.value == old
    ]
    out = text
    for start, end in sorted(spans, reverse=True):
        out = out[:start] + new + out[end:]
    return out


def add_host(text: str, shown: str, group: str, host: str) -> str:
    """hosts.yml with ``host`` added as the last host of ``group`` (a no-op if it is there)."""
    root = _compose(text, shown)
    for name, hosts in _hosts_mappings(root):
        if name != group:
            continue
        if any(isinstance(k, yaml.ScalarNode) and k.value == host for k, _ in hosts.value):
            return text
        if hosts.flow_style or not hosts.value:
            break
        first_key = hosts.value[0][0]
        last_value = hosts.value[-1][1]
        end = _content_end(text, hosts.value[-1][0].start_mark.index, last_value.end_mark.index)
        at = _line_end(text, end)
        prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
        indent = " " * int(first_key.start_mark.column)
        return text[:at] + prefix + indent + f"{host}:\n" + text[at:]
    raise WriteBackError(
        f"{shown}: hosts.{group}: no block `hosts:` list to add {host} to; add `{host}:` under "
        f"`{group}: hosts:` by hand"
    )


__all__ = ["DELETE", "WriteBackError", "add_host", "rename_host", "set_keys"]
