"""``ipsinfra inventory sync`` on the lab: a VDS migrated behind ipsinfra's back
(the driver's own migrate, §9.10 rename included, no inventory given) is found
by its order number; ``--check`` prints the diff and writes nothing, the real
run renames the record and its file, the audit then has no drift about it,
and a second run has nothing to change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipsinfra import cli, inventory, naming
from ipsinfra.lab.fleet import Lab
from tests.e2e.test_writeback_lab import drift_about

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def sync(lab: Lab, capsys: pytest.CaptureFixture[str], *rest: str) -> tuple[int, str]:
    code = cli.main(
        ["inventory", "sync", "-i", str(lab.inventory_dir), "--journal", str(lab.journal_path), *rest]
    )
    return code, capsys.readouterr().out


@pytest.mark.parametrize(
    ("old", "new", "source", "target"),
    [
        ("VPS1001(113.10)", "VPS1001(113.20)", "kvm1", "kvm2"),
        ("VPS1005(100.30)", "VPS1005(100.31)", "pve1", "pve2"),
    ],
    ids=["libvirt", "proxmox"],
)
def test_sync_follows_a_migration_made_behind_its_back(
    lab: Lab, capsys: pytest.CaptureFixture[str], old: str, new: str, source: str, target: str
) -> None:
    inv = lab.inventory_dir
    assert drift_about(lab, old, new) == []
    # The lab's fakepve numbers its VMs itself: a first sync brings the records' vmids in line, no more.
    code, first = sync(lab, capsys, "--json")
    assert code == 0, first
    fields = {(c["name"], f["field"]) for c in json.loads(first)["changes"] for f in c["fields"]}
    assert {field for _, field in fields} <= {"backend_id"}

    lab.driver(source).migrate(old, lab.driver(target), live=True, new_name=new)  # no inventory given
    assert drift_about(lab, old, new) == [
        f"{old}: the inventory puts {old} on {source}, which does not report it"
    ]
    before = snapshot(inv)

    code, checked = sync(lab, capsys, "--check")
    assert code == 0, checked
    assert f"would change: {old} -> {new}: node {source} -> {target}" in checked
    old_file, new_file = (f"host_vars/{naming.pve_safe_name(n)}.yml" for n in (old, new))
    assert f"--- a/{old_file}\n+++ b/{new_file}" in checked
    assert snapshot(inv) == before

    code, done = sync(lab, capsys, "--json")
    assert code == 0, done
    data = json.loads(done)
    assert data["written"] and data["findings"] == [] and [c["new_name"] for c in data["changes"]] == [new]
    after = snapshot(inv)
    assert old_file not in after and new_file in after
    old_host, new_host = (naming.pve_safe_name(n).encode() for n in (old, new))
    assert after["hosts.yml"] == before["hosts.yml"].replace(old_host + b":", new_host + b":")
    fleet = inventory.load(inv)
    assert fleet.vds[new].node == target and old not in fleet.vds
    assert drift_about(lab, old, new) == []
    with lab.journal() as journal:
        last = [e for e in journal.entries() if e.action == "inventory.sync"][-1]
    assert last.seq == data["journal_seq"] and last.after is not None
    assert last.after["changes"] == [f"{old} -> {new}: node {source} -> {target}"]

    code, again = sync(lab, capsys)
    assert code == 0, again
    assert "up to date" in again and snapshot(inv) == after
