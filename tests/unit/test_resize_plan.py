"""§6 resize planning (pure), order lines, and resize() on libvirt's in-process test driver."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from ipsinfra.errors import InvalidInput
from ipsinfra.hypervisors import DriverPool
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.inventory import Fleet
from ipsinfra.journal import Journal
from ipsinfra.lab.fleet import TEST_NODE_XML
from ipsinfra.models import Disk, Nic, Node, Vds, VdsSpec, VdsState
from ipsinfra.resize import (
    Direction,
    downgrade_line,
    order_prices,
    plan_resize,
    price_text,
    resize,
    upgrade_line,
)
from tests.unit.fleetkit import fleet, node, vds

NAME = "VPS1234(34.56)"


def kvm(**kw: object) -> Node:
    return node("kvm1", "185.12.34.56", cpus=48, memory_mib=8192, **kw)


def one(**kw: object) -> Vds:
    values: dict[str, object] = {"cpuset": "1-40", "disks": [Disk(name="disk0", size_gib=40)], "order": 1234}
    values.update(kw)
    return vds(NAME, "kvm1", **values)


class TestPlan:
    def test_upgrade_every_parameter(self) -> None:
        plan = plan_resize(one(), kvm(), cores=4, memory_mib=2048, disk_gib=80)
        assert [(c.param, c.before, c.after, c.direction) for c in plan.changes] == [
            ("cores", 2, 4, Direction.UPGRADE),
            ("memory", 1024, 2048, Direction.UPGRADE),
            ("disk", 40, 80, Direction.UPGRADE),
        ]
        disk = plan.change("disk")
        assert disk is not None and disk.disk == "disk0"
        assert not plan.needs_restart  # stopped (state unknown): nothing running to restart
        assert plan.restart_reason is None

    def test_downgrade(self) -> None:
        plan = plan_resize(one(vcpus=4), kvm(), cores=2, memory_mib=512)
        assert [c.direction for c in plan.changes] == [Direction.DOWNGRADE, Direction.DOWNGRADE]
        assert plan.upgrades == [] and len(plan.downgrades) == 2

    @pytest.mark.parametrize("kind", ["libvirt", "proxmox"])
    def test_running_vds_needs_restart_for_cpu_and_memory_not_disk(self, kind: str) -> None:
        n = node("kvm1", "185.12.34.56", kind=kind, cpus=48, memory_mib=8192)
        plan = plan_resize(one(state=VdsState.RUNNING), n, cores=4, memory_mib=2048, disk_gib=50)
        assert {c.param: c.needs_restart for c in plan.changes} == {
            "cores": True,
            "memory": True,
            "disk": False,
        }
        assert plan.needs_restart and plan.restart_reason
        assert ("pending" in plan.restart_reason) is (kind == "proxmox")
        disk_only = plan_resize(one(state=VdsState.RUNNING), n, disk_gib=50)
        assert not disk_only.needs_restart

    def test_same_target_is_unchanged(self) -> None:
        plan = plan_resize(one(), kvm(), cores=2, memory_mib=1024, disk_gib=40)
        assert plan.changes == [] and not plan.changed
        assert plan.unchanged == ["cores", "memory", "disk"]
        assert "nothing to change" in plan.describe()[0]

    @pytest.mark.parametrize(
        ("field", "kwargs"),
        [
            ("cores", {"cores": 0}),
            ("cores", {"cores": -1}),
            ("memory_mib", {"memory_mib": 0}),
            ("disk_gib", {"disk_gib": 0}),
        ],
    )
    def test_weak_values_refused(self, field: str, kwargs: dict[str, int]) -> None:
        with pytest.raises(InvalidInput, match=rf"^{field}: value -?\d"):
            plan_resize(one(), kvm(), **kwargs)

    def test_nothing_asked(self) -> None:
        with pytest.raises(InvalidInput, match="nothing asked"):
            plan_resize(one(), kvm())

    def test_disk_shrink_refused_naming_field_and_value(self) -> None:
        with pytest.raises(
            InvalidInput, match=r"disk_gib: value 20: disk disk0 .* 40 GiB; a disk only grows"
        ):
            plan_resize(one(), kvm(), disk_gib=20)

    def test_unknown_disk_and_no_disk(self) -> None:
        with pytest.raises(InvalidInput, match=r"disk: value 'sdb'.*disk0"):
            plan_resize(one(), kvm(), disk_gib=80, disk="sdb")
        with pytest.raises(InvalidInput, match="no disk on record"):
            plan_resize(one(disks=[]), kvm(), disk_gib=80)

    def test_more_cores_than_node(self) -> None:
        with pytest.raises(InvalidInput, match=r"cores: value 49: node kvm1 has only 48 CPUs"):
            plan_resize(one(), kvm(), cores=49)

    def test_cpuset_rule_no_longer_fits(self) -> None:
        # 48 CPUs, but the house range 1-40 gives 40 of them (§9.1)
        with pytest.raises(InvalidInput, match=r"cores: value 41: .*1-40.*would no longer fit"):
            plan_resize(one(), kvm(), cores=41)
        # a VDS pinned to fewer CPUs than the rule
        with pytest.raises(InvalidInput, match=r"pinned to CPUs 1-3"):
            plan_resize(one(cpuset="1-3"), kvm(), cores=4)
        # the rule cut to a small node: 1-40 on 8 CPUs is 1-7
        small = node("kvm1", "185.12.34.56", cpus=8)
        with pytest.raises(InvalidInput, match=r"gives 1-7"):
            plan_resize(one(cpuset=None), small, cores=8)
        assert plan_resize(one(cpuset=None), small, cores=7).changed
        assert plan_resize(one(cpuset=None), small, cores=8, cpuset_rule=None).changed

    def test_memory_room_counts_the_other_vds(self) -> None:
        others = [vds(f"VPS{i}(34.56)", "kvm1", memory_mib=2048) for i in (1, 2, 3)]  # 6144 of 8192
        target = one()
        plan = plan_resize(target, kvm(), memory_mib=2048, node_vds=[*others, target])
        assert plan.changed
        with pytest.raises(
            InvalidInput, match=r"memory_mib: value 2049: node kvm1 has no room: .*2048 MiB free"
        ):
            plan_resize(target, kvm(), memory_mib=2049, node_vds=[*others, target])
        # a downgrade needs no room, even on a full node
        full = [vds("VPS9(34.56)", "kvm1", memory_mib=8192)]
        assert plan_resize(one(memory_mib=4096), kvm(), memory_mib=2048, node_vds=full).changed

    def test_unknown_node_memory_is_a_warning(self) -> None:
        plan = plan_resize(one(), node("kvm1", "185.12.34.56", cpus=48), memory_mib=4096)
        assert plan.changed and "not checked" in plan.warnings[0]

    def test_describe(self) -> None:
        lines = plan_resize(one(state=VdsState.RUNNING), kvm(), cores=4, disk_gib=50).describe()
        assert "upgrade: cores 2 -> 4 (takes effect at the next start)" in lines[1]
        assert "upgrade: disk disk0 40 -> 50 GiB (takes effect now)" in lines[2]
        assert lines[3].startswith("  restart needed:")


class TestLines:
    def test_upgrade_line_shape(self) -> None:
        assert upgrade_line(4711, "cores", "300") == "Upgrade(Ticket4711): cores=300"

    def test_prices(self) -> None:
        plan = plan_resize(one(), kvm(), cores=4, memory_mib=512)
        assert order_prices(plan, {"cores": Decimal("300"), "memory": "0"}) == {"cores": "300"}
        with pytest.raises(InvalidInput, match=r"prices.cores: missing"):
            order_prices(plan, None)
        with pytest.raises(InvalidInput, match=r"prices.cores: price: value 'abc'"):
            order_prices(plan, {"cores": "abc"})
        with pytest.raises(InvalidInput, match=r"prices: value 'ram'"):
            order_prices(plan, {"cores": "1", "ram": "1"})
        assert price_text("12.50") == "12.50"
        with pytest.raises(InvalidInput):
            price_text("-1")

    def test_downgrade_line(self) -> None:
        plan = plan_resize(one(), kvm(), memory_mib=512)
        line = downgrade_line(4711, plan.downgrades[0])
        assert line.startswith("Downgrade(Ticket4711): memory=1024->512 MiB")
        assert "sales" in line


# --------------------------------------------------------------- resize() on the test driver


@pytest.fixture
def testbed(tmp_path: Path) -> Iterator[tuple[Fleet, DriverPool, Journal]]:
    xml = tmp_path / "kvm1.xml"
    xml.write_text(TEST_NODE_XML.format(cpus=48, memory_kib=8192 * 1024))
    n = node("kvm1", "185.12.34.56", cpus=48, memory_mib=8192).model_copy(update={"uri": f"test://{xml}"})
    drv = LibvirtDriver(n)
    drv.define(
        VdsSpec(
            name=NAME,
            vcpus=2,
            cpuset="1-40",
            memory_mib=1024,
            disks=[Disk(size_gib=40)],
            nics=[Nic(mac="52:54:00:00:04:d2", bridge="br0")],
            vnc_listen=ipaddress.ip_address("127.0.0.1"),
        )
    )
    drv.define(VdsSpec(name="VPS1(34.56)", vcpus=1, memory_mib=6144))
    f = fleet(n, vds=(one(),))
    with DriverPool(f.nodes, drivers={"kvm1": drv}) as pool, Journal(tmp_path / "j.sqlite3") as journal:
        yield f, pool, journal


def test_resize_upgrade_lines_and_idempotence(
    testbed: tuple[Fleet, DriverPool, Journal], tmp_path: Path
) -> None:
    f, pool, journal = testbed
    kw = {"ticket": 4711, "journal": journal, "lock_dir": tmp_path, "prices": {"cores": "300", "disk": "150"}}
    got = resize(NAME, f, pool, cores=4, disk_gib=80, **kw)
    assert got.ok and got.changed
    assert got.order_lines == ["Upgrade(Ticket4711): cores=300", "Upgrade(Ticket4711): disk=150"]
    back = pool.get("kvm1").get_vds(NAME)
    assert (back.vcpus, back.cpuset, back.disks[0].size_gib) == (4, "1-40", 80)
    details = [e.detail for e in journal.entries() if e.action == "order.upgrade"]
    assert details == got.order_lines
    again = resize(NAME, f, pool, cores=4, disk_gib=80, **kw)
    assert not again.changed and again.order_lines == []
    assert [e.detail for e in journal.entries() if e.action == "order.upgrade"] == details


def test_resize_check_touches_nothing(testbed: tuple[Fleet, DriverPool, Journal], tmp_path: Path) -> None:
    f, pool, journal = testbed
    got = resize(
        NAME,
        f,
        pool,
        ticket=1,
        cores=8,
        prices={"cores": "1"},
        check=True,
        journal=journal,
        lock_dir=tmp_path,
    )
    assert got.checked_only and not got.changed and got.order_lines == ["Upgrade(Ticket1): cores=1"]
    assert pool.get("kvm1").get_vds(NAME).vcpus == 2
    assert list(journal.entries()) == []


def test_resize_downgrade_goes_to_sales(testbed: tuple[Fleet, DriverPool, Journal], tmp_path: Path) -> None:
    f, pool, journal = testbed
    got = resize(NAME, f, pool, ticket=9, memory_mib=512, journal=journal, lock_dir=tmp_path)
    assert got.ok and got.order_lines == []
    assert got.sales_handoff == ["Downgrade(Ticket9): memory=1024->512 MiB; applied, hand to sales"]
    assert pool.get("kvm1").get_vds(NAME).memory_mib == 512
    assert [e.action for e in journal.entries()] == ["vds.resize", "order.downgrade"]


def test_resize_refusals_change_nothing(testbed: tuple[Fleet, DriverPool, Journal], tmp_path: Path) -> None:
    f, pool, journal = testbed
    before = pool.get("kvm1").get_vds(NAME)
    for kwargs, match in [
        ({"cores": 0}, "cores: value 0"),
        ({"disk_gib": 10}, "disk_gib: value 10"),
        ({"memory_mib": 4096}, "no room"),  # 6144 of 8192 held by the other VDS
        ({"cores": 2, "memory_mib": 2048}, r"prices.memory: missing"),
    ]:
        with pytest.raises(InvalidInput, match=match):
            resize(NAME, f, pool, ticket=5, journal=journal, lock_dir=tmp_path, **kwargs)
    assert pool.get("kvm1").get_vds(NAME) == before
    assert list(journal.entries()) == []
    with pytest.raises(InvalidInput, match="ticket"):
        resize(NAME, f, pool, ticket=0, cores=3, lock_dir=tmp_path)


def test_cli_mounts_and_parses_prices() -> None:
    import typer
    from typer.testing import CliRunner

    from ipsinfra import resize_cli

    assert resize_cli.parse_prices(["cores=300", " disk = 12.50 "]) == {"cores": "300", "disk": "12.50"}
    with pytest.raises(InvalidInput, match=r"price: value 'cores'"):
        resize_cli.parse_prices(["cores"])
    main = typer.Typer()
    main.command("version")(lambda: None)
    main.command("resize")(resize_cli.resize_cmd)
    shown = CliRunner().invoke(main, ["resize", "--help"])
    assert shown.exit_code == 0
    for option in ("--ticket", "--vcpus", "--memory", "--disk", "--price", "--restart", "--check"):
        assert option in shown.output
    refused = CliRunner().invoke(main, ["resize", "VPS1(1.2)", "--ticket", "1", "--price", "x"])
    assert isinstance(refused.exception, InvalidInput)
