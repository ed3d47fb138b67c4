# Copyright (c) 2026 ipsinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module ipsinfra.infra.vds_migrate: move a VDS to another node, verified, never lost."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vds_migrate
short_description: Migrate a VDS between two nodes of the same kind, renamed and verified
description:
  - Moves a VDS to another node (libvirt C(migrate3), live or offline; Proxmox's migrate API) keeping the
    vCPU count exactly as configured on the source node and setting the house CPU range, renames it to the
    target node's octets, moves its VNC listen address and network settings to the target's, and keeps
    autostart as it was.
  - The target is read back and compared with the plan before the source copy is released; on any failure
    the VDS still exists exactly once and runs where it ran.
  - Idempotent. A VDS already on the target under its new name is verified and reported C(ok).
author: ipsinfra maintainers (@ipsinfra)
version_added: "0.1.0"
extends_documentation_fragment:
  - ipsinfra.infra.common
  - ipsinfra.infra.common.write_back
options:
  name:
    description:
      - The VDS's house name, e.g. C(VPS1003(113.20)); its DNS-safe twin (C(VPS1003-113-20)) works too.
      - The name it had before the migration; a re-run with the same name finds the migrated VDS.
    type: str
    required: true
    aliases: [vds]
  target:
    description: The node to move it to.
    type: str
    required: true
  live:
    description: Live migration of a running VDS; C(false) stops it for the move (and starts it again).
    type: bool
    default: true
  step_timeout:
    description: Seconds each step (migrate, configure, verify) may take; the failing step is named.
    type: float
    default: 600
  cpuset:
    description: The house CPU range, cut to the target's CPUs.
    type: str
    default: "1-40"
  lock_dir:
    description: Where the per-VDS locks live (default C($IPSINFRA_LOCK_DIR) or the user's state folder).
    type: path
seealso:
  - module: ipsinfra.infra.vds_provision
"""

EXAMPLES = r"""
- name: Move VPS1003 from kvm2 to kvm1, live
  ipsinfra.infra.vds_migrate:
    inventory: "{{ ansible_inventory_sources[0] }}"
    name: VPS1003(113.20)
    target: kvm1
  delegate_to: localhost
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  register: moved

- name: The new name
  ansible.builtin.debug:
    msg: "{{ moved.new_name }} on {{ moved.target }}"
"""

RETURN = r"""
name:
  description: The name before the migration.
  returned: always
  type: str
  sample: VPS1003(113.20)
new_name:
  description: The house name on the target (§9.10).
  returned: always
  type: str
  sample: VPS1003(113.10)
source:
  description: The node it came from.
  returned: always
  type: str
target:
  description: The node it is on now.
  returned: always
  type: str
plan:
  description: What was (check mode, would be) done, one line each.
  returned: always
  type: list
  elements: str
vds:
  description: The VDS as the target reports it (not in check mode).
  returned: success and not in check mode
  type: dict
mismatches:
  description: Planned settings the target does not have (the task then fails).
  returned: always
  type: list
  elements: str
inventory_change:
  description: The inventory write-back (with C(write_back)); C(diff) is a unified diff of the files.
  returned: when write_back is true
  type: dict
  sample: {"files": ["host_vars/VPS1003-113-10.yml", "hosts.yml"], "written": true, "error": null}
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]  # noqa: E402
from ansible_collections.ipsinfra.infra.plugins.module_utils.common import (  # type: ignore[import-not-found]  # noqa: E402
    COMMON_ARGS,
    add_inventory_change,
    error_message,
    fleet_and_pool,
    open_journal,
    require_ipsinfra,
    vds_settings,
    vds_view,
    write_back_path,
    yaml_diff,
)


def _argument_spec() -> dict[str, Any]:
    return {
        **COMMON_ARGS,
        "write_back": {"type": "bool", "default": True},
        "commit": {"type": "bool", "default": False},
        "name": {"type": "str", "required": True, "aliases": ["vds"]},
        "target": {"type": "str", "required": True},
        "live": {"type": "bool", "default": True},
        "step_timeout": {"type": "float", "default": 600.0},
        "cpuset": {"type": "str", "default": "1-40"},
        "lock_dir": {"type": "path"},
    }


# What a migration moves (§9.1, §9.10), the keys of both diff sides.
MIGRATE_KEYS = ("name", "node", "state", "vcpus", "cpuset", "vnc_listen", "bridge", "autostart")


def _moved(vds: Any) -> dict[str, Any]:
    settings = vds_settings(vds)
    return {k: settings[k] for k in MIGRATE_KEYS}


def _planned(plan: Any) -> dict[str, Any]:
    return {
        "name": plan.new_name,
        "node": plan.target,
        "state": "running" if plan.was_running else "stopped",
        "vcpus": plan.vcpus,
        "cpuset": plan.cpuset,
        "vnc_listen": str(plan.vnc_listen),
        "bridge": plan.bridge,
        "autostart": plan.autostart,
    }


def _source(pool: Any, fleet: Any, name: str) -> dict[str, Any] | None:
    """The VDS as it is before the move (None once it has moved: the re-run finds it renamed)."""
    from ipsinfra.errors import IpsinfraError
    from ipsinfra.migrate import find_vds

    try:
        return _moved(find_vds(pool, fleet, name))
    except IpsinfraError:
        return None


def run_module() -> None:
    module = AnsibleModule(argument_spec=_argument_spec(), supports_check_mode=True)
    require_ipsinfra(module)
    from pathlib import Path

    from ipsinfra import naming
    from ipsinfra.migrate import migrate

    p = module.params
    result: dict[str, Any] = {"changed": False, "mismatches": []}
    try:
        name = p["name"]
        if not naming.is_vps_name(name):
            name = naming.from_pve_safe_name(name)
        with fleet_and_pool(p["inventory"]) as (fleet, pool), open_journal(p["journal"]) as journal:
            source = _source(pool, fleet, name) if module._diff else None
            done = migrate(
                name,
                p["target"],
                fleet,
                pool,
                live=p["live"],
                journal=journal,
                check=module.check_mode,
                cpuset_rule=p["cpuset"] or None,
                step_timeout=p["step_timeout"],
                lock_dir=Path(p["lock_dir"]) if p["lock_dir"] else None,
                inventory=write_back_path(p),
            )
    except Exception as exc:
        module.fail_json(msg=error_message(exc), **result)

    plan = done.plan
    would_move = done.checked_only  # check mode found the VDS still on its source
    result.update(
        changed=done.changed or would_move,
        name=plan.name,
        new_name=plan.new_name,
        source=plan.source,
        target=plan.target,
        plan=plan.describe()
        if (done.changed or would_move)
        else [f"{plan.new_name} is on {plan.target} already: nothing to do"],
        vds=vds_view(done.vds),
        mismatches=list(done.mismatches),
    )
    if module._diff:
        if done.changed or would_move:
            before = source or {**_planned(plan), "name": plan.name, "node": plan.source}
            after = _moved(done.vds) if done.vds is not None else _planned(plan)
        else:
            before = after = _moved(done.vds) if done.vds is not None else {}
        result["diff"] = yaml_diff(before, after, header=plan.name)
    add_inventory_change(module, result, done.inventory_change, commit=p["commit"])
    for warning in done.warnings:  # true and not failures, e.g. a VNC address in force at the next cold start
        module.warn(warning)
    if done.mismatches:
        module.fail_json(
            msg=f"{plan.name}: migration to {plan.target} not verified: " + "; ".join(done.mismatches),
            **result,
        )
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
