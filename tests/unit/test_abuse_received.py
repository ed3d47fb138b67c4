"""The receipt time is ours (issue 21): top Received:, else the mailbox's date, else now.

A complaint's ``Date:`` is the complainant's claim (informational); an mbox
``From sender date`` first line (mail saved by a client, procmail, formail) is
taken off and its date is the mailbox's; ``--received-at`` overrides it all.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ipsinfra.abuse import ComplaintFormat, classify, parse_complaint
from ipsinfra.abuse.cli import app

CORPUS = Path(__file__).resolve().parent.parent / "data" / "complaints"
UTC = dt.UTC
MOSCOW = dt.timezone(dt.timedelta(hours=3))
runner = CliRunner()

RECEIVED = (
    b"Received: from mx.example.org (mx.example.org [198.51.100.25])\r\n"
    b"\tby mx.ourhost.example.net (Postfix) with ESMTPS id 4Z1;\r\n"
    b"\tTue, 04 Mar 2025 09:15:00 +0300\r\n"
    b"Received: from relay.example.org by mx.example.org; Mon, 03 Mar 2025 23:00:00 +0000\r\n"
)
BODY = (
    b"From: reporter@example.org\r\nTo: abuse@ourhost.example.net\r\nSubject: spam from 192.0.2.7\r\n"
    b"Date: Mon, 03 Mar 2025 10:00:00 +0000\r\nMessage-ID: <r1@example.org>\r\n\r\n"
    b"Spam from 192.0.2.7.\r\nFrom the logs: 192.0.2.7 sent 500 messages.\r\n"
)
MBOX_LINE = b"From reporter@example.org  Wed Mar  5 08:30:00 2025\n"


def test_top_received_header_is_the_receipt_time_not_date() -> None:
    c = parse_complaint(RECEIVED + BODY)
    assert c.received_at == dt.datetime(2025, 3, 4, 9, 15, tzinfo=MOSCOW)  # the TOP one, ours
    assert c.received_source == "received-header"
    assert c.arrival_date == dt.datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # Date: informational only
    assert [str(ip) for ip in c.ips] == ["192.0.2.7"] and c.notes == ()


def test_received_header_wins_over_the_mailbox_and_the_override_over_both() -> None:
    mailbox = dt.datetime(2025, 3, 6, 12, 0, tzinfo=UTC)
    assert parse_complaint(RECEIVED + BODY, mailbox_date=mailbox).received_source == "received-header"
    override = dt.datetime(2025, 3, 7, 1, 2, 3)  # naive: UTC
    c = parse_complaint(RECEIVED + BODY, override, mailbox_date=mailbox)
    assert c.received_at == override.replace(tzinfo=UTC) and c.received_source == "override"


def test_without_received_the_mailbox_date_then_now() -> None:
    mailbox = dt.datetime(2025, 3, 6, 12, 0, tzinfo=MOSCOW)
    c = parse_complaint(BODY, mailbox_date=mailbox)
    assert (c.received_at, c.received_source) == (mailbox, "mailbox")
    before = dt.datetime.now(UTC)
    c = parse_complaint(BODY)
    assert c.received_source == "now" and before <= c.received_at <= dt.datetime.now(UTC)


@pytest.mark.parametrize(
    "received",
    [
        b"Received: from a by mx.ourhost.example.net; not a date at all\r\n",
        b"Received: from a by mx.ourhost.example.net with local id 4Z1\r\n",  # no ';' at all
    ],
)
def test_unreadable_received_falls_through_with_a_note(received: bytes) -> None:
    mailbox = dt.datetime(2025, 3, 6, 12, 0, tzinfo=UTC)
    c = parse_complaint(received + BODY, mailbox_date=mailbox)
    assert (c.received_at, c.received_source) == (mailbox, "mailbox")
    assert len(c.notes) == 1 and c.notes[0].startswith("Received: value ") and "not used" in c.notes[0]


@pytest.mark.parametrize(
    "date",
    [b"\xff\xfe garbage", b"Mon, 03 Mar 2025 10:00:00 +99999999999999999999", b"yesterday"],
)
def test_unreadable_or_missing_date_is_not_an_error(date: bytes) -> None:
    raw = BODY.replace(b"Mon, 03 Mar 2025 10:00:00 +0000", date)
    c = parse_complaint(raw)
    assert c.received_source == "now" and c.arrival_date is None
    assert [str(ip) for ip in c.ips] == ["192.0.2.7"]
    assert len(c.notes) == 1 and c.notes[0].startswith("Date: value ") and "informational" in c.notes[0]
    no_date = parse_complaint(BODY.replace(b"Date: Mon, 03 Mar 2025 10:00:00 +0000\r\n", b""))
    assert no_date.arrival_date is None and no_date.notes == () and no_date.received_source == "now"


def test_mbox_saved_mail_is_read_as_mail_with_the_from_line_date() -> None:
    """The issue's 38 samples: mail saved the usual way starts with the mbox "From " line."""
    raw = MBOX_LINE + BODY.replace(b"\r\n", b"\n") + b">From here on, the logs:\n>>From x\n"
    c = parse_complaint(raw)
    assert c.format is ComplaintFormat.PLAIN  # mail (not a plain text): headers were read
    assert c.sender == "reporter@example.org" and c.subject == "spam from 192.0.2.7"
    assert c.id == "r1@example.org"
    assert (c.received_at, c.received_source) == (dt.datetime(2025, 3, 5, 8, 30, tzinfo=UTC), "mailbox")
    assert "From here on, the logs:\n>From x" in c.statement  # mboxrd quoting undone, one level
    assert classify(c, c.received_at).deadline > c.received_at
    # The caller's mailbox date (IMAP INTERNALDATE, Maildir mtime) wins over the From line's.
    internal = dt.datetime(2025, 3, 5, 8, 31, tzinfo=UTC)
    assert parse_complaint(raw, mailbox_date=internal).received_at == internal
    # ...and our Received: header over both.
    assert parse_complaint(MBOX_LINE + RECEIVED + BODY).received_source == "received-header"


def test_mbox_from_line_with_an_unreadable_date_is_still_taken_off() -> None:
    c = parse_complaint(b"From MAILER-DAEMON somewhen\n" + BODY)
    assert c.sender == "reporter@example.org" and c.received_source == "now"
    assert any(n.startswith("mbox From line: value 'somewhen'") for n in c.notes)


def test_a_plain_text_starting_with_from_is_not_an_mbox_line() -> None:
    text = b"From the logs we see 192.0.2.7 attacking us.\nPlease stop it.\n"
    c = parse_complaint(text)
    assert c.format is ComplaintFormat.PLAIN and c.statement.startswith("From the logs we see")
    assert c.received_source == "now" and [str(ip) for ip in c.ips] == ["192.0.2.7"]


def test_corpus_saved_as_mbox_parses_like_the_original() -> None:
    for path in sorted(CORPUS.glob("*.eml")):
        raw = path.read_bytes()
        original = parse_complaint(raw, mailbox_date=dt.datetime(2025, 1, 1, tzinfo=UTC))
        saved = parse_complaint(MBOX_LINE + raw)
        assert (saved.format, saved.ips, saved.networks, saved.subject, saved.sender) == (
            original.format,
            original.ips,
            original.networks,
            original.subject,
            original.sender,
        ), path.name
        if original.received_source == "mailbox":  # no Received: header in the sample
            assert saved.received_at == dt.datetime(2025, 3, 5, 8, 30, tzinfo=UTC), path.name


# --------------------------------------------------------------------------- the CLI


def test_classify_shows_received_at_and_its_source(tmp_path: Path) -> None:
    path = tmp_path / "saved.eml"
    path.write_bytes(MBOX_LINE + BODY)
    result = runner.invoke(app, ["classify", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    complaint = json.loads(result.stdout)["complaint"]
    assert complaint["received_at"] == "2025-03-05T08:30:00Z"
    assert complaint["received_source"] == "mailbox"
    result = runner.invoke(app, ["classify", str(path), "--received-at", "2025-03-09T10:00:00+03:00"])
    assert result.exit_code == 0, result.stderr
    assert "received:  2025-03-09T10:00:00+03:00 (override)" in result.stdout
    assert "deadline:  2025-03-10T10:00:00+03:00" in result.stdout  # spam: 24 h from OUR time


@pytest.mark.parametrize("command", ["classify", "handle"])
@pytest.mark.parametrize("value", ["yesterday", "2025-13-01T00:00:00", ""])
def test_bad_received_at_is_exit_2_naming_flag_and_value(command: str, value: str, tmp_path: Path) -> None:
    path = tmp_path / "c.eml"
    path.write_bytes(BODY)
    extra = ["--abuse-from", "abuse@ourhost.example.net", "--outbox", str(tmp_path / "out")]
    args = [command, str(path), "--received-at", value, *(extra if command == "handle" else [])]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--received-at: value {value!r}" in lines[0], result.stderr
    assert not (tmp_path / "out").exists()  # nothing was done
