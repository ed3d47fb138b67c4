"""The ipsinfra.infra modules through real ansible-runner runs, without the qemu lab.

The lab here is the light one (``Lab(mode="test", ssh=False)``): pve1/pve2 are
fakepve over HTTPS and sw1-msk1 an in-process SSH switch, both in this test
process, so their state survives from one ``ansible-playbook`` run to the next
(the libvirt nodes are the test driver, empty for another process: unused
here). Every module run twice: the second run is ``changed=0`` and writes no
journal line. What a run did is read back from fakepve, the switch and the
journal, never from the result alone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ipsinfra import naming, playbooks
from ipsinfra.errors import PlaybookError
from ipsinfra.lab.fleet import Lab
from ipsinfra.models import VdsState
from ipsinfra.playbooks import PlaybookResult
from ipsinfra.resize import configured
from tests.conftest import require_module
from tests.integration.test_ansible_collection import ansible_env
from tests.playbookruns import changed, journal_lines

pytestmark = [pytest.mark.slow]

DEDICATED_IP = "203.0.113.200"  # ded1, sw1-msk1 Gi0/5
VDS_IP = "198.51.100.106"  # VPS1006(100.30) on pve1
ORDER = {
    "vds_order": 2001,  # flat, as an AWX survey gives them
    "vds_client": "c1",
    "vds_node": "pve1",
    "vds_vcpus": 2,
    "vds_memory_mib": 256,
    "vds_disk_gib": 10,
    "vds_os": "debian-12",
    "vds_activation_date": "2024-05-01",
}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_module("fakepve")
    with Lab(mode="test", ssh=False) as running:
        yield running


class Runs:
    def __init__(self, lab: Lab, tmp_path: Path) -> None:
        self.lab = lab
        self.tmp_path = tmp_path
        self.count = 0
        self.last: Path = tmp_path

    def __call__(
        self, name: str, *, check: bool = False, expect_ok: bool = True, **extravars: Any
    ) -> PlaybookResult:
        self.count += 1
        self.last = self.tmp_path / f"artifacts-{self.count}-{name}{'-check' if check else ''}"
        result = playbooks.run(
            name,
            self.lab.inventory_dir,
            extravars={"ipsinfra_journal": str(self.lab.journal_path), **extravars},
            check=check,
            diff=True,
            keep_artifacts=self.last,
            envvars={"IPSINFRA_LOCK_DIR": str(self.tmp_path / "locks")},
            timeout=300,
        )
        if expect_ok:
            assert result.ok, f"{name} failed:\n{self.stdout()}"
        return result

    def stdout(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.last.rglob("stdout")))

    def stderr(self) -> str:
        """ansible-playbook's warnings ([WARNING]: ...) go there."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.last.rglob("stderr")))


@pytest.fixture
def runs(lab: Lab, tmp_path: Path) -> Runs:
    return Runs(lab, tmp_path)


def test_provision_from_flat_order_twice_and_check_mode_predicts_a_size_mismatch(
    lab: Lab, runs: Runs, tmp_path: Path
) -> None:
    assert lab.fleet is not None
    name = naming.vps_name(2001, lab.fleet.nodes["pve1"].main_ip)
    password_file = tmp_path / "vds.pw"
    order = {**ORDER, "vds_password_file": str(password_file)}

    first = runs("provision_vds", **order)
    assert changed(first) == 1
    got = lab.driver("pve1").get_vds(name)
    assert (got.vcpus, got.memory_mib, got.state) == (2, 256, VdsState.RUNNING)
    assert "did not set no_log" not in runs.stdout() + runs.stderr()  # password_file: a path, not a secret

    lines = journal_lines(lab)
    again = runs("provision_vds", **order)
    assert changed(again) == 0
    assert lab.driver("pve1").get_vds(name).vcpus == 2
    assert journal_lines(lab) == lines  # verified, unchanged: no journal line

    # The same order with another size: the real run fails on the mismatch, and so does --check.
    bigger = {**order, "vds_vcpus": 4}
    checked = runs("provision_vds", check=True, expect_ok=False, **bigger)
    assert checked.hosts["localhost"].failed == 1
    with pytest.raises(PlaybookError) as excinfo:
        checked.raise_on_error()
    assert "does not match the order: vcpus: ordered 4, hypervisor has 2" in str(excinfo.value)
    real = runs("provision_vds", expect_ok=False, **bigger)
    assert real.hosts["localhost"].failed == 1
    assert "vcpus: ordered 4, hypervisor has 2" in real.failures["localhost"]
    assert lab.driver("pve1").get_vds(name).vcpus == 2
    with lab.journal() as journal:  # a VDS that does not match its order is journalled, failed
        assert journal.entries(action="vds.provision")[-1].result == "failed"


def test_a_dict_order_still_works_in_check_mode(lab: Lab, runs: Runs) -> None:
    order = {
        "number": 2002,
        "client": "c1",
        "node": "pve1",
        "vcpus": 1,
        "memory_mib": 128,
        "disk_gib": 5,
        "os": "debian-12",
    }
    checked = runs("provision_vds", check=True, vds_order=order)
    assert changed(checked) == 1
    plan = "\n".join(checked.data["vds_provisioned"]["plan"])  # (extravar values come back masked)
    assert plan.startswith("create VPS") and "vCPUs 1 cpuset" in plan and "memory 128 MiB" in plan
    assert all(not v.name.startswith("VPS2002") for v in lab.driver("pve1").list_vds())


def test_resize_twice_diff_lines_up(lab: Lab, runs: Runs) -> None:
    name = "VPS1005(100.30)"
    extravars = {"vds_name": name, "vds_ticket": 4711, "vds_cores": 3, "vds_prices": {"cores": 300}}
    lines = journal_lines(lab)

    checked = runs("resize_vds", check=True, **extravars)
    assert changed(checked) == 1
    assert configured(lab.driver("pve1"), name).vcpus == 2
    assert journal_lines(lab) == lines
    assert "-vcpus: 2" in runs.stdout() and "+vcpus: 3" in runs.stdout()

    first = runs("resize_vds", **extravars)
    assert changed(first) == 1
    assert configured(lab.driver("pve1"), name).vcpus == 3  # running: in force at its next start
    out = runs.stdout()
    # before and after carry the same keys: only the changed setting differs
    assert "-vcpus: 2" in out and "+vcpus: 3" in out
    assert "-memory_mib" not in out and "+memory_mib" not in out

    lines = journal_lines(lab)
    again = runs("resize_vds", **extravars)
    assert changed(again) == 0
    assert journal_lines(lab) == lines


def test_block_and_unblock_a_proxmox_vds_twice(lab: Lab, runs: Runs) -> None:
    name = "VPS1006(100.30)"
    first = runs("block_server", block_ip=VDS_IP, block_reason="spam", block_stop_timeout=2)
    assert changed(first) == 1
    vds = lab.driver("pve1").get_vds(name)
    assert vds.state is VdsState.STOPPED and not vds.autostart
    assert "-state: running" in runs.stdout() and "+state: stopped" in runs.stdout()

    lines = journal_lines(lab)
    again = runs("block_server", block_ip=VDS_IP, block_reason="spam")
    assert changed(again) == 0
    assert journal_lines(lab) == lines

    assert changed(runs("block_server", block_ip=VDS_IP, block_state="unblocked")) == 1
    assert lab.driver("pve1").get_vds(name).state is VdsState.RUNNING
    lines = journal_lines(lab)
    assert changed(runs("block_server", block_ip=VDS_IP, block_state="unblocked")) == 0
    assert journal_lines(lab) == lines


def test_block_a_dedicated_server_twice_then_unblock_twice(lab: Lab, runs: Runs) -> None:
    port = lab.switch_servers["sw1-msk1"].state.port_states["Gi0/5"]
    lines = journal_lines(lab)

    checked = runs("block_server", check=True, block_ip=DEDICATED_IP, block_reason="botnet")
    assert changed(checked) == 1
    assert port.admin_up is True
    assert "-admin_up: true" in runs.stdout() and "+admin_up: false" in runs.stdout()
    assert journal_lines(lab) == lines

    first = runs("block_server", block_ip=DEDICATED_IP, block_reason="botnet")
    assert changed(first) == 1
    assert lab.switch_servers["sw1-msk1"].state.port_states["Gi0/5"].admin_up is False

    # Shut, the port learns no MAC: the proof is the inventory's port read back as down.
    lines = journal_lines(lab)
    checked_again = runs("block_server", check=True, block_ip=DEDICATED_IP, block_reason="botnet")
    assert changed(checked_again) == 0
    again = runs("block_server", block_ip=DEDICATED_IP, block_reason="botnet")
    assert changed(again) == 0
    assert "shut down already" in runs.stdout()
    assert journal_lines(lab) == lines

    lifted = runs("block_server", block_ip=DEDICATED_IP, block_state="unblocked")
    assert changed(lifted) == 1
    assert lab.switch_servers["sw1-msk1"].state.port_states["Gi0/5"].admin_up is True
    lines = journal_lines(lab)
    assert changed(runs("block_server", block_ip=DEDICATED_IP, block_state="unblocked")) == 0
    assert journal_lines(lab) == lines


def test_migrate_twice_and_a_failure_carries_the_modules_reason(lab: Lab, runs: Runs) -> None:
    assert lab.fleet is not None
    old = "VPS1005(100.30)"
    new = naming.vps_name(1005, lab.fleet.nodes["pve2"].main_ip)

    failed = runs("migrate_vds", expect_ok=False, vds_name=old, target_node="nope")
    with pytest.raises(PlaybookError) as excinfo:
        failed.raise_on_error()
    message = str(excinfo.value)
    assert "failed on localhost (failed=1): Migrate the VDS and verify it on the target: " in message
    assert "'nope'" in message

    first = runs("migrate_vds", vds_name=old, target_node="pve2")
    assert changed(first) == 1
    assert lab.driver("pve2").get_vds(new).node == "pve2"
    out = runs.stdout()
    assert f"-name: {old}" in out and f"+name: {new}" in out
    assert "-node: pve1" in out and "+node: pve2" in out

    lines = journal_lines(lab)
    again = runs("migrate_vds", vds_name=old, target_node="pve2")
    assert changed(again) == 0
    assert journal_lines(lab) == lines


def test_node_audit_writes_its_reports_where_asked_and_none_in_check_mode(
    lab: Lab, runs: Runs, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    common = {
        "audit_report_dir": str(reports),
        "audit_fail_on_findings": False,
        "audit_reach": False,
        "audit_nodes": ["pve1", "pve2"],
        "audit_recheck_delay": 0.1,
    }
    checked = runs("node_audit", check=True, **common)
    assert checked.data["node_audit"]["reports"] == []
    assert not reports.exists()

    runs("node_audit", **common)
    assert sorted(p.name for p in reports.iterdir()) == ["audit.json", "audit.md", "audit.xml"]
    again = runs("node_audit", **common)
    assert changed(again) == 0


def test_the_fleet_plugin_resolves_a_relative_inventory_against_its_config(lab: Lab, tmp_path: Path) -> None:
    config_dir = tmp_path / "project"
    config_dir.mkdir()
    shutil.copytree(lab.inventory_dir, config_dir / "static")
    config = config_dir / "fleet.yml"
    config.write_text(yaml.safe_dump({"plugin": "ipsinfra.infra.fleet", "inventory": "static"}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(config), "--graph", "node_pve1"],
        capture_output=True,
        text=True,
        env=ansible_env(),
        cwd=elsewhere,  # not the config's folder: the path must not depend on it
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "VPS1006-100-30" in done.stdout
    assert "[WARNING]" not in done.stderr, done.stderr
