"""§5.2 "ran before the reboot": the audit's memory of what ran, and ``--fix``.

Real libvirt test-driver nodes (``test:///``); the boot identity is the one
the test hands the audit. The test driver cannot reboot, so the "power-off" of
the reboot is the guests being stopped and the boot id changing; the real
reboot is on the lab (tests/e2e/test_audit_lab.py, tests/e2e/test_demo_lab.py).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from ipsinfra import metadata
from ipsinfra.audit.checks import BootIdentity
from ipsinfra.audit.findings import AuditReport
from ipsinfra.audit.run import run as audit_run
from ipsinfra.hypervisors import DriverPool, HypervisorDriver
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.inventory import Fleet
from ipsinfra.journal import Journal
from ipsinfra.models import Node, Site, VdsState
from tests.contract.base import spec_for
from tests.contract.test_libvirt_testdriver import test_node

TODAY = dt.date(2026, 11, 26)
MODULE_UTILS = (
    Path(__file__).resolve().parents[2]
    / "src/ipsinfra/ansible_collections/ipsinfra/infra/plugins/module_utils/common.py"
)


class TwoNodes:
    """kvm1: one VDS started by hand (autostart off), one with autostart, one to be blocked; kvm2: one VDS."""

    def __init__(self, tmp_path: Path) -> None:
        self.nodes = {
            "kvm1": test_node(tmp_path, name="kvm1", ip="10.0.1.10"),
            "kvm2": test_node(tmp_path, name="kvm2", ip="10.0.2.20"),
        }
        self.drivers: dict[str, LibvirtDriver] = {n: LibvirtDriver(node) for n, node in self.nodes.items()}
        kvm1, kvm2 = self.drivers["kvm1"], self.drivers["kvm2"]
        self.hand = spec_for(kvm1, 4001, autostart=False).name
        self.auto = spec_for(kvm1, 4002, autostart=True).name
        self.blocked = spec_for(kvm1, 4003, autostart=False).name
        for order, autostart in ((4001, False), (4002, True), (4003, False)):
            kvm1.define(spec_for(kvm1, order, autostart=autostart), start=True)
        kvm2.define(spec_for(kvm2, 4004, autostart=False), start=True)
        self.fleet = Fleet(sites={"lab": Site(name="lab", dc="Lab DC")}, nodes=self.nodes)
        self.boot_ids = {name: f"boot-{name}-1" for name in self.nodes}

    def boot_reader(self, node: Node, driver: HypervisorDriver) -> BootIdentity:
        return BootIdentity(boot_id=self.boot_ids[node.name])

    def audit(self, journal: Journal, **kw: object) -> AuditReport:
        kw.setdefault("today", TODAY)
        kw.setdefault("reach", False)
        kw.setdefault("recheck_delay", 0.0)
        pool = DriverPool(self.nodes, drivers=dict(self.drivers))
        return audit_run(self.fleet, pool, journal=journal, boot_reader=self.boot_reader, **kw)  # type: ignore[arg-type]

    def power_cycle(self, node: str) -> None:
        """What a reboot leaves: every guest off, a new boot id (nothing autostarted here)."""
        driver = self.drivers[node]
        for v in driver.list_vds():
            if v.state is VdsState.RUNNING:
                driver.stop(v.name, timeout=1)
        self.boot_ids[node] = self.boot_ids[node][:-1] + str(int(self.boot_ids[node][-1]) + 1)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[TwoNodes]:
    made = TwoNodes(tmp_path)
    yield made
    for driver in made.drivers.values():
        driver.close()


def by_check(report: AuditReport) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in report.open_findings:
        if f.check in {"vds_down_after_reboot", "vds_not_running"}:
            found.setdefault(f.check, []).append(f.target)
    return found


def test_ran_before_the_reboot_found_carried_and_fixed_never_the_blocked(
    nodes: TwoNodes, tmp_path: Path
) -> None:
    kvm1 = nodes.drivers["kvm1"]
    with Journal(tmp_path / "j.sqlite3") as journal:
        first = nodes.audit(journal, processes=2)
        assert by_check(first) == {}
        assert sorted(journal.get_state("ran:kvm1")["running"]) == sorted(  # type: ignore[index]
            [nodes.hand, nodes.auto, nodes.blocked]
        )
        # §7.2 between the audits: the block stops it and marks it on the hypervisor.
        kvm1.stop(nodes.blocked, timeout=1)
        kvm1.set_description(
            nodes.blocked, metadata.update(kvm1.get_vds(nodes.blocked).description, {"blocked": "SBL654321"})
        )
        nodes.power_cycle("kvm1")

        # Split over worker processes: their records reach the parent and the store.
        after = nodes.audit(journal, processes=2)
        assert [n.node for n in after.nodes if n.rebooted] == ["kvm1"]
        assert by_check(after) == {"vds_down_after_reboot": [nodes.hand], "vds_not_running": [nodes.auto]}
        assert journal.get_state("ran:kvm1") == {"running": [], "down_since_reboot": [nodes.hand, nodes.auto]}

        # The next audit is on the same boot, and still knows what ran before the reboot.
        fixed = nodes.audit(journal, fix=True)
        assert not any(n.rebooted for n in fixed.nodes)
        assert sorted(f.target for f in fixed.findings if f.fixed) == sorted([nodes.hand, nodes.auto])
        assert kvm1.get_vds(nodes.hand).state is VdsState.RUNNING
        assert kvm1.get_vds(nodes.blocked).state is VdsState.STOPPED
        starts = [e.target for e in journal.entries(action="vds.start")]
        assert sorted(starts) == sorted([f"kvm1/{nodes.hand}", f"kvm1/{nodes.auto}"])

        clean = nodes.audit(journal)
        assert by_check(clean) == {}
        assert journal.get_state("ran:kvm1")["down_since_reboot"] == []  # type: ignore[index]
        assert journal.verify().ok


def test_without_a_reboot_a_vds_shut_down_is_no_finding(nodes: TwoNodes, tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        nodes.audit(journal)
        nodes.drivers["kvm1"].stop(nodes.hand, timeout=1)  # the client shut it down; same boot
        report = nodes.audit(journal, fix=True)
    assert by_check(report) == {}
    assert nodes.drivers["kvm1"].get_vds(nodes.hand).state is VdsState.STOPPED


def module_utils() -> ModuleType:
    """The collection's module_utils, loaded from its file (no Ansible collection loader needed)."""
    spec = importlib.util.spec_from_file_location("ipsinfra_module_utils_common", MODULE_UTILS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_check_mode_audit_stores_no_boot_and_nothing_of_what_ran(nodes: TwoNodes, tmp_path: Path) -> None:
    """node_audit in check mode reads through ReadOnlyJournal: a check run after
    the reboot must not swallow the next real run's "ran before the reboot"."""
    read_only = module_utils().ReadOnlyJournal
    with Journal(tmp_path / "j.sqlite3") as journal:
        nodes.audit(journal)
        stored = {key: journal.state_history(key) for key in ("boot:kvm1", "ran:kvm1")}
        lines = journal.entries()
        nodes.power_cycle("kvm1")
        checked = nodes.audit(read_only(journal))
        down = sorted([nodes.hand, nodes.blocked])  # not blocked in this test: both started by hand
        assert by_check(checked)["vds_down_after_reboot"] == down
        assert {key: journal.state_history(key) for key in stored} == stored
        assert journal.entries() == lines
        real = nodes.audit(journal)
    assert by_check(real)["vds_down_after_reboot"] == down
