"""send(): a real SMTP server on loopback (aiosmtpd), and the outbox folder."""

from __future__ import annotations

import datetime as dt
import email
import email.parser
import email.policy
import ipaddress
import socket
import ssl
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from ipsinfra.abuse import (
    Letter,
    LetterKind,
    MailError,
    SmtpConfig,
    classify,
    parse_complaint,
    render_letters,
    send,
)
from ipsinfra.models import Client, SecretRef, Site
from tests.unit import hostile_mail

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
        self.raw: list[bytes] = []  # the DATA exactly as received

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(envelope.original_content)
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


# --------------------------------------------------------------------------- hostile complaints (issue 18)

ABUSE_FROM = "abuse@ourhost.example.net"
# The headers to_email() sets on a reply, in order; nothing else may reach the wire.
REPLY_HEADERS = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "x-ipsinfra-letter",
    "content-type",
    "content-transfer-encoding",
    "mime-version",
]


def reply_to_complaint(subject: str | bytes) -> Letter:
    """The complainant's reply letters.py drafts for a complaint with this Subject."""
    complaint = parse_complaint(hostile_mail.mail(subject, b"Spam from 192.0.2.7\r\n"))
    verdict = classify(complaint, complaint.received_at)
    letters = render_letters(
        complaint,
        verdict,
        server_name="VPS1234(34.56)",
        client=Client(id="cl-1", name="Ivan", email="ivan@client.example", services=1),
        site=Site(name="fra1", dc="DC Example", dc_abuse_email="abuse@dc.example.net"),
        cancelled=False,
        abuse_from=ABUSE_FROM,
    )
    (reply,) = [x for x in letters if x.kind is LetterKind.COMPLAINANT_REPLY]
    return reply


def header_names(data: bytes) -> list[str]:
    parsed = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
    return [name.lower() for name in parsed]


def test_injected_subject_yields_exactly_our_headers_outbox_and_smtp(
    smtpd: tuple[Capture, int], tmp_path: Path
) -> None:
    handler, port = smtpd
    reply = reply_to_complaint(hostile_mail.INJECTED_SUBJECT)
    assert "\n" not in reply.subject and reply.subject.startswith("Re: spam")

    outbox = send([reply], smtp=None, outbox=tmp_path).raise_on_error()
    written = Path(outbox.deliveries[0].path or "").read_bytes()
    smtp = send([reply], smtp=SmtpConfig(host="127.0.0.1", port=port, timeout=5), outbox=None)
    smtp.raise_on_error()
    ((envelope_from, rcpt, _),) = handler.messages
    assert envelope_from == ABUSE_FROM and rcpt == ["reporter@example.org"]

    for data in (written, handler.raw[0]):
        assert header_names(data) == REPLY_HEADERS
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg["Bcc"] is None and msg["X-Injected"] is None and msg["Reply-To"] is None
        assert str(msg["To"]) == "reporter@example.org"
        assert str(msg["Subject"]) == "Re: spam Bcc: victim@evil.test X-Injected: yes"  # text, not headers


@pytest.mark.parametrize(
    "subject",
    [
        "=?utf-8?q?spam=0D_from_192.0.2.7?=",  # CR
        "=?utf-8?q?spam=0A_from_192.0.2.7?=",  # LF
        "=?utf-8?q?spam=E2=80=A8from_192.0.2.7?=",  # U+2028
        "=?latin-1?q?spam=85from_192.0.2.7?=",  # a Windows "…" read as latin-1 is U+0085
        "=?utf-8?q?spam=C2=85=E2=80=A9=7F=00from?=",  # NEL, U+2029, DEL, NUL
        b"spam \xc2\x85 raw 8-bit",  # raw UTF-8 NEL in the header
    ],
)
def test_control_characters_in_subject_still_deliver_every_letter(
    smtpd: tuple[Capture, int], tmp_path: Path, subject: str | bytes
) -> None:
    handler, port = smtpd
    reply = reply_to_complaint(subject)
    ticket = LETTERS[0]
    report = send([ticket, reply], smtp=SmtpConfig(host="127.0.0.1", port=port, timeout=5), outbox=tmp_path)
    report.raise_on_error()
    assert [d.via for d in report.deliveries] == ["smtp", "smtp"] and len(handler.messages) == 2
    data = handler.raw[1]
    assert header_names(data) == REPLY_HEADERS
    subject_line = email.message_from_bytes(data, policy=email.policy.default)["Subject"]
    assert not any(c in str(subject_line) for c in "\r\n\x85\u2028\u2029\x7f\x00")
    outbox = send([ticket, reply], smtp=None, outbox=tmp_path / "o").raise_on_error()
    assert all(d.via == "outbox" for d in outbox.deliveries)


def test_one_bad_letter_is_reported_and_the_others_go(smtpd: tuple[Capture, int], tmp_path: Path) -> None:
    handler, port = smtpd
    bad = LETTERS[1].model_copy(update={"to": "victim@evil.test\r\nBcc: x@evil.test"})
    report = send([LETTERS[0], bad, LETTERS[1]], smtp=SmtpConfig(host="127.0.0.1", port=port), outbox=None)
    assert [d.via for d in report.deliveries] == ["smtp", "none", "smtp"]
    assert report.failed[0].error and "letter complainant_reply: to: value" in report.failed[0].error
    assert len(handler.messages) == 2
    outbox = send([bad, LETTERS[0]], smtp=None, outbox=tmp_path)
    assert [d.via for d in outbox.deliveries] == ["none", "outbox"]
    assert len(list(tmp_path.glob("*.eml"))) == 1
    with pytest.raises(MailError, match=r"complainant_reply to victim@evil\.test"):
        outbox.raise_on_error()


# --------------------------------------------------------------------------- SMTP AUTH only over verified TLS


@dataclass
class Tls:
    ca_file: Path
    server: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A private CA and a server certificate for 127.0.0.1 it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)

    def cert(subject: str, key: Any, issuer: str, issuer_key: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        else:
            builder = builder.add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, srv_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = cert("ipsinfra test CA", ca_key, "ipsinfra test CA", ca_key, ca=True)
    srv_cert = cert("127.0.0.1", srv_key, "ipsinfra test CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (folder / "server.pem").write_bytes(srv_cert.public_bytes(pem))
    (folder / "server.key").write_bytes(
        srv_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "server.pem", folder / "server.key")
    return Tls(ca_file=folder / "ca.pem", server=server)


class Auth:
    """aiosmtpd authenticator that records every AUTH it is offered."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, bool]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        assert isinstance(auth_data, LoginPassword)
        ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret-canary"
        self.attempts.append((mechanism, session.ssl is not None))
        return AuthResult(success=ok)


@pytest.fixture
def tls_smtpd(tls: Tls) -> Iterator[tuple[Capture, Auth, int]]:
    handler, auth, port = Capture(), Auth(), free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls.server,
        authenticator=auth,
        auth_require_tls=False,  # the server would take AUTH in clear: the client must refuse
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiosmtpd warns about auth_require_tls=False, on purpose here
        controller.start()
    try:
        yield handler, auth, port
    finally:
        controller.stop()


@pytest.fixture
def smtp_secret(monkeypatch: pytest.MonkeyPatch) -> SecretRef:
    monkeypatch.setenv("IPSINFRA_TEST_SMTP_PASSWORD", "s3cret-canary")
    return SecretRef(env="IPSINFRA_TEST_SMTP_PASSWORD")


def test_auth_goes_over_verified_starttls(
    tls: Tls, tls_smtpd: tuple[Capture, Auth, int], smtp_secret: SecretRef
) -> None:
    handler, auth, port = tls_smtpd
    cfg = SmtpConfig(
        host="127.0.0.1",
        port=port,
        starttls=True,
        ca_file=str(tls.ca_file),
        username="mailer",
        secret=smtp_secret,
        timeout=5,
    )
    send(LETTERS, smtp=cfg, outbox=None).raise_on_error()
    assert len(handler.messages) == 2
    assert auth.attempts and all(over_tls for _, over_tls in auth.attempts)


def test_auth_without_tls_is_refused_before_any_credential(
    tls_smtpd: tuple[Capture, Auth, int], smtp_secret: SecretRef, tmp_path: Path
) -> None:
    handler, auth, port = tls_smtpd
    with pytest.raises(ValueError, match="SMTP AUTH needs STARTTLS or SMTPS"):
        SmtpConfig(host="127.0.0.1", port=port, username="mailer", secret=smtp_secret)
    # Even a config that skipped validation never sends the password: the letters fall back.
    cfg = SmtpConfig.model_construct(
        host="127.0.0.1",
        port=port,
        starttls=False,
        smtps=False,
        ca_file=None,
        username="mailer",
        secret=smtp_secret,
        insecure_plain_auth=False,
        timeout=5.0,
        envelope_from=None,
        helo=None,
    )
    report = send(LETTERS, smtp=cfg, outbox=tmp_path)
    assert [d.via for d in report.deliveries] == ["outbox", "outbox"]
    assert all(d.error and "needs STARTTLS or SMTPS" in d.error for d in report.deliveries)
    assert auth.attempts == [] and handler.messages == []


def test_unverified_certificate_is_refused_before_auth(
    tls_smtpd: tuple[Capture, Auth, int], smtp_secret: SecretRef
) -> None:
    handler, auth, port = tls_smtpd
    cfg = SmtpConfig(
        host="127.0.0.1", port=port, starttls=True, username="mailer", secret=smtp_secret, timeout=5
    )  # no ca_file: the system CAs do not know the test CA
    report = send(LETTERS[:1], smtp=cfg, outbox=None)
    assert report.deliveries[0].via == "none"
    assert "CERTIFICATE_VERIFY_FAILED" in (report.deliveries[0].error or "")
    assert auth.attempts == [] and handler.messages == []


def test_plain_auth_only_when_asked_explicitly(
    tls_smtpd: tuple[Capture, Auth, int], smtp_secret: SecretRef
) -> None:
    handler, auth, port = tls_smtpd
    cfg = SmtpConfig(
        host="127.0.0.1",
        port=port,
        username="mailer",
        secret=smtp_secret,
        insecure_plain_auth=True,
        timeout=5,
    )
    send(LETTERS[:1], smtp=cfg, outbox=None).raise_on_error()
    assert auth.attempts == [("PLAIN", False)] or auth.attempts == [("LOGIN", False)]
    assert len(handler.messages) == 1
