"""Reading one inventory YAML file: safe_load plus Ansible's ``!vault``/``!unsafe`` tags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ipsinfra.errors import InventoryError


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


class InventoryLoader(yaml.SafeLoader):
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


InventoryLoader.add_constructor("!vault", _construct_vault)
InventoryLoader.add_constructor("!unsafe", _construct_unsafe)
InventoryLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path, shown: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{shown}: cannot be read: {exc}") from None
    try:
        return yaml.load(text, Loader=InventoryLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InventoryError(f"{shown}: {where}: malformed YAML: {problem}") from None
