"""A copy an interrupted migration left on the target (libvirt's PERSIST_DEST on a daemon
that died mid-way, then came back): removed only when it is provably the same machine.

Real libvirt test-driver nodes; the lab's fault test (tests/e2e/test_migrate_lab.py,
``test_daemon_killed_mid_migration``) is where the leftover arises for real, when the
kill lands after the target persisted the definition.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ipsinfra import naming
from ipsinfra.errors import AlreadyExists, UnsupportedOperation
from ipsinfra.hypervisors import DriverPool
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.inventory import Fleet
from ipsinfra.journal import Journal
from ipsinfra.migrate import migrate
from ipsinfra.models import Site, VdsState
from tests.contract.base import spec_for
from tests.contract.test_libvirt_testdriver import test_node


def two_nodes(tmp_path: Path) -> tuple[Fleet, DriverPool, LibvirtDriver, LibvirtDriver, str, str]:
    nodes = {
        "kvm1": test_node(tmp_path, name="kvm1", ip="10.0.1.10"),
        "kvm2": test_node(tmp_path, name="kvm2", ip="10.0.2.20"),
    }
    kvm1, kvm2 = LibvirtDriver(nodes["kvm1"]), LibvirtDriver(nodes["kvm2"])
    name = kvm1.define(spec_for(kvm1, 5001), start=True).name
    new_name = naming.vps_name(5001, nodes["kvm2"].main_ip)
    fleet = Fleet(sites={"lab": Site(name="lab", dc="Lab DC")}, nodes=nodes)
    return fleet, DriverPool(nodes, drivers={"kvm1": kvm1, "kvm2": kvm2}), kvm1, kvm2, name, new_name


def leave_copy(
    kvm1: LibvirtDriver, kvm2: LibvirtDriver, name: str, new_name: str, *, same_uuid: bool
) -> None:
    """What PERSIST_DEST leaves: the source's definition, renamed, defined (shut off) on the target."""
    xml = kvm1.ex_xml(name, inactive=True).replace(f"<name>{name}</name>", f"<name>{new_name}</name>")
    if not same_uuid:
        xml = re.sub(r"<uuid>[^<]+</uuid>", "<uuid>00000000-0000-4000-8000-000000000001</uuid>", xml)
    kvm2.ex_conn.defineXML(xml)
    assert kvm2.get_vds(new_name).state is VdsState.STOPPED


def test_the_same_machine_left_shut_off_is_removed_and_journalled(tmp_path: Path) -> None:
    fleet, pool, kvm1, kvm2, name, new_name = two_nodes(tmp_path)
    leave_copy(kvm1, kvm2, name, new_name, same_uuid=True)
    with Journal(tmp_path / "j.sqlite3") as journal:
        # The test driver cannot migrate (libvirt code 74): the leftover is cleared first, then
        # the migration itself is refused as unsupported; the source copy is untouched.
        with pytest.raises(UnsupportedOperation):
            migrate(name, "kvm2", fleet, pool, journal=journal, lock_dir=tmp_path / "locks")
        [line] = [e for e in journal.entries(action="vds.migrate") if "interrupted migration" in e.detail]
        assert line.target == f"kvm2/{new_name}" and line.result == "ok"
    assert [v.name for v in kvm2.list_vds()] == []
    assert kvm1.get_vds(name).state is VdsState.RUNNING


def test_another_machine_by_that_name_is_never_removed(tmp_path: Path) -> None:
    fleet, pool, kvm1, kvm2, name, new_name = two_nodes(tmp_path)
    leave_copy(kvm1, kvm2, name, new_name, same_uuid=False)
    with pytest.raises(AlreadyExists, match="already exists"):
        migrate(name, "kvm2", fleet, pool, lock_dir=tmp_path / "locks")
    assert kvm2.get_vds(new_name).state is VdsState.STOPPED
    assert kvm1.get_vds(name).state is VdsState.RUNNING


def test_a_running_copy_is_never_removed(tmp_path: Path) -> None:
    fleet, pool, kvm1, kvm2, name, new_name = two_nodes(tmp_path)
    leave_copy(kvm1, kvm2, name, new_name, same_uuid=True)
    kvm2.start(new_name)
    with pytest.raises(AlreadyExists, match="already exists"):
        migrate(name, "kvm2", fleet, pool, lock_dir=tmp_path / "locks")
    assert kvm2.get_vds(new_name).state is VdsState.RUNNING
