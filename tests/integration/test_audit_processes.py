"""The audit split over forked worker processes gives what the threads alone give.

Every node is a REAL libvirt test-driver connection (``test:///``, in this
process's memory: the one kind of driver a forked child may keep using). The
checks, the journal state, the progress callback and a worker's death are
seen from the parent, as the CLI sees them.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra.audit.checks import BootIdentity
from ipsinfra.audit.findings import AuditReport, NodeAudit
from ipsinfra.audit.run import run as audit_run
from ipsinfra.errors import InvalidInput, IpsinfraError
from ipsinfra.hypervisors import DriverPool, HypervisorDriver
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.inventory import Fleet
from ipsinfra.journal import Journal
from ipsinfra.models import Node, Site, Vds
from tests.contract.base import spec_for
from tests.contract.test_libvirt_testdriver import test_node

TODAY = dt.date(2026, 11, 26)
NODES = 7


class TestFleet:
    __test__ = False

    def __init__(self, tmp_path: Path) -> None:
        self.nodes: dict[str, Node] = {}
        self.drivers: dict[str, HypervisorDriver] = {}
        records: dict[str, Vds] = {}
        for i in range(NODES):
            node = test_node(tmp_path, name=f"kvm{i + 1}", ip=f"10.0.{i + 1}.{i + 10}")
            driver = LibvirtDriver(node)
            for k in range(3):
                spec = spec_for(driver, 3000 + 10 * i + k, autostart=True)
                driver.define(spec, start=k != 2)  # one autostart VDS per node is down: a finding
                records[spec.name] = driver.get_vds(spec.name)
            self.nodes[node.name] = node
            self.drivers[node.name] = driver
        self.fleet = Fleet(sites={"lab": Site(name="lab", dc="Lab DC")}, nodes=self.nodes, vds=records)
        self.boot_ids = {name: f"boot-{name}-1" for name in self.nodes}

    def pool(self) -> DriverPool:
        return DriverPool(self.nodes, drivers=self.drivers)

    def boot_reader(self, node: Node, driver: HypervisorDriver) -> BootIdentity:
        return BootIdentity(boot_id=self.boot_ids[node.name])

    def audit(self, **kw: object) -> AuditReport:
        kw.setdefault("today", TODAY)
        kw.setdefault("reach", False)
        kw.setdefault("recheck_delay", 0.0)
        kw.setdefault("boot_reader", self.boot_reader)
        return audit_run(self.fleet, self.pool(), **kw)  # type: ignore[arg-type]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[TestFleet]:
    fleet = TestFleet(tmp_path)
    yield fleet
    for driver in fleet.drivers.values():
        driver.close()


def summary(report: AuditReport) -> list[tuple[object, ...]]:
    return [
        (
            n.node,
            n.reachable,
            n.rebooted,
            n.boot_id,
            n.vds_total,
            n.vds_running,
            sorted((f.check, f.target, f.message) for f in n.findings),
        )
        for n in report.nodes
    ]


def test_processes_give_what_threads_give(lab: TestFleet) -> None:
    seen: list[tuple[str, int]] = []

    def progress(result: NodeAudit) -> None:
        seen.append((result.node, os.getpid()))

    threads = lab.audit(processes=1)
    split = lab.audit(processes=3, progress=progress)
    assert summary(split) == summary(threads)
    assert [n.node for n in split.nodes] == list(lab.nodes)  # the order asked for, not completion order
    assert sorted(node for node, _ in seen) == sorted(lab.nodes)  # once each...
    assert {pid for _, pid in seen} == {os.getpid()}  # ...and in this process
    down = sorted(f.target for f in split.open_findings if f.check == "vds_not_running")
    assert len(down) == NODES


def test_the_nodes_are_audited_in_that_many_workers(lab: TestFleet) -> None:
    def where(node: Node, driver: HypervisorDriver) -> BootIdentity:
        return BootIdentity(boot_id=str(os.getpid()))  # the reader runs where the node is audited

    pids = {n.boot_id for n in lab.audit(processes=3, boot_reader=where).nodes}
    assert len(pids) == 3 and str(os.getpid()) not in pids
    assert {n.boot_id for n in lab.audit(processes=1, boot_reader=where).nodes} == {str(os.getpid())}


def test_boots_found_by_workers_are_stored_and_compared_next_time(lab: TestFleet, tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        first = lab.audit(processes=2, journal=journal)
        assert not any(n.rebooted for n in first.nodes)
        assert journal.latest_states("boot:") == {
            f"boot:{name}": {"boot_id": f"boot-{name}-1", "boot_time": None} for name in lab.nodes
        }
        lab.boot_ids["kvm3"] = "boot-kvm3-2"
        second = lab.audit(processes=2, journal=journal)
    assert [n.node for n in second.nodes if n.rebooted] == ["kvm3"]


def test_a_dead_worker_leaves_findings_not_holes(lab: TestFleet) -> None:
    def dies_on_kvm2(node: Node, driver: HypervisorDriver) -> BootIdentity:
        if node.name == "kvm2":
            os._exit(3)  # as a crash in a C library would
        return lab.boot_reader(node, driver)

    report = lab.audit(processes=2, boot_reader=dies_on_kvm2)
    assert [n.node for n in report.nodes] == list(lab.nodes)
    by_node = {n.node: n for n in report.nodes}
    assert not by_node["kvm2"].reachable
    [finding] = by_node["kvm2"].findings
    assert finding.check == "node_reachable" and "exited with code 3" in finding.message
    # kvm2's worker had kvm2, kvm4, kvm6; the other worker's nodes are all audited.
    for name in ("kvm1", "kvm3", "kvm5", "kvm7"):
        assert by_node[name].reachable and by_node[name].vds_total == 3
    for n in report.nodes:
        assert n.reachable or "exited with code 3" in n.findings[0].message


def test_a_bug_in_a_worker_is_raised_here(lab: TestFleet) -> None:
    def probe_for(observed: Vds, record: Vds | None) -> str | None:
        raise RuntimeError("probe_for is broken")

    with pytest.raises(IpsinfraError, match="audit worker process failed: RuntimeError: probe_for is broken"):
        lab.audit(processes=2, reach=True, probe_for=probe_for)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"processes": 0}, "processes: value 0: must be at least 1"),
        ({"processes": -2}, "processes: value -2: must be at least 1"),
        ({"processes": 2, "fix": True}, "processes: value 2: an audit with fix runs in one process"),
    ],
)
def test_bad_process_count_refused_before_anything_runs(
    lab: TestFleet, kw: dict[str, object], message: str
) -> None:
    read: list[str] = []

    def boot_reader(node: Node, driver: HypervisorDriver) -> BootIdentity:
        read.append(node.name)
        return lab.boot_reader(node, driver)

    before = {name: [v.state for v in d.list_vds()] for name, d in lab.drivers.items()}
    with pytest.raises(InvalidInput, match=message):
        lab.audit(boot_reader=boot_reader, **kw)
    assert read == []
    assert {name: [v.state for v in d.list_vds()] for name, d in lab.drivers.items()} == before


def test_fix_runs_in_one_process_by_default(lab: TestFleet) -> None:
    pids: set[int] = set()

    def boot_reader(node: Node, driver: HypervisorDriver) -> BootIdentity:
        pids.add(os.getpid())  # visible here only if it ran here
        return lab.boot_reader(node, driver)

    report = lab.audit(fix=True, boot_reader=boot_reader)
    assert pids == {os.getpid()}
    assert sorted(f.target for f in report.findings if f.fixed) == sorted(
        v.name for v in lab.fleet.vds.values() if v.state.value != "running"
    )


def test_child_pool_keeps_only_drivers_that_share_no_connection(lab: TestFleet, tmp_path: Path) -> None:
    local = lab.drivers["kvm1"]
    # A real connection object behind a node whose URI says it is remote: a
    # child must open its own, never write to the parent's socket.
    remote_node = lab.nodes["kvm2"].model_copy(update={"uri": "qemu+ssh://kvm2.example/system"})
    remote = LibvirtDriver(remote_node, conn=lab.drivers["kvm2"].ex_conn)  # type: ignore[attr-defined]
    opened: list[str] = []

    def factory(node: Node) -> HypervisorDriver:
        opened.append(node.name)
        return local

    pool = DriverPool(
        {"kvm1": lab.nodes["kvm1"], "kvm2": remote_node}, factory, {"kvm1": local, "kvm2": remote}
    )
    assert local.process_local and not remote.process_local
    child = pool.for_child_process()
    assert child.get("kvm1") is local and opened == []
    assert child.get("kvm2") is local and opened == ["kvm2"]  # opened anew through the factory
    assert pool.get("kvm2") is remote  # the parent's pool is untouched


def test_default_process_count_follows_the_fleet_size() -> None:
    module = importlib.import_module("ipsinfra.audit.run")  # ipsinfra.audit.run is also the function
    cpus = len(os.sched_getaffinity(0))
    count = module._process_count
    assert count(None, 3, fix=False) == 1
    assert count(None, module.NODES_PER_PROCESS + 1, fix=False) == min(2, 4 * cpus)
    assert count(None, 10_000, fix=False) == min(module.MAX_PROCESSES, module.MAX_PROCESSES_PER_CPU * cpus)
    assert count(None, 10_000, fix=True) == 1
    assert count(5, 3, fix=False) == 3  # never more workers than nodes
