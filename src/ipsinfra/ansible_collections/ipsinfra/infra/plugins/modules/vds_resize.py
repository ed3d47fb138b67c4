# Copyright (c) 2026 ipsinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module ipsinfra.infra.vds_resize: upgrade or downgrade a VDS (§6), verified."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vds_resize
short_description: Upgrade or downgrade a VDS's vCPUs, memory and disk, with the order lines of §6
description:
  - Sets a VDS's vCPU count, memory and disk size on its node (libvirt or Proxmox VE), reads the
    configuration back and compares it with what was asked.
  - Refused before anything changes - 0 or negative values, a disk shrink (disks only grow), more vCPUs or
    memory than the node has room for (memory counts the node's other VDS), and a vCPU count the CPU
    range (the house rule C(1-40), and the VDS's own pinning) no longer fits.
  - >-
    After an upgrade the order gets one line per parameter, exactly "Upgrade(Ticket<N>): <param>=<price>",
    in the journal and in RV(order_lines); an upgrade needs its price (it is applied after payment). A
    downgrade is applied and handed to sales (RV(sales_handoff)).
  - vCPUs and memory of a RUNNING VDS take effect at its next start (neither backend hot-plugs what
    ipsinfra defines); O(restart=true) restarts it and verifies the running guest, else RV(restart_needed)
    says so. Disks grow online.
  - Idempotent. A VDS already at the target is verified, reported C(ok), and no order line is written again.
author: ipsinfra maintainers (@ipsinfra)
version_added: "0.1.0"
extends_documentation_fragment:
  - ipsinfra.infra.common
  - ipsinfra.infra.common.write_back
options:
  name:
    description:
      - The VDS's house name, e.g. C(VPS1001(113.10)); its DNS-safe twin (C(VPS1001-113-10)) works too.
    type: str
    required: true
    aliases: [vds]
  ticket:
    description: The ticket the change was ordered (and paid) in; it names the order lines.
    type: int
    required: true
  cores:
    description: The new vCPU count.
    type: int
  memory_mib:
    description: The new memory, in MiB.
    type: int
  disk_gib:
    description: The new size of the disk, in GiB; larger than now (a disk only grows).
    type: int
  disk:
    description: Which disk (C(disk0) on libvirt, C(scsi0) on Proxmox); the first disk when unset.
    type: str
  prices:
    description:
      - The price of each upgraded parameter, keyed C(cores), C(memory), C(disk); the order line shows it as
        given (a non-negative number). Every upgraded parameter needs one.
    type: dict
  restart:
    description: Restart a running VDS when the change needs it, then verify the running guest.
    type: bool
    default: false
  step_timeout:
    description: Seconds each step (set, grow, stop, start, verify) may take; the failing step is named.
    type: float
    default: 300
  cpuset:
    description: The house CPU range the vCPUs must fit, cut to the node's CPUs.
    type: str
    default: "1-40"
  lock_dir:
    description: Where the per-VDS locks live (default C($IPSINFRA_LOCK_DIR) or the user's state folder).
    type: path
seealso:
  - module: ipsinfra.infra.vds_provision
  - module: ipsinfra.infra.vds_migrate
"""

EXAMPLES = r"""
- name: Ticket 4711 - two more vCPUs and a bigger disk for VPS1001
  ipsinfra.infra.vds_resize:
    inventory: "{{ ansible_inventory_sources[0] }}"
    name: VPS1001(113.10)
    ticket: 4711
    cores: 4
    disk_gib: 80
    prices:
      cores: 300
      disk: 150
  delegate_to: localhost
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  register: resized

- name: The lines for the order
  ansible.builtin.debug:
    var: resized.order_lines
"""

RETURN = r"""
name:
  description: The VDS's house name.
  returned: always
  type: str
  sample: VPS1001(113.10)
node:
  description: The node it is on.
  returned: success
  type: str
plan:
  description: What was (check mode, would be) done, one line each.
  returned: success
  type: list
  elements: str
order_lines:
  description: One line per upgraded parameter for the order (§6); in check mode, the lines it would write.
  returned: success
  type: list
  elements: str
  sample: ["Upgrade(Ticket4711): cores=300"]
sales_handoff:
  description: The downgrades, applied and to be handed to sales.
  returned: success
  type: list
  elements: str
restart_needed:
  description: The new vCPUs/memory wait for the VDS's next start.
  returned: success
  type: bool
restarted:
  description: The VDS was restarted and verified running.
  returned: success
  type: bool
vds:
  description: The VDS's configuration as the hypervisor reports it.
  returned: success
  type: dict
mismatches:
  description: Asked-for values the hypervisor does not report (the task then fails).
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
        "ticket": {"type": "int", "required": True},
        "cores": {"type": "int"},
        "memory_mib": {"type": "int"},
        "disk_gib": {"type": "int"},
        "disk": {"type": "str"},
        "prices": {"type": "dict"},
        "restart": {"type": "bool", "default": False},
        "step_timeout": {"type": "float", "default": 300.0},
        "cpuset": {"type": "str", "default": "1-40"},
        "lock_dir": {"type": "path"},
    }


def _sizes(vds: Any) -> dict[str, Any]:
    """What a resize touches, as a diff side: the same keys before and after."""
    return {
        "name": vds.name,
        "node": vds.node,
        "vcpus": vds.vcpus,
        "memory_mib": vds.memory_mib,
        "disks_gib": {d.name: d.size_gib for d in vds.disks},
    }


_KEYS = {"cores": "vcpus", "memory": "memory_mib"}


def _with(view: dict[str, Any], changes: Any, side: str) -> dict[str, Any]:
    """``view`` with each planned change's ``before`` or ``after`` value put in."""
    out = {**view, "disks_gib": dict(view["disks_gib"])}
    for change in changes:
        value = getattr(change, side)
        if change.param == "disk":
            out["disks_gib"][change.disk] = value
        else:
            out[_KEYS[change.param]] = value
    return out


def run_module() -> None:
    module = AnsibleModule(
        argument_spec=_argument_spec(),
        required_one_of=[("cores", "memory_mib", "disk_gib")],
        supports_check_mode=True,
    )
    require_ipsinfra(module)
    from pathlib import Path

    from ipsinfra import naming
    from ipsinfra.resize import resize

    p = module.params
    result: dict[str, Any] = {"changed": False, "mismatches": [], "name": p["name"]}
    try:
        name = p["name"]
        if not naming.is_vps_name(name):
            name = naming.from_pve_safe_name(name)
        result["name"] = name
        prices = {str(k): str(v) for k, v in (p["prices"] or {}).items()}
        with fleet_and_pool(p["inventory"]) as (fleet, pool), open_journal(p["journal"]) as journal:
            done = resize(
                name,
                fleet,
                pool,
                ticket=p["ticket"],
                cores=p["cores"],
                memory_mib=p["memory_mib"],
                disk_gib=p["disk_gib"],
                disk=p["disk"],
                prices=prices,
                journal=journal,
                check=module.check_mode,
                restart=p["restart"],
                cpuset_rule=p["cpuset"] or None,
                step_timeout=p["step_timeout"],
                lock_dir=Path(p["lock_dir"]) if p["lock_dir"] else None,
                inventory=write_back_path(p),
            )
    except Exception as exc:
        module.fail_json(msg=error_message(exc), **result)

    plan = done.plan
    result.update(
        changed=done.changed or (done.checked_only and plan.changed),
        node=plan.node,
        plan=plan.describe(),
        order_lines=list(done.order_lines),
        sales_handoff=list(done.sales_handoff),
        restart_needed=done.restart_needed,
        restarted=done.restarted,
        vds=vds_view(done.vds),
        mismatches=list(done.mismatches),
    )
    if module._diff and done.vds is not None:
        read = _sizes(done.vds)  # check mode: as it is now; after a change: as read back
        if done.checked_only:
            before, after = read, _with(read, plan.changes, "after")
        else:
            before, after = _with(read, plan.changes, "before"), read
        result["diff"] = yaml_diff(before, after, header=plan.name)
    add_inventory_change(module, result, done.inventory_change, commit=p["commit"])
    if done.mismatches:
        module.fail_json(msg=f"{plan.name}: resize not verified: " + "; ".join(done.mismatches), **result)
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
