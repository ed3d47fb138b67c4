# Copyright (c) 2026 ipsinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared plumbing of the ipsinfra.infra modules: options, the fleet, the drivers, errors.

The modules run on the controller (``delegate_to: localhost`` or a play on
``localhost``) with the Python that has ``ipsinfra`` installed
(``ansible_python_interpreter: "{{ ansible_playbook_python }}"``); they are
thin wrappers over the library, which does the planning, the work and the
verification.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

IMPORT_ERROR: str | None = None
try:
    import yaml

    from ipsinfra.errors import IpsinfraError
    from ipsinfra.hypervisors import DriverPool
    from ipsinfra.inventory import Fleet, load
    from ipsinfra.journal import PASSWORD_FILE_ENV, Journal, safe_url, url_secrets
    from ipsinfra.models import Vds
except ImportError:  # pragma: no cover - reported by require_ipsinfra()
    IMPORT_ERROR = traceback.format_exc()

FLEET_PLUGIN = "ipsinfra.infra.fleet"

# The options every module shares (documented in the ipsinfra.infra.common doc fragment).
COMMON_ARGS: dict[str, Any] = {
    "inventory": {"type": "path", "required": True},
    # A path or URL, shown in the task's arguments: a URL carrying a password is refused
    # (check_journal_options); the password comes from journal_password_file or the environment.
    "journal": {"type": "str"},
    "journal_password_file": {"type": "path", "no_log": False},  # a path, not the secret
}


def require_ipsinfra(module: Any) -> None:
    """Fail the task with Ansible's usual message when ``ipsinfra`` cannot be imported."""
    if IMPORT_ERROR is not None:
        from ansible.module_utils.basic import missing_required_lib  # type: ignore[import-untyped]

        module.fail_json(
            msg=missing_required_lib(
                "ipsinfra", reason="run the task on the controller with ansible_playbook_python"
            ),
            exception=IMPORT_ERROR,
        )
    check_journal_options(module)


def check_journal_options(module: Any) -> None:
    """The journal's password never rides in a task option: Ansible shows those (the
    task's arguments, ``invocation.module_args``, AWX's job events).

    A ``journal`` URL that carries one fails the task, the password masked in
    everything it returns; ``journal_password_file`` is handed to the journal
    (``$IPSINFRA_JOURNAL_PASSWORD_FILE`` of this module's process).
    """
    url = module.params.get("journal")
    secrets = url_secrets(url)
    if secrets:
        module.no_log_values.update(secrets)
        module.fail_json(
            msg=(
                f"journal: {safe_url(url)}: a password in this option shows in the task's arguments; "
                f"put it in a file named by journal_password_file (or ${PASSWORD_FILE_ENV}), "
                "or give the whole URL in $IPSINFRA_JOURNAL, or use libpq's $PGPASSWORD / ~/.pgpass"
            )
        )
    password_file = module.params.get("journal_password_file")
    if password_file:
        os.environ[PASSWORD_FILE_ENV] = str(password_file)


def static_inventory(path: str | os.PathLike[str]) -> Path:
    """The static inventory directory behind ``path``.

    ``path`` is the inventory directory itself, or an ``ipsinfra.infra.fleet``
    plugin config (its ``inventory:`` key, relative to the config's folder),
    so a playbook can pass ``ansible_inventory_sources[0]`` either way.
    """
    where = Path(path).expanduser()
    if where.is_file() and where.suffix in {".yml", ".yaml"}:
        try:
            data = yaml.safe_load(where.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            data = None
        if isinstance(data, dict) and data.get("plugin") in {FLEET_PLUGIN, "fleet"}:
            target = data.get("inventory")
            if not isinstance(target, str) or not target:
                raise IpsinfraError(f"inventory: {where}: an {FLEET_PLUGIN} config needs 'inventory:'")
            resolved = Path(target).expanduser()
            return resolved if resolved.is_absolute() else (where.parent / resolved).resolve()
    return where


@contextlib.contextmanager
def fleet_and_pool(path: str) -> Iterator[tuple[Fleet, DriverPool]]:
    """Load the inventory; drivers connect on first use and are closed on exit."""
    fleet = load(static_inventory(path))
    pool = DriverPool(fleet.nodes)
    try:
        yield fleet, pool
    finally:
        pool.close()


@contextlib.contextmanager
def open_journal(url: str | None) -> Iterator[Journal]:
    """The journal at ``url`` (default: ``$IPSINFRA_JOURNAL`` or the user's state folder)."""
    journal = Journal(url or None)
    try:
        yield journal
    finally:
        journal.close()


class ReadOnlyJournal:
    """A journal that reads but never writes: check mode must leave no trace.

    The audit remembers each node's boot identity; a check run that stored it
    would swallow the next real run's "this node rebooted".
    """

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def get_state(self, key: str) -> dict[str, Any] | None:
        return self._journal.get_state(key)

    def set_state(self, key: str, value: Any) -> None:
        return None

    def set_states(self, values: Any) -> None:
        return None

    def record(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)


def parse_date(value: str | None, option: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise IpsinfraError(f"{option}: value {value!r}: not a date (YYYY-MM-DD)") from None


def vds_view(vds: Vds | None) -> dict[str, Any] | None:
    """A VDS as the modules return it: JSON-safe, the free-text description left out."""
    if vds is None:
        return None
    data: dict[str, Any] = vds.model_dump(mode="json", exclude={"description", "probe"})
    return data


# The settings a VDS diff shows, in this order (vds_settings, and the modules' planned views).
VDS_DIFF_KEYS = (
    "name",
    "node",
    "state",
    "vcpus",
    "cpuset",
    "memory_mib",
    "disks_gib",
    "ips",
    "vnc_listen",
    "bridge",
    "autostart",
)


def vds_settings(vds: Vds) -> dict[str, Any]:
    """A VDS as a diff side: one setting per key (VDS_DIFF_KEYS), so ``--diff`` shows what moved."""
    return {
        "name": vds.name,
        "node": vds.node,
        "state": vds.state.value,
        "vcpus": vds.vcpus,
        "cpuset": vds.cpuset,
        "memory_mib": vds.memory_mib,
        "disks_gib": {d.name: d.size_gib for d in vds.disks} if vds.disks else None,
        "ips": [str(ip) for ip in vds.ips],
        "vnc_listen": str(vds.vnc_listen) if vds.vnc_listen else None,
        "bridge": vds.nics[0].bridge if vds.nics else None,
        "autostart": vds.autostart,
    }


def spec_settings(spec: Any, node: str) -> dict[str, Any]:
    """A VDS to be created (a ``VdsSpec``) as a diff side, with the keys of :func:`vds_settings`."""
    return {
        "name": spec.name,
        "node": node,
        "state": "running",
        "vcpus": spec.vcpus,
        "cpuset": spec.cpuset,
        "memory_mib": spec.memory_mib,
        "disks_gib": {d.name: d.size_gib for d in spec.disks} if spec.disks else None,
        "ips": [str(ip) for ip in spec.ips],
        "vnc_listen": str(spec.vnc_listen) if spec.vnc_listen else None,
        "bridge": spec.nics[0].bridge if spec.nics else None,
        "autostart": spec.autostart,
    }


def text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def yaml_text(data: dict[str, Any] | None) -> str:
    """A flat or nested dict as a block-style YAML document (keys in the given order)."""
    if not data:
        return ""
    dumped: str = yaml.safe_dump(data, default_flow_style=False, sort_keys=False, allow_unicode=True)
    return dumped


def yaml_diff(
    before: dict[str, Any] | None, after: dict[str, Any] | None, header: str | None = None
) -> dict[str, Any]:
    """Ansible's ``diff``: before and after as YAML documents of the same keys, in the same order.

    A key only one side has is shown as ``null`` on the other, so ``--diff``
    lines up setting by setting. (Ansible prints dicts as JSON; text is shown as is.)
    """
    before, after = dict(before or {}), dict(after or {})
    keys = [*before, *(k for k in after if k not in before)]
    diff: dict[str, Any] = {
        "before": yaml_text({k: before.get(k) for k in keys}) if before else "",
        "after": yaml_text({k: after.get(k) for k in keys}) if after else "",
    }
    if header:
        diff["before_header"] = diff["after_header"] = header
    return diff


def error_message(exc: BaseException) -> str:
    """ipsinfra's one-line messages (never a secret); other errors get their type named."""
    if isinstance(exc, IpsinfraError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# Every module that changes the fleet has a `write_back` option (ipsinfra.inventory.writeback).
def write_back_path(params: dict[str, Any]) -> Path | None:
    """The inventory directory to update, or None when the task says ``write_back: false``."""
    return static_inventory(params["inventory"]) if params.get("write_back", True) else None


def add_inventory_change(module: Any, result: dict[str, Any], change: Any, commit: bool = False) -> None:
    """Put the inventory's write-back into ``result``: ``inventory_change``, and ``diff`` per file.

    ``diff`` becomes a list (Ansible shows each item): the module's own
    before/after first, then one before/after pair per inventory file (with ``commit``, the
    written files are committed in the inventory's git repository). A
    write-back that could not write is a warning naming the file; the task's
    own change stands (the fleet was changed and journalled).
    """
    if change is None:
        return
    result["inventory_change"] = {
        "inventory": change.inventory,
        "files": [e.path for e in change.edits],
        "renamed": {e.renamed_from: e.path for e in change.edits if e.renamed_from},
        "written": change.written,
        "error": change.error,
        "diff": change.diff(),
        "journal_seq": change.journal_seq,
    }
    if change.edits:
        result["changed"] = True
        if module._diff:
            own = result.get("diff")
            own_list = own if isinstance(own, list) else ([own] if own else [])
            result["diff"] = [*own_list, *change.ansible_diff()]
    if change.error is not None:
        module.warn(f"inventory not updated: {change.error}; change it by hand (inventory_change.diff)")
    if commit and change.written:
        from ipsinfra.inventory.writeback import WriteBackError, commit_change

        try:
            result["inventory_change"]["commit"] = commit_change(change)
        except WriteBackError as exc:
            module.warn(f"inventory not committed: {exc}")
