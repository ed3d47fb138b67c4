# Copyright (c) 2026 ipsinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module ipsinfra.infra.switch_port_map: which server is on which switch port (§4.6)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: switch_port_map
short_description: Poll the switches and keep the recorded switch-port map current
description:
  - Logs into every selected switch (netmiko), reads its MAC table, interfaces and LLDP neighbours, maps
    each server's MACs (dedicated servers and VDS of the inventory) to the port they are learnt on, and
    compares that with the map recorded in C(<inventory>/switch_ports.<site>.yml).
  - With O(write=true) (the default) the map file of a site that changed is rewritten and the task reports
    C(changed); an unchanged map is left alone and the task reports C(ok).
  - With O(set_descriptions=true) port descriptions that differ from the server's name are written on the
    switches (each read back).
  - A switch that does not answer fails the task after the others were mapped; its recorded ports are kept.
  - When a state store is named (O(journal), or C(IPSINFRA_JOURNAL) in the environment, as under AWX) the
    store is the map's record (state key C(portmap:<site>), a line of the hash-chained journal); the map file
    is still written where the inventory is writable, for git users. Where the file and the store disagree
    the store's map is used and the task warns which one it used.
author: ipsinfra maintainers (@ipsinfra)
version_added: "0.1.0"
extends_documentation_fragment:
  - ipsinfra.infra.common
options:
  sites:
    description: Only the switches of these sites.
    type: list
    elements: str
  switches:
    description: Only these switches.
    type: list
    elements: str
  write:
    description: Rewrite the map file of each site whose map changed.
    type: bool
    default: true
  set_descriptions:
    description: Write the server's name into port descriptions that differ.
    type: bool
    default: false
  password:
    description:
      - The switches' login password, for every selected switch.
      - Default, each switch's C(secret) reference in the inventory. Never logged (C(no_log)).
    type: str
  key_file:
    description:
      - An SSH private key for the switch logins.
      - Default, each switch's C(ansible_ssh_private_key_file) in the inventory.
    type: path
  timeout:
    description: Seconds per switch login and command.
    type: float
    default: 20
  fail_on_switch_error:
    description: Fail the task when a switch could not be polled.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Map the switch ports of msk1 and record the map
  ipsinfra.infra.switch_port_map:
    inventory: "{{ ansible_inventory_sources[0] }}"
    sites: [msk1]
  delegate_to: localhost
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  register: portmap

- name: Only show what moved (check mode writes nothing)
  ipsinfra.infra.switch_port_map:
    inventory: inventory/example
  check_mode: true
  register: drift
"""

RETURN = r"""
sites:
  description:
    - Per site, the map file, the ports mapped, the switches that answered and the diff lines.
    - C(recorded_in) says which map the diff was taken against (C(store), C(file) or C(none)), C(stored)
      whether the store was written, C(note) why the store's map was used over the file's (or none yet).
  returned: always
  type: list
  elements: dict
  sample:
    - site: msk1
      path: inventory/example/switch_ports.msk1.yml
      ports: 3
      switches: [sw1-msk1]
      changes: ["moved     ded1: sw1-msk1 Gi0/5 -> sw1-msk1 Gi0/6"]
      written: true
      recorded_in: store
      stored: true
      note: null
failed_switches:
  description: Switches that could not be polled, with the reason.
  returned: always
  type: dict
described:
  description: Port descriptions written (check mode, that would be written).
  returned: always
  type: list
  elements: str
"""

import contextlib  # noqa: E402
from collections import defaultdict  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]  # noqa: E402
from ansible_collections.ipsinfra.infra.plugins.module_utils.common import (  # type: ignore[import-not-found]  # noqa: E402
    COMMON_ARGS,
    error_message,
    open_journal,
    require_ipsinfra,
    static_inventory,
)


def _argument_spec() -> dict[str, Any]:
    return {
        **COMMON_ARGS,
        "sites": {"type": "list", "elements": "str"},
        "switches": {"type": "list", "elements": "str"},
        "write": {"type": "bool", "default": True},
        "set_descriptions": {"type": "bool", "default": False},
        "password": {"type": "str", "no_log": True},
        "key_file": {"type": "path", "no_log": False},
        "timeout": {"type": "float", "default": 20.0},
        "fail_on_switch_error": {"type": "bool", "default": True},
    }


def run_module() -> None:
    module = AnsibleModule(argument_spec=_argument_spec(), supports_check_mode=True)
    require_ipsinfra(module)
    from ipsinfra.inventory import load
    from ipsinfra.network.cli import server_macs_of
    from ipsinfra.network.portmap import (
        PortMap,
        baseline_port_map,
        build_port_map,
        diff_with_baseline,
    )
    from ipsinfra.network.portmap_file import dump_port_map, map_file_path
    from ipsinfra.network.portmap_store import open_map_store, read_recorded, write_recorded
    from ipsinfra.network.switches import SwitchCredentials, collect, set_descriptions

    p = module.params
    result: dict[str, Any] = {"changed": False, "sites": [], "failed_switches": {}, "described": []}
    before_text: list[str] = []
    after_text: list[str] = []
    store = None
    try:
        inventory = static_inventory(p["inventory"])
        fleet = load(inventory)
        unknown = sorted(set(p["switches"] or ()) - set(fleet.switches))
        if unknown:
            raise ValueError(f"switches: value {unknown[0]!r}: no such switch in the inventory")
        selected = [
            s
            for s in fleet.switches.values()
            if (not p["sites"] or s.site in p["sites"]) and (not p["switches"] or s.name in p["switches"])
        ]
        if not selected:
            raise ValueError("no switch selected (check sites/switches)")

        def creds(sw: Any) -> SwitchCredentials:
            # the options win; each switch's secret and ansible_ssh_private_key_file fill the rest
            return SwitchCredentials.for_switch(sw, password=p["password"], key_file=p["key_file"])

        report = collect(selected, credentials=creds, timeout=p["timeout"])
        failed = {n: f"{r.failure}: {r.reason}" for n, r in report.results.items() if not r.ok}
        result["failed_switches"] = failed
        by_site: dict[str, list[Any]] = defaultdict(list)
        for sw in selected:
            by_site[sw.site].append(sw)
        wanted_descriptions: dict[str, dict[str, str]] = defaultdict(dict)
        # journal (or $IPSINFRA_JOURNAL) names the state store: the map's record (portmap:<site>)
        store = open_map_store(p["journal"], create=not module.check_mode)
        for site, site_switches in sorted(by_site.items()):
            answered = {s.name for s in site_switches if report.results[s.name].ok}
            facts = [f for f in report.facts if f.switch in answered]
            observed = build_port_map(facts, server_macs_of(fleet), hosts=set(fleet.nodes))
            path = map_file_path(inventory, site)
            rec = read_recorded(path, site, store)
            recorded = rec.port_map
            if rec.note:
                module.warn(rec.note)
            # no map recorded yet: the dedicated servers' switch/switch_port are the baseline
            baseline = baseline_port_map(fleet.dedicated.values(), {s.name for s in site_switches})
            diff = diff_with_baseline(recorded, baseline, observed, switches=answered)
            kept = tuple(port for port in recorded.ports if port.switch not in answered)
            merged = PortMap(ports=kept + observed.ports, conflicts=observed.conflicts)
            if rec.source == "store":
                old = dump_port_map(recorded, site)
            else:
                old = path.read_text(encoding="utf-8") if path.exists() else ""
            new = dump_port_map(merged, site) if diff.changed else old
            written = stored = False
            if (diff.changed or rec.behind) and p["write"]:
                written = module.check_mode
                if not module.check_mode:
                    record = write_recorded(rec, merged if diff.changed else recorded, store)
                    written, stored = record.written, record.stored
                    if record.file_error:
                        module.warn(f"map file not written: {record.file_error}; the store holds the map")
            if written:
                before_text.append(old)
                after_text.append(new)
            for m in diff.description_mismatches:
                wanted_descriptions[m.switch][m.port] = m.server
            result["sites"].append(
                {
                    "site": site,
                    "path": str(path),
                    "ports": len(observed.ports),
                    "switches": sorted(answered),
                    "changes": diff.lines(),
                    "conflicts": [f"{c.switch} {c.port}: {', '.join(c.servers)}" for c in observed.conflicts],
                    "written": bool(written),
                    "recorded_in": rec.source,
                    "stored": stored,
                    "note": rec.note,
                }
            )
            result["changed"] = result["changed"] or bool(written)
            for c in observed.conflicts:  # a warning, shown without -v: it needs a person
                module.warn(f"port map conflict on {c.switch} {c.port}: {', '.join(c.servers)} (site {site})")

        if p["set_descriptions"]:
            journal_cm = contextlib.nullcontext(None) if module.check_mode else open_journal(p["journal"])
            with journal_cm as journal:
                for sw in selected:
                    wanted = wanted_descriptions.get(sw.name)
                    if not wanted:
                        continue
                    if module.check_mode:
                        result["described"] += [
                            f"{sw.name} {port}: {srv}" for port, srv in sorted(wanted.items())
                        ]
                        continue
                    done = set_descriptions(
                        sw, wanted, credentials=creds(sw), timeout=p["timeout"], journal=journal
                    )
                    for a in done:
                        if a.changed:
                            old_d, new_d = a.before.get("description"), a.after.get("description")
                            result["described"].append(f"{a.switch} {a.port}: {old_d!r} -> {new_d!r}")
            result["changed"] = result["changed"] or bool(result["described"])
    except Exception as exc:
        module.fail_json(msg=error_message(exc), **result)
    finally:
        if store is not None:
            store.close()

    if module._diff and (before_text or result["described"]):
        desc_before = [line.split(": ", 1)[0] + ": (other description)" for line in result["described"]]
        result["diff"] = {
            "before": "".join(before_text) + "".join(f"{line}\n" for line in desc_before),
            "after": "".join(after_text) + "".join(f"{line}\n" for line in result["described"]),
        }
    if result["failed_switches"] and p["fail_on_switch_error"]:
        shown = "; ".join(f"{n}: {why}" for n, why in sorted(result["failed_switches"].items()))
        module.fail_json(msg=f"switches not polled: {shown}", **result)
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
