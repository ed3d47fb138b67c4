"""A write-back that changes several files is all or nothing (issue 17).

A §9.10 migration renames a host_vars file and its hosts.yml entry; with a
block of another VDS in the same write-back, three files are replaced and one
removed. A failure between two ``os.replace`` calls, or the writing process
killed (SIGKILL) at any step, must leave the inventory either wholly as before
or wholly as after once the next load or write-back has run: never hosts.yml
naming a host whose host_vars file is still under its old name.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ipsinfra.inventory import load, writeback
from ipsinfra.inventory.atomic import PENDING_NAME
from ipsinfra.inventory.writeback import RecordUpdate, WriteBackError, updates_of, write_updates
from ipsinfra.journal import Journal
from ipsinfra.migrate import MigrationResult, plan_migration
from tests.unit.test_inventory import ansible_list

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "inventory" / "example"
OLD_HOST, NEW_HOST = "host_vars/VPS1003-113-20.yml", "host_vars/VPS1003-113-10.yml"
BLOCKED = "host_vars/VPS1001-113-10.yml"
HOOKED = ("replace", "unlink", "link", "fsync", "rename")  # every step a crash can fall between


def visible(root: Path) -> dict[str, bytes]:
    """The inventory as Ansible and ipsinfra read it (hidden files are neither's)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def hidden(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob(".*")
        if p.is_file() and p.name != ".ipsinfra-inventory.lock"
    }


def updates(inv: Path) -> list[RecordUpdate]:
    """A migration with the §9.10 rename, and a block of another VDS: 3 files replaced, 1 removed."""
    fleet = load(inv)
    vds = fleet.vds["VPS1003(113.20)"]
    plan = plan_migration(vds, fleet.nodes[vds.node], fleet.nodes["kvm1"])
    block = RecordUpdate(
        action="block", name="VPS1001(113.10)", values={"blocked": True, "blocked_reason": "malware"}
    )
    return [*updates_of(MigrationResult(plan=plan, changed=True)), block]


@pytest.fixture
def states(tmp_path: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The example inventory before and after the write-back, from a run nobody interrupted."""
    clean = tmp_path / "clean"
    shutil.copytree(EXAMPLE, clean)
    before = visible(clean)
    change = write_updates(updates(clean), clean)
    assert change.written, change.error
    after = visible(clean)
    assert set(before) - set(after) == {OLD_HOST} and set(after) - set(before) == {NEW_HOST}
    assert after["hosts.yml"] != before["hosts.yml"] and after[BLOCKED] != before[BLOCKED]
    assert hidden(clean) == set()
    return before, after


def fresh(tmp_path: Path, name: str) -> Path:
    inv = tmp_path / name
    shutil.copytree(EXAMPLE, inv)
    return inv


def failing_on(n: int, inv: Path) -> tuple[Callable[..., Any], list[int]]:
    """``os.replace`` that fails on its ``n``-th call into ``inv`` (the disk full, a read-only remount)."""
    real = os.replace
    calls = [0]

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if str(dst).startswith(str(inv)):
            calls[0] += 1
            if calls[0] == n:
                raise OSError(28, "No space left on device")
        real(src, dst, *args, **kwargs)

    return replace, calls


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_a_failed_replace_rolls_every_file_back(
    tmp_path: Path,
    n: int,
    states: tuple[dict[str, bytes], dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Replace 1 is the intent record, 2-4 the three files: after any failure, nothing changed."""
    before, after = states
    inv = fresh(tmp_path, "inv")
    todo = updates(inv)
    replace, calls = failing_on(n, inv)
    monkeypatch.setattr(os, "replace", replace)
    journal = Journal(tmp_path / "journal.db")
    try:
        change = write_updates(todo, inv, journal=journal)
        entries = journal.entries()
    finally:
        journal.close()
    monkeypatch.undo()
    assert calls[0] >= n
    assert not change.written and change.error is not None
    assert "No space left on device" in change.error
    if n > 1:
        assert "cannot be replaced" in change.error and "nothing changed" in change.error
    assert visible(inv) == before
    assert hidden(inv) == set()  # no temp file, backup or intent left behind
    assert entries[-1].action == "inventory.write_back" and entries[-1].result == "failed"
    assert "+vds_name: VPS1003(113.10)" in change.diff()  # what to change by hand
    # The next write-back works and gives exactly what an uninterrupted one gives.
    again = write_updates(updates(inv), inv)
    assert again.written, again.error
    assert visible(inv) == after


def crash_at(n: int, inv: Path, todo: list[RecordUpdate]) -> int | None:
    """Run the write-back in a child killed with SIGKILL at its ``n``-th file-system step.

    Returns the signal that ended the child, or None when it finished before step ``n``.
    """
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            scratch = inv.parent / "scratch"  # what a crash leaks from the write-back's check stays here
            scratch.mkdir(exist_ok=True)
            tempfile.tempdir = str(scratch)
            count = [0]
            armed = [False]  # counting starts with the transaction (the checks before it write nothing)

            def hook(real: Callable[..., Any]) -> Callable[..., Any]:
                def step(*args: Any, **kwargs: Any) -> Any:
                    count[0] += armed[0]
                    if count[0] == n:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return real(*args, **kwargs)

                return step

            for name in HOOKED:
                setattr(os, name, hook(getattr(os, name)))
            transaction = writeback.write_atomically

            def armed_transaction(*args: Any) -> None:
                armed[0] = True
                transaction(*args)

            writeback.write_atomically = armed_transaction  # type: ignore[assignment]
            code = 0 if write_updates(todo, inv).written else 71
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status)
    assert os.WEXITSTATUS(status) == 0, f"step {n}: the write-back failed without a crash"
    return None


@pytest.mark.slow  # one forked writer per step: about 25 of them
def test_a_crash_at_any_step_leaves_all_old_or_all_new(
    tmp_path: Path, states: tuple[dict[str, bytes], dict[str, bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    """The writer is killed at its 1st, 2nd, ... file-system call until one run completes."""
    before, after = states
    pristine = fresh(tmp_path, "pristine")
    todo = updates(pristine)
    mixed: list[int] = []
    outcomes: dict[str, int] = {"old": 0, "new": 0}
    n = 0
    while True:
        n += 1
        assert n < 100, "the write-back never completed"
        inv = tmp_path / f"inv{n}"
        shutil.copytree(pristine, inv)
        killed = crash_at(n, inv, todo)
        if killed is None:
            assert visible(inv) == after and hidden(inv) == set()
            break
        assert killed == signal.SIGKILL
        seen = visible(inv)
        if seen not in (before, after):
            mixed.append(n)  # half-changed on disk until the next load or write-back
            assert (inv / PENDING_NAME).exists(), f"step {n}: half-changed and no intent to roll back"
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ipsinfra.inventory.atomic"):
            fleet = load(inv)  # rolls an interrupted write-back back, under the lock
        now = visible(inv)
        assert now in (before, after), f"step {n}: the inventory is half-changed after recovery"
        outcomes["old" if now == before else "new"] += 1
        assert not (inv / PENDING_NAME).exists()
        if (n in mixed) or seen != now:
            assert "rolled back a write-back interrupted" in caplog.text
        names = "VPS1003(113.20)" if now == before else "VPS1003(113.10)"
        assert names in fleet.vds
        if n in mixed[:1] or n in mixed[-1:]:
            listed = ansible_list(inv, tmp_path)  # Ansible reads the rolled-back inventory too
            assert "VPS1003-113-20" in listed["vds"]["hosts"]
            assert "VPS1003-113-10" not in listed["_meta"]["hostvars"]
        again = write_updates(todo, inv)  # the next write-back works
        assert again.ok, f"step {n}: {again.error}"
        assert visible(inv) == after and hidden(inv) == set(), f"step {n}"
        shutil.rmtree(inv)
    # The interesting crashes happened: between the replaces the disk really was half-changed.
    assert len(mixed) >= 3, mixed
    assert outcomes["old"] > 0 and outcomes["new"] > 0, outcomes


class Crash(BaseException):
    """The process stops dead (no ``except Exception`` sees it, no rollback runs)."""


def crashed_in_process(inv: Path, todo: list[RecordUpdate], n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The write-back stopped at its ``n``-th ``os.replace`` (1: the intent; 2-4: the files)."""
    real = os.replace
    calls = [0]

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] == n:
            raise Crash
        real(src, dst, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(os, "replace", replace)
        with pytest.raises(Crash):
            write_updates(todo, inv)
    assert (inv / PENDING_NAME).exists()


def test_a_file_edited_by_hand_after_a_crash_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery puts back only files it can prove are the write-back's: a hand edit stops it."""
    inv = fresh(tmp_path, "inv")
    todo = updates(inv)
    crashed_in_process(inv, todo, 4, monkeypatch)  # hosts.yml renamed the host; the block not written
    hosts = (inv / "hosts.yml").read_text()
    assert "VPS1003-113-10:" in hosts and (inv / OLD_HOST).exists() and (inv / NEW_HOST).exists()
    intent = json.loads((inv / PENDING_NAME).read_text())
    assert {e["path"] for e in intent["files"]} == {"hosts.yml", NEW_HOST, BLOCKED}
    (inv / "hosts.yml").write_text(hosts + "# a note someone added\n")
    with pytest.raises(WriteBackError) as caught:
        load(inv)
    message = str(caught.value)
    assert f"{inv / 'hosts.yml'}: changed by hand since an interrupted write-back" in message
    assert ".hosts.yml." in message and ".ipsinfra-old" in message  # where the old text is
    assert (inv / PENDING_NAME).exists()  # nothing decided for the person
    assert "# a note someone added" in (inv / "hosts.yml").read_text()
    change = write_updates(todo, inv)
    assert not change.written and change.error is not None and "changed by hand" in change.error


def test_a_rollback_is_journalled_by_the_next_write_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = fresh(tmp_path, "inv")
    todo = updates(inv)
    crashed_in_process(inv, todo, 4, monkeypatch)
    journal = Journal(tmp_path / "journal.db")
    try:
        change = write_updates(todo, inv, journal=journal)
        lines = [(e.action, e.result, e.target) for e in journal.entries()]
    finally:
        journal.close()
    assert change.written, change.error
    assert [a for a, _, _ in lines] == ["inventory.rollback", "inventory.write_back"]
    assert lines[0][2] == f"{inv}: {NEW_HOST}, hosts.yml"


# --- bad input: a clear message naming the file, nothing half-written -------------------------
def test_a_vds_file_renamed_by_another_process_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Renamed after the write-back read the inventory, before it wrote: nothing of ours written."""
    inv = fresh(tmp_path, "inv")
    todo = updates(inv)
    real_verify = writeback._verify

    def verify_then_rename(*args: Any) -> None:
        real_verify(*args)
        (inv / OLD_HOST).rename(inv / "host_vars" / "VPS1003-moved.yml")  # another process, meanwhile

    monkeypatch.setattr(writeback, "_verify", verify_then_rename)
    journal = Journal(tmp_path / "journal.db")
    try:
        change = write_updates(todo, inv, journal=journal)
        last = journal.entries()[-1]
    finally:
        journal.close()
    assert not change.written and change.error is not None
    assert change.error.startswith(f"{inv / OLD_HOST}: is gone since this write-back read it")
    assert "another process" in change.error and "nothing written" in change.error
    seen = visible(inv)
    assert seen["hosts.yml"] == (EXAMPLE / "hosts.yml").read_bytes()  # not half-renamed
    assert NEW_HOST not in seen and seen[BLOCKED] == (EXAMPLE / BLOCKED).read_bytes()
    assert seen["host_vars/VPS1003-moved.yml"] == (EXAMPLE / OLD_HOST).read_bytes()
    assert hidden(inv) == set()
    assert (last.action, last.result) == ("inventory.write_back", "failed")
    assert "+vds_name: VPS1003(113.10)" in change.diff()  # what the record should say, by hand


def test_hosts_yml_edited_meanwhile_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = fresh(tmp_path, "inv")
    todo = updates(inv)
    real_verify = writeback._verify

    def verify_then_edit(*args: Any) -> None:
        real_verify(*args)
        with (inv / "hosts.yml").open("a", encoding="utf-8") as fh:
            fh.write("# someone's edit\n")

    monkeypatch.setattr(writeback, "_verify", verify_then_edit)
    change = write_updates(todo, inv)
    assert not change.written and change.error is not None
    assert change.error.startswith(f"{inv / 'hosts.yml'}: changed since this write-back read it")
    assert (inv / "hosts.yml").read_text(encoding="utf-8").endswith("# someone's edit\n")
    assert (inv / OLD_HOST).exists() and not (inv / NEW_HOST).exists() and hidden(inv) == set()


def test_a_syntax_error_in_another_host_vars_file_is_named(tmp_path: Path) -> None:
    """A hand-edited file the change does not touch still stops it: the file and line, nothing written."""
    inv = fresh(tmp_path, "inv")
    todo = updates(inv)
    bad = inv / "host_vars" / "VPS1005-100-30.yml"
    bad.write_text(bad.read_text(encoding="utf-8") + "ips: [198.51.100.105\n", encoding="utf-8")
    before = visible(inv)
    change = write_updates(todo, inv)
    assert not change.written and change.error is not None
    assert change.error.startswith(f"{bad}: line "), change.error
    assert visible(inv) == before and hidden(inv) == set()
