from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET

from ipsinfra.audit import to_json, to_junit, to_markdown
from ipsinfra.audit.checks import BootIdentity, NodeObservation, VdsFacts, facts_of, run_checks, unreachable
from ipsinfra.audit.findings import AuditReport, NodeAudit, Priority
from ipsinfra.models import VdsState
from tests.unit.fleetkit import node, vds

TODAY = dt.date(2026, 11, 26)
KVM1 = node("kvm1", "198.51.100.10")
T0 = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)


def observe(vms, **kw) -> NodeObservation:  # type: ignore[no-untyped-def]
    return NodeObservation(node=KVM1, vds=vms, **kw)


def findings(obs: NodeObservation, check: str) -> list[str]:
    _, outcomes = run_checks(obs, TODAY)
    return [f.target for o in outcomes if o.check == check for f in o.findings]


def test_reboot_detected_by_boot_id_and_time() -> None:
    a = BootIdentity(boot_id="aaa", boot_time=T0)
    assert BootIdentity(boot_id="bbb", boot_time=T0).differs(a) is True
    assert BootIdentity(boot_id="aaa", boot_time=T0).differs(a) is False
    assert BootIdentity(boot_time=T0 + dt.timedelta(hours=1)).differs(BootIdentity(boot_time=T0)) is True
    assert BootIdentity(boot_time=T0 + dt.timedelta(seconds=5)).differs(BootIdentity(boot_time=T0)) is False
    assert BootIdentity().differs(a) is None
    rebooted, _ = run_checks(observe([], boot_now=BootIdentity(boot_id="b"), boot_before=a), TODAY)
    assert rebooted
    rebooted, _ = run_checks(observe([], boot_now=a, boot_before=a), TODAY)
    assert not rebooted


def test_not_running_only_for_those_that_should_run() -> None:
    down = vds("VPS1(100.10)", "kvm1", autostart=True, state=VdsState.STOPPED)
    blocked = vds("VPS2(100.10)", "kvm1", autostart=True, state=VdsState.STOPPED)
    off = vds("VPS3(100.10)", "kvm1", autostart=False, state=VdsState.STOPPED)
    expired = vds("VPS4(100.10)", "kvm1", autostart=True, state=VdsState.STOPPED)
    up = vds("VPS5(100.10)", "kvm1", autostart=True, state=VdsState.RUNNING)
    obs = observe(
        [down, blocked, off, expired, up],
        facts={
            "VPS2(100.10)": VdsFacts(blocked=True),
            "VPS4(100.10)": VdsFacts(trial_end=TODAY - dt.timedelta(days=1)),
        },
    )
    assert findings(obs, "vds_not_running") == ["VPS1(100.10)"]
    assert findings(obs, "blocked_autostart") == ["VPS2(100.10)"]
    assert findings(obs, "trial_expired") == ["VPS4(100.10)"]


def test_transitional_state_is_rechecked() -> None:
    starting = vds("VPS1(100.10)", "kvm1", autostart=True, state=VdsState.STARTING)
    came_up = starting.model_copy(update={"state": VdsState.RUNNING})
    assert findings(observe([starting], recheck={starting.name: came_up}), "vds_not_running") == []
    stuck = starting.model_copy(update={"state": VdsState.STARTING})
    assert findings(observe([starting], recheck={starting.name: stuck}), "vds_not_running") == [starting.name]


def test_names_and_octets() -> None:
    vms = [
        vds("VPS1(100.10)", "kvm1"),
        vds("VPS2(100.20)", "kvm1"),  # another node's octets: not renamed after a migration
        vds("web-server", "kvm1"),
    ]
    assert sorted(findings(observe(vms), "vds_name")) == ["VPS2(100.20)", "web-server"]


def test_drift_against_inventory() -> None:
    on_node = vds("VPS1(100.10)", "kvm1", vcpus=4, cpuset="1-7")
    record = vds("VPS1(100.10)", "kvm1", vcpus=2, cpuset="1-7")
    assert findings(observe([on_node], inventory={on_node.name: record}), "inventory_drift") == [on_node.name]
    assert findings(observe([on_node], inventory={on_node.name: on_node}), "inventory_drift") == []
    gone = vds("VPS2(100.10)", "kvm1")
    elsewhere = vds("VPS3(100.20)", "kvm2")
    inventory = {on_node.name: on_node, gone.name: gone, elsewhere.name: elsewhere}
    assert findings(observe([on_node], inventory=inventory), "inventory_drift") == ["VPS2(100.10)"]


def test_dc_name_and_reach() -> None:
    assert findings(observe([], dc_names={"198.51.100.10": "srv-0042"}), "dc_name") == ["kvm1"]
    assert findings(observe([], dc_names={"198.51.100.10": "kvm1"}), "dc_name") == []
    assert findings(observe([], dc_names={}), "dc_name") == []
    obs = observe([], reach={"VPS1(100.10)": "203.0.113.1:22: Connection refused", "VPS2(100.10)": None})
    assert findings(obs, "vds_reachable") == ["VPS1(100.10)"]


def test_facts_merge_description_inventory_and_state() -> None:
    v = vds("VPS1(100.10)", "kvm1", description="ipsinfra-blocked: SBL123\nipsinfra-trial-end: 2026-11-20")
    f = facts_of(v, None, None)
    assert f.blocked and f.trial_end == dt.date(2026, 11, 20)
    f = facts_of(vds("VPS1(100.10)", "kvm1"), None, {"status": "Cancelled"})
    assert f.cancelled and not f.blocked


def test_reports_rank_and_parse() -> None:
    down = vds("VPS1(100.10)", "kvm1", autostart=True, state=VdsState.STOPPED)
    misnamed = vds("VPS2(100.20)", "kvm1")
    _, outcomes = run_checks(observe([down, misnamed]), TODAY)
    report = AuditReport(
        started=T0,
        duration_s=1.0,
        nodes=[
            NodeAudit(node="kvm1", reachable=True, outcomes=outcomes, vds_total=2),
            NodeAudit(node="kvm2", reachable=False, outcomes=[unreachable("kvm2", "connection refused")]),
        ],
    )
    ranked = report.findings
    assert ranked[0].priority == Priority.SERVICE_DOWN
    assert ranked[-1].check == "vds_name"
    assert report.exit_code == 1
    md = to_markdown(report)
    assert md.index("service down") < md.index("other")
    assert "kvm2 does not answer: connection refused" in md
    data = json.loads(to_json(report))
    assert data["exit_code"] == 1 and len(data["findings"]) == 3
    root = ET.fromstring(to_junit(report))
    assert root.get("failures") == "3"
    assert int(root.get("tests", "0")) == len(outcomes) + 1
    failing = {c.get("name") for c in root.iter("testcase") if c.find("failure") is not None}
    assert failing == {"vds_not_running", "vds_name", "node_reachable"}


def test_clean_report_exit_0() -> None:
    _, outcomes = run_checks(
        observe([vds("VPS1(100.10)", "kvm1", state=VdsState.RUNNING, autostart=True)]), TODAY
    )
    report = AuditReport(
        started=T0, duration_s=0.1, nodes=[NodeAudit(node="kvm1", reachable=True, outcomes=outcomes)]
    )
    assert report.exit_code == 0
    assert "every check passed" in to_markdown(report)
    assert AuditReport(started=T0, duration_s=0, nodes=[], error="no inventory").exit_code == 2
