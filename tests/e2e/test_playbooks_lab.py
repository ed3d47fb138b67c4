"""Every playbook against the embedded lab through ansible-runner (ipsinfra.playbooks.run).

Each playbook runs once in check mode (the devices are read back: nothing
changed, the journal has no new line), once for real (the change is read back
from the hypervisor) and once more (zero tasks changed). Runs are real
``ansible-playbook`` processes calling the ipsinfra.infra modules, which open
their own connections to the lab's libvirtd daemons and fakepve.
"""

from __future__ import annotations

import datetime as dt
import json
import stat
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from ipsinfra import metadata, naming, playbooks
from ipsinfra.errors import VdsNotFound
from ipsinfra.lab.fleet import Lab
from ipsinfra.models import VdsState
from ipsinfra.playbooks import PlaybookResult
from tests.conftest import missing
from tests.playbookruns import changed, journal_lines

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.slow]

DURING_TRIAL = "2017-06-05"  # the example's trial VPS1002 runs 2017-06-01..08


class Runs:
    """Runs playbooks on one lab, keeping each run's artifacts for inspection."""

    def __init__(self, lab: Lab, tmp_path: Path) -> None:
        self.lab = lab
        self.tmp_path = tmp_path
        self.count = 0
        self.artifacts: list[Path] = []

    def __call__(self, name: str, *, check: bool = False, **extravars: Any) -> PlaybookResult:
        self.count += 1
        kept = self.tmp_path / f"artifacts-{self.count}-{name}{'-check' if check else ''}"
        self.artifacts.append(kept)
        result = playbooks.run(
            name,
            self.lab.inventory_dir,
            extravars={"ipsinfra_journal": str(self.lab.journal_path), **extravars},
            check=check,
            diff=True,
            keep_artifacts=kept,
            envvars={"IPSINFRA_LOCK_DIR": str(self.tmp_path / "locks")},
            timeout=300,
        )
        assert result.ok, f"{name} failed:\n{self.stdout(kept)}"
        return result

    @staticmethod
    def stdout(kept: Path) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(kept.rglob("stdout")))

    def last_stdout(self) -> str:
        return self.stdout(self.artifacts[-1])


@pytest.fixture
def runs(lab: Lab, tmp_path: Path) -> Runs:
    return Runs(lab, tmp_path)


def files_containing(root: Path, needle: str) -> list[Path]:
    data = needle.encode()
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and data in p.read_bytes()]


def names_on(lab: Lab, node: str) -> list[str]:
    return sorted(v.name for v in lab.driver(node).list_vds())


ORDER = {
    "number": 2001,
    "client": "c1",
    "node": "pve1",
    "vcpus": 2,
    "memory_mib": 256,
    "disk_gib": 10,
    "os": "debian-12",
    "comment": "ansible order",
    "trial": True,
}


def provision_and_check_the_secret(lab: Lab, runs: Runs, tmp_path: Path, order: dict[str, Any]) -> None:
    node = order["node"]
    before = names_on(lab, node)
    lines = journal_lines(lab)
    password_file = tmp_path / "secrets" / "vds.pw"
    password_file.parent.mkdir(mode=0o700)
    common = {
        "vds_order": order,
        "vds_password_file": str(password_file),
        "vds_activation_date": "2024-05-01",
    }

    checked = runs("provision_vds", check=True, **common)
    assert changed(checked) == 1  # the provision task: "would create"
    assert names_on(lab, node) == before
    assert journal_lines(lab) == lines
    assert not password_file.exists()
    assert lab.fleet is not None
    # set_stats data is masked where it repeats an extravar (the order number), so compute the name.
    name = naming.vps_name(order["number"], lab.fleet.nodes[node].main_ip)
    assert any("trial: Active, ends 2024-05-08" in line for line in checked.data["vds_provisioned"]["plan"])

    first = runs("provision_vds", **common)  # a provisioning failure is a test failure
    assert changed(first) == 1
    got = lab.driver(node).get_vds(name)
    assert got.state is VdsState.RUNNING
    assert got.vcpus == 2 and got.autostart
    assert metadata.parse(got.description)["trial-end"] == "2024-05-08"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    assert len(password) >= 8
    assert "--diff" in next(runs.artifacts[-1].rglob("command")).read_text()

    again = runs("provision_vds", **common)
    assert changed(again) == 0
    assert password_file.read_text().strip() == password  # the password is never touched again
    assert names_on(lab, node) == sorted([*before, name])

    # The generated password is nowhere but its file.
    for kept in runs.artifacts:
        assert files_containing(kept, password) == []
    assert files_containing(lab.base_dir, password) == []  # the journal, the daemons' logs...
    for result in (checked, first, again):
        assert password not in result.model_dump_json()


def test_provision_on_proxmox(lab: Lab, runs: Runs, tmp_path: Path) -> None:
    provision_and_check_the_secret(lab, runs, tmp_path, ORDER)


def test_provision_on_libvirt(lab: Lab, runs: Runs, tmp_path: Path) -> None:
    no_agent = [note for note in lab.notes if "guest agent" in note]
    if no_agent:  # the guest image could not be built here (its packages are missing)
        missing(f"new libvirt VDS in this lab cannot take a password: {no_agent[0]}")
    provision_and_check_the_secret(lab, runs, tmp_path, {**ORDER, "number": 2002, "node": "kvm1"})


def test_a_bad_order_fails_with_the_reason_and_creates_nothing(lab: Lab, tmp_path: Path) -> None:
    before = names_on(lab, "pve1")
    kept = tmp_path / "artifacts"
    result = playbooks.run(
        "provision_vds",
        lab.inventory_dir,
        extravars={
            "ipsinfra_journal": str(lab.journal_path),
            "vds_order": {**ORDER, "number": 1001},  # VPS1001 lives on kvm1 already
            "vds_password_file": str(tmp_path / "pw"),
        },
        keep_artifacts=kept,
    )
    assert not result.ok
    assert result.hosts["localhost"].failed == 1
    assert "already in use by VPS1001(113.10) on node kvm1" in Runs.stdout(kept)
    assert names_on(lab, "pve1") == before
    assert not (tmp_path / "pw").exists()


def test_migrate_between_libvirt_nodes(lab: Lab, runs: Runs) -> None:
    extravars = {"vds_name": "VPS1003(113.20)", "target_node": "kvm1"}
    lines = journal_lines(lab)

    checked = runs("migrate_vds", check=True, **extravars)
    assert changed(checked) == 1
    assert "VPS1003(113.20)" in names_on(lab, "kvm2")
    assert "VPS1003(113.10)" not in names_on(lab, "kvm1")
    assert journal_lines(lab) == lines
    assert "rename to VPS1003(113.10)" in "\n".join(checked.data["vds_migrated"]["plan"])

    first = runs("migrate_vds", **extravars)
    assert changed(first) == 1
    moved = lab.driver("kvm1").get_vds("VPS1003(113.10)")
    assert moved.state is VdsState.RUNNING
    assert lab.fleet is not None
    assert moved.vcpus == lab.fleet.vds["VPS1003(113.20)"].vcpus  # exactly as on the source (§9.1)
    assert str(moved.vnc_listen) == "127.0.0.11"
    with pytest.raises(VdsNotFound):
        lab.driver("kvm2").get_vds("VPS1003(113.20)")
    diff = runs.last_stdout()  # --diff: before/after, one setting per line
    assert "-name: VPS1003(113.20)" in diff and "+name: VPS1003(113.10)" in diff
    assert "+node: kvm1" in diff

    again = runs("migrate_vds", **extravars)
    assert changed(again) == 0
    assert names_on(lab, "kvm1").count("VPS1003(113.10)") == 1


def test_block_and_unblock_a_vds(lab: Lab, runs: Runs) -> None:
    ip = "203.0.113.101"  # VPS1001(113.10) on kvm1
    lines = journal_lines(lab)

    checked = runs("block_server", check=True, block_ip=ip, block_reason="spam", block_complaint_ref="T-42")
    assert changed(checked) == 1
    vds = lab.driver("kvm1").get_vds("VPS1001(113.10)")
    assert vds.state is VdsState.RUNNING and vds.autostart
    assert "blocked" not in metadata.parse(vds.description)
    assert journal_lines(lab) == lines

    # The lab's diskless guests ignore ACPI shutdown: power them off after 2 s.
    first = runs(
        "block_server", block_ip=ip, block_reason="spam", block_complaint_ref="T-42", block_stop_timeout=2
    )
    assert changed(first) == 1
    vds = lab.driver("kvm1").get_vds("VPS1001(113.10)")
    assert vds.state is VdsState.STOPPED and not vds.autostart
    assert metadata.parse(vds.description)["blocked"] == "spam"
    assert "-state: running" in runs.last_stdout() and "+state: stopped" in runs.last_stdout()

    again = runs("block_server", block_ip=ip, block_reason="spam", block_complaint_ref="T-42")
    assert changed(again) == 0

    lifted = runs("block_server", block_ip=ip, block_state="unblocked")
    assert changed(lifted) == 1
    vds = lab.driver("kvm1").get_vds("VPS1001(113.10)")
    assert vds.state is VdsState.RUNNING and vds.autostart
    assert changed(runs("block_server", block_ip=ip, block_state="unblocked")) == 0


def test_node_audit_finds_fixes_and_reports(lab: Lab, runs: Runs, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    common = {"audit_today": DURING_TRIAL, "audit_recheck_delay": 0.2, "audit_report_dir": str(reports)}
    lab.driver("kvm1").stop("VPS1001(113.10)", timeout=1)
    lines = journal_lines(lab)

    checked = runs("node_audit", check=True, audit_fix=True, audit_fail_on_findings=False, **common)
    assert changed(checked) == 1  # the fix it would make
    assert lab.driver("kvm1").get_vds("VPS1001(113.10)").state is VdsState.STOPPED
    assert journal_lines(lab) == lines  # no audit line, no boot identity stored
    assert not reports.exists()  # check mode leaves nothing behind, reports included
    assert "VPS1001(113.10)" in runs.last_stdout()  # the hand-over is printed
    assert checked.data["node_audit"]["reports"] == []

    first = runs("node_audit", audit_fix=True, **common)
    assert changed(first) == 1
    assert "VPS1001(113.10)" in (reports / "audit.md").read_text()
    assert lab.driver("kvm1").get_vds("VPS1001(113.10)").state is VdsState.RUNNING
    assert lab.driver("kvm2").get_vds("VPS1004(113.20)").state is VdsState.STOPPED  # blocked: stays down
    with lab.journal() as journal:
        assert [e.target for e in journal.entries(action="vds.start")] == ["kvm1/VPS1001(113.10)"]

    again = runs("node_audit", audit_fix=True, **common)
    assert changed(again) == 0
    data = json.loads((reports / "audit.json").read_text())
    assert data["exit_code"] == 0
    assert ET.parse(reports / "audit.xml").getroot().get("failures") == "0"
    assert "Nothing to hand over" in (reports / "audit.md").read_text()


def test_node_audit_fails_the_play_on_findings_after_writing_the_report(lab: Lab, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    lab.driver("kvm1").stop("VPS1001(113.10)", timeout=1)
    result = playbooks.run(
        "node_audit",
        lab.inventory_dir,
        extravars={
            "ipsinfra_journal": str(lab.journal_path),
            "audit_today": DURING_TRIAL,
            "audit_recheck_delay": 0.2,
            "audit_report_dir": str(reports),
        },
    )
    assert not result.ok
    assert result.hosts["localhost"].failed == 1
    assert "VPS1001(113.10)" in (reports / "audit.md").read_text()
    assert dt.date.today().isoformat()[:4] in (reports / "audit.md").read_text()  # dated hand-over
