# Copyright (c) 2026 ipsinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module ipsinfra.infra.server_block: block or unblock the server behind an IP (§7)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: server_block
short_description: Block (or unblock) the server behind an abusive IP, after proving it is the right one
description:
  - Proves the target first. The IP belongs to exactly one service of the inventory, its name equals the
    DC's name for the IP (with O(dc_list)), and the hypervisor (a VDS) or the switch port (a dedicated
    server) sees that very server right now. Any doubt refuses and changes nothing.
  - A blocked VDS is stopped, its autostart turned off (a node reboot does not bring it back) and the block
    recorded on the hypervisor and in the journal. A dedicated server's switch port is shut down.
  - O(state=unblocked) reverses it (autostart as it was, started again; or the port brought up).
  - Idempotent. A server already blocked (unblocked) is reported C(ok), nothing is sent to a device and no
    journal line is written. A dedicated server blocked before has its port shut, so the switch learns its
    MAC nowhere; its inventory port, read back as administratively down, is then the proof.
  - Check mode proves the target the same way and reads the server's state, so it predicts both a refusal
    and whether the real run would change anything.
author: ipsinfra maintainers (@ipsinfra)
version_added: "0.1.0"
extends_documentation_fragment:
  - ipsinfra.infra.common
  - ipsinfra.infra.common.write_back
options:
  ip:
    description: The IP address the complaint names.
    type: str
    required: true
  state:
    description: C(blocked) blocks, C(unblocked) lifts the block.
    type: str
    choices: [blocked, unblocked]
    default: blocked
  reason:
    description: Why (the complaint's category); required to block.
    type: str
  complaint_ref:
    description: The complaint's reference (ticket, message id), recorded with the block.
    type: str
  dc_list:
    description: The DC's server list (CSV, columns C(ip) and C(name)) the target's name is checked against.
    type: path
  switch_password:
    description:
      - Login password for a dedicated server's switch (default, the switch's C(secret) reference).
      - The switch's C(ansible_ssh_private_key_file) in the inventory is used with it or alone.
    type: str
  stop_timeout:
    description: Seconds a blocked VDS gets to shut down cleanly before it is powered off.
    type: float
    default: 30
  lock_dir:
    description: Where the per-VDS locks live.
    type: path
"""

EXAMPLES = r"""
- name: Block the VDS behind 203.0.113.101 (spam, complaint 42)
  ipsinfra.infra.server_block:
    inventory: "{{ ansible_inventory_sources[0] }}"
    ip: 203.0.113.101
    reason: spam
    complaint_ref: "42"
  delegate_to: localhost
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"

- name: Lift the block
  ipsinfra.infra.server_block:
    inventory: inventory/example
    ip: 203.0.113.101
    state: unblocked
"""

RETURN = r"""
target:
  description: The server the IP proved to belong to.
  returned: always
  type: str
kind:
  description: C(vds) or C(dedicated).
  returned: always
  type: str
proof:
  description: Each check made before anything was touched, with what it saw.
  returned: always
  type: list
  elements: dict
before:
  description:
    - The server's state before; a VDS, C(state), C(autostart) and C(blocked) (the block's reason);
      a dedicated server, C(switch), C(port) and C(admin_up).
  returned: success
  type: dict
after:
  description: The server's state after (check mode, what it would be), with the same keys as RV(before).
  returned: success
  type: dict
inventory_change:
  description: The inventory write-back (with C(write_back)); C(diff) is a unified diff of the files.
  returned: when write_back is true
  type: dict
  sample: {"files": ["host_vars/VPS1001-113-10.yml"], "written": true, "error": null}
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
    write_back_path,
    yaml_diff,
)


def _argument_spec() -> dict[str, Any]:
    return {
        **COMMON_ARGS,
        "write_back": {"type": "bool", "default": True},
        "commit": {"type": "bool", "default": False},
        "ip": {"type": "str", "required": True},
        "state": {"type": "str", "choices": ["blocked", "unblocked"], "default": "blocked"},
        "reason": {"type": "str"},
        "complaint_ref": {"type": "str"},
        "dc_list": {"type": "path"},
        "switch_password": {"type": "str", "no_log": True},
        "stop_timeout": {"type": "float", "default": 30.0},
        "lock_dir": {"type": "path"},
    }


def _vds_is_blocked(pool: Any, node: str, name: str) -> tuple[bool, dict[str, Any]]:
    from ipsinfra import metadata
    from ipsinfra.models import VdsState

    vds = pool.get(node).get_vds(name)
    blocked = metadata.parse(vds.description).get("blocked")
    view = {"state": vds.state.value, "autostart": vds.autostart, "blocked": blocked}
    return bool(blocked) and not vds.autostart and vds.state is VdsState.STOPPED, view


def run_module() -> None:
    module = AnsibleModule(
        argument_spec=_argument_spec(),
        required_if=[("state", "blocked", ("reason",))],
        supports_check_mode=True,
    )
    require_ipsinfra(module)
    from pathlib import Path

    from ipsinfra.abuse.block import block, unblock
    from ipsinfra.audit import load_dc_names

    p = module.params
    result: dict[str, Any] = {"changed": False}
    blocking = p["state"] == "blocked"
    try:
        credentials = None
        if p["switch_password"]:
            from ipsinfra.network.switches import SwitchCredentials

            credentials = SwitchCredentials(password=p["switch_password"])
        dc_names = load_dc_names(p["dc_list"]) if p["dc_list"] else None
        lock_dir = Path(p["lock_dir"]) if p["lock_dir"] else None
        with fleet_and_pool(p["inventory"]) as (fleet, pool), open_journal(p["journal"]) as journal:
            common: dict[str, Any] = {
                "journal": journal,
                "check": module.check_mode,
                "dc_names": dc_names,
                "credentials": credentials,
                "lock_dir": lock_dir,
                "inventory": write_back_path(p),
            }
            if blocking:
                done = block(
                    p["ip"],
                    fleet,
                    pool,
                    reason=p["reason"],
                    complaint_ref=p["complaint_ref"],
                    stop_timeout=p["stop_timeout"],
                    **common,
                )
            else:
                done = unblock(p["ip"], fleet, pool, **common)
            proof = done.proof
            changed = done.changed
            before, after = dict(done.before), dict(done.after)
            if done.checked_only:
                # The library proves the target and stops; say whether the real run would change it.
                if proof.kind == "vds" and proof.node and proof.server:
                    is_blocked, before = _vds_is_blocked(pool, proof.node, proof.server)
                    changed = (not is_blocked) if blocking else bool(before["blocked"])
                    after = (
                        {"state": "stopped", "autostart": False, "blocked": p["reason"]}
                        if blocking
                        else {**before, "blocked": None, "state": "running"}
                    )
                else:  # a dedicated server: the proof read its port's state
                    up = proof.port_admin_up
                    before = {"switch": proof.switch, "port": proof.port, "admin_up": up}
                    changed = up is not False if blocking else up is not True
                    after = {**before, "admin_up": not blocking}
                if not changed:
                    after = before
            if not after:
                after = before  # nothing changed: the state as read
    except Exception as exc:
        module.fail_json(msg=error_message(exc), **result)

    result.update(
        changed=changed,
        target=proof.server,
        kind=proof.kind,
        proof=[s.model_dump(mode="json") for s in proof.steps],
        before=before,
        after=after,
    )
    if module._diff:
        result["diff"] = yaml_diff(before, after if changed else before, header=proof.server or p["ip"])
    add_inventory_change(module, result, done.inventory_change, commit=p["commit"])
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
