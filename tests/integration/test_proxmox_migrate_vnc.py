"""§9.10 on Proxmox, as PVE really behaves: the VNC address of a live-migrated VM.

``args`` (our ``-vnc <addr>:<display>``) is not hot-pluggable: written to a
running VM it stays pending, and the QEMU a live migration starts on the
target does not apply pending changes (qemu-server ``vm_start_nolock`` with a
state URI). The lab's fakepve models that (pending values on GET .../config
unless current=1; migrate keeps them pending). A migration must write the
target's address, verify it in the configuration, and say truthfully that it
takes effect at the next cold start: a warning, exit 0, and idempotent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipsinfra import cli, inventory
from ipsinfra.errors import HypervisorApiError
from ipsinfra.hypervisors import DriverPool
from ipsinfra.hypervisors.proxmox import ProxmoxDriver
from ipsinfra.lab.pve import FakePveHandle, start_fake_pve
from ipsinfra.migrate import migrate
from ipsinfra.models import Disk, Nic, Vds, VdsSpec, VdsState
from tests.conftest import require_module
from tests.unit.fleetkit import fleet

OLD, NEW = "VPS4001(34.56)", "VPS4001(77.88)"
SRC_VNC, DST_VNC = "127.0.0.21", "127.0.0.22"


@pytest.fixture(scope="module", autouse=True)
def _fakepve() -> None:
    require_module("fakepve", "the Proxmox tier runs on fakepve (pip install fakepve)")


@pytest.fixture(scope="module")
def lab() -> Iterator[FakePveHandle]:
    with start_fake_pve({"pve1": 8, "pve2": 8}) as handle:
        yield handle


@pytest.fixture
def setup(lab: FakePveHandle) -> Iterator[tuple[Any, DriverPool]]:
    lab.clear_vms()
    pve1 = lab.node_model(
        "pve1", "10.0.34.56", site="msk1", vnc_listen=SRC_VNC, bridge="vmbr0", ip_pool=["10.0.34.100"]
    )
    pve2 = lab.node_model(
        "pve2", "10.0.77.88", site="msk1", vnc_listen=DST_VNC, bridge="vmbr0", ip_pool=["10.0.77.100"]
    )
    record = Vds(name=OLD, node="pve1", vcpus=2, memory_mib=256, autostart=True)
    the_fleet = fleet(pve1, pve2, vds=(record,))
    with DriverPool(the_fleet.nodes) as pool:
        spec = VdsSpec(
            name=OLD,
            vcpus=2,
            memory_mib=256,
            disks=[Disk(size_gib=1)],
            nics=[Nic(mac="52:54:00:00:0f:a1", bridge="vmbr0")],
            vnc_listen=ipaddress.ip_address(SRC_VNC),
            autostart=True,
            os="debian12",
        )
        pool.get("pve1").define(spec, start=True)
        yield the_fleet, pool


def test_live_migration_states_the_vnc_outcome(setup: tuple[Any, DriverPool]) -> None:
    the_fleet, pool = setup
    result = migrate(OLD, "pve2", the_fleet, pool)
    assert result.ok and result.changed, result.mismatches
    [warning] = result.warnings
    assert warning.startswith(f"VNC address {DST_VNC} takes effect at the next cold start of {NEW}")
    dst = pool.get("pve2")
    assert isinstance(dst, ProxmoxDriver)
    running = dst.get_vds(NEW)
    assert running.state is VdsState.RUNNING and str(running.vnc_listen) == SRC_VNC  # what QEMU has now
    assert str(dst.ex_configured(NEW).vnc_listen) == DST_VNC  # what is written
    # A re-run writes nothing and says the same.
    again = migrate(OLD, "pve2", the_fleet, pool)
    assert again.ok and not again.changed and again.warnings == result.warnings
    # A cold start (stop, start) applies it: then nothing is left to warn about.
    dst.stop(NEW)
    dst.start(NEW)
    assert str(dst.get_vds(NEW).vnc_listen) == DST_VNC
    settled = migrate(OLD, "pve2", the_fleet, pool)
    assert settled.ok and not settled.changed and settled.warnings == []


def test_offline_migration_has_nothing_pending(setup: tuple[Any, DriverPool]) -> None:
    the_fleet, pool = setup
    pool.get("pve1").stop(OLD)
    result = migrate(OLD, "pve2", the_fleet, pool, live=False)
    assert result.ok and result.warnings == [], result
    assert str(pool.get("pve2").get_vds(NEW).vnc_listen) == DST_VNC


def test_a_wrong_address_in_the_configuration_is_a_mismatch(setup: tuple[Any, DriverPool]) -> None:
    the_fleet, pool = setup
    assert migrate(OLD, "pve2", the_fleet, pool).ok
    pool.get("pve2").set_vnc_listen(NEW, ipaddress.ip_address("127.0.0.99"))  # someone rewrote it
    again = migrate(OLD, "pve2", the_fleet, pool)
    assert not again.ok
    assert again.mismatches == [
        f"vnc_listen: planned '{DST_VNC}', target has '{SRC_VNC}' "
        "(and its configuration for the next start has '127.0.0.99')"
    ]


def test_cli_exits_0_and_prints_the_warning(
    setup: tuple[Any, DriverPool], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    the_fleet, _pool = setup
    inv = inventory.dump(the_fleet, tmp_path / "inventory")
    argv = ["migrate", OLD, "--to", "pve2", "-i", str(inv), "--journal", str(tmp_path / "journal.db")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"migrated and verified: {NEW} on pve2" in out
    assert f"WARNING: VNC address {DST_VNC} takes effect at the next cold start of {NEW}" in out
    assert "MISMATCH" not in out
    assert cli.main(argv) == 0  # the re-run: unchanged, the same warning, still exit 0
    out = capsys.readouterr().out
    assert f"unchanged: {NEW} is on pve2 already" in out and "WARNING: VNC address" in out


def test_unreachable_target_aborts_inside_the_task(setup: tuple[Any, DriverPool], lab: FakePveHandle) -> None:
    """PVE's migrate_vm accepts the request; the task's ssh to the target fails: "migration aborted"."""
    the_fleet, pool = setup
    lab.call(lambda: lab.pve.set_node_offline("pve2"))
    try:
        with pytest.raises(HypervisorApiError, match="migration aborted"):
            migrate(OLD, "pve2", the_fleet, pool)
    finally:
        lab.call(lambda: lab.pve.set_node_offline("pve2", False))
    assert pool.get("pve1").get_vds(OLD).state is VdsState.RUNNING
    assert migrate(OLD, "pve2", the_fleet, pool).ok
