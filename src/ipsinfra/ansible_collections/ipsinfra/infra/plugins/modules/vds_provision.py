# Copyright (c) 2026 ipsinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module ipsinfra.infra.vds_provision: one order -> one verified VDS."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vds_provision
short_description: Provision a VDS from an order on a Proxmox VE or libvirt/KVM node
description:
  - Plans the VDS an order asks for (house name from the node's main IP, vCPUs, memory, disk, IPs from
    the node's free pool, VNC, autostart), creates it, sets a root password, starts it and reads it back
    from the hypervisor to compare with the order (OS, architecture, install type, number of IPs, comment).
  - Idempotent. An order already provisioned on its node is verified and reported C(ok), not C(changed);
    its password is not touched. A VDS of that order that does not match it (another size, OS...) fails
    the task, in check mode too (the existing VDS is read and compared with the planned one).
  - A trial order (O(trial=true)) is Active with an end date 7 days after activation.
  - On Proxmox the VM is named by the house name's DNS-safe twin, with the house name in its description.
author: ipsinfra maintainers (@ipsinfra)
version_added: "0.1.0"
extends_documentation_fragment:
  - ipsinfra.infra.common
  - ipsinfra.infra.common.write_back
options:
  order:
    description: The order number (digits); the house name is VPS<order>(<node octets>).
    type: int
    required: true
  client:
    description: The client's id in the inventory.
    type: str
    required: true
  node:
    description: The node to create the VDS on.
    type: str
    required: true
  vcpus:
    description: vCPU count.
    type: int
    required: true
  memory_mib:
    description: Memory in MiB.
    type: int
    required: true
  disk_gib:
    description: Disk size in GiB.
    type: int
    required: true
  ips:
    description: How many IPs, taken from the node's free pool.
    type: int
    default: 1
  os:
    description: The operating system as sales wrote it (C(debian-12), C(windows-2022)...).
    type: str
    required: true
  arch:
    description: CPU architecture.
    type: str
    default: x86_64
  install_type:
    description: How the OS is installed (C(template), C(iso)...).
    type: str
    default: template
  panel:
    description: The control panel ordered; a panel that does not support the OS gives a warning.
    type: str
  comment:
    description: The order's comment, compared with what was created.
    type: str
    default: ""
  trial:
    description: A 7-day trial.
    type: bool
    default: false
  password:
    description:
      - A root password chosen by the caller. It is checked against the house rules and refused if weak.
      - When omitted a password is generated.
      - Never logged (C(no_log)).
    type: str
  password_file:
    description:
      - Where to write the generated root password of a VDS this task creates, mode 0600, on the controller.
      - Not used with O(password) (the caller knows it).
      - The file must not exist yet or be empty (an existing password is never overwritten);
        with an existing VDS it is left alone.
      - Without it a generated password is returned as RV(password); the task must then set C(no_log=true).
    type: path
  user:
    description: The guest user whose password is set.
    type: str
    default: root
  step_timeout:
    description: Seconds each step (define, set password, start, verify) may take; the failing step is named.
    type: float
    default: 300
  cpuset:
    description: The house CPU range, cut to the node's CPUs.
    type: str
    default: "1-40"
  today:
    description: The activation date (YYYY-MM-DD); today when omitted.
    type: str
seealso:
  - module: ipsinfra.infra.vds_migrate
  - module: ipsinfra.infra.node_audit
"""

EXAMPLES = r"""
- name: Provision order 1234 on kvm1, the password written to a private file
  ipsinfra.infra.vds_provision:
    inventory: "{{ ansible_inventory_sources[0] }}"
    order: 1234
    client: c1
    node: kvm1
    vcpus: 2
    memory_mib: 2048
    disk_gib: 40
    os: debian-12
    password_file: /root/vds-passwords/VPS1234.txt
  delegate_to: localhost
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  no_log: true
  register: vds

- name: Show what was created
  ansible.builtin.debug:
    msg: "{{ vds.plan }}"

- name: A trial with the password returned to the play (keep no_log on)
  ipsinfra.infra.vds_provision:
    inventory: inventory/example
    order: 1235
    client: c4
    node: pve1
    vcpus: 1
    memory_mib: 1024
    disk_gib: 20
    os: ubuntu-22.04
    trial: true
  no_log: true
  register: trial_vds
"""

RETURN = r"""
name:
  description: The VDS's house name.
  returned: always
  type: str
  sample: VPS1234(113.10)
backend_name:
  description: Its name on the hypervisor (Proxmox, the DNS-safe twin).
  returned: always
  type: str
  sample: VPS1234-113-10
node:
  description: The node.
  returned: always
  type: str
  sample: kvm1
plan:
  description: What was done (in check mode, what would be done), one line each.
  returned: always
  type: list
  elements: str
vds:
  description: The VDS as the hypervisor reports it after the run (not in check mode).
  returned: success and not in check mode
  type: dict
mismatches:
  description: Order parameters that differ from what the hypervisor reports (the task then fails).
  returned: always
  type: list
  elements: str
warnings_found:
  description: Warnings of the order check (a panel that does not support the OS...), also shown as warnings.
  returned: always
  type: list
  elements: str
trial_end:
  description: The trial's end date, for a trial order.
  returned: always
  type: str
  sample: "2024-05-08"
password_file:
  description: The file the new password was written to.
  returned: when a VDS was created and O(password_file) was given
  type: str
password:
  description:
    - The generated root password, shown once. Only when a VDS was created, the password was generated
      and O(password_file) was not given. The task must set C(no_log=true).
  returned: when a VDS was created without O(password) and O(password_file)
  type: str
inventory_change:
  description: The inventory write-back (with C(write_back)); C(diff) is a unified diff of the files.
  returned: when write_back is true
  type: dict
  sample: {"files": ["host_vars/VPS1003-113-10.yml", "hosts.yml"], "written": true, "error": null}
"""

import os  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]  # noqa: E402
from ansible_collections.ipsinfra.infra.plugins.module_utils.common import (  # type: ignore[import-not-found]  # noqa: E402
    COMMON_ARGS,
    add_inventory_change,
    error_message,
    fleet_and_pool,
    open_journal,
    parse_date,
    require_ipsinfra,
    spec_settings,
    vds_settings,
    vds_view,
    write_back_path,
    yaml_diff,
)

ORDER_FIELDS = (
    "order",
    "client",
    "node",
    "vcpus",
    "memory_mib",
    "disk_gib",
    "ips",
    "os",
    "arch",
    "install_type",
    "panel",
    "comment",
    "trial",
)


def _argument_spec() -> dict[str, Any]:
    return {
        **COMMON_ARGS,
        "write_back": {"type": "bool", "default": True},
        "commit": {"type": "bool", "default": False},
        "order": {"type": "int", "required": True},
        "client": {"type": "str", "required": True},
        "node": {"type": "str", "required": True},
        "vcpus": {"type": "int", "required": True},
        "memory_mib": {"type": "int", "required": True},
        "disk_gib": {"type": "int", "required": True},
        "ips": {"type": "int", "default": 1},
        "os": {"type": "str", "required": True},
        "arch": {"type": "str", "default": "x86_64"},
        "install_type": {"type": "str", "default": "template"},
        "panel": {"type": "str"},
        "comment": {"type": "str", "default": ""},
        "trial": {"type": "bool", "default": False},
        "password": {"type": "str", "no_log": True},
        "password_file": {"type": "path", "no_log": False},  # where the password goes, not the secret
        "user": {"type": "str", "default": "root"},
        "step_timeout": {"type": "float", "default": 300.0},
        "cpuset": {"type": "str", "default": "1-40"},
        "today": {"type": "str"},
    }


def _usable_password_file(path: str) -> None:
    """Refuse before anything is created if the password could not be written afterwards."""
    target = Path(path)
    if not target.parent.is_dir():
        raise ValueError(f"password_file: value {path!r}: folder {str(target.parent)!r} does not exist")
    if target.exists() and (not target.is_file() or target.stat().st_size > 0):
        raise ValueError(
            f"password_file: value {path!r}: exists and is not empty; refusing to overwrite a password"
        )


def _write_password(path: str, secret: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secret + "\n").encode())
    finally:
        os.close(fd)


def run_module() -> None:
    module = AnsibleModule(argument_spec=_argument_spec(), supports_check_mode=True)
    require_ipsinfra(module)
    from ipsinfra.models import Order, build
    from ipsinfra.provision import order_mismatches, provision

    p = module.params
    result: dict[str, Any] = {"changed": False}
    try:
        fields = {k: p[k] for k in ORDER_FIELDS if p[k] is not None}
        fields["number"] = fields.pop("order")
        order = build(Order, fields, "order")
        today = parse_date(p["today"], "today")
        with fleet_and_pool(p["inventory"]) as (fleet, pool), open_journal(p["journal"]) as journal:
            kwargs: dict[str, Any] = {
                "journal": journal,
                "today": today,
                "cpuset_rule": p["cpuset"] or None,
                "step_timeout": p["step_timeout"],
                "user": p["user"],
            }
            written = write_back_path(p)
            preview = provision(
                order, fleet, pool, check=True, inventory=written if module.check_mode else None, **kwargs
            )
            plan = preview.plan
            before: dict[str, Any] = {}
            result.update(
                name=plan.name,
                backend_name=plan.backend_name,
                node=plan.node,
                plan=plan.describe(),
                trial_end=plan.trial_end.isoformat() if plan.trial_end else None,
                mismatches=[],
                warnings_found=list(preview.warnings),
            )
            if module.check_mode:
                result["changed"] = plan.existing is None
                after = spec_settings(plan.spec, plan.node)
                if plan.existing is not None:
                    # What the real run would verify: read the VDS and compare it with the plan.
                    got = pool.get(plan.node).get_vds(plan.name)
                    before = after = vds_settings(got)
                    result["vds"] = vds_view(got)
                    result["mismatches"] = order_mismatches(plan, got)
                if module._diff:
                    result["diff"] = yaml_diff(before, after, header=plan.name)
                add_inventory_change(module, result, preview.inventory_change)
                _warn(module, preview.warnings)
                if result["mismatches"]:
                    module.fail_json(msg=_mismatch_message(plan.name, result["mismatches"]), **result)
                module.exit_json(**result)
            if plan.existing is None and p["password_file"]:
                _usable_password_file(p["password_file"])
            done = provision(order, fleet, pool, password=p["password"], inventory=written, **kwargs)
    except Exception as exc:  # every error: one line, no secret, no traceback
        module.fail_json(msg=error_message(exc), **result)

    if done.changed and done.password is not None and p["password"] is None:
        if p["password_file"]:
            _write_password(p["password_file"], done.password.get_secret_value())
            result["password_file"] = p["password_file"]
        else:
            result["password"] = done.password.get_secret_value()
    result.update(
        changed=done.changed,
        vds=vds_view(done.vds),
        mismatches=list(done.mismatches),
        warnings_found=list(done.warnings),
    )
    if module._diff:
        after = vds_settings(done.vds) if done.vds is not None else {}
        result["diff"] = yaml_diff(after if not done.changed else before, after, header=plan.name)
    add_inventory_change(module, result, done.inventory_change, commit=p["commit"])
    _warn(module, done.warnings)
    if done.mismatches:
        module.fail_json(msg=_mismatch_message(done.plan.name, done.mismatches), **result)
    module.exit_json(**result)


def _mismatch_message(name: str, mismatches: list[str]) -> str:
    return f"{name}: the VDS does not match the order: " + "; ".join(mismatches)


def _warn(module: Any, warnings: list[str]) -> None:
    for warning in warnings:
        module.warn(warning)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
