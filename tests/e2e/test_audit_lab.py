"""The nightly audit and the reboot check (§5.2) on the embedded lab.

Real libvirtd daemons with qemu guests whose "reboot" kills every guest and
lets libvirt's own autostart bring back what it should, sshd test hosts whose
boot id changes, and fakepve whose node uptime restarts.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ipsinfra import audit, cli
from ipsinfra.lab.fleet import Lab
from ipsinfra.models import VdsState

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]

# The example's trial VPS1002 ran 2017-06-01..08: audit "during" the trial unless a test wants it expired.
DURING_TRIAL = dt.date(2017, 6, 5)
AFTER_TRIAL = dt.date(2017, 6, 9)


def targets(report: audit.AuditReport, check: str) -> list[str]:
    return sorted(f.target for f in report.open_findings if f.check == check)


def run(lab: Lab, **kw: object) -> audit.AuditReport:
    assert lab.fleet is not None and lab.pool is not None
    kw.setdefault("today", DURING_TRIAL)
    kw.setdefault("recheck_delay", 0.2)
    kw.setdefault("probe_for", lab.probe_for)
    with lab.journal() as journal:
        return audit.run(lab.fleet, lab.pool, journal=journal, **kw)  # type: ignore[arg-type]


def test_clean_lab_passes_every_check(lab: Lab) -> None:
    report = run(lab)
    assert report.exit_code == 0, audit.to_markdown(report)
    assert all(n.reachable for n in report.nodes)
    assert sum(n.vds_running for n in report.nodes) == 5  # all but the blocked VPS1004


def test_worker_processes_open_their_own_connections(lab: Lab) -> None:
    """Split over processes, the lab's libvirtd and Proxmox nodes are reached
    through the children's own connections (the parent's are never shared), the
    boot ids over SSH, and the result is the one-process result."""
    lab.driver("kvm1").stop("VPS1001(113.10)", timeout=1)
    alone = run(lab, processes=1)
    split = run(lab, processes=len(lab.fleet.nodes))  # type: ignore[union-attr]
    for report in (alone, split):
        assert all(n.reachable for n in report.nodes), audit.to_markdown(report)

    def seen(report: audit.AuditReport) -> list[tuple[object, ...]]:
        return [(n.node, n.boot_id, n.vds_total, n.vds_running, n.rebooted) for n in report.nodes]

    assert seen(split) == seen(alone)
    assert targets(split, "vds_not_running") == targets(alone, "vds_not_running") == ["VPS1001(113.10)"]
    assert lab.driver("kvm2").list_vds()  # the parent's own connections still work afterwards


def test_reboot_with_one_vds_left_down_is_found_and_fixed(lab: Lab) -> None:
    run(lab)  # remembers every node's boot identity
    lab.reboot("kvm1")
    lab.reboot("pve1")
    # After the boot one autostart VDS did not come up (here: it was stopped again).
    lab.driver("kvm1").stop("VPS1001(113.10)", timeout=1)
    report = run(lab)
    assert {n.node for n in report.nodes if n.rebooted} == {"kvm1", "pve1"}
    assert targets(report, "vds_not_running") == ["VPS1001(113.10)"]
    assert "VPS1004(113.20)" not in targets(report, "vds_not_running")  # blocked: must stay down
    assert report.findings[0].check == "vds_not_running"  # §1.4: a service down ranks first
    assert report.exit_code == 1

    fixed = run(lab, fix=True)
    assert [f.target for f in fixed.findings if f.fixed] == ["VPS1001(113.10)"]
    assert lab.driver("kvm1").get_vds("VPS1001(113.10)").state is VdsState.RUNNING
    assert lab.driver("kvm2").get_vds("VPS1004(113.20)").state is VdsState.STOPPED
    again = run(lab)
    assert again.exit_code == 0, audit.to_markdown(again)
    with lab.journal() as journal:
        starts = journal.entries(action="vds.start")
        assert [e.target for e in starts] == ["kvm1/VPS1001(113.10)"]
        assert journal.verify().ok


def test_without_fix_nothing_changes(lab: Lab) -> None:
    lab.driver("kvm1").stop("VPS1001(113.10)", timeout=1)
    report = run(lab)
    assert targets(report, "vds_not_running") == ["VPS1001(113.10)"]
    assert lab.driver("kvm1").get_vds("VPS1001(113.10)").state is VdsState.STOPPED


def test_each_check_fails_on_the_lab(lab: Lab, tmp_path: Path) -> None:
    kvm1, kvm2 = lab.driver("kvm1"), lab.driver("kvm2")
    # vds_name: a VDS carrying another node's octets (not renamed after a move)
    kvm1.stop("VPS1002(113.10)", timeout=1)
    kvm1.rename("VPS1002(113.10)", "VPS1002(113.20)")
    kvm1.start("VPS1002(113.20)")
    # inventory_drift: vCPUs changed behind the inventory's back
    kvm2.stop("VPS1003(113.20)", timeout=1)
    kvm2.set_vcpus("VPS1003(113.20)", 2)
    kvm2.start("VPS1003(113.20)")
    # blocked_autostart: the blocked VPS1004 given autostart again
    kvm2.set_autostart("VPS1004(113.20)", True)
    # vds_reachable: VPS1005's SSH stops answering
    lab.break_service("VPS1005(100.30)")
    dc_list = tmp_path / "dc.csv"
    dc_list.write_text("ip,name\n203.0.113.10,kvm1\n203.0.113.20,srv-kvm-0002\n", encoding="utf-8")
    report = run(lab, today=AFTER_TRIAL, dc_names=audit.load_dc_names(dc_list))
    assert targets(report, "vds_name") == ["VPS1002(113.20)"]
    # VPS1003's vCPUs changed; VPS1002(113.10) is no longer on kvm1 under that name
    assert targets(report, "inventory_drift") == ["VPS1002(113.10)", "VPS1003(113.20)"]
    assert targets(report, "blocked_autostart") == ["VPS1004(113.20)"]
    assert targets(report, "vds_reachable") == ["VPS1005(100.30)"]
    assert targets(report, "dc_name") == ["kvm2"]
    assert targets(report, "trial_expired") == ["VPS1002(113.20)"]  # the trial travels in its description
    junit = ET.fromstring(audit.to_junit(report))
    failing = {
        (c.get("classname"), c.get("name")) for c in junit.iter("testcase") if c.find("failure") is not None
    }
    assert failing == {
        ("audit.kvm1", "vds_name"),
        ("audit.kvm1", "inventory_drift"),
        ("audit.kvm2", "inventory_drift"),
        ("audit.kvm2", "blocked_autostart"),
        ("audit.pve1", "vds_reachable"),
        ("audit.kvm2", "dc_name"),
        ("audit.kvm1", "trial_expired"),
    }
    assert int(junit.get("tests", "0")) == sum(len(n.outcomes) for n in report.nodes)


def test_trial_past_its_end(lab: Lab) -> None:
    report = run(lab, today=AFTER_TRIAL)
    assert targets(report, "trial_expired") == ["VPS1002(113.10)"]
    assert targets(report, "vds_not_running") == []


def test_dead_node_is_one_finding_and_others_still_audited(lab: Lab) -> None:
    lab.daemons["kvm2"].kill_libvirtd()
    lab.pve.call(lambda: lab.pve.pve.set_node_offline("pve1"))
    report = run(lab)
    by_node = {n.node: n for n in report.nodes}
    assert by_node["kvm1"].reachable and by_node["kvm1"].vds_total == 2
    for dead in ("kvm2", "pve1"):
        assert not by_node[dead].reachable
        [finding] = by_node[dead].findings
        assert finding.check == "node_reachable" and dead in finding.message
    assert report.exit_code == 1


def test_cli_audit_on_the_lab(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab.driver("kvm1").stop("VPS1001(113.10)", timeout=1)
    junit = tmp_path / "audit.xml"
    rc = cli.main(
        [
            "audit", "-i", str(lab.inventory_dir), "--journal", str(lab.journal_path),
            "--format", "json", "--junit", str(junit), "--recheck-delay", "0.2",
        ]
    )  # fmt: skip
    assert rc == 1
    data = json.loads(capsys.readouterr().out)
    assert [f["target"] for f in data["findings"] if f["check"] == "vds_not_running"] == ["VPS1001(113.10)"]
    assert ET.parse(junit).getroot().get("failures") is not None


def test_reboot_vds_that_ran_without_autostart_is_found_a_blocked_one_is_not(lab: Lab) -> None:
    """§5.2: what ran before the reboot is checked, autostart or not (issue 17, part 3).

    Nothing stops VPS1001 after the reboot: its client runs it without
    autostart, so the node's own boot does not bring it back.
    """
    from ipsinfra.abuse.block import block

    assert lab.fleet is not None
    kvm1 = lab.driver("kvm1")
    kvm1.set_autostart("VPS1001(113.10)", False)
    assert kvm1.get_vds("VPS1001(113.10)").state is VdsState.RUNNING
    run(lab)  # remembers the boot ids and what runs
    with lab.journal() as journal:  # VPS1002 ran at that audit; blocked since (§7.2)
        block("203.0.113.102", lab.fleet, lab.pool, reason="spamhaus_sbl", journal=journal, stop_timeout=2)
    lab.reboot("kvm1")
    assert lab.driver("kvm1").get_vds("VPS1001(113.10)").state is VdsState.STOPPED

    report = run(lab)
    assert [n.node for n in report.nodes if n.rebooted] == ["kvm1"]
    assert targets(report, "vds_down_after_reboot") == ["VPS1001(113.10)"]
    assert targets(report, "vds_not_running") == []
    assert all(f.target != "VPS1002(113.10)" for f in report.open_findings), audit.to_markdown(report)
    assert "ran before the reboot of kvm1" in audit.to_markdown(report)

    fixed = run(lab, fix=True)  # the same boot: the audit still knows what ran before it
    assert [f.target for f in fixed.findings if f.fixed] == ["VPS1001(113.10)"]
    assert lab.driver("kvm1").get_vds("VPS1001(113.10)").state is VdsState.RUNNING
    assert lab.driver("kvm1").get_vds("VPS1002(113.10)").state is VdsState.STOPPED
    with lab.journal() as journal:
        assert [e.target for e in journal.entries(action="vds.start")] == ["kvm1/VPS1001(113.10)"]
    assert targets(run(lab), "vds_down_after_reboot") == []
