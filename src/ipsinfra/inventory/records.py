"""One host's merged vars -> a model's fields, validated with errors naming file, field and value."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ipsinfra.errors import InventoryError
from ipsinfra.inventory.literal_secrets import NOT_SECRET_KEY_RE, SECRET_KEY_RE
from ipsinfra.inventory.tree import Source
from ipsinfra.inventory.yamlfile import VaultedValue
from ipsinfra.models import DedicatedServer, Node, Switch, Vds


def field_error(shown: str, where: str, field: str, value: Any, reason: str) -> InventoryError:
    if isinstance(value, VaultedValue) or (
        SECRET_KEY_RE.search(field) and not NOT_SECRET_KEY_RE.search(field)
    ):
        value = "***"
    elif not (isinstance(value, str | int | float | bool) or value is None):
        value = str(value) if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address) else value
    return InventoryError(f"{shown}: {where}.{field}: value {value!r}: {reason}")


def validate(model: type[BaseModel], data: dict[str, Any], src: Source, default_file: str, where: str) -> Any:
    for key, value in data.items():
        if isinstance(value, VaultedValue):
            raise field_error(
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
        raise field_error(src.origin.get(top, default_file), where, field, value, reason + more) from None


ANSIBLE_FIELD_MAP = {
    "nodes": {
        "ansible_host": "ssh_host",
        "ansible_port": "ssh_port",
        "ansible_user": "ssh_user",
        "ansible_ssh_private_key_file": "ssh_key_file",
    },
    "switches": {
        "ansible_host": "host",
        "ansible_port": "port",
        "ansible_user": "username",
        "ansible_ssh_private_key_file": "ssh_key_file",
    },
    "vds": {"vds_name": "name", "vds_order": "order"},
    "dedicated": {"switch_port": "port"},
}


MODELS: dict[str, type[BaseModel]] = {
    "nodes": Node,
    "switches": Switch,
    "vds": Vds,
    "dedicated": DedicatedServer,
}
_NAME_FROM_HOST = "the name is the inventory host name; do not set it"
RESERVED = {
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


def record_data(
    kind: str, model: type[BaseModel], host: str, src: Source, host_keys: set[str], default_file: str
) -> dict[str, Any]:
    """The model's fields out of a host's merged vars.

    Keys set on the host itself must be model fields (typos fail loudly); keys
    inherited from groups that the model does not know are for playbooks.
    """
    mapping = ANSIBLE_FIELD_MAP.get(kind, {})
    reserved = RESERVED.get(kind, {})
    fields = set(model.model_fields)
    data: dict[str, Any] = {}
    for key, value in src.values.items():
        target = mapping.get(key, key)
        if key in reserved:
            if key in host_keys:
                raise InventoryError(
                    f"{src.origin.get(key, default_file)}: {kind}.{host}.{key}: "
                    f"value {shown_value(value)!r}: {reserved[key]}"
                )
            continue
        if key in mapping and target in src.values:
            continue  # an explicit field wins over the ansible_* spelling
        if target in fields:
            data[target] = value
        elif key in host_keys and not key.startswith(("ansible_", "ipsinfra_")):
            # An unknown key may be a misspelt secret (switch_pwd): named, its value never shown.
            raise InventoryError(
                f"{src.origin.get(key, default_file)}: {kind}.{host}.{key}: unknown field, "
                f"not a field of {model.__name__} (value not shown; "
                f"known: {', '.join(sorted((fields | set(mapping)) - set(reserved)))})"
            )
    return data


def shown_value(value: Any) -> Any:
    if isinstance(value, VaultedValue):
        return "***"
    return value if isinstance(value, str | int | float | bool) or value is None else type(value).__name__
