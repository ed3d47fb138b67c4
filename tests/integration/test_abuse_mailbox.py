"""Issue 21 builds 3 and 5: ``ipsinfra abuse fetch`` / ``abuse watch`` against a REAL IMAP
server (Debian's Dovecot, tests/dovecot.py: loopback, TLS required, a certificate the
client verifies), and against Maildir and mbox files.

The fleet is the blast-radius tests' one: real libvirt test-driver nodes from an
inventory on disk. What a run did is read back from the IMAP server (flags,
folders), the files, the journal and the outbox, never from the report alone.
"""

from __future__ import annotations

import datetime as dt
import json
import mailbox
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipsinfra import cli
from ipsinfra.journal import Journal
from tests.conftest import missing, require_binary
from tests.dovecot import DOVECOT, PASSWORD, DovecotServer, DovecotUnavailable, free_port, make_ca
from tests.integration.test_abuse_blast_radius import (
    ABUSE,
    DC,
    IPS,
    _inventory,
    read_host_vars,
    write_host_vars,
)
from tests.unit import hostile_mail

DONE = "$IpsinfraDone"
FAILED = "$IpsinfraFailed"
ARRIVED = dt.datetime(2026, 12, 5, 8, 30, tzinfo=dt.UTC)


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    require_binary(DOVECOT, "apt-get install dovecot-imapd (scripts/dev setup does)")
    try:
        server = DovecotServer()
    except DovecotUnavailable as exc:
        missing(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("IPSINFRA_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.delenv("IPSINFRA_IMAP_PASSWORD", raising=False)
    inv = _inventory(tmp_path)
    journal = tmp_path / "j.sqlite3"
    outbox = tmp_path / "outbox"
    args = [
        "-i",
        str(inv),
        "--journal",
        str(journal),
        "--abuse-from",
        ABUSE,
        "--outbox",
        str(outbox),
        "--no-dnsbl",
    ]
    return {"inventory": inv, "journal": journal, "outbox": outbox, "args": args}


def message(sender: str, subject: str, body: str, msgid: str | None, *, date: bool = False) -> bytes:
    """A complaint as a mail server delivers it; no Received: header, so the mailbox's date counts."""
    head = f"From: Reporter <{sender}>\r\nTo: {ABUSE}\r\nSubject: {subject}\r\n"
    if msgid is not None:
        head += f"Message-ID: <{msgid}>\r\n"
    if date:
        head += "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"  # the complainant's claim: never the receipt time
    return (head + "\r\n" + body.replace("\n", "\r\n") + "\r\n").encode()


def zeus_one(ip: str, msgid: str) -> bytes:
    """A trusted DC naming one of our servers: blocked at once (§7.3)."""
    return message(DC, "Zeus malware", f"This host serves Zeus malware: {ip}", msgid)


def spam(ip: str, msgid: str) -> bytes:
    """Not immediate: a deadline."""
    return message("reports@spamcop.example", "Spam report", f"Spam sent from {ip}, see the logs.", msgid)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = cli.main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def journal_actions(path: Path, action: str) -> list[Any]:
    with Journal(path) as jr:
        return list(jr.entries(action=action))


def imap_args(server: DovecotServer, *extra: str) -> list[str]:
    return [server.url(), "--ca-file", str(server.ca_file), *extra]


@pytest.fixture
def imap_password(site: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The IMAP password in $IPSINFRA_IMAP_PASSWORD (set after ``site`` clears it)."""
    monkeypatch.setenv("IPSINFRA_IMAP_PASSWORD", PASSWORD)


@pytest.fixture
def imap(dovecot: DovecotServer, imap_password: None) -> DovecotServer:
    """The Dovecot server, its password in $IPSINFRA_IMAP_PASSWORD."""
    return dovecot


def watch(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], source: str | list[str], *extra: str
) -> tuple[int, str, str]:
    """``ipsinfra abuse watch SOURCE`` on the site's inventory, journal and outbox, then ``extra``."""
    sources = [source] if isinstance(source, str) else source
    return run(["abuse", "watch", *sources, *site["args"], *extra], capsys)


def assert_nothing_new(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], source: str | list[str], label: str, *extra: str
) -> str:
    """A second run finds nothing to do: exit 0 and one line naming the source (``label``); its output."""
    rc, out, err = watch(site, capsys, source, *extra)
    assert (rc, out.strip()) == (0, f"{label}: nothing new"), out + err
    return out + err


def password_file(tmp_path: Path, mode: int) -> Path:
    secret = tmp_path / "imap.pw"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    secret.chmod(mode)
    return secret


def maildir(tmp_path: Path, *raws: bytes) -> tuple[Path, list[str]]:
    """``tmp_path/Maildir`` holding ``raws`` as new mail; its folder and the messages' keys."""
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    keys = [box.add(raw) for raw in raws]
    box.close()
    return tmp_path / "Maildir", keys


# --------------------------------------------------------------------------- IMAP


def test_watch_imap_handles_new_mail_once_marks_it_and_a_second_run_does_nothing(
    imap: DovecotServer, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    imap.append(zeus_one(IPS[5], "zeus-1@dc-lab.example"), when=ARRIVED)
    imap.append(spam(IPS[0], "spam-1@spamcop.example"), when=ARRIVED)
    imap.append(spam("192.0.2.200", "spam-2@spamcop.example"), when=ARRIVED)  # not ours

    rc, out, err = watch(site, capsys, imap_args(imap), "--json")
    assert rc == 0, out + err
    report = json.loads(out)
    assert [m["status"] for m in report["messages"]] == ["done", "done", "done"]
    zeus, ours, not_ours = report["messages"]
    assert zeus["services"] == [f"{IPS[5]} (VPS4005(3.13)): blocked"] and zeus["immediate"] is True
    assert ours["services"] == [f"{IPS[0]} (VPS4000(1.11)): deadline"] and ours["category"] == "spam"
    assert not_ours["services"] == ["192.0.2.200 (not ours): not ours"]
    # No Received: header and a Date: that lies: the receipt time is the server's INTERNALDATE.
    assert {dt.datetime.fromisoformat(m["received_at"]) for m in report["messages"]} == {ARRIVED}
    assert report["summary"].endswith(": 3 done") and report["exit_code"] == 0
    # Marked on the server, as a person's mail client would see it.
    assert imap.flags() == [{DONE}, {DONE}, {DONE}]
    [block] = journal_actions(site["journal"], "vds.block")
    assert block.target == "kvm3/VPS4005(3.13)"
    assert len(journal_actions(site["journal"], "abuse.mail")) == 3
    # The record follows the fleet: only the blocked VDS's host_vars changed.
    record = read_host_vars(site["inventory"] / "host_vars" / "VPS4005-3-13.yml")
    assert (record["blocked"], record["blocked_reason"], record["autostart"]) == (True, "malware", False)
    assert "blocked" not in read_host_vars(site["inventory"] / "host_vars" / "VPS4000-1-11.yml")
    assert zeus["inventory_change"]["files"] == ["host_vars/VPS4005-3-13.yml"]
    assert zeus["inventory_change"]["written"] is True and zeus["problems"] == []
    assert ours["inventory_change"] is None and not_ours["inventory_change"] is None
    [written] = journal_actions(site["journal"], "inventory.write_back")
    assert written.result == "ok" and written.after == {"files": ["host_vars/VPS4005-3-13.yml"]}
    letters = sorted(p.name for p in site["outbox"].iterdir())
    assert letters and any("client_ticket" in name for name in letters), letters
    outbox_before = sorted(site["outbox"].iterdir())

    output = assert_nothing_new(site, capsys, imap_args(imap), imap.url())
    assert len(journal_actions(site["journal"], "vds.block")) == 1
    assert len(journal_actions(site["journal"], "abuse.mail")) == 3
    assert sorted(site["outbox"].iterdir()) == outbox_before
    assert PASSWORD not in output
    with Journal(site["journal"]) as jr:
        assert PASSWORD not in json.dumps([e.model_dump(mode="json") for e in jr.entries()])


def test_watch_imap_moves_to_the_done_folder_and_sets_seen(
    dovecot: DovecotServer, site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    secret = password_file(tmp_path, 0o600)
    dovecot.append(spam(IPS[1], "spam-9@spamcop.example"))
    source = imap_args(dovecot, "--password-file", str(secret))
    rc, out, err = watch(site, capsys, source, "--done-folder", "Done", "--seen")
    assert rc == 0, out + err
    assert dovecot.flags() == []
    assert dovecot.flags("Done") == [{DONE, "\\Seen"}]


def test_the_same_complaint_twice_acts_once(
    imap: DovecotServer, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Forwarded twice (two copies, one Message-ID): one block, one set of letters; both marked."""
    raw = zeus_one(IPS[5], "twice@dc-lab.example")
    imap.append(raw)
    imap.append(b"X-Forwarded-By: a colleague\r\n" + raw)
    rc, out, err = watch(site, capsys, imap_args(imap), "--json")
    assert rc == 0, out + err
    statuses = [m["status"] for m in json.loads(out)["messages"]]
    assert statuses == ["done", "duplicate"]
    assert len(journal_actions(site["journal"], "vds.block")) == 1
    tickets = [p for p in site["outbox"].iterdir() if "client_ticket" in p.name]
    assert len(tickets) == 1
    assert imap.flags() == [{DONE}, {DONE}]


def test_a_broken_message_among_good_ones_is_reported_and_marked_failed_not_done(
    imap: DovecotServer, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    imap.append(spam(IPS[0], "good-1@spamcop.example"))
    imap.append(hostile_mail.nested_multipart(depth=100))  # deeper than the intake's limit of 32
    imap.append(spam(IPS[1], "big@spamcop.example")[:-2] + b"x" * 70_000 + b"\r\n")  # past --max-bytes
    imap.append(spam(IPS[2], "good-2@spamcop.example"))
    rc, out, err = watch(site, capsys, imap_args(imap), "--max-bytes", "65536")
    assert rc == 1, out + err
    assert "Traceback" not in out + err
    lines = out.splitlines()
    assert sum(": done, spam" in line for line in lines) == 2
    assert any("rejected: " in line and "nested deeper than the limit of 32" in line for line in lines), out
    assert any("rejected: " in line and "larger than the limit of 65536 bytes" in line for line in lines), out
    assert lines[-1].endswith(": 2 done, 2 rejected")
    assert imap.flags() == [{DONE}, {FAILED}, {FAILED}, {DONE}]
    refused = [e for e in journal_actions(site["journal"], "abuse.mail") if e.result == "refused"]
    assert len(refused) == 2

    assert_nothing_new(site, capsys, imap_args(imap), imap.url(), "--max-bytes", "65536")


def test_check_and_fetch_change_nothing(
    imap: DovecotServer, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    imap.append(zeus_one(IPS[5], "zeus-c@dc-lab.example"), when=ARRIVED)
    imap.append(spam(IPS[0], "spam-c@spamcop.example"), when=ARRIVED)

    rc, out, err = run(["abuse", "fetch", *imap_args(imap), "--json"], capsys)
    assert rc == 1, out + err  # an immediate complaint is waiting
    found = json.loads(out)["messages"]
    assert [(m["status"], m["category"], m["immediate"]) for m in found] == [
        ("new", "malware", True),
        ("new", "spam", False),
    ]
    assert found[0]["targets"] == [IPS[5]] and found[0]["sender"] == DC
    assert dt.datetime.fromisoformat(found[0]["received_at"]) == ARRIVED

    record = site["inventory"] / "host_vars" / "VPS4005-3-13.yml"
    before = record.read_text(encoding="utf-8")
    rc, out, err = watch(site, capsys, imap_args(imap), "--check")
    assert rc == 0, out + err
    assert f"{IPS[5]} (VPS4005(3.13)): checked" in out and "(--check: nothing changed)" in out
    # What the write-back would do, as a diff; the file is as it was.
    assert "  inventory would update: host_vars/VPS4005-3-13.yml" in out.splitlines()
    assert "    +blocked: true" in out.splitlines()
    assert record.read_text(encoding="utf-8") == before
    assert imap.flags() == [set(), set()]
    assert not site["outbox"].exists() or not list(site["outbox"].iterdir())
    assert journal_actions(site["journal"], "vds.block") == []
    assert journal_actions(site["journal"], "abuse.mail") == []

    rc, out, err = watch(site, capsys, imap_args(imap))
    assert rc == 0 and out.splitlines()[-1].endswith(": 2 done"), out + err


def test_a_proposal_waits_for_a_person_exit_1_and_is_not_proposed_again(
    imap: DovecotServer, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    imap.append(message("someone@evil.example", "Zeus", f"Zeus malware on {IPS[3]}", "p@evil.example"))
    rc, out, err = watch(site, capsys, imap_args(imap))
    assert rc == 1, out + err
    pid = out.split("PROPOSAL ", 1)[1].split(":")[0]
    assert f"ipsinfra abuse handle --confirm {pid}" in out and "proposal(s) waiting: " + pid in out
    assert journal_actions(site["journal"], "vds.block") == []
    assert imap.flags() == [{DONE}]
    rc, out, err = watch(site, capsys, imap_args(imap))
    assert (rc, len(journal_actions(site["journal"], "abuse.proposal"))) == (0, 1), out + err


# --------------------------------------------------------------------------- IMAP failures: exit 2


@pytest.mark.usefixtures("imap_password")
def test_an_unreachable_server_exits_2_naming_it(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nobody listens there
    url = f"imaps://abuse@127.0.0.1:{port}/INBOX"
    rc, _, err = watch(site, capsys, url)
    assert rc == 2
    assert err.strip() == f"ipsinfra: error: {url}: unreachable: Connection refused"
    assert not site["journal"].exists() or journal_actions(site["journal"], "abuse.mail") == []


def test_a_certificate_from_another_ca_exits_2_certificate_verify_failed(
    imap: DovecotServer, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    imap.append(spam(IPS[0], "never-read@spamcop.example"))
    _, other_ca = make_ca(imap.root, "another-ca")
    for extra in (
        ["--ca-file", str(other_ca)],
        [],
    ):  # a private CA that is not the server's; the system's CAs
        rc, out, err = watch(site, capsys, [imap.url(), *extra])
        assert rc == 2, out + err
        [line] = err.strip().splitlines()
        assert line.startswith(f"ipsinfra: error: {imap.url()}: certificate verify failed: "), line
        assert "unable to get local issuer certificate" in line
    login_lines = [x for x in imap.log.read_text().splitlines() if "Login: user=<abuse>" in x]
    assert len(login_lines) == 1  # the fixture's own APPEND: no password was sent to an unverified server
    assert imap.flags() == [set()]


def test_a_wrong_password_exits_2_without_showing_it(
    dovecot: DovecotServer,
    site: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IPSINFRA_IMAP_PASSWORD", "Not-the-password-123")
    rc, out, err = watch(site, capsys, imap_args(dovecot))
    assert rc == 2
    assert (
        err.startswith(f"ipsinfra: error: {dovecot.url()}: login refused: ") and "AUTHENTICATIONFAILED" in err
    )
    assert "Not-the-password-123" not in out + err


@pytest.mark.parametrize(
    ("source", "expect"),
    [
        ("imaps://abuse:Sup3r-secret-pw@127.0.0.1/INBOX", "a password does not belong in the URL"),
        ("imap://abuse@127.0.0.1/INBOX", "plain imap:// would send the password in clear"),
        ("imaps://127.0.0.1/INBOX", "imaps:// needs a user"),
        ("imaps://abuse@127.0.0.1:99999/INBOX", "the port is not a number"),
        ("pop3://abuse@127.0.0.1", "not imaps://"),
    ],
)
@pytest.mark.usefixtures("imap_password")
def test_a_bad_source_exits_2_and_never_echoes_a_password(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], source: str, expect: str
) -> None:
    rc, out, err = watch(site, capsys, source)
    assert rc == 2 and expect in err and len(err.strip().splitlines()) == 1, err
    assert "Sup3r-secret-pw" not in out + err


def test_a_password_file_others_can_read_is_refused(
    dovecot: DovecotServer, site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    secret = password_file(tmp_path, 0o644)
    rc, _, err = watch(site, capsys, imap_args(dovecot, "--password-file", str(secret)))
    assert rc == 2 and "mode 0644 lets others read it; chmod 600" in err
    rc, _, err = watch(site, capsys, imap_args(dovecot))
    assert rc == 2 and "set $IPSINFRA_IMAP_PASSWORD or give --password-file" in err


# --------------------------------------------------------------------------- Maildir and mbox


def test_watch_maildir_moves_new_to_cur_and_a_second_run_does_nothing(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    md, [good, spam_key, broken, read] = maildir(
        tmp_path,
        zeus_one(IPS[5], "md-zeus@dc-lab.example"),
        spam(IPS[0], "md-spam@spamcop.example"),
        hostile_mail.nested_multipart(depth=100),
        spam(IPS[1], "md-read@spamcop.example"),
    )
    # Someone read one message in a mail client (moved to cur/, Seen): not ours to take.
    os.rename(md / "new" / read, md / "cur" / f"{read}:2,S")
    when = ARRIVED.timestamp()
    os.utime(md / "new" / spam_key, (when, when))
    source = f"maildir:{md}"

    rc, out, err = watch(site, capsys, source, "--json")
    assert rc == 1, out + err  # the broken one
    by_id = {m["id"].rsplit("#", 1)[1]: m for m in json.loads(out)["messages"]}
    assert set(by_id) == {good, spam_key, broken}
    assert by_id[good]["status"] == "done" and by_id[good]["services"] == [
        f"{IPS[5]} (VPS4005(3.13)): blocked"
    ]
    assert dt.datetime.fromisoformat(by_id[spam_key]["received_at"]) == ARRIVED  # the file's mtime
    assert by_id[broken]["status"] == "rejected"
    assert sorted(os.listdir(md / "new")) == []
    assert sorted(os.listdir(md / "cur")) == sorted(
        [f"{good}:2,S", f"{spam_key}:2,S", f"{broken}:2,FS", f"{read}:2,S"]
    )

    assert_nothing_new(site, capsys, source, source)
    assert len(journal_actions(site["journal"], "vds.block")) == 1


def test_watch_mbox_acts_once_by_the_store_and_takes_the_from_line_date(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "abuse.mbox"
    box = mailbox.mbox(path, create=True)
    for raw in (zeus_one(IPS[5], "mb-zeus@dc-lab.example"), spam(IPS[0], "mb-spam@spamcop.example")):
        msg = mailbox.mboxMessage(raw)
        msg.set_from("reporter@example.org", ARRIVED.timetuple())
        box.add(msg)
    box.add(mailbox.mboxMessage(spam(IPS[1], None)))  # no Message-ID: remembered by its bytes
    box.close()
    before = path.read_bytes()
    source = f"mbox:{path}"

    rc, out, err = run(["abuse", "fetch", source, "--json"], capsys)
    assert rc == 1, out + err
    found = json.loads(out)["messages"]
    assert [m["status"] for m in found] == ["new"] * 3
    assert dt.datetime.fromisoformat(found[1]["received_at"]) == ARRIVED

    rc, out, err = watch(site, capsys, source)
    assert rc == 0 and out.splitlines()[-1] == f"{source}: 3 done", out + err
    rc, out, err = watch(site, capsys, source)
    assert (rc, out.strip()) == (0, f"{source}: nothing new (3 processed before)"), err
    assert len(journal_actions(site["journal"], "vds.block")) == 1
    assert len(journal_actions(site["journal"], "abuse.mail")) == 3
    assert path.read_bytes() == before  # an mbox is read, never written

    rc, out, err = run(["abuse", "fetch", source, "--journal", str(site["journal"]), "--json"], capsys)
    assert rc == 0 and [m["status"] for m in json.loads(out)["messages"]] == ["seen"] * 3


def test_a_missing_maildir_or_mbox_exits_2(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rc, _, err = watch(site, capsys, f"maildir:{tmp_path / 'nope'}")
    assert rc == 2 and "not a Maildir (no new/ folder)" in err
    rc, _, err = watch(site, capsys, f"mbox:{tmp_path / 'nope.mbox'}")
    assert rc == 2 and "no such file" in err


def test_internaldate_and_from_line_dates_parse() -> None:
    from ipsinfra.abuse.mailbox import _from_line_date, _internaldate

    assert _internaldate(b'1 (UID 7 INTERNALDATE " 5-Dec-2026 11:30:00 +0300" RFC822.SIZE 9)') == ARRIVED
    assert _from_line_date(b"From x@example.org Sat Dec  5 08:30:00 2026\n") == ARRIVED
    assert _from_line_date(b"From x@example.org garbage\n") is None


def shadowserver(msgid: str, rows: list[tuple[str, str]]) -> bytes:
    """A Shadowserver-style daily report: a CSV attachment, one row per (time, IP)."""
    csv = '"timestamp","severity","ip","protocol","port","tag"\r\n' + "".join(
        f'"{when}","medium","{ip}","udp",53,"openresolver"\r\n' for when, ip in rows
    )
    return (
        "From: Shadowserver Autoreports <autoreports@shadowserver.example>\r\n"
        f"To: {ABUSE}\r\nSubject: [Shadowserver Report] DNS Open Resolvers Report\r\n"
        f"Message-ID: <{msgid}>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nPlease find attached the report.\r\n"
        '--b1\r\nContent-Type: text/csv; name="2026-12-05-scan_dns-asn.csv"\r\n'
        'Content-Disposition: attachment; filename="2026-12-05-scan_dns-asn.csv"\r\n\r\n'
        f"{csv}--b1--\r\n"
    ).encode()


def test_a_report_sent_again_under_a_new_message_id_is_a_duplicate_by_its_rows(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = [("2026-12-05 03:12:44", IPS[0]), ("2026-12-05 03:14:02", "192.0.2.11")]
    md, keys = maildir(
        tmp_path,
        shadowserver("ss-1@shadowserver.example", rows),
        shadowserver("ss-1-resent@shadowserver.example", rows),
        shadowserver("ss-2@shadowserver.example", [*rows, ("2026-12-06 03:00:00", IPS[0])]),
    )
    for n, key in enumerate(keys):  # arrival order: the first copy is the one acted on
        when = ARRIVED.timestamp() + 60 * n
        os.utime(md / "new" / key, (when, when))
    rc, out, err = watch(site, capsys, f"maildir:{md}", "--json")
    assert rc == 0, out + err
    messages = sorted(json.loads(out)["messages"], key=lambda m: m["message_id"])
    assert [(m["message_id"], m["status"]) for m in messages] == [
        ("ss-1-resent@shadowserver.example", "duplicate"),
        ("ss-1@shadowserver.example", "done"),
        ("ss-2@shadowserver.example", "done"),  # a new row (the next day's observation): news
    ]
    assert messages[0]["detail"] == "every report row (2) was processed before"
    assert any(f"{IPS[0]} (VPS4000(1.11)): deadline" in s for s in messages[1]["services"])


# --------------------------------------------------------------------------- the Ansible module

WATCH_PLAY = """\
- name: The abuse mailbox
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Handle what is new
      ipsinfra.infra.abuse_watch:
        inventory: "{{ inv }}"
        journal: "{{ journal }}"
        source: "{{ source }}"
        imap_password: "{{ imap_password }}"
        ca_file: "{{ ca_file }}"
        abuse_from: abuse@ips.example
        outbox: "{{ outbox }}"
        dnsbl: false
      register: watched
    - name: Report it
      ansible.builtin.set_stats:
        data:
          summary: "{{ watched.summary }}"
          exit_code: "{{ watched.exit_code }}"
          statuses: "{{ watched.messages | map(attribute='status') | list }}"
"""


@pytest.mark.slow
def test_the_abuse_watch_module_through_ansible_runner(
    dovecot: DovecotServer, site: dict[str, Any], tmp_path: Path
) -> None:
    from ipsinfra import playbooks

    books = tmp_path / "books"
    books.mkdir()
    (books / "watch.yml").write_text(WATCH_PLAY, encoding="utf-8")
    dovecot.append(zeus_one(IPS[5], "ansible-zeus@dc-lab.example"))
    dovecot.append(spam(IPS[0], "ansible-spam@spamcop.example"))
    extravars = {
        "inv": str(site["inventory"]),
        "journal": str(site["journal"]),
        "source": dovecot.url(),
        "imap_password": PASSWORD,
        "ca_file": str(dovecot.ca_file),
        "outbox": str(site["outbox"]),
    }
    localhost = {"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}}
    env = {"IPSINFRA_LOCK_DIR": str(tmp_path / "locks")}

    def watch_once(kept: Path) -> Any:
        return playbooks.run(
            "watch",
            localhost,
            playbook_dir=books,
            extravars=extravars,
            envvars=env,
            keep_artifacts=kept,
            timeout=180,
        )

    first = watch_once(tmp_path / "a1")
    assert first.ok, first.failures
    assert first.hosts["localhost"].changed == 1
    assert first.data["statuses"] == ["done", "done"] and str(first.data["exit_code"]) == "0"
    assert dovecot.flags() == [{DONE}, {DONE}]
    assert len(journal_actions(site["journal"], "vds.block")) == 1

    again = watch_once(tmp_path / "a2")
    assert again.ok, again.failures
    assert again.hosts["localhost"].changed == 0 and again.data["statuses"] == []
    assert again.data["summary"].endswith(": nothing new")  # the source is an extravar: masked in data
    for kept in (tmp_path / "a1", tmp_path / "a2"):
        for path in kept.rglob("*"):
            if path.is_file():
                assert PASSWORD not in path.read_text(errors="replace"), path

    extravars["ca_file"] = str(make_ca(tmp_path, "not-the-servers-ca")[1])
    refused = watch_once(tmp_path / "a3")
    assert not refused.ok
    assert "certificate verify failed" in refused.failures["localhost"], refused.failures


def test_one_watch_per_mailbox_at_a_time(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import hashlib

    from ipsinfra import locks

    md, _ = maildir(tmp_path, spam(IPS[0], "lock@spamcop.example"))
    source = f"maildir:{md}"
    name = "abuse-watch-" + hashlib.sha256(source.encode()).hexdigest()[:16]
    with locks.hold(name, "abuse watch (the previous run)", lock_dir=tmp_path / "locks"):
        rc, out, err = watch(site, capsys, source)
    assert rc == 1 and f"abuse watch of {source}: busy" in err and out == "", out + err
    assert os.listdir(md / "new") != []
    rc, out, err = watch(site, capsys, source)
    assert rc == 0 and out.splitlines()[-1].endswith(": 1 done"), out + err


def test_a_target_that_fails_its_proof_is_refused_reported_and_not_retried(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The inventory says another MAC than the hypervisor (§11.8): nothing blocked, exit 1, and the
    message is done (the refusal is journalled for a person; the next run does not try again)."""
    record = site["inventory"] / "host_vars" / "VPS4005-3-13.yml"
    data = read_host_vars(record)
    data["nics"] = [{"mac": "52:54:00:99:99:99"}]
    write_host_vars(record, data)
    before = record.read_text(encoding="utf-8")
    md, [key] = maildir(tmp_path, zeus_one(IPS[5], "refused@dc-lab.example"))
    source = f"maildir:{md}"
    rc, out, err = watch(site, capsys, source)
    assert rc == 1, out + err
    assert f"{IPS[5]} (VPS4005(3.13)): refused" in out and "PROBLEM: " in out and "52:54:00:99:99:99" in out
    assert journal_actions(site["journal"], "vds.block") == []
    assert record.read_text(encoding="utf-8") == before  # nothing blocked: nothing written back
    assert journal_actions(site["journal"], "inventory.write_back") == []
    assert os.listdir(md / "cur") == [f"{key}:2,S"]
    assert_nothing_new(site, capsys, source, source)
