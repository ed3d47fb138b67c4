"""What the audit finds, ranked by the regulations' priorities (§1.4)."""

from __future__ import annotations

import datetime as dt
import enum

from pydantic import BaseModel, ConfigDict, Field


class Priority(enum.IntEnum):
    """§1.4, most urgent first; CONFIGURATION (0) is ipsinfra's own, outside §1.4.

    A configuration finding (a secret variable unset...) says the audit could
    not check a node at all: nothing is known to be down, no client is told,
    but until it is fixed the node's real problems stay unseen, so it is listed first.
    """

    CONFIGURATION = 0  # ipsinfra's configuration: the node was not checked (not a §1.4 outage)
    SERVICE_DOWN = 1  # a service that does not work
    UNSTABLE = 2  # a service that works unstably
    IMMEDIATE_COMPLAINT = 3  # abuse needing an immediate reaction (a blocked VDS that could come back)
    MANAGED = 4  # a managed client's service
    NEW_ORDER = 5  # new orders, trials
    OTHER = 6  # everything else, simplest first

    @property
    def label(self) -> str:
        return {
            0: "configuration",
            1: "service down",
            2: "unstable",
            3: "abuse",
            4: "managed client",
            5: "orders",
            6: "other",
        }[self.value]


class Finding(BaseModel):
    """One thing that is wrong, where, and what the shift should do next."""

    model_config = ConfigDict(frozen=True)

    check: str = Field(description="the check's id, e.g. vds_not_running")
    priority: Priority
    node: str
    target: str = Field(description="the node or the VDS the finding is about")
    message: str
    action: str = Field(description="what to do next (§4.11)")
    rule: str = ""
    fixed: bool = False


class CheckOutcome(BaseModel):
    """A check run on one node: passed, or the findings it produced (for JUnit)."""

    model_config = ConfigDict(frozen=True)

    check: str
    node: str
    findings: list[Finding] = Field(default_factory=list)
    skipped: str | None = None

    @property
    def passed(self) -> bool:
        return not self.findings and self.skipped is None


class NodeAudit(BaseModel):
    """The audit of one node. An unreachable node is one finding, never an exception."""

    model_config = ConfigDict(frozen=True)

    node: str
    reachable: bool
    config_error: str | None = Field(
        default=None,
        description="the node was not checked: ipsinfra's configuration is wrong (not an outage)",
    )
    rebooted: bool = False
    boot_id: str | None = None
    boot_time: dt.datetime | None = None
    vds_total: int = 0
    vds_running: int = 0
    outcomes: list[CheckOutcome] = Field(default_factory=list)
    duration_s: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        return [f for o in self.outcomes for f in o.findings]


class AuditReport(BaseModel):
    """Every node's audit; findings ranked by §1.4."""

    model_config = ConfigDict(frozen=True)

    started: dt.datetime
    duration_s: float
    nodes: list[NodeAudit]
    error: str | None = Field(default=None, description="the audit itself could not run")

    @property
    def findings(self) -> list[Finding]:
        found = [f for n in self.nodes for f in n.findings]
        return sorted(found, key=lambda f: (f.priority, f.node, f.target, f.check))

    @property
    def open_findings(self) -> list[Finding]:
        return [f for f in self.findings if not f.fixed]

    @property
    def exit_code(self) -> int:
        """0 clean, 1 findings, 2 the audit could not run."""
        if self.error:
            return 2
        return 1 if self.open_findings else 0
