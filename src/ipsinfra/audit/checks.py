"""The audit's checks: pure functions from what a node reports to findings.

Each check returns a :class:`CheckOutcome` (passed, or its findings), so the
JUnit report can show every check, passing or not, per node.

§5.2 after a node reboot has two halves: the VDS that *should* run (autostart
on, not blocked...: ``vds_not_running``) and the VDS that *ran* before the
reboot, which a human on shift also checks. The second needs a memory: each
audit leaves a :class:`RunningRecord` per node (the state store's ``ran:<node>``,
next to ``boot:<node>``), and the next audit compares with it
(``vds_down_after_reboot``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra import metadata, naming
from ipsinfra.audit.findings import CheckOutcome, Finding, Priority
from ipsinfra.models import Node, Vds, VdsState

BOOT_TIME_TOLERANCE_S = 90.0


class BootIdentity(BaseModel):
    """Who the node is since its last boot: a boot id, or the boot time."""

    model_config = ConfigDict(frozen=True)

    boot_id: str | None = None
    boot_time: dt.datetime | None = None

    def differs(self, other: BootIdentity) -> bool | None:
        """True if ``other`` is a different boot; None when it cannot be told."""
        if self.boot_id and other.boot_id:
            return self.boot_id != other.boot_id
        if self.boot_time and other.boot_time:
            delta = abs((self.boot_time - other.boot_time).total_seconds())
            return delta > BOOT_TIME_TOLERANCE_S
        return None


class VdsFacts(BaseModel):
    """What we know of one VDS beyond what its hypervisor reports."""

    model_config = ConfigDict(frozen=True)

    blocked: bool = False
    cancelled: bool = False
    trial_end: dt.date | None = None
    managed: bool = False


# The default for a VDS with no facts, built once (frozen): the checks ask for
# every VDS of every node (B4).
NO_FACTS = VdsFacts()


class RunningRecord(BaseModel):
    """What one audit saw running on a node, kept for the next audit (§5.2).

    ``down_since_reboot`` carries the VDS that ran before an earlier reboot and
    were still down: the audit that runs after the first one (``--fix``, the
    next night) still knows them, until they run again or are blocked.
    """

    model_config = ConfigDict(frozen=True)

    running: list[str] = Field(default_factory=list, description="VDS names running at that audit")
    down_since_reboot: list[str] = Field(
        default_factory=list, description="VDS that ran before a reboot and were still down at that audit"
    )


class NodeObservation(BaseModel):
    """Everything the checks need about one node, gathered beforehand."""

    model_config = ConfigDict(frozen=True)

    node: Node
    vds: list[Vds]
    recheck: dict[str, Vds] = Field(
        default_factory=dict, description="a second reading of VDS that were in a transitional state"
    )
    boot_now: BootIdentity | None = None
    boot_before: BootIdentity | None = None
    facts: dict[str, VdsFacts] = Field(default_factory=dict, description="per VDS name")
    reach: dict[str, str | None] = Field(
        default_factory=dict, description="VDS name -> None if SSH/RDP answered, else why not"
    )
    inventory: dict[str, Vds] = Field(default_factory=dict, description="the inventory's VDS records by name")
    dc_names: dict[str, str] | None = Field(default=None, description="main IP -> the DC's name for it")
    last_audit: RunningRecord | None = Field(
        default=None, description="what the last audit saw running here (None: no audit remembered)"
    )


def facts_of(vds: Vds, record: Vds | None, state: Mapping[str, object] | None) -> VdsFacts:
    """Merge the hypervisor's description lines, the inventory record and journal state."""
    meta = metadata.parse(vds.description)
    trial = meta.get("trial-end") or (state or {}).get("trial_end")
    trial_end = record.trial_end if record is not None and record.trial_end else None
    if trial_end is None and isinstance(trial, str) and trial:
        trial_end = dt.date.fromisoformat(trial)
    return VdsFacts(
        blocked=bool(
            vds.blocked
            or "blocked" in meta
            or (record is not None and record.blocked)
            or (state or {}).get("blocked")
        ),
        cancelled=bool(
            vds.cancelled
            or meta.get("status") == "Cancelled"
            or (record is not None and record.cancelled)
            or (state or {}).get("status") == "Cancelled"
        ),
        trial_end=trial_end,
        managed="managed" in meta,
    )


def may_run(facts: VdsFacts, today: dt.date) -> bool:
    """Not blocked, not cancelled, trial not expired: starting it breaks no rule (§7.2, §2.1)."""
    if facts.blocked or facts.cancelled:
        return False
    return not (facts.trial_end is not None and facts.trial_end < today)


def should_run(vds: Vds, facts: VdsFacts, today: dt.date) -> bool:
    """§5.2: autostart on, not blocked, not cancelled, trial not expired."""
    return vds.autostart and may_run(facts, today)


def _outcome(
    check: str, node: str, findings: Sequence[Finding] = (), skipped: str | None = None
) -> CheckOutcome:
    return CheckOutcome(check=check, node=node, findings=list(findings), skipped=skipped)


def _state_now(obs: NodeObservation, vds: Vds) -> VdsState:
    """The VDS's state, with a transitional one replaced by its second reading."""
    if vds.state.transitional:
        again = obs.recheck.get(vds.name)
        if again is not None:
            return again.state
    return vds.state


def ran_before_reboot(obs: NodeObservation, rebooted: bool) -> list[str]:
    """The VDS that ran before the node's last reboot, by the last audit's record.

    Empty on the first audit (nothing remembered) and when the node did not
    reboot since, apart from those an earlier post-reboot audit found still down.
    """
    last = obs.last_audit
    if last is None:
        return []
    names = list(last.down_since_reboot)
    if rebooted:
        names += last.running
    return list(dict.fromkeys(names))


def check_reboot(obs: NodeObservation) -> tuple[bool, CheckOutcome]:
    """§5.2: did the node reboot since the last audit?"""
    name = obs.node.name
    if obs.boot_now is None:
        return False, _outcome("node_reboot", name, skipped="the node exposes no boot identity")
    if obs.boot_before is None:
        return False, _outcome("node_reboot", name)
    rebooted = obs.boot_now.differs(obs.boot_before)
    if not rebooted:
        return False, _outcome("node_reboot", name)
    when = obs.boot_now.boot_time.isoformat(timespec="seconds") if obs.boot_now.boot_time else "unknown time"
    return True, _outcome(
        "node_reboot",
        name,
        [
            Finding(
                check="node_reboot",
                priority=Priority.OTHER,
                node=name,
                target=name,
                message=(
                    f"node {name} rebooted (booted {when}); the VDS that should run "
                    "and those that ran at the last audit were checked"
                ),
                action="note the reboot in the shift hand-over (§5.2); see the VDS findings below",
                rule="§5.2",
            )
        ],
    )


def check_not_running(obs: NodeObservation, today: dt.date, ran_before: Collection[str] = ()) -> CheckOutcome:
    """§5.2: every VDS that should run runs; transitional states are re-read, not alarmed.

    A VDS in ``ran_before`` (it ran before the node's reboot) is reported here
    once, with that said in the message: ``vds_down_after_reboot`` leaves it out.
    """
    found: list[Finding] = []
    for vds in obs.vds:
        facts = obs.facts.get(vds.name, NO_FACTS)
        if not should_run(vds, facts, today) or vds.state is VdsState.RUNNING:
            continue
        state = _state_now(obs, vds)
        if state is VdsState.RUNNING:
            continue
        priority = Priority.MANAGED if facts.managed else Priority.SERVICE_DOWN
        before = "; it ran before the node's reboot" if vds.name in ran_before else ""
        found.append(
            Finding(
                check="vds_not_running",
                priority=min(priority, Priority.SERVICE_DOWN),
                node=obs.node.name,
                target=vds.name,
                message=f"{vds.name} should run (autostart on, not blocked) but is {state.value}{before}",
                action=f"start it (`ipsinfra audit --fix` or start on {obs.node.name}), then check SSH/RDP",
                rule="§5.2",
            )
        )
    return _outcome("vds_not_running", obs.node.name, found)


def check_down_after_reboot(obs: NodeObservation, rebooted: bool, today: dt.date) -> CheckOutcome:
    """§5.2: a VDS that ran before the node's reboot and is down now, autostart or not.

    A human on shift checks what ran before the reboot, not only what has
    autostart on. VDS with autostart on are ``vds_not_running``'s (one finding
    per VDS, never two); a blocked or cancelled VDS, or a trial past its end,
    is down on purpose (§7.2, §2.1) and no finding here.
    """
    earlier = set(ran_before_reboot(obs, rebooted))
    found: list[Finding] = []
    for vds in obs.vds:
        if vds.name not in earlier:
            continue
        facts = obs.facts.get(vds.name, NO_FACTS)
        if should_run(vds, facts, today) or not may_run(facts, today):
            continue
        state = _state_now(obs, vds)
        if state is VdsState.RUNNING:
            continue
        found.append(
            Finding(
                check="vds_down_after_reboot",
                priority=Priority.SERVICE_DOWN,
                node=obs.node.name,
                target=vds.name,
                message=(
                    f"{vds.name} ran before the reboot of {obs.node.name}, {state.value} now "
                    "(autostart off, so the node did not bring it back)"
                ),
                action=(
                    f"start it (`ipsinfra audit --fix` or start on {obs.node.name}), then check SSH/RDP; "
                    "ask the client whether autostart should be on"
                ),
                rule="§5.2",
            )
        )
    return _outcome("vds_down_after_reboot", obs.node.name, found)


def running_record(
    obs: NodeObservation, rebooted: bool, today: dt.date, started: Collection[str] = ()
) -> RunningRecord:
    """What this audit leaves for the next one: what runs now (``started`` by
    ``--fix`` included), and what ran before a reboot and is still down."""
    running = [v.name for v in obs.vds if v.name in started or _state_now(obs, v) is VdsState.RUNNING]
    listed = {v.name: v for v in obs.vds}
    still_down = [
        name
        for name in ran_before_reboot(obs, rebooted)
        if name in listed and name not in running and may_run(obs.facts.get(name, NO_FACTS), today)
    ]
    return RunningRecord(running=running, down_since_reboot=still_down)


def check_names(obs: NodeObservation) -> CheckOutcome:
    """§8.5 / §9.10: house form, and the node's own octets."""
    found: list[Finding] = []
    octets = naming.node_octets(obs.node.main_ip) if obs.node.main_ip.version == 4 else None
    for vds in obs.vds:
        if not naming.is_vps_name(vds.name):
            found.append(
                Finding(
                    check="vds_name",
                    priority=Priority.OTHER,
                    node=obs.node.name,
                    target=vds.name,
                    message=f"{vds.name!r} is not a house name VPS<order>(<a>.<b>)",
                    action="rename it by §8.5 (and at the DC, §4.4)",
                    rule="§8.5",
                )
            )
            continue
        parsed = naming.parse_vps_name(vds.name)
        if octets is not None and parsed.octets != octets:
            found.append(
                Finding(
                    check="vds_name",
                    priority=Priority.OTHER,
                    node=obs.node.name,
                    target=vds.name,
                    message=(
                        f"{vds.name} carries octets {parsed.octets} but runs on {obs.node.name} "
                        f"({octets}): not renamed after a migration?"
                    ),
                    action=f"rename it to {naming.vps_name(parsed.order, obs.node.main_ip)} (§9.10)",
                    rule="§9.10",
                )
            )
    return _outcome("vds_name", obs.node.name, found)


def check_drift(obs: NodeObservation) -> CheckOutcome:
    """vCPU / cpuset / placement drift between the hypervisor and the inventory."""
    found: list[Finding] = []
    for vds in obs.vds:
        record = obs.inventory.get(vds.name)
        if record is None:
            continue
        diffs = []
        if record.node != obs.node.name:
            diffs.append(f"node: inventory {record.node}, found on {obs.node.name}")
        if record.vcpus != vds.vcpus:
            diffs.append(f"vcpus: inventory {record.vcpus}, hypervisor {vds.vcpus}")
        if record.cpuset is not None and record.cpuset != vds.cpuset:
            diffs.append(f"cpuset: inventory {record.cpuset}, hypervisor {vds.cpuset}")
        if diffs:
            found.append(
                Finding(
                    check="inventory_drift",
                    priority=Priority.OTHER,
                    node=obs.node.name,
                    target=vds.name,
                    message="; ".join(diffs),
                    action="correct the hypervisor (§9.1) or the inventory, whichever is wrong",
                    rule="§9.1",
                )
            )
    seen = {v.name for v in obs.vds}
    for name, record in sorted(obs.inventory.items()):
        if record.node == obs.node.name and name not in seen:
            found.append(
                Finding(
                    check="inventory_drift",
                    priority=Priority.OTHER,
                    node=obs.node.name,
                    target=name,
                    message=f"the inventory puts {name} on {obs.node.name}, which does not report it",
                    action="find where it went (migrated, renamed, deleted?) and correct the inventory",
                )
            )
    return _outcome("inventory_drift", obs.node.name, found)


def check_blocked_autostart(obs: NodeObservation) -> CheckOutcome:
    """§7.2: a blocked VDS must not come back when its node reboots."""
    found = [
        Finding(
            check="blocked_autostart",
            priority=Priority.IMMEDIATE_COMPLAINT,
            node=obs.node.name,
            target=vds.name,
            message=f"{vds.name} is blocked but autostart is on"
            + (" and it is RUNNING" if vds.state is VdsState.RUNNING else ""),
            action="turn autostart off (and stop it if running): `ipsinfra block` again",
            rule="§7.2",
        )
        for vds in obs.vds
        if obs.facts.get(vds.name, NO_FACTS).blocked and (vds.autostart or vds.state is VdsState.RUNNING)
    ]
    return _outcome("blocked_autostart", obs.node.name, found)


def check_trials(obs: NodeObservation, today: dt.date) -> CheckOutcome:
    """§2.1: a trial past its end date."""
    found: list[Finding] = []
    for vds in obs.vds:
        facts = obs.facts.get(vds.name, NO_FACTS)
        if facts.trial_end is None or facts.trial_end >= today or facts.cancelled:
            continue
        found.append(
            Finding(
                check="trial_expired",
                priority=Priority.NEW_ORDER,
                node=obs.node.name,
                target=vds.name,
                message=f"trial ended {facts.trial_end.isoformat()} and {vds.name} is {vds.state.value}",
                action="hand it to sales: paid, extended, or stopped and cancelled",
                rule="§2.1",
            )
        )
    return _outcome("trial_expired", obs.node.name, found)


def check_dc_name(obs: NodeObservation) -> CheckOutcome:
    """§4.4: our name for the node equals the DC's; where the DC has none, ours stands."""
    if obs.dc_names is None:
        return _outcome("dc_name", obs.node.name, skipped="no DC list given (--dc-list CSV)")
    theirs = obs.dc_names.get(str(obs.node.main_ip))
    ours = obs.node.dc_name or obs.node.name
    if theirs is None or theirs == ours:
        return _outcome("dc_name", obs.node.name)
    return _outcome(
        "dc_name",
        obs.node.name,
        [
            Finding(
                check="dc_name",
                priority=Priority.OTHER,
                node=obs.node.name,
                target=obs.node.name,
                message=f"the DC calls {obs.node.main_ip} {theirs!r}, we call it {ours!r}",
                action="rename ours or ask the DC to rename theirs (§4.4)",
                rule="§4.4",
            )
        ],
    )


def check_reach(obs: NodeObservation, today: dt.date) -> CheckOutcome:
    """§4.10: SSH (Linux) or RDP (Windows) answers on every VDS that runs and should."""
    if not obs.reach:
        return _outcome("vds_reachable", obs.node.name, skipped="no SSH/RDP probes were made")
    found = [
        Finding(
            check="vds_reachable",
            priority=Priority.SERVICE_DOWN,
            node=obs.node.name,
            target=name,
            message=f"{name} runs but its remote access does not answer: {why}",
            action="open the VNC console and look (network, sshd/RDP service, firewall)",
            rule="§4.10",
        )
        for name, why in sorted(obs.reach.items())
        if why is not None
    ]
    return _outcome("vds_reachable", obs.node.name, found)


def unreachable(node: str, reason: str) -> CheckOutcome:
    return _outcome(
        "node_reachable",
        node,
        [
            Finding(
                check="node_reachable",
                priority=Priority.SERVICE_DOWN,
                node=node,
                target=node,
                message=f"node {node} does not answer: {reason}",
                action="check the node at the DC (console/IPMI); internal ticket, notify its clients (§5.1)",
                rule="§5.1",
            )
        ],
    )


def misconfigured(node: str, reason: str) -> CheckOutcome:
    """The node could not be checked because ipsinfra's configuration is wrong (a secret
    variable unset, a secret file unreadable): a ``node_config`` finding, not a §1.4 outage."""
    return _outcome(
        "node_config",
        node,
        [
            Finding(
                check="node_config",
                priority=Priority.CONFIGURATION,
                node=node,
                target=node,
                message=f"not checked: {reason}",
                action="fix the configuration (set the variable or the file the inventory names) and "
                "run the audit again; the node itself was not contacted",
                rule="",
            )
        ],
    )


def run_checks(obs: NodeObservation, today: dt.date) -> tuple[bool, list[CheckOutcome]]:
    """Every check on one node: (rebooted, outcomes)."""
    rebooted, reboot = check_reboot(obs)
    return rebooted, [
        _outcome("node_reachable", obs.node.name),
        reboot,
        check_not_running(obs, today, ran_before_reboot(obs, rebooted)),
        check_down_after_reboot(obs, rebooted, today),
        check_names(obs),
        check_drift(obs),
        check_blocked_autostart(obs),
        check_trials(obs, today),
        check_dc_name(obs),
        check_reach(obs, today),
    ]
