"""Issue 21 / issue 17: ``abuse watch`` and ``abuse handle`` never drop an inventory write-back
failure silently.

A block is written back into the VDS's record (``blocked``, ``blocked_reason``, ``autostart``).
Where the write-back cannot write, the block stands, the mail is done (the fleet changed and
it is journalled), and the run says exactly what to change by hand and exits 1: a person
must act. Two genuine failures, on a real inventory on disk:

- a host_vars file the write-back refuses by its content (a flow mapping, ``{...}``): no
  diff can be made, so the report says what the record must say;
- a host_vars folder that cannot be written (``chattr +i``: root ignores file modes, not
  the immutable flag): the diff to apply by hand.

What happened is read back from the journal, the inventory files and the Maildir, not
from the report alone.
"""

from __future__ import annotations

import contextlib
import json
import mailbox
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing, require_binary
from tests.integration.test_abuse_blast_radius import ABUSE, DC, IPS, _inventory, read_host_vars, zeus
from tests.integration.test_abuse_mailbox import journal_actions, run, zeus_one

REFUSED = "host_vars/VPS4005-3-13.yml"  # the record of VPS4005(3.13), IPS[5] on kvm3
FINE = "host_vars/VPS4003-2-12.yml"  # the record of VPS4003(2.12), IPS[3] on kvm2
MUST_SAY = "VPS4005(3.13): blocked: true, blocked_reason: malware, autostart: false (where the record has it)"
FLOW_ERROR = f"{REFUSED}: line 1: expected a block mapping of host variables"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("IPSINFRA_LOCK_DIR", str(tmp_path / "locks"))
    inv = _inventory(tmp_path)
    journal = tmp_path / "j.sqlite3"
    args = ["-i", str(inv), "--journal", str(journal), "--abuse-from", ABUSE]
    args += ["--outbox", str(tmp_path / "outbox"), "--no-dnsbl"]
    return {"inventory": inv, "journal": journal, "args": args}


def flow_style(record: Path) -> str:
    """Rewrite a host_vars file as one flow mapping (valid YAML that Ansible reads; the write-back
    edits block mappings only and refuses it). Returns the text now on disk."""
    text = json.dumps(read_host_vars(record)) + "\n"
    record.write_text(text, encoding="utf-8")
    return text


@contextlib.contextmanager
def immutable(folder: Path) -> Iterator[None]:
    """``chattr +i``: nothing can be created, replaced or removed in ``folder``, not even by root."""
    chattr = require_binary("chattr", "apt-get install e2fsprogs")
    done = subprocess.run([chattr, "+i", str(folder)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        missing(f"chattr +i {folder}: {done.stderr.strip()} (needs root on ext4/xfs/btrfs)")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def maildir_with(root: Path, raws: list[bytes]) -> Path:
    box = mailbox.Maildir(root, create=True)
    keys = [box.add(raw) for raw in raws]
    box.close()
    for n, key in enumerate(keys):  # arrival order: the order they are handled in
        os.utime(root / "new" / key, (1_800_000_000 + 60 * n,) * 2)
    return root


# --------------------------------------------------------------------------- abuse watch


def test_watch_a_record_the_write_back_refuses_is_a_problem_exit_1_the_block_stands_the_mail_is_done(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    refused = flow_style(site["inventory"] / REFUSED)
    md = maildir_with(
        tmp_path / "Maildir",
        [zeus_one(IPS[5], "wb-refused@dc-lab.example"), zeus_one(IPS[3], "wb-fine@dc-lab.example")],
    )
    source = f"maildir:{md}"
    rc, out, err = run(["abuse", "watch", source, *site["args"], "--json"], capsys)
    assert rc == 1, out + err  # the inventory needs a person
    report = json.loads(out)
    first, second = report["messages"]
    assert [m["status"] for m in report["messages"]] == ["done", "done"]
    assert first["services"] == [f"{IPS[5]} (VPS4005(3.13)): blocked"]
    assert first["problems"] == [f"inventory not updated: {FLOW_ERROR}; apply by hand: {MUST_SAY}"]
    change = first["inventory_change"]
    assert (change["written"], change["error"], change["files"], change["diff"]) == (
        False,
        FLOW_ERROR,
        [],
        "",
    )
    assert change["by_hand"] == [MUST_SAY]
    # The other message's record was written: one bad file never stops the others.
    assert second["services"] == [f"{IPS[3]} (VPS4003(2.12)): blocked"] and second["problems"] == []
    assert second["inventory_change"]["written"] is True and second["inventory_change"]["files"] == [FINE]
    assert "+blocked: true" in second["inventory_change"]["diff"]
    assert report["exit_code"] == 1 and report["summary"] == f"{source}: 2 done, 1 with problems"

    # The fleet changed (both blocks journalled); the refused file is byte for byte as it was.
    assert [(b.target, b.result) for b in journal_actions(site["journal"], "vds.block")] == [
        ("kvm3/VPS4005(3.13)", "ok"),
        ("kvm2/VPS4003(2.12)", "ok"),
    ]
    assert (site["inventory"] / REFUSED).read_text(encoding="utf-8") == refused
    fine = read_host_vars(site["inventory"] / FINE)
    assert (fine["blocked"], fine["blocked_reason"], fine["autostart"]) == (True, "malware", False)
    # One journal line per write-back, the failed one naming the file and the reason.
    written = journal_actions(site["journal"], "inventory.write_back")
    assert [(w.result, w.detail) for w in written] == [
        ("failed", FLOW_ERROR),
        ("ok", f"inventory updated: {FINE}"),
    ]
    mails = journal_actions(site["journal"], "abuse.mail")
    assert [m.result for m in mails] == ["failed", "ok"]
    assert mails[0].detail.endswith(f"; inventory NOT updated: {FLOW_ERROR}")
    # Both done: marked in the Maildir and remembered; the next run acts on neither again.
    assert os.listdir(md / "new") == [] and len(os.listdir(md / "cur")) == 2
    rc, out, err = run(["abuse", "watch", source, *site["args"]], capsys)
    assert (rc, out.strip()) == (0, f"{source}: nothing new"), err
    assert len(journal_actions(site["journal"], "vds.block")) == 2


@pytest.mark.root
def test_watch_an_unwritable_inventory_prints_the_diff_to_apply_by_hand(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    md = maildir_with(tmp_path / "Maildir", [zeus_one(IPS[5], "wb-ro@dc-lab.example")])
    before = (site["inventory"] / REFUSED).read_text(encoding="utf-8")
    with immutable(site["inventory"] / "host_vars"):
        rc, out, err = run(["abuse", "watch", f"maildir:{md}", *site["args"]], capsys)
    assert rc == 1, out + err
    lines = out.splitlines()
    reason = f"{site['inventory'] / REFUSED}: cannot be written: Operation not permitted"
    assert f"  PROBLEM: inventory not updated: {reason}; apply by hand: {REFUSED}" in lines
    diff = lines[lines.index(f"    --- a/{REFUSED}") :]
    for line in (
        "    -autostart: true",
        "    +autostart: false",
        "    +blocked: true",
        "    +blocked_reason: malware",
    ):
        assert line in diff, out
    assert lines[-1].endswith(": 1 done, 1 with problems")
    assert (site["inventory"] / REFUSED).read_text(encoding="utf-8") == before
    assert [b.target for b in journal_actions(site["journal"], "vds.block")] == ["kvm3/VPS4005(3.13)"]
    [line] = journal_actions(site["journal"], "inventory.write_back")
    assert line.result == "failed" and line.detail == reason and line.after == {"files": [REFUSED]}
    assert os.listdir(md / "new") == []  # done: the block happened


def test_watch_check_names_a_record_the_write_back_would_refuse(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flow_style(site["inventory"] / REFUSED)
    md = maildir_with(tmp_path / "Maildir", [zeus_one(IPS[5], "wb-check@dc-lab.example")])
    rc, out, err = run(["abuse", "watch", f"maildir:{md}", *site["args"], "--check", "--json"], capsys)
    assert rc == 1, out + err
    [message] = json.loads(out)["messages"]
    assert message["status"] == "checked"
    # --check plans the block without its outcome: only ``blocked`` is known to change.
    by_hand = "VPS4005(3.13): blocked: true"
    assert message["problems"] == [f"inventory would not be updated: {FLOW_ERROR}; apply by hand: {by_hand}"]
    assert journal_actions(site["journal"], "inventory.write_back") == []
    assert journal_actions(site["journal"], "vds.block") == [] and len(os.listdir(md / "new")) == 1


# --------------------------------------------------------------------------- abuse handle


def test_handle_json_reports_the_failed_write_back_and_exits_1(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flow_style(site["inventory"] / REFUSED)
    complaint = tmp_path / "one.eml"
    complaint.write_text(zeus(DC, [IPS[5]], msgid="handle-wb@dc-lab.example"), encoding="utf-8")
    rc, out, err = run(["abuse", "handle", str(complaint), *site["args"], "--json"], capsys)
    assert rc == 1, out + err
    data = json.loads(out)
    assert [s["action"] for s in data["services"]] == ["blocked"] and data["letter_problems"] == []
    change = data["inventory_change"]
    assert (change["error"], change["by_hand"], change["written"]) == (FLOW_ERROR, [MUST_SAY], False)
    assert change["problem"] == f"inventory not updated: {FLOW_ERROR}; apply by hand: {MUST_SAY}"
    [block] = journal_actions(site["journal"], "vds.block")
    assert block.target == "kvm3/VPS4005(3.13)" and block.result == "ok"
    [line] = journal_actions(site["journal"], "inventory.write_back")
    assert (line.result, line.detail) == ("failed", FLOW_ERROR)

    # The text output says the same: what the record must say, by hand.
    again = tmp_path / "two.eml"
    again.write_text(zeus(DC, [IPS[5]], msgid="handle-wb-2@dc-lab.example"), encoding="utf-8")
    rc, out, err = run(["abuse", "handle", str(again), *site["args"]], capsys)
    assert rc == 1, out + err
    assert f"{IPS[5]} (VPS4005(3.13)): blocked" in out.splitlines()  # each run opens test:/// anew
    assert f"inventory NOT updated: {FLOW_ERROR}" in out.splitlines()
    assert f"  by hand: {MUST_SAY}" in out.splitlines()


def test_handle_writes_the_record_back_exit_0(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    complaint = tmp_path / "one.eml"
    complaint.write_text(zeus(DC, [IPS[5]], msgid="handle-ok@dc-lab.example"), encoding="utf-8")
    rc, out, err = run(["abuse", "handle", str(complaint), *site["args"], "--json"], capsys)
    assert rc == 0, out + err
    change = json.loads(out)["inventory_change"]
    assert (change["written"], change["files"], change["problem"]) == (True, [REFUSED], None)
    record = read_host_vars(site["inventory"] / REFUSED)
    assert (record["blocked"], record["blocked_reason"], record["autostart"]) == (True, "malware", False)
    # A second handling finds the record as the fleet: nothing to write, nothing to report.
    rc, out, err = run(["abuse", "handle", str(complaint), *site["args"], "--json"], capsys)
    assert rc == 0 and json.loads(out)["inventory_change"] is None, out + err
    assert len(journal_actions(site["journal"], "inventory.write_back")) == 1


# --------------------------------------------------------------------------- playbooks/abuse_watch.yml


@pytest.mark.slow
def test_the_playbook_turns_red_and_reports_what_to_change_by_hand(
    site: dict[str, Any], tmp_path: Path
) -> None:
    from ipsinfra import playbooks

    refused = flow_style(site["inventory"] / REFUSED)
    md = maildir_with(tmp_path / "Maildir", [zeus_one(IPS[5], "wb-play@dc-lab.example")])
    result = playbooks.run(
        "abuse_watch",
        site["inventory"],
        extravars={
            "ipsinfra_journal": str(site["journal"]),
            "abuse_source": f"maildir:{md}",
            "abuse_from": ABUSE,
            "abuse_outbox": str(tmp_path / "outbox"),
            "abuse_dnsbl": False,
        },
        envvars={"IPSINFRA_LOCK_DIR": str(tmp_path / "locks")},
        timeout=180,
    )
    assert not result.ok
    assert ": 1 done, 1 with problems: a message needs a person" in result.failures["localhost"]
    stats = result.data["abuse_watch"]
    assert stats["statuses"] == ["done"] and str(stats["exit_code"]) == "1"
    assert stats["problems"] == [f"inventory not updated: {FLOW_ERROR}; apply by hand: {MUST_SAY}"]
    assert [b.target for b in journal_actions(site["journal"], "vds.block")] == ["kvm3/VPS4005(3.13)"]
    assert (site["inventory"] / REFUSED).read_text(encoding="utf-8") == refused
    assert os.listdir(md / "new") == []
