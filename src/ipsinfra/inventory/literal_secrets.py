"""Secrets in an inventory are references only; a literal secret is refused, never echoed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ipsinfra.errors import InventoryError
from ipsinfra.inventory.yamlfile import VaultedValue

# Keys whose values are secrets and must be references. ``*_id`` (api_token_id)
# and ``*_file`` (ansible_ssh_private_key_file) name secrets, they are not secrets.
SECRET_KEY_RE = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)
# ``password_method`` (Node: agent | nocloud) says HOW a password travels, it holds none.
NOT_SECRET_KEY_RE = re.compile(r"(_id|_file|_path|_env|^password_method)$", re.IGNORECASE)


_TEMPLATE = re.compile(r"\{\{(?P<expr>(?:(?!\}\}|\{\{).)*)\}\}", re.DOTALL)
_STRING_LITERAL = re.compile(r"""\s*(?:'[^']*'|"[^"]*")(?:\s*[~+]\s*(?:'[^']*'|"[^"]*"))*\s*""")


def _is_template_reference(value: str) -> bool:
    m = _TEMPLATE.fullmatch(value.strip())
    return m is not None and bool(m["expr"].strip()) and _STRING_LITERAL.fullmatch(m["expr"]) is None


def _is_reference(value: Any) -> bool:
    if value is None or isinstance(value, VaultedValue):
        return True
    if isinstance(value, str):
        # A Jinja template names a secret elsewhere ("{{ vault_pve_token }}", "{{ lookup('env', 'X') }}"),
        # but only when the whole value is ONE expression that is not itself a string literal:
        # "hunter2{{ '' }}" and "{{ 'hunter2' }}" are literals in disguise.
        return value == "" or _is_template_reference(value)
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
