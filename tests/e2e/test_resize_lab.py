"""Upgrades and downgrades (§6) on the embedded lab: a running qemu guest on a real
libvirtd daemon, and a running VM on fakepve.

What the lab proves and what it does not:

* libvirt: vCPUs and memory of a RUNNING guest are written to the persistent
  config; the running qemu keeps its vCPUs (read through libvirt's LIVE view)
  until the restart, after which the guest runs with the new count. The
  lab's domains have no spare vCPU slots (``<vcpu current>``), so there is no
  live hot-plug to prove. The disk is the domain's metadata record (the lab's
  guests are diskless); ``blockResize`` of a real volume is not exercised here.
* Proxmox: fakepve keeps a running VM's cores/memory as *pending* (as PVE
  does without cpu/memory hot-plug); ``qm resize`` is not modelled by
  fakepve, so this module closes that gap the way PVE behaves (grow only,
  ``size=`` in the drive string) - see :class:`_ResizeRoute`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest

from ipsinfra import playbooks, resize
from ipsinfra.errors import InvalidInput
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.lab import pve as pve_lab
from ipsinfra.lab.fleet import Lab
from ipsinfra.models import VdsState

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.slow]

KVM_VDS = "VPS1001(113.10)"  # kvm1, running, 2 vCPUs (cpuset 1-40), disk0 40 GiB
PVE_VDS = "VPS1005(100.30)"  # pve1, running, 2 cores, scsi0 50 GiB
_SIZE = re.compile(r"(^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?=,|$)")
_GIB = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0, "": 1 / 1024**3}


def _resize_lab_class() -> type[Any]:
    """The lab's fake PVE with ``PUT /nodes/{node}/qemu/{vmid}/resize`` as PVE answers it.

    (To move into :mod:`ipsinfra.lab.pve` beside the other closed gaps.)
    """
    from fakepve.model import PveError

    base: Any = pve_lab.lab_class()

    class _ResizeRoute(base):  # type: ignore[misc, valid-type]
        def _routes_ipsinfra_resize(self) -> list[tuple[str, str, Any]]:
            return [("PUT", "/nodes/{node}/qemu/{vmid}/resize", self._ips_resize)]

        async def _ips_resize(self, v: dict[str, Any], user: str) -> Any:
            vm = self.find(v["node"], int(v["vmid"]))
            self.need_quorum()
            self._check_lock(vm)
            disk, size = str(v["disk"]), str(v["size"])
            drive = str(vm.config.get(disk) or "")
            found = _SIZE.search(drive)
            if not drive or found is None:
                raise PveError(500, f"disk '{disk}' does not exist or has no size")
            current = float(found[2]) * _GIB[found[3]]
            m = re.fullmatch(r"(\+?)(\d+(?:\.\d+)?)([KMGT]?)", size)
            assert m is not None  # the schema's pattern checked it
            wanted = float(m[2]) * _GIB[m[3] or ""] if m[3] else float(m[2]) / 1024**3
            new = current + wanted if m[1] else wanted
            if new < current:
                raise PveError(500, "shrinking disks is not supported")

            async def body() -> None:
                text = f"{new:g}G"
                vm.config[disk] = _SIZE.sub(lambda x: f"{x[1]}size={text}", drive)

            return await self.task(vm.node, "resize", vm.vmid, user, body, vm=vm)

    return _ResizeRoute


@pytest.fixture
def rlab(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    monkeypatch.setattr(pve_lab, "_LAB_CLASS", _resize_lab_class())
    with Lab(mode="daemon") as running:
        yield running


def _upgrades(lab: Lab) -> list[str]:
    with lab.journal() as journal:
        return [e.detail for e in journal.entries() if e.action == "order.upgrade"]


def _resize(lab: Lab, name: str, **kw: Any) -> resize.ResizeResult:
    assert lab.fleet is not None and lab.pool is not None
    with lab.journal() as journal:
        return resize.resize(name, lab.fleet, lab.pool, journal=journal, lock_dir=lab.base_dir, **kw)


def _live_vcpus(driver: LibvirtDriver, name: str) -> int:
    return int(driver.ex_conn.lookupByName(name).vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE))


def test_libvirt_running_guest(rlab: Lab) -> None:
    drv = rlab.driver("kvm1")
    assert isinstance(drv, LibvirtDriver)
    before = drv.get_vds(KVM_VDS)
    assert before.state is VdsState.RUNNING and (before.vcpus, before.memory_mib) == (2, 64)

    # Refused, with nothing changed: 0 cores, a disk shrink, no room, the cpuset rule.
    node = rlab.fleet.nodes["kvm1"]  # type: ignore[union-attr]
    assert node.memory_mib is not None
    others = sum(v.memory_mib for v in drv.list_vds() if v.name != KVM_VDS)
    for kwargs, match in [
        ({"cores": 0}, r"cores: value 0"),
        ({"disk_gib": 10}, r"disk_gib: value 10: disk disk0 .* 40 GiB; a disk only grows"),
        ({"memory_mib": node.memory_mib - others + 1}, r"memory_mib: value \d+: node kvm1 has no room"),
        ({"cores": 41}, r"cores: value 41: .*CPUs 1-40 .*would no longer fit"),
    ]:
        with pytest.raises(InvalidInput, match=match):
            _resize(rlab, KVM_VDS, ticket=1, prices={"cores": "1", "memory": "1", "disk": "1"}, **kwargs)
    assert drv.ex_configured(KVM_VDS) == drv.ex_configured(KVM_VDS).model_copy(
        update={"vcpus": 2, "memory_mib": 64, "disks": before.disks}
    )
    assert _live_vcpus(drv, KVM_VDS) == 2

    # --check touches nothing.
    checked = _resize(rlab, KVM_VDS, ticket=4711, cores=4, prices={"cores": "300"}, check=True)
    assert checked.checked_only and checked.order_lines == ["Upgrade(Ticket4711): cores=300"]
    assert drv.ex_configured(KVM_VDS).vcpus == 2
    assert _upgrades(rlab) == []

    # The upgrade: config now, the running qemu keeps its vCPUs until the restart.
    prices = {"cores": "300", "memory": "150", "disk": "90"}
    got = _resize(rlab, KVM_VDS, ticket=4711, cores=4, memory_mib=128, disk_gib=60, prices=prices)
    assert got.ok and got.changed and got.restart_needed and not got.restarted
    assert got.order_lines == [
        "Upgrade(Ticket4711): cores=300",
        "Upgrade(Ticket4711): memory=150",
        "Upgrade(Ticket4711): disk=90",
    ]
    assert _upgrades(rlab) == got.order_lines
    config = drv.ex_configured(KVM_VDS)
    assert (config.vcpus, config.cpuset, config.memory_mib, config.disks[0].size_gib) == (4, "1-40", 128, 60)
    live = drv.get_vds(KVM_VDS)
    assert (live.state, live.vcpus, live.memory_mib) == (VdsState.RUNNING, 2, 64)
    assert live.disks[0].size_gib == 60  # the disk record is live as well
    assert _live_vcpus(drv, KVM_VDS) == 2

    # Idempotent: the same target again changes nothing and bills nothing.
    again = _resize(rlab, KVM_VDS, ticket=4711, cores=4, memory_mib=128, disk_gib=60, prices=prices)
    assert not again.changed and again.order_lines == [] and again.ok
    assert len(_upgrades(rlab)) == 3

    # The restart (with the client): the guest now runs with the new vCPUs and memory.
    drv.stop(KVM_VDS, timeout=2)
    drv.start(KVM_VDS)
    live = drv.get_vds(KVM_VDS)
    assert (live.state, live.vcpus, live.memory_mib) == (VdsState.RUNNING, 4, 128)
    assert _live_vcpus(drv, KVM_VDS) == 4

    # A downgrade with restart=True: applied, restarted, verified live, handed to sales.
    down = _resize(rlab, KVM_VDS, ticket=4712, cores=3, restart=True, stop_timeout=2)
    assert down.ok and down.restarted and not down.restart_needed
    assert down.order_lines == []
    assert down.sales_handoff == ["Downgrade(Ticket4712): cores=4->3; applied, hand to sales"]
    assert _live_vcpus(drv, KVM_VDS) == 3 and drv.get_vds(KVM_VDS).state is VdsState.RUNNING


def test_proxmox_running_vm(rlab: Lab) -> None:
    drv = rlab.driver("pve1")
    before = drv.get_vds(PVE_VDS)
    assert before.state is VdsState.RUNNING and before.vcpus == 2
    disk = before.disks[0]
    assert disk.name == "scsi0"
    node = rlab.fleet.nodes["pve1"]  # type: ignore[union-attr]
    assert node.memory_mib is not None
    others = sum(v.memory_mib for v in drv.list_vds() if v.name != PVE_VDS)
    for kwargs, match in [
        ({"cores": 0}, r"cores: value 0"),
        ({"disk_gib": disk.size_gib - 1}, rf"disk_gib: value {disk.size_gib - 1}: disk scsi0 .*only grows"),
        ({"memory_mib": node.memory_mib - others + 1}, r"node pve1 has no room"),
    ]:
        with pytest.raises(InvalidInput, match=match):
            _resize(rlab, PVE_VDS, ticket=2, prices={"cores": "1", "memory": "1", "disk": "1"}, **kwargs)
    assert drv.get_vds(PVE_VDS) == before
    assert _upgrades(rlab) == []

    prices = {"cores": "300", "memory": "500", "disk": "80"}
    target = {"cores": 4, "memory_mib": before.memory_mib * 2, "disk_gib": disk.size_gib + 10}
    got = _resize(rlab, PVE_VDS, ticket=5001, prices=prices, **target)
    assert got.ok and got.restart_needed, got.describe()
    assert got.order_lines == [f"Upgrade(Ticket5001): {p}={prices[p]}" for p in ("cores", "memory", "disk")]
    assert drv.get_vds(PVE_VDS).vcpus == 2  # PVE: pending until the next start
    assert drv.get_vds(PVE_VDS).disks[0].size_gib == disk.size_gib + 10  # disks grow online
    again = _resize(rlab, PVE_VDS, ticket=5001, prices=prices, **target)
    assert not again.changed and again.order_lines == []

    drv.stop(PVE_VDS, timeout=5)
    drv.start(PVE_VDS)
    live = drv.get_vds(PVE_VDS)
    assert (live.state, live.vcpus, live.memory_mib) == (VdsState.RUNNING, 4, before.memory_mib * 2)

    down = _resize(rlab, PVE_VDS, ticket=5002, memory_mib=before.memory_mib, restart=True, stop_timeout=5)
    assert down.ok and down.restarted
    old, new = before.memory_mib * 2, before.memory_mib
    assert down.sales_handoff == [f"Downgrade(Ticket5002): memory={old}->{new} MiB; applied, hand to sales"]
    assert drv.get_vds(PVE_VDS).memory_mib == before.memory_mib
    assert len(_upgrades(rlab)) == 3

    # The playbook (ansible-runner -> ipsinfra.infra.vds_resize): check, apply, re-run.
    other = "VPS1006(100.30)"
    size = drv.get_vds(other).disks[0].size_gib
    extravars = {
        "ipsinfra_journal": str(rlab.journal_path),
        "vds_name": other,
        "vds_ticket": 6001,
        "vds_disk_gib": size + 10,
        "vds_prices": {"disk": 50},
    }
    env = {"IPSINFRA_LOCK_DIR": str(rlab.base_dir / "locks")}

    def book(check: bool) -> playbooks.PlaybookResult:
        done = playbooks.run(
            "resize_vds", rlab.inventory_dir, extravars=extravars, check=check, envvars=env, timeout=300
        )
        assert done.ok, done
        return done

    checked = book(True)
    assert checked.hosts["localhost"].changed == 1
    assert drv.get_vds(other).disks[0].size_gib == size
    # (the run's data has the order line, with the ticket masked: playbooks.run masks every extra var)
    assert len(checked.data["vds_resized"]["order_lines"]) == 1
    assert len(_upgrades(rlab)) == 3
    applied = book(False)
    assert applied.hosts["localhost"].changed == 1
    assert drv.get_vds(other).disks[0].size_gib == size + 10
    assert _upgrades(rlab)[-1] == "Upgrade(Ticket6001): disk=50"
    again = book(False)
    assert again.hosts["localhost"].changed == 0
    assert len(_upgrades(rlab)) == 4
