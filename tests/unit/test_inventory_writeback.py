"""Write-back: the inventory follows every change ipsinfra makes to the fleet.

The change is computed from texts (pure) and spliced into the files at the
parser's positions: every byte outside the changed values stays as it was.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
from pathlib import Path
from typing import Literal

import pytest

from ipsinfra.abuse.block import BlockResult, ProofStep, TargetProof
from ipsinfra.inventory import load
from ipsinfra.inventory.writeback import (
    DELETE,
    LOCK_NAME,
    RecordUpdate,
    WriteBackError,
    add_host,
    compute_change,
    files_needed,
    inventory_lock,
    rename_host,
    set_keys,
    updates_of,
    write_back,
)
from ipsinfra.journal import Journal
from ipsinfra.migrate import MigrationResult, plan_migration
from ipsinfra.models import Order
from ipsinfra.provision import ProvisionResult, plan_provision
from ipsinfra.resize import ResizeResult, plan_resize

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "inventory" / "example"


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    out = tmp_path / "inv"
    shutil.copytree(EXAMPLE, out)
    return out


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def migration(inv: Path, name: str = "VPS1003(113.20)", target: str = "kvm1") -> MigrationResult:
    fleet = load(inv)
    vds = fleet.vds[name]
    plan = plan_migration(vds, fleet.nodes[vds.node], fleet.nodes[target])
    return MigrationResult(plan=plan, changed=True)


def provisioned(inv: Path, number: int = 1010) -> ProvisionResult:
    fleet = load(inv)
    order = Order(
        number=number, client="c2", node="kvm1", vcpus=2, memory_mib=1024, disk_gib=20, os="debian-12"
    )
    plan = plan_provision(order, fleet, {}, today=dt.date(2026, 12, 1))
    return ProvisionResult(plan=plan, changed=True)


# --- pure splicing ------------------------------------------------------------
HOST_VARS = """---
# kept: a comment at the top
vds_name: VPS1005(100.30)
node: pve1
backend_id: "105"   # the Proxmox vmid
vcpus: 2
disks: [{name: scsi0, size_gib: 50, storage: local-lvm}]
ips:
  - 198.51.100.105   # block style stays block style
nics: [{mac: "BC:24:11:30:05:01", bridge: vmbr0}]

# trailing comment of the file
"""


def test_set_keys_changes_only_the_values_asked_for() -> None:
    out = set_keys(
        HOST_VARS,
        "host_vars/x.yml",
        {"vcpus": 4, "disks": [{"name": "scsi0", "size_gib": 60, "storage": "local-lvm"}]},
    )
    assert out == HOST_VARS.replace("vcpus: 2", "vcpus: 4").replace("size_gib: 50", "size_gib: 60")


def test_set_keys_keeps_trailing_comments_and_block_style() -> None:
    out = set_keys(HOST_VARS, "x", {"backend_id": "205", "ips": ["198.51.100.7", "198.51.100.8"]})
    assert 'backend_id: "205"   # the Proxmox vmid\n' in out  # its quotes kept
    assert "ips:\n  - 198.51.100.7\n  - 198.51.100.8\nnics:" in out
    # Everything outside the two values is byte for byte the original.
    assert out.startswith(HOST_VARS[: HOST_VARS.index("backend_id")])
    assert out.endswith(HOST_VARS[HOST_VARS.index("nics:") :])


def test_set_keys_appends_new_keys_and_deletes() -> None:
    out = set_keys(HOST_VARS, "x", {"blocked": True, "blocked_reason": "spam"})
    assert out == HOST_VARS + "blocked: true\nblocked_reason: spam\n"
    back = set_keys(out, "x", {"blocked": False, "blocked_reason": DELETE})
    assert back == HOST_VARS + "blocked: false\n"


def test_set_keys_same_value_is_no_change() -> None:
    assert set_keys(HOST_VARS, "x", {"vcpus": 2, "backend_id": "105", "node": "pve1"}) == HOST_VARS


def test_set_keys_only_if_present_never_adds() -> None:
    assert set_keys(HOST_VARS, "x", {"vnc_listen": "10.0.0.1"}, frozenset({"vnc_listen"})) == HOST_VARS


def test_set_keys_names_the_file_and_line_of_a_syntax_error() -> None:
    with pytest.raises(WriteBackError, match=r"host_vars/bad.yml: line \d+, column \d+: malformed YAML"):
        set_keys("---\nvcpus: 2\nips: [1.2.3.4\nnode: x\n", "host_vars/bad.yml", {"vcpus": 3})


def test_rename_and_add_host_in_hosts_yml() -> None:
    text = (EXAMPLE / "hosts.yml").read_text()
    renamed = rename_host(text, "hosts.yml", "VPS1003-113-20", "VPS1003-113-10")
    assert renamed == text.replace("        VPS1003-113-20:\n", "        VPS1003-113-10:\n")
    added = add_host(text, "hosts.yml", "vds", "VPS1010-113-10")
    assert added == text.replace(
        "        VPS1006-100-30:\n", "        VPS1006-100-30:\n        VPS1010-113-10:\n"
    )
    assert add_host(added, "hosts.yml", "vds", "VPS1010-113-10") == added


# --- results -> updates -> edits ----------------------------------------------
def test_migration_renames_the_file_and_the_hosts_entry(inv: Path) -> None:
    before = snapshot(inv)
    change = write_back(migration(inv), inv)
    assert change.ok and change.written, change.error
    after = snapshot(inv)
    old, new = "host_vars/VPS1003-113-20.yml", "host_vars/VPS1003-113-10.yml"
    assert old not in after
    assert after[new] == before[old].replace(b"VPS1003(113.20)", b"VPS1003(113.10)").replace(
        b"node: kvm2", b"node: kvm1"
    )
    assert after["hosts.yml"] == before["hosts.yml"].replace(b"VPS1003-113-20:", b"VPS1003-113-10:")
    untouched = set(before) - {old, "hosts.yml"}
    assert all(after[k] == before[k] for k in untouched)
    assert {k for k in after if k not in before} == {new, LOCK_NAME}
    fleet = load(inv)
    assert fleet.vds["VPS1003(113.10)"].node == "kvm1"
    assert "VPS1003(113.20)" not in fleet.vds
    assert fleet.inventory_hostname("VPS1003(113.10)") == "VPS1003-113-10"
    assert "--- a/host_vars/VPS1003-113-20.yml\n+++ b/host_vars/VPS1003-113-10.yml" in change.diff()


def test_second_write_back_is_no_change(inv: Path) -> None:
    result = migration(inv)
    assert write_back(result, inv).written
    once = snapshot(inv)
    again = write_back(result, inv)
    assert again.ok and not again.changed and not again.written
    assert snapshot(inv) == once


def test_check_gives_the_diff_and_writes_nothing(inv: Path) -> None:
    before = snapshot(inv)
    change = write_back(migration(inv), inv, check=True)
    assert change.checked_only and not change.written and change.ok
    assert snapshot(inv) == before
    diff = change.diff()
    for line in ("-vds_name: VPS1003(113.20)", "+vds_name: VPS1003(113.10)", "-node: kvm2", "+node: kvm1"):
        assert f"\n{line}\n" in diff
    files = {d["after_header"] for d in change.ansible_diff()}
    assert files == {str(inv / "host_vars/VPS1003-113-10.yml"), str(inv / "hosts.yml")}


def test_a_checked_only_result_never_writes(inv: Path) -> None:
    result = migration(inv).model_copy(update={"changed": False, "checked_only": True})
    before = snapshot(inv)
    change = write_back(result, inv)
    assert change.changed and not change.written
    assert snapshot(inv) == before


def test_provision_adds_the_file_and_the_hosts_entry(inv: Path) -> None:
    result = provisioned(inv)
    change = write_back(result, inv)
    assert change.written, change.error
    text = (inv / "host_vars" / "VPS1010-113-10.yml").read_text()
    assert text.startswith("---\nvds_name: VPS1010(113.10)\nnode: kvm1\nclient: c2\nvcpus: 2\n")
    assert "activated: 2026-12-01\n" in text
    assert "        VPS1006-100-30:\n        VPS1010-113-10:\n" in (inv / "hosts.yml").read_text()
    record = load(inv).vds["VPS1010(113.10)"]
    expected = result.record
    for field in ("node", "vcpus", "memory_mib", "disks", "ips", "nics", "client", "os", "activated"):
        assert getattr(record, field) == getattr(expected, field), field
    assert not write_back(result, inv).changed


def test_resize_changes_vcpus_memory_and_the_disk(inv: Path) -> None:
    fleet = load(inv)
    vds = fleet.vds["VPS1005(100.30)"]
    plan = plan_resize(vds, fleet.nodes["pve1"], cores=4, memory_mib=8192, disk_gib=60)
    change = write_back(ResizeResult(plan=plan, ticket=7, changed=True), inv)
    assert change.written, change.error
    text = (inv / "host_vars" / "VPS1005-100-30.yml").read_text()
    original = (EXAMPLE / "host_vars" / "VPS1005-100-30.yml").read_text()
    assert text == (
        original.replace("vcpus: 2", "vcpus: 4")
        .replace("memory_mib: 4096", "memory_mib: 8192")
        .replace("size_gib: 50", "size_gib: 60")
    )


def block_result(
    action: Literal["block", "unblock"], server: str, ip: str, reason: str = "spamhaus_sbl"
) -> BlockResult:
    proof = TargetProof(
        ip=ip, server=server, kind="vds", node="kvm1", steps=[ProofStep(check="x", ok=True, detail="")]
    )
    after = {"state": "stopped", "autostart": False, "blocked": reason} if action == "block" else {}
    return BlockResult(action=action, proof=proof, changed=True, after=after)


def test_block_then_unblock(inv: Path) -> None:
    original = (inv / "host_vars" / "VPS1001-113-10.yml").read_text()
    assert write_back(block_result("block", "VPS1001(113.10)", "203.0.113.101"), inv).written
    blocked = (inv / "host_vars" / "VPS1001-113-10.yml").read_text()
    assert blocked == original + "blocked: true\nblocked_reason: spamhaus_sbl\n"
    assert load(inv).vds["VPS1001(113.10)"].blocked
    assert write_back(block_result("unblock", "VPS1001(113.10)", "203.0.113.101"), inv).written
    assert (inv / "host_vars" / "VPS1001-113-10.yml").read_text() == original + "blocked: false\n"


def test_updates_of_unknown_results_and_cancel() -> None:
    from ipsinfra.abuse.handle import ServiceOutcome

    assert updates_of(object()) == []
    outcome = ServiceOutcome(ip="203.0.113.101", server="VPS1001(113.10)", action="blocked", cancelled=True)
    (update,) = updates_of(outcome)
    assert update.action == "cancel" and update.values == {"cancelled": True}


def test_several_updates_compose(inv: Path) -> None:
    fleet = load(inv)
    updates = [
        RecordUpdate(
            action="migrate", name="VPS1003(113.20)", new_name="VPS1003(113.10)", values={"node": "kvm1"}
        ),
        RecordUpdate(action="block", name="VPS1003(113.10)", values={"blocked": True}),
    ]
    rels: list[str] = []
    for u in updates:
        rels += files_needed(fleet, u)
    files = {r: (inv / r).read_text() if (inv / r).exists() else None for r in rels}
    change = compute_change(fleet, files, updates)
    (moved,) = [e for e in change.edits if e.path.startswith("host_vars/")]
    assert moved.renamed_from == "host_vars/VPS1003-113-20.yml"
    assert moved.after.endswith("blocked: true\n") and "node: kvm1" in moved.after


# --- bad input: a clear message, nothing half-written --------------------------
def test_unwritable_host_vars_as_root_too(inv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing fails after the lock: no file replaced, no temp file left, the error names the file."""
    import tempfile as tf

    before = snapshot(inv)

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tf, "mkstemp", refuse)
    journal = Journal(inv.parent / "journal.db")
    try:
        change = write_back(migration(inv), inv, journal=journal)
        entries = journal.entries()
    finally:
        journal.close()
    assert not change.written and change.error is not None and "Permission denied" in change.error
    assert "host_vars/VPS1003-113-10.yml" in change.error
    after = snapshot(inv)
    after.pop(LOCK_NAME, None)
    assert after == before
    assert entries[-1].action == "inventory.write_back" and entries[-1].result == "failed"
    assert change.journal_seq == entries[-1].seq


def test_syntax_error_in_the_vds_file_is_named(inv: Path) -> None:
    bad = inv / "host_vars" / "VPS1003-113-20.yml"
    bad.write_text(bad.read_text() + "ips: [203.0.113.103\n")
    before = snapshot(inv)
    change = write_back(migration(load_ok(inv)), inv)
    assert not change.written
    assert change.error is not None and f"{bad}: line" in change.error and "malformed YAML" in change.error
    assert snapshot(inv) == {**before, LOCK_NAME: b""}


def load_ok(inv: Path) -> Path:
    """The migration is planned from an intact copy (the run began before the file broke)."""
    copy = inv.parent / "intact"
    if not copy.exists():
        shutil.copytree(EXAMPLE, copy)
    return copy


def test_a_file_renamed_by_another_process_is_named(inv: Path) -> None:
    result = migration(inv)
    (inv / "host_vars" / "VPS1003-113-20.yml").rename(inv / "host_vars" / "VPS1003-other.yml")
    change = write_back(result, inv)
    assert not change.written and change.error is not None
    assert "VPS1003-other" in change.error or "VPS1003-113-20.yml" in change.error


def test_the_vds_record_gone_is_named(inv: Path) -> None:
    result = migration(inv)
    text = (inv / "hosts.yml").read_text().replace("        VPS1003-113-20:\n", "")
    (inv / "hosts.yml").write_text(text)
    (inv / "host_vars" / "VPS1003-113-20.yml").unlink()
    change = write_back(result, inv)
    assert change.error is not None
    assert "host_vars/VPS1003-113-20.yml" in change.error and "another process" in change.error


def test_the_lock_serialises_write_backs(inv: Path) -> None:
    fd = os.open(inv / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(WriteBackError, match="holds the lock"), inventory_lock(inv, timeout=0.2):
            pass
    finally:
        os.close(fd)
    with inventory_lock(inv, timeout=0.2):
        pass


def test_no_lock_no_write_but_the_diff(inv: Path) -> None:
    """The lock cannot be taken (here: its path is a folder, which stops root too): nothing written."""
    (inv / LOCK_NAME).mkdir()
    before = snapshot(inv)
    change = write_back(provisioned(inv), inv)
    assert not change.written and change.error is not None
    assert f"{inv / LOCK_NAME}: cannot create the inventory lock" in change.error
    assert "+vds_name: VPS1010(113.10)" in change.diff()
    assert any("by hand" in line for line in change.describe())
    assert snapshot(inv) == before


def test_commit_names_the_action_and_the_journal_line(inv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--commit``: only the changed files, in the inventory's own (temporary) repository."""
    import subprocess

    from ipsinfra.inventory.writeback import commit_change

    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)  # no identity: ipsinfra commits as itself
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", os.devnull)

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=inv, capture_output=True, text=True, check=True).stdout

    git("init", "--quiet")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "fleet")
    (inv / "notes.txt").write_text("someone's uncommitted work\n")
    journal = Journal(inv.parent / "journal.db")
    try:
        change = write_back(migration(inv), inv, journal=journal)
    finally:
        journal.close()
    assert change.written and change.journal_seq is not None
    commit = commit_change(change)
    assert commit and git("rev-parse", "HEAD").strip() == commit
    assert git("log", "-1", "--format=%s %an").strip() == (
        f"ipsinfra migrate: VPS1003(113.10) (journal #{change.journal_seq}) ipsinfra"
    )
    shown = set(git("show", "--name-status", "--format=", "HEAD").split())
    assert {"hosts.yml", "host_vars/VPS1003-113-10.yml", "host_vars/VPS1003-113-20.yml"} <= shown
    assert "?? notes.txt" in git("status", "--porcelain")  # not ours: left alone
    assert commit_change(write_back(migration(load_ok(inv)), inv)) is None  # nothing written, no commit


def test_block_values_and_inline_host_vars() -> None:
    hosts = "all:\n  children:\n    vds:\n      hosts:\n        VPS1-1-2:\n          node: kvm1\n"
    hosts += "    dedicated:\n"
    assert add_host(hosts, "hosts.yml", "vds", "VPS2-1-2") == hosts.replace(
        "    dedicated:", "        VPS2-1-2:\n    dedicated:"
    )
    text = "---\nnics:\n  - mac: '52:54:00:00:00:01'\n# about ips\nips: [1.2.3.4]\n"
    assert set_keys(text, "x", {"nics": DELETE}) == "---\n# about ips\nips: [1.2.3.4]\n"


@pytest.mark.parametrize("path", sorted((EXAMPLE / "host_vars").glob("*.yml")), ids=lambda p: p.name)
def test_every_example_file_changes_one_line_per_key(path: Path) -> None:
    """Each top-level key of each example host_vars file, changed alone: that line and no other."""
    import yaml

    text = path.read_text()
    data = yaml.safe_load(text)
    assert set_keys(text, path.name, data) == text  # its own values: no change at all
    for key, value in data.items():
        if isinstance(value, bool):
            new: object = not value
        elif isinstance(value, int):
            new = value + 1
        elif isinstance(value, list):
            new = [*value, value[0]] if value else ["x"]
        else:
            new = f"{value}-changed"
        out = set_keys(text, path.name, {key: new})
        old_lines, new_lines = text.splitlines(), out.splitlines()
        assert len(old_lines) == len(new_lines), key
        changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
        assert len(changed) == 1 and new_lines[changed[0]].startswith(f"{key}:"), key
        assert yaml.safe_load(out)[key] == new, key
