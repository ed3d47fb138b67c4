"""Secrets in an inventory are references only; a literal secret is refused, never echoed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ipsinfra.errors import InventoryError
from ipsinfra.inventory.yamlfile import VaultedValue

# Keys whose values are secrets and must be references. ``*_id`` (api_token_id)
# and ``*_file`` (ansible_ssh_private_key_file) name secrets, they are not secrets.
SECRET_KEY_RE = re.compile(r"pass|secret|token|key", re.IGNORECASE)
# ``password_method`` (Node: agent | nocloud) says HOW a password travels, it holds none.
NOT_SECRET_KEY_RE = re.compile(r"(_id|_file|_path|_env|^password_method)$", re.IGNORECASE)


def _is_reference(value: Any) -> bool:
    if value is None or isinstance(value, VaultedValue):
        return True
    if isinstance(value, str):
        return value == "" or "{{" in value  # a Jinja template names a secret elsewhere
    if isinstance(value, Mapping):
        return set(value) in ({"env"}, {"file"}) and all(isinstance(v, str) for v in value.values())
    return False


def check_no_literal_secrets(data: Any, shown: str, where: str) -> None:
    """Refuse ``password: hunter2`` anywhere; the message names the field, never the value."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            if (
                isinstance(key, str)
                and SECRET_KEY_RE.search(key)
                and not NOT_SECRET_KEY_RE.search(key)
                and not isinstance(value, list)
            ):
                if not _is_reference(value):
                    raise InventoryError(
                        f"{shown}: {path}: a literal secret is not allowed here (value not shown); "
                        "use a reference: {env: NAME}, {file: path} or an ansible-vault value"
                    )
                continue
            check_no_literal_secrets(value, shown, path)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            check_no_literal_secrets(item, shown, f"{where}[{i}]")
