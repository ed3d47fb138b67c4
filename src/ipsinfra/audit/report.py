"""Audit reports: Markdown for the shift hand-over (§4.11), JSON, JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from ipsinfra.audit.findings import AuditReport, Priority


def to_markdown(report: AuditReport) -> str:
    """The hand-over text: what is wrong, where, what to do next, most urgent first."""
    lines = [
        f"## Node audit {report.started.isoformat(timespec='minutes')}",
        "",
    ]
    if report.error:
        lines += [f"**The audit could not run:** {report.error}", ""]
    reachable = sum(n.reachable for n in report.nodes)
    not_checked = [n.node for n in report.nodes if n.config_error]
    rebooted = [n.node for n in report.nodes if n.rebooted]
    vds_total = sum(n.vds_total for n in report.nodes)
    vds_running = sum(n.vds_running for n in report.nodes)
    lines.append(
        f"{len(report.nodes)} node(s), {reachable} answering; {vds_running} of {vds_total} VDS running; "
        f"rebooted since the last audit: {', '.join(rebooted) or 'none'}."
        + (f" Not checked (configuration): {', '.join(not_checked)}." if not_checked else "")
    )
    open_findings = report.open_findings
    fixed = [f for f in report.findings if f.fixed]
    if not open_findings:
        lines += ["", "Nothing to hand over: every check passed."]
    current: Priority | None = None
    for f in open_findings:
        if f.priority is not current:
            current = f.priority
            if f.priority is Priority.CONFIGURATION:
                lines += ["", "### Configuration: nodes not checked (not a §1.4 priority)", ""]
            else:
                lines += ["", f"### {f.priority.value}. {f.priority.label} (§1.4)", ""]
        rule = f" ({f.rule})" if f.rule else ""
        lines.append(f"- **{f.target}** on {f.node}: {f.message}{rule}. Next: {f.action}.")
    if fixed:
        lines += ["", "### Fixed by this audit", ""]
        lines += [f"- **{f.target}** on {f.node}: {f.message}; started and verified." for f in fixed]
    return "\n".join(lines) + "\n"


def to_dict(report: AuditReport) -> dict[str, Any]:
    data = report.model_dump(mode="json")
    data["findings"] = [f.model_dump(mode="json") for f in report.findings]
    data["exit_code"] = report.exit_code
    return data


def to_json(report: AuditReport) -> str:
    return json.dumps(to_dict(report), indent=2, sort_keys=True, ensure_ascii=False)


def to_junit(report: AuditReport) -> str:
    """One testsuite per node, one testcase per check: CI shows each failing check natively."""
    suites = ET.Element("testsuites", name="ipsinfra-audit")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for node in report.nodes:
        suite = ET.SubElement(suites, "testsuite", name=node.node)
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for outcome in node.outcomes:
            case = ET.SubElement(suite, "testcase", classname=f"audit.{node.node}", name=outcome.check)
            counts["tests"] += 1
            if outcome.skipped is not None:
                ET.SubElement(case, "skipped", message=outcome.skipped)
                counts["skipped"] += 1
            open_ = [f for f in outcome.findings if not f.fixed]
            if open_:
                counts["failures"] += 1
                failure = ET.SubElement(
                    case, "failure", message=f"{len(open_)} finding(s)", type=outcome.check
                )
                failure.text = "\n".join(f"{f.target}: {f.message} -> {f.action}" for f in open_)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{node.duration_s:.3f}")
    for key, value in totals.items():
        suites.set(key, str(value))
    if report.error:
        suites.set("errors", "1")
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
