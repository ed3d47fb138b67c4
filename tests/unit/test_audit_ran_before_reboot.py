"""§5.2: after a node reboot, the VDS that ran before it are checked, autostart or not.

Pure checks: a node's observation (what it reports, its boot identities, what
the last audit saw running) in, findings and the record for the next audit out.
Last, the state store's batch write that keeps those records.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ipsinfra.audit.checks import (
    BootIdentity,
    NodeObservation,
    RunningRecord,
    VdsFacts,
    ran_before_reboot,
    run_checks,
    running_record,
)
from ipsinfra.audit.findings import Finding, Priority
from ipsinfra.errors import InvalidInput
from ipsinfra.journal import Journal
from ipsinfra.models import Vds, VdsState
from tests.unit.fleetkit import node, vds

TODAY = dt.date(2026, 11, 26)
KVM1 = node("kvm1", "198.51.100.10")
BEFORE = BootIdentity(boot_id="boot-1")
AFTER = BootIdentity(boot_id="boot-2")

HAND = "VPS1(100.10)"  # started by hand by its client, autostart off
AUTO = "VPS2(100.10)"  # autostart on
BLOCKED = "VPS3(100.10)"  # blocked after the last audit (§7.2)
TRIAL = "VPS4(100.10)"  # a trial past its end (§2.1)


def down(name: str, *, autostart: bool = False, state: VdsState = VdsState.STOPPED) -> Vds:
    return vds(name, "kvm1", autostart=autostart, state=state)


def observe(
    vms: list[Vds],
    *,
    last: RunningRecord | None,
    boot_now: BootIdentity = AFTER,
    boot_before: BootIdentity | None = BEFORE,
    **kw: object,
) -> NodeObservation:
    return NodeObservation.model_validate(
        {"node": KVM1, "vds": vms, "boot_now": boot_now, "boot_before": boot_before, "last_audit": last, **kw}
    )


def found(obs: NodeObservation, check: str = "vds_down_after_reboot") -> list[Finding]:
    _, outcomes = run_checks(obs, TODAY)
    return [f for o in outcomes if o.check == check for f in o.findings]


def test_ran_before_the_reboot_autostart_off_down_now_is_a_finding() -> None:
    obs = observe([down(HAND)], last=RunningRecord(running=[HAND]))
    [finding] = found(obs)
    assert finding.target == HAND and finding.node == "kvm1"
    assert "ran before the reboot of kvm1, stopped now" in finding.message
    assert finding.priority is Priority.SERVICE_DOWN and finding.rule == "§5.2"
    assert "--fix" in finding.action
    assert found(obs, "vds_not_running") == []  # autostart off: not "should run"


def test_blocked_is_no_finding_and_not_carried() -> None:
    obs = observe(
        [down(HAND), down(BLOCKED)],
        last=RunningRecord(running=[HAND, BLOCKED]),
        facts={BLOCKED: VdsFacts(blocked=True)},
    )
    assert [f.target for f in found(obs)] == [HAND]
    _, outcomes = run_checks(obs, TODAY)
    assert all(f.target != BLOCKED for o in outcomes for f in o.findings)
    assert running_record(obs, True, TODAY).down_since_reboot == [HAND]


def test_cancelled_and_expired_trial_are_down_on_purpose() -> None:
    obs = observe(
        [down("VPS5(100.10)"), down(TRIAL)],
        last=RunningRecord(running=["VPS5(100.10)", TRIAL]),
        facts={
            "VPS5(100.10)": VdsFacts(cancelled=True),
            TRIAL: VdsFacts(trial_end=TODAY - dt.timedelta(days=1)),
        },
    )
    assert found(obs) == []
    assert [f.target for f in found(obs, "trial_expired")] == [TRIAL]  # reported there, once


def test_no_reboot_no_such_finding() -> None:
    """A client who shut their VDS down between two audits on the same boot is not a finding."""
    obs = observe([down(HAND)], last=RunningRecord(running=[HAND]), boot_now=BEFORE)
    assert found(obs) == []
    assert found(obs, "node_reboot") == []


def test_first_audit_no_such_finding() -> None:
    """Nothing remembered: neither a boot to compare nor what ran."""
    assert found(observe([down(HAND)], last=None, boot_before=None)) == []
    # A boot remembered by an audit that did not yet record what ran: still nothing claimed.
    obs = observe([down(HAND)], last=None)
    assert found(obs) == [] and [f.check for f in found(obs, "node_reboot")] == ["node_reboot"]


def test_autostart_on_is_reported_once_by_vds_not_running() -> None:
    """Merged, not duplicated: the §5.2 "should run" finding says it also ran before."""
    obs = observe([down(AUTO, autostart=True)], last=RunningRecord(running=[AUTO]))
    assert found(obs) == []
    [finding] = found(obs, "vds_not_running")
    assert finding.target == AUTO and "ran before the node's reboot" in finding.message
    # Not running before the reboot: the old message, nothing claimed.
    [plain] = found(observe([down(AUTO, autostart=True)], last=RunningRecord()), "vds_not_running")
    assert "ran before" not in plain.message


def test_running_again_or_gone_is_no_finding() -> None:
    up = down(HAND, state=VdsState.RUNNING)
    assert found(observe([up], last=RunningRecord(running=[HAND]))) == []
    assert found(observe([], last=RunningRecord(running=[HAND]))) == []  # migrated away / deleted
    starting = down(HAND, state=VdsState.STARTING)
    came_up = observe([starting], last=RunningRecord(running=[HAND]), recheck={HAND: up})
    assert found(came_up) == []
    stuck = observe([starting], last=RunningRecord(running=[HAND]), recheck={HAND: starting})
    assert [f.target for f in found(stuck)] == [HAND]


def test_still_down_is_carried_to_the_next_audit_until_it_runs() -> None:
    """The audit after the first post-reboot one (``--fix``, the next night) still knows."""
    first = observe(
        [down(HAND), down("VPS6(100.10)", state=VdsState.RUNNING)], last=RunningRecord(running=[HAND])
    )
    record = running_record(first, True, TODAY)
    assert record == RunningRecord(running=["VPS6(100.10)"], down_since_reboot=[HAND])
    again = observe([down(HAND)], last=record, boot_now=AFTER, boot_before=AFTER)  # same boot
    assert ran_before_reboot(again, False) == [HAND]
    assert [f.target for f in found(again)] == [HAND]
    # Started by --fix in that audit: remembered as running, no longer carried.
    fixed = running_record(again, False, TODAY, started={HAND})
    assert fixed == RunningRecord(running=[HAND], down_since_reboot=[])
    # Running again by the next audit: dropped.
    later = observe([down(HAND, state=VdsState.RUNNING)], last=record, boot_now=AFTER, boot_before=AFTER)
    assert running_record(later, False, TODAY) == RunningRecord(running=[HAND])


def test_the_store_writes_every_node_state_at_once(tmp_path: Path) -> None:
    """One transaction for every ``boot:``/``ran:`` key of an audit; history kept, secrets redacted."""
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.set_states({"boot:kvm1": {"boot_id": "a"}, "ran:kvm1": {"running": [HAND]}})
        journal.set_states(
            {"ran:kvm1": {"running": [], "down_since_reboot": [HAND]}, "x:k": {"password": "p"}}
        )
        journal.set_states({})
        assert journal.latest_states("ran:") == {"ran:kvm1": {"running": [], "down_since_reboot": [HAND]}}
        assert [v for _, v in journal.state_history("ran:kvm1")] == [
            {"running": [HAND]},
            {"running": [], "down_since_reboot": [HAND]},
        ]
        assert journal.get_state("x:k") == {"password": "***"}
        with pytest.raises(InvalidInput, match="must not be empty"):
            journal.set_states({"": {}})
