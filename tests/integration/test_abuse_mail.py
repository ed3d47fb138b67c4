"""send(): a real SMTP server on loopback (aiosmtpd), and the outbox folder."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from ipsinfra.abuse import Letter, LetterKind, MailError, SmtpConfig, send

LETTERS = [
    Letter(
        to="ivan@client.example",
        subject="Жалоба (abuse): VPS1234(34.56)",
        body="Здравствуйте!\nСрок: 2025-03-10 00:00 UTC\n",
        kind=LetterKind.CLIENT_TICKET,
        sender="abuse@ourhost.example.net",
        lang="ru",
    ),
    Letter(
        to="reports@example.org",
        subject="Re: Spam from 203.0.113.45",
        body="Thank you for your report.\n",
        kind=LetterKind.COMPLAINANT_REPLY,
        sender="abuse@ourhost.example.net",
        in_reply_to="<x1@example.org>",
    ),
]


class Capture:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtpd() -> Iterator[tuple[Capture, int]]:
    handler = Capture()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def test_smtp_delivers_every_letter(smtpd: tuple[Capture, int]) -> None:
    handler, port = smtpd
    report = send(LETTERS, smtp=SmtpConfig(host="127.0.0.1", port=port, timeout=5), outbox=None)
    report.raise_on_error()
    assert [d.via for d in report.deliveries] == ["smtp", "smtp"]
    assert len(handler.messages) == 2
    (from1, rcpt1, msg1), (_, rcpt2, msg2) = handler.messages
    assert from1 == "abuse@ourhost.example.net"
    assert rcpt1 == ["ivan@client.example"] and rcpt2 == ["reports@example.org"]
    assert msg1["Subject"] == "Жалоба (abuse): VPS1234(34.56)"
    assert msg1["X-Ipsinfra-Letter"] == "client_ticket"
    assert str(msg1["Message-ID"]).strip() == report.deliveries[0].message_id
    body = msg1.get_body(("plain",))
    assert body is not None and "Срок: 2025-03-10 00:00 UTC" in body.get_content()
    assert msg2["In-Reply-To"] == "<x1@example.org>"


def test_envelope_from_override(smtpd: tuple[Capture, int]) -> None:
    handler, port = smtpd
    cfg = SmtpConfig(host="127.0.0.1", port=port, envelope_from="bounces@ourhost.example.net")
    send(LETTERS[:1], smtp=cfg, outbox=None).raise_on_error()
    assert handler.messages[0][0] == "bounces@ourhost.example.net"


def test_outbox_when_smtp_is_not_configured(tmp_path: Path) -> None:
    report = send(LETTERS, smtp=None, outbox=tmp_path / "outbox")
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2 and [d.via for d in report.deliveries] == ["outbox", "outbox"]
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["To"] == "ivan@client.example" and msg["Content-Language"] == "ru"
    assert not list((tmp_path / "outbox").glob(".tmp-*"))


def test_smtp_down_falls_back_to_outbox_and_reports(tmp_path: Path) -> None:
    cfg = SmtpConfig(host="127.0.0.1", port=free_port(), timeout=2)
    report = send(LETTERS, smtp=cfg, outbox=tmp_path)
    assert [d.via for d in report.deliveries] == ["outbox", "outbox"]
    assert all(d.error and "ConnectionRefusedError" in d.error for d in report.deliveries)
    assert len(list(tmp_path.glob("*.eml"))) == 2
    with pytest.raises(MailError, match=r"client_ticket to ivan@client\.example"):
        report.raise_on_error()


def test_starttls_refused_by_server_is_an_error(smtpd: tuple[Capture, int]) -> None:
    handler, port = smtpd
    report = send(LETTERS[:1], smtp=SmtpConfig(host="127.0.0.1", port=port, starttls=True), outbox=None)
    assert report.failed and report.deliveries[0].via == "none"
    assert handler.messages == []
