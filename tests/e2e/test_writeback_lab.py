"""Write-back on the lab: after a real migrate, provision, resize and block the
inventory files show the change, ``inventory.load`` agrees, and the next audit
finds no drift about that VDS. With ``check``: a diff, no file changed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ipsinfra import audit, cli, inventory
from ipsinfra.abuse.block import block
from ipsinfra.lab.fleet import Lab
from ipsinfra.migrate import migrate
from ipsinfra.models import Order
from ipsinfra.provision import provision
from tests.unit.test_inventory import ansible_list

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]

TODAY = dt.date(2017, 6, 5)  # inside the example's trial, so no trial finding muddies the audit
ANSIBLE_INVENTORY = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "ansible-inventory"


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def drift_about(lab: Lab, *names: str) -> list[str]:
    """The next audit, on the inventory as it is on disk now: drift findings naming ``names``."""
    assert lab.pool is not None
    fleet = inventory.load(lab.inventory_dir)
    with lab.journal() as journal:
        report = audit.run(
            fleet, lab.pool, journal=journal, today=TODAY, recheck_delay=0.2, probe_for=lab.probe_for
        )
    return [
        f"{f.target}: {f.message}"
        for f in report.findings
        if f.check == "inventory_drift" and f.target in names
    ]


@pytest.mark.parametrize(
    ("old", "new", "source", "target", "old_host", "new_host"),
    [
        ("VPS1001(113.10)", "VPS1001(113.20)", "kvm1", "kvm2", "VPS1001-113-10", "VPS1001-113-20"),
        ("VPS1005(100.30)", "VPS1005(100.31)", "pve1", "pve2", "VPS1005-100-30", "VPS1005-100-31"),
    ],
    ids=["libvirt", "proxmox"],
)
def test_migrate_renames_the_record_and_the_audit_agrees(
    lab: Lab, old: str, new: str, source: str, target: str, old_host: str, new_host: str, tmp_path: Path
) -> None:
    assert lab.fleet is not None and lab.pool is not None
    inv = lab.inventory_dir
    assert drift_about(lab, old, new) == []
    before = snapshot(inv)
    with lab.journal() as journal:
        result = migrate(old, target, lab.fleet, lab.pool, journal=journal, inventory=inv)
        seqs = [e.action for e in journal.entries()]
    assert result.ok and result.changed, result.mismatches
    change = result.inventory_change
    assert change is not None and change.written, change and change.error
    assert seqs[-2:] == ["vds.migrate", "inventory.write_back"]  # the fleet change first, then the record

    after = snapshot(inv)
    old_file, new_file = f"host_vars/{old_host}.yml", f"host_vars/{new_host}.yml"
    assert old_file not in after and new_file in after
    old_text, new_text = before[old_file].decode(), after[new_file].decode()
    assert f"vds_name: {new}" in new_text and f"node: {target}" in new_text
    changed = {a for a, b in zip(old_text.splitlines(), new_text.splitlines(), strict=True) if a != b}
    # Only what the move changed: the name, the node, and where the backend says so its vmid and VNC address.
    moved = {ln for ln in changed if ln.startswith(("vnc_listen:", "backend_id:"))}
    assert changed - moved == {f"vds_name: {old}", f"node: {source}"}
    assert after["hosts.yml"] == before["hosts.yml"].replace(f"{old_host}:".encode(), f"{new_host}:".encode())
    assert {k for k in before if before[k] != after.get(k)} == {old_file, "hosts.yml"}

    fleet = inventory.load(inv)
    assert fleet.vds[new].node == target and old not in fleet.vds
    listed = ansible_list(inv, tmp_path)  # Ansible reads the same change
    hostvars = listed["_meta"]["hostvars"]
    assert old_host not in hostvars and new_host in listed["vds"]["hosts"]
    assert (hostvars[new_host]["vds_name"], hostvars[new_host]["node"]) == (new, target)
    assert drift_about(lab, old, new) == []

    # A re-run of the same job, from the inventory as it is now: converged, nothing to write.
    again = migrate(old, target, fleet, lab.pool, inventory=inv)
    assert again.ok and not again.changed
    assert again.inventory_change is not None and not again.inventory_change.changed
    assert snapshot(inv) == after


def test_block_of_a_migrated_vds_by_ip(lab: Lab) -> None:
    assert lab.fleet is not None and lab.pool is not None
    inv = lab.inventory_dir
    migrate("VPS1001(113.10)", "kvm2", lab.fleet, lab.pool, inventory=inv)
    fleet = inventory.load(inv)  # the record follows the fleet: the next run finds it
    result = block("203.0.113.101", fleet, lab.pool, reason="malware", inventory=inv)
    assert result.changed and result.proof.server == "VPS1001(113.20)"
    assert result.inventory_change is not None and result.inventory_change.written
    text = (inv / "host_vars" / "VPS1001-113-20.yml").read_text()
    assert text.endswith("blocked: true\nblocked_reason: malware\n")
    assert inventory.load(inv).vds["VPS1001(113.20)"].blocked


@pytest.mark.parametrize(
    ("node", "name", "host"),
    [("kvm1", "VPS2001(113.10)", "VPS2001-113-10"), ("pve1", "VPS2001(100.30)", "VPS2001-100-30")],
    ids=["libvirt", "proxmox"],
)
def test_provision_adds_the_record(lab: Lab, node: str, name: str, host: str) -> None:
    assert lab.fleet is not None and lab.pool is not None
    inv = lab.inventory_dir
    order = Order(number=2001, client="c1", node=node, vcpus=2, memory_mib=256, disk_gib=10, os="debian-12")
    before = snapshot(inv)
    result = provision(order, lab.fleet, lab.pool, today=TODAY, inventory=inv)
    assert result.changed and result.ok, result.mismatches
    assert result.inventory_change is not None and result.inventory_change.written
    after = snapshot(inv)
    assert set(after) - set(before) == {f"host_vars/{host}.yml"}
    assert after["hosts.yml"].count(f"{host}:".encode()) == 1
    record = inventory.load(inv).vds[name]
    assert (record.node, record.vcpus, record.memory_mib, record.client) == (node, 2, 256, "c1")
    assert drift_about(lab, name) == []


def test_check_gives_a_diff_and_changes_no_file(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert lab.fleet is not None and lab.pool is not None
    inv = lab.inventory_dir
    before = snapshot(inv)
    result = migrate("VPS1001(113.10)", "kvm2", lab.fleet, lab.pool, check=True, inventory=inv)
    change = result.inventory_change
    assert change is not None and change.checked_only and not change.written
    assert "+vds_name: VPS1001(113.20)" in change.diff()
    argv = ["migrate", "VPS1001(113.10)", "--to", "kvm2", "-i", str(inv), "--journal", str(lab.journal_path)]
    assert cli.main([*argv, "--check"]) == 0
    printed = capsys.readouterr().out
    assert "+++ b/host_vars/VPS1001-113-20.yml" in printed and "+node: kvm2" in printed
    order = Order(number=2001, client="c1", node="pve1", vcpus=2, memory_mib=256, disk_gib=10, os="debian-12")
    planned = provision(order, lab.fleet, lab.pool, check=True, today=TODAY, inventory=inv)
    assert planned.inventory_change is not None and not planned.inventory_change.written
    assert "+++ b/host_vars/VPS2001-100-30.yml" in planned.inventory_change.diff()
    blocked = block("203.0.113.101", lab.fleet, lab.pool, reason="malware", check=True, inventory=inv)
    assert blocked.inventory_change is not None and "+blocked: true" in blocked.inventory_change.diff()
    assert snapshot(inv) == before
    assert lab.driver("kvm1").get_vds("VPS1001(113.10)").name == "VPS1001(113.10)"


def test_resize_updates_the_record_and_the_audit_agrees(lab: Lab) -> None:
    from ipsinfra.resize import resize

    assert lab.fleet is not None and lab.pool is not None
    inv = lab.inventory_dir
    before = (inv / "host_vars" / "VPS1001-113-10.yml").read_text()
    result = resize(
        "VPS1001(113.10)",
        lab.fleet,
        lab.pool,
        ticket=501,
        cores=3,
        prices={"cores": "100"},
        restart=True,
        stop_timeout=2.0,  # the lab's diskless guests ignore ACPI: power off after 2 s
        inventory=inv,
    )
    assert result.ok and result.changed, result.mismatches
    assert result.inventory_change is not None and result.inventory_change.written
    after = (inv / "host_vars" / "VPS1001-113-10.yml").read_text()
    assert after == before.replace("vcpus: 2\n", "vcpus: 3\n")
    assert inventory.load(inv).vds["VPS1001(113.10)"].vcpus == 3
    assert drift_about(lab, "VPS1001(113.10)") == []


def test_an_inventory_that_cannot_be_written_keeps_the_migration(lab: Lab) -> None:
    """The fleet's change stands and is journalled; the write-back says which file and what to change."""
    from ipsinfra.inventory.writeback import LOCK_NAME

    assert lab.fleet is not None and lab.pool is not None
    inv = lab.inventory_dir
    (inv / LOCK_NAME).mkdir()  # the lock cannot be taken (this stops root as well as a read-only mount)
    before = snapshot(inv)
    with lab.journal() as journal:
        result = migrate("VPS1001(113.10)", "kvm2", lab.fleet, lab.pool, journal=journal, inventory=inv)
        lines = [(e.action, e.result) for e in journal.entries()][-2:]
    assert result.ok and result.changed
    assert lab.driver("kvm2").get_vds("VPS1001(113.20)").name == "VPS1001(113.20)"
    change = result.inventory_change
    assert change is not None and not change.written and change.error is not None
    assert str(inv / LOCK_NAME) in change.error
    assert "+vds_name: VPS1001(113.20)" in change.diff()  # exactly what to change by hand
    assert lines == [("vds.migrate", "ok"), ("inventory.write_back", "failed")]
    assert snapshot(inv) == before
