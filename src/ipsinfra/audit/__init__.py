"""The nightly node audit and the reboot check (§5.2, §4.4, §4.10, §2.1, §1.4)."""

from __future__ import annotations

from ipsinfra.audit.findings import AuditReport, Finding, NodeAudit, Priority
from ipsinfra.audit.report import to_json, to_junit, to_markdown
from ipsinfra.audit.run import load_dc_names, run

__all__ = [
    "AuditReport",
    "Finding",
    "NodeAudit",
    "Priority",
    "load_dc_names",
    "run",
    "to_json",
    "to_junit",
    "to_markdown",
]
