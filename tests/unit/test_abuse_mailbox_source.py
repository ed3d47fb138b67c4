"""Mailbox sources as written on a command line, the IMAP password, and the dedup identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsinfra.abuse.mailbox import PASSWORD_ENV, Source, dedup_key, parse_source, read_password
from ipsinfra.abuse.watch import row_state_keys, seen_state_key
from ipsinfra.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("imaps://abuse@mail.example.net", Source(kind="imaps", host="mail.example.net", user="abuse")),
        (
            "imaps://abuse%40example.net@127.0.0.1:9993/Abuse Reports",
            Source(
                kind="imaps", host="127.0.0.1", port=9993, user="abuse@example.net", folder="Abuse Reports"
            ),
        ),
        ("imaps://a@[::1]:993/INBOX", Source(kind="imaps", host="::1", user="a")),
        ("maildir:/var/mail/abuse", Source(kind="maildir", path=Path("/var/mail/abuse"))),
        ("mbox:///var/mail/abuse.mbox", Source(kind="mbox", path=Path("/var/mail/abuse.mbox"))),
    ],
)
def test_sources_parse(text: str, expect: Source) -> None:
    assert parse_source(text) == expect


def test_the_printed_source_carries_no_password_and_names_the_port() -> None:
    assert str(parse_source("imaps://abuse@127.0.0.1/INBOX")) == "imaps://abuse@127.0.0.1:993/INBOX"
    assert str(parse_source("imaps://a@[::1]/INBOX")) == "imaps://a@[::1]:993/INBOX"


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("imaps://abuse:Hunter2-pw-long@mail.example.net/", "a password does not belong in the URL"),
        ("imap://abuse@mail.example.net/", "plain imap:// would send the password in clear"),
        ("imaps://mail.example.net/", "imaps:// needs a user"),
        ("imaps://abuse@mail.example.net:0x1/", "the port is not a number"),
        ('imaps://abuse@mail.example.net/In"box', "printable ASCII without quotes"),
        ("imaps://abuse@mail.example.net/?x=1", "no ?query"),
        ("maildir:", "needs a path"),
        ("/var/mail/abuse", "not imaps://"),
    ],
)
def test_bad_sources_are_refused_naming_the_field(text: str, expect: str) -> None:
    with pytest.raises(InvalidInput, match=r"^source: value ") as info:
        parse_source(text)
    assert expect in str(info.value)
    assert "Hunter2-pw-long" not in str(info.value)


def test_the_password_file_must_be_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    secret = tmp_path / "pw"
    secret.write_text("S3cret-imap-pw\nignored\n", encoding="utf-8")
    secret.chmod(0o640)
    with pytest.raises(InvalidInput, match="mode 0640 lets others read it"):
        read_password(secret)
    secret.chmod(0o600)
    assert read_password(secret) == "S3cret-imap-pw"
    with pytest.raises(InvalidInput, match=f"set \\${PASSWORD_ENV} or give --password-file"):
        read_password(None)
    monkeypatch.setenv(PASSWORD_ENV, "From-the-env-pw")
    assert read_password(None) == "From-the-env-pw"
    with pytest.raises(InvalidInput, match="cannot read: No such file"):
        read_password(tmp_path / "missing")


def test_a_complaint_is_known_by_its_message_id_else_its_bytes() -> None:
    assert dedup_key(b"Message-ID:  <abc@x.example >\r\nSubject: s\r\n\r\nbody") == (
        "message-id",
        "abc@x.example",
    )
    assert dedup_key(b"Message-Id:\r\n <abc@x.example>\r\n\r\nbody") == ("message-id", "abc@x.example")
    kind, value = dedup_key(b"Subject: no id\r\n\r\nbody")
    assert kind == "sha256" and len(value) == 64
    assert dedup_key(b"Subject: no id\r\n\r\nbody 2")[1] != value
    assert seen_state_key("message-id", "a@b") != seen_state_key("sha256", "a@b")
    assert seen_state_key("message-id", "a@b").startswith("abuse.seen:")


def test_report_rows_without_a_time_are_not_remembered() -> None:
    from ipsinfra.abuse.intake import parse_complaint

    csv = '"timestamp","ip","tag"\r\n"2026-12-05 03:12:44","192.0.2.10","openresolver"\r\n'
    raw = (
        "From: r@shadowserver.example\r\nSubject: [Shadowserver Report] DNS\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nreport\r\n'
        '--b\r\nContent-Type: text/csv; name="2026-12-05-scan_dns-asn.csv"\r\n'
        'Content-Disposition: attachment; filename="2026-12-05-scan_dns-asn.csv"\r\n\r\n' + csv + "--b--\r\n"
    ).encode()
    complaint = parse_complaint(raw)
    assert [str(c.ip) for c in complaint.cases] == ["192.0.2.10"]
    assert len(row_state_keys(complaint)) == 1
    plain = parse_complaint(b"Subject: spam\r\n\r\nSpam from 192.0.2.10\r\n")
    assert row_state_keys(plain) == []
