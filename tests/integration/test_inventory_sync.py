"""``ipsinfra inventory sync`` end to end on libvirt's test driver.

Each node is a ``test://<file>`` node whose file holds its domains, so the
fleet can change behind ipsinfra's back: the test rewrites the files (a VDS
moved to kvm2 and renamed §9.10, another resized), then runs the real CLI in a
child process that opens the nodes afresh. ``--check`` prints the diff and
writes nothing; the real run renames the host_vars file and hosts.yml entry,
journals ``inventory.sync``, and the audit then finds no drift; a second run
has nothing to change.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ipsinfra import audit, inventory, metadata, naming
from ipsinfra.hypervisors import DriverPool
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.inventory import Fleet
from ipsinfra.journal import Journal
from ipsinfra.models import Disk, Node, Site, Vds
from tests.contract.base import spec_for
from tests.contract.test_libvirt_testdriver import NODE_XML, test_node

TODAY = dt.date(2026, 12, 7)
IPS = {5001: "10.9.0.5", 5002: "10.9.0.6", 5003: "10.9.0.7"}


def domain_xml(scratch: Path, node: Node, order: int, **overrides: Any) -> str:
    """A domain as libvirt writes it, defined on a scratch copy of ``node`` (nothing kept there)."""
    scratch.mkdir(parents=True, exist_ok=True)
    twin = test_node(scratch, name=node.name, ip=str(node.main_ip))
    driver = LibvirtDriver(twin)
    try:
        ip = IPS[order]
        spec = spec_for(
            driver,
            order,
            ips=[ipaddress.ip_address(ip)],
            description=metadata.render({"order": order, "ips": ip}),
            **overrides,
        )
        driver.define(spec)
        return driver.ex_xml(spec.name, inactive=True)
    finally:
        driver.close()


def write_node(node: Node, *domains: str) -> None:
    path = Path(node.uri.removeprefix("test://"))
    body = NODE_XML.format(cpus=8, memory_kib=16 * 1024 * 1024)
    path.write_text(body.replace("</node>", "".join(domains) + "</node>"), encoding="utf-8")


def record(order: int, node: Node, **kw: Any) -> Vds:
    values: dict[str, Any] = {
        "name": naming.vps_name(order, node.main_ip),
        "node": node.name,
        "vcpus": 2,
        "cpuset": "1-3",
        "memory_mib": 64,
        "disks": [Disk(size_gib=1)],
        "ips": [IPS[order]],
    }
    values.update(kw)
    return Vds.model_validate(values)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every inventory file (not the lock file write-back leaves)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def sync_cli(inv: Path, journal: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ipsinfra.cli",
            "inventory",
            "sync",
            "-i",
            str(inv),
            "--journal",
            str(journal),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def drift(inv: Path) -> list[str]:
    """The audit on the inventory as it is on disk, on fresh connections to the nodes."""
    fleet = inventory.load(inv)
    with DriverPool(fleet.nodes) as pool:
        report = audit.run(fleet, pool, today=TODAY, reach=False, recheck_delay=0.0, processes=1)
    return [f"{f.target}: {f.message}" for f in report.findings if f.check == "inventory_drift"]


def test_sync_follows_a_move_and_a_resize_made_behind_its_back(tmp_path: Path) -> None:
    kvm1 = test_node(tmp_path, name="kvm1", ip="10.0.1.10")
    kvm2 = test_node(tmp_path, name="kvm2", ip="10.0.2.20")
    scratch = tmp_path / "scratch"
    write_node(kvm1, domain_xml(scratch, kvm1, 5001), domain_xml(scratch, kvm1, 5002))
    write_node(kvm2)
    fleet = Fleet(
        sites={"lab": Site(name="lab", dc="Lab DC")},
        nodes={"kvm1": kvm1, "kvm2": kvm2},
        vds={r.name: r for r in (record(5001, kvm1), record(5002, kvm1))},
    )
    inv = inventory.dump(fleet, tmp_path / "inv")
    journal = tmp_path / "journal.sqlite3"
    assert drift(inv) == []
    clean = sync_cli(inv, journal, "--check")
    assert clean.returncode == 0, clean.stderr + clean.stdout
    assert "up to date" in clean.stdout

    # Behind ipsinfra's back: 5001 moved to kvm2 and renamed (§9.10), 5002 resized to 3 vCPUs / 128 MiB.
    write_node(kvm1, domain_xml(scratch / "b", kvm1, 5002, vcpus=3, memory_mib=128))
    write_node(kvm2, domain_xml(scratch / "b", kvm2, 5001))
    assert sorted(drift(inv)) == [
        "VPS5001(1.10): the inventory puts VPS5001(1.10) on kvm1, which does not report it",
        "VPS5002(1.10): vcpus: inventory 2, hypervisor 3",
    ]
    before = snapshot(inv)

    checked = sync_cli(inv, journal, "--check")
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert snapshot(inv) == before  # nothing written
    assert not journal.exists()  # --check opens no journal
    assert "would change: VPS5001(1.10) -> VPS5001(2.20): node kvm1 -> kvm2" in checked.stdout
    assert "would change: VPS5002(1.10): vcpus 2 -> 3; memory_mib 64 -> 128" in checked.stdout
    assert "--- a/host_vars/VPS5001-1-10.yml\n+++ b/host_vars/VPS5001-2-20.yml" in checked.stdout
    assert "-        VPS5001-1-10: null\n+        VPS5001-2-20: null\n" in checked.stdout  # hosts.yml
    assert "-vcpus: 2\n+vcpus: 3\n" in checked.stdout

    done = sync_cli(inv, journal, "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    data = json.loads(done.stdout)
    assert data["written"] and data["error"] is None and data["findings"] == []
    assert data["nodes"] == {
        "kvm1": {"reachable": True, "vds": 1, "error": None},
        "kvm2": {"reachable": True, "vds": 1, "error": None},
    }
    after = snapshot(inv)
    assert "host_vars/VPS5001-1-10.yml" not in after and "host_vars/VPS5001-2-20.yml" in after
    assert {k for k in after if before.get(k) != after[k]} == {
        "hosts.yml",
        "host_vars/VPS5001-2-20.yml",
        "host_vars/VPS5002-1-10.yml",
    }
    moved = after["host_vars/VPS5001-2-20.yml"].decode()
    assert "vds_name: VPS5001(2.20)" in moved and "node: kvm2" in moved
    old_lines = set(before["host_vars/VPS5001-1-10.yml"].decode().splitlines())
    assert old_lines - set(moved.splitlines()) == {"vds_name: VPS5001(1.10)", "node: kvm1"}

    loaded = inventory.load(inv)
    assert set(loaded.vds) == {"VPS5001(2.20)", "VPS5002(1.10)"}
    assert loaded.vds["VPS5001(2.20)"].node == "kvm2"
    assert (loaded.vds["VPS5002(1.10)"].vcpus, loaded.vds["VPS5002(1.10)"].memory_mib) == (3, 128)
    assert drift(inv) == []  # what sync fixes is what the audit reported

    with Journal(str(journal)) as jr:
        [line] = [e for e in jr.entries() if e.action == "inventory.sync"]
    assert line.result == "ok" and line.seq == data["journal_seq"] and line.after is not None
    assert line.after["changes"] == [
        "VPS5001(1.10) -> VPS5001(2.20): node kvm1 -> kvm2",
        "VPS5002(1.10): vcpus 2 -> 3; memory_mib 64 -> 128",
    ]

    again = sync_cli(inv, journal)
    assert again.returncode == 0, again.stderr + again.stdout
    assert "up to date" in again.stdout
    assert snapshot(inv) == after


def test_sync_lists_what_needs_a_human_and_reads_the_other_nodes(tmp_path: Path) -> None:
    kvm1 = test_node(tmp_path, name="kvm1", ip="10.0.1.10")
    kvm2 = test_node(tmp_path, name="kvm2", ip="10.0.2.20")
    kvm3 = test_node(tmp_path, name="kvm3", ip="10.0.3.30")
    scratch = tmp_path / "scratch"
    write_node(kvm1, domain_xml(scratch, kvm1, 5002, vcpus=3))  # 5001 gone; 5002 resized
    write_node(kvm2, domain_xml(scratch, kvm2, 5001).replace("VPS5001", "VPS5009"))  # undescribed
    Path(kvm3.uri.removeprefix("test://")).unlink()  # kvm3 cannot be opened
    lost = record(5003, kvm3)
    fleet = Fleet(
        sites={"lab": Site(name="lab", dc="Lab DC")},
        nodes={"kvm1": kvm1, "kvm2": kvm2, "kvm3": kvm3},
        vds={r.name: r for r in (record(5001, kvm1), record(5002, kvm1), lost)},
    )
    inv = inventory.dump(fleet, tmp_path / "inv")
    journal = tmp_path / "journal.sqlite3"
    done = sync_cli(inv, journal, "--json")
    assert done.returncode == 1, done.stderr + done.stdout
    data = json.loads(done.stdout)
    kinds = sorted((f["kind"], f["target"]) for f in data["findings"])
    assert kinds == [
        ("undescribed", "VPS5009(2.20)"),
        ("unreachable", "kvm3"),
        ("unreported", "VPS5001(1.10)"),
    ]
    assert data["nodes"]["kvm3"]["reachable"] is False
    # What could be synced was: 5002's vCPUs; nothing deleted, kvm3's record untouched.
    assert data["written"] and [c["name"] for c in data["changes"]] == ["VPS5002(1.10)"]
    loaded = inventory.load(inv)
    assert set(loaded.vds) == {"VPS5001(1.10)", "VPS5002(1.10)", "VPS5003(3.30)"}
    assert loaded.vds["VPS5002(1.10)"].vcpus == 3
    assert loaded.vds["VPS5003(3.30)"] == lost.model_copy(update={"order": 5003})
