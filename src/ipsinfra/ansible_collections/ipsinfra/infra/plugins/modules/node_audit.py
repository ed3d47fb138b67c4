# Copyright (c) 2026 ipsinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module ipsinfra.infra.node_audit: the nightly audit and the reboot check."""

from __future__ import annotations

DOCUMENTATION = r"""
module: node_audit
short_description: Audit every hypervisor node and write the shift's hand-over report
description:
  - Audits the nodes concurrently, one result per node, so a node that does not answer becomes one
    C(node_reachable) finding and never hides the others.
  - Checks reboots since the last audit and VDS that should run but do not (tolerating transitional states
    with a short recheck), VDS that ran at the last audit and are down after their node's reboot (autostart
    or not; blocked and cancelled VDS excepted), names that break the naming rule or carry another node's
    octets, vCPU and cpuset drift from the inventory, blocked VDS with autostart on, trials past their end
    date, server names that differ from the DC's list, and SSH/RDP answering on VDS that should run.
  - Writes the report as Markdown (the shift hand-over), JSON and/or JUnit XML. The report files are the
    audit's output and are rewritten each run; writing them is not a change. In check mode no file is
    written (RV(markdown) still carries the report).
  - Without O(fix) nothing on the nodes is changed. With it, VDS that should run, and VDS that ran before
    their node's reboot, are started and re-verified (a blocked or cancelled VDS never), and the task
    reports C(changed).
  - In check mode the journal is only read (a check run does not store boot identities or what ran, so
    it never hides a reboot from the next real run); with O(fix), what would be started is reported as
    C(changed).
author: ipsinfra maintainers (@ipsinfra)
version_added: "0.1.0"
extends_documentation_fragment:
  - ipsinfra.infra.common
options:
  nodes:
    description: Only these nodes (default every node of the inventory).
    type: list
    elements: str
  fix:
    description: Start the VDS that should run and do not, and verify them.
    type: bool
    default: false
  dc_list:
    description: The DC's server list, a CSV file with columns C(ip) and C(name), for the names check.
    type: path
  reach:
    description: Probe SSH (22) or RDP (3389) on VDS that should run.
    type: bool
    default: true
  probe_from:
    description:
      - C(hypervisor) probes the inventory's C(probe) override, else the first IP the hypervisor reports.
      - C(inventory) probes only VDS the inventory lists (at their override or inventory IP).
    type: str
    choices: [hypervisor, inventory]
    default: hypervisor
  probe_timeout:
    description: Seconds per TCP probe.
    type: float
    default: 3
  recheck_delay:
    description: Seconds before a VDS in a transitional state (starting, migrating, backup) is checked again.
    type: float
    default: 5
  node_timeout:
    description: Seconds a node may take to answer before it is reported unreachable.
    type: float
    default: 60
  today:
    description: The date trials are compared with (YYYY-MM-DD); today when omitted.
    type: str
  report_markdown:
    description: Write the Markdown hand-over report here.
    type: path
  report_json:
    description: Write the JSON report here.
    type: path
  report_junit:
    description: Write the JUnit XML report here (one test suite per node, one test case per check).
    type: path
  fail_on_findings:
    description: Fail the task when open findings remain (a CI schedule turns red).
    type: bool
    default: false
seealso:
  - module: ipsinfra.infra.vds_provision
"""

EXAMPLES = r"""
- name: Audit every node, write the hand-over report
  ipsinfra.infra.node_audit:
    inventory: "{{ ansible_inventory_sources[0] }}"
    report_markdown: /var/lib/ipsinfra/audit.md
    report_junit: /var/lib/ipsinfra/audit.xml
  delegate_to: localhost
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  register: audit

- name: Start what should run after a node reboot
  ipsinfra.infra.node_audit:
    inventory: inventory/example
    nodes: [kvm1]
    fix: true
"""

RETURN = r"""
exit_code:
  description: 0 clean, 1 open findings, 2 the audit itself could not run.
  returned: always
  type: int
findings:
  description: Every finding, most urgent first (§1.4), with its check, node, target, message and next action.
  returned: always
  type: list
  elements: dict
fixed:
  description: Targets started by O(fix) (check mode, targets that would be started).
  returned: always
  type: list
  elements: str
nodes:
  description: Per node, whether it answered, rebooted, and how many VDS run of how many.
  returned: always
  type: list
  elements: dict
markdown:
  description: The hand-over report as Markdown.
  returned: always
  type: str
reports:
  description: The report files written (none in check mode).
  returned: always
  type: list
  elements: str
"""

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]  # noqa: E402
from ansible_collections.ipsinfra.infra.plugins.module_utils.common import (  # type: ignore[import-not-found]  # noqa: E402
    COMMON_ARGS,
    ReadOnlyJournal,
    error_message,
    fleet_and_pool,
    open_journal,
    parse_date,
    require_ipsinfra,
    text,
)


def _argument_spec() -> dict[str, Any]:
    return {
        **COMMON_ARGS,
        "nodes": {"type": "list", "elements": "str"},
        "fix": {"type": "bool", "default": False},
        "dc_list": {"type": "path"},
        "reach": {"type": "bool", "default": True},
        "probe_from": {"type": "str", "choices": ["hypervisor", "inventory"], "default": "hypervisor"},
        "probe_timeout": {"type": "float", "default": 3.0},
        "recheck_delay": {"type": "float", "default": 5.0},
        "node_timeout": {"type": "float", "default": 60.0},
        "today": {"type": "str"},
        "report_markdown": {"type": "path"},
        "report_json": {"type": "path"},
        "report_junit": {"type": "path"},
        "fail_on_findings": {"type": "bool", "default": False},
    }


def _inventory_probe(observed: Any, record: Any) -> str | None:
    from ipsinfra.audit.run import probe_target

    if record is None:
        return None
    return record.probe or probe_target(record)


def _write(path: str, content: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(content, encoding="utf-8")
    tmp.replace(target)


def run_module() -> None:
    module = AnsibleModule(argument_spec=_argument_spec(), supports_check_mode=True)
    require_ipsinfra(module)
    from ipsinfra import audit
    from ipsinfra.audit.run import STARTABLE_CHECKS, default_probe_for

    p = module.params
    result: dict[str, Any] = {"changed": False}
    try:
        dc_names = audit.load_dc_names(p["dc_list"]) if p["dc_list"] else None
        today = parse_date(p["today"], "today")
        with fleet_and_pool(p["inventory"]) as (fleet, pool), open_journal(p["journal"]) as journal:
            report = audit.run(
                fleet,
                pool,
                journal=ReadOnlyJournal(journal) if module.check_mode else journal,
                nodes=p["nodes"],
                today=today,
                dc_names=dc_names,
                reach=p["reach"],
                fix=p["fix"] and not module.check_mode,
                recheck_delay=p["recheck_delay"],
                probe_for=_inventory_probe if p["probe_from"] == "inventory" else default_probe_for,
                probe_timeout=p["probe_timeout"],
                node_timeout=p["node_timeout"],
                actor=None,
            )
    except Exception as exc:
        module.fail_json(msg=error_message(exc), **result)

    if module.check_mode and p["fix"]:
        fixed = [f.target for f in report.open_findings if f.check in STARTABLE_CHECKS]
    else:
        fixed = [f.target for f in report.findings if f.fixed]
    markdown = audit.to_markdown(report)
    written = []
    renders = (
        ("report_markdown", audit.to_markdown),
        ("report_json", audit.to_json),
        ("report_junit", audit.to_junit),
    )
    try:
        for option, render in renders:
            if p[option] and not module.check_mode:  # a check run leaves nothing behind
                _write(p[option], render(report))
                written.append(p[option])
    except OSError as exc:
        module.fail_json(msg=f"report: {exc.filename}: {exc.strerror}", **result)

    result.update(
        changed=bool(fixed),
        exit_code=report.exit_code,
        findings=[f.model_dump(mode="json") for f in report.findings],
        fixed=fixed,
        nodes=[
            {
                "node": n.node,
                "reachable": n.reachable,
                "rebooted": n.rebooted,
                "vds_total": n.vds_total,
                "vds_running": n.vds_running,
            }
            for n in report.nodes
        ],
        markdown=markdown,
        reports=written,
    )
    if module._diff and fixed:
        result["diff"] = {
            "before": text([f"{t}: not running" for t in fixed]),
            "after": text([f"{t}: running" for t in fixed]),
        }
    if report.exit_code == 2:
        module.fail_json(msg=f"the audit could not run: {report.error}", **result)
    if p["fail_on_findings"] and report.exit_code:
        module.fail_json(msg=f"{len(report.open_findings)} open finding(s); see the report", **result)
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
