"""Sending letters: SMTP when configured, an outbox folder of ``.eml`` files otherwise.

Results are data: :func:`send` returns one :class:`Delivery` per letter, so one
refused recipient never hides the others; ``report.raise_on_error()`` for
callers that want an exception. When SMTP fails and an outbox is given too, the
letter is written there instead (nothing is lost) and the delivery says so.

Letters carry text from complaints (a Subject, an address), and anyone can write
a complaint. So every header is built by :func:`to_email` from parsed parts
(:mod:`ipsinfra.abuse.headers`: one line, no control characters, addresses
re-rendered), and the bytes written or sent are read back and must carry exactly
the header fields we set, on every Python version. A letter that cannot be built
is reported in its :class:`Delivery` and the others still go.

SMTP AUTH is only ever sent over TLS (STARTTLS or SMTPS) with the server's
certificate verified (the system's CAs, or ``ca_file``); the only way round that
is the explicit ``insecure_plain_auth: true``.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.utils
import os
import smtplib
import ssl
import tempfile
from collections.abc import Sequence
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ipsinfra.abuse.headers import one_line, parse_address, parse_msg_id
from ipsinfra.abuse.letters import Letter
from ipsinfra.errors import InvalidInput, IpsinfraError
from ipsinfra.models import SecretRef

__all__ = ["Delivery", "LetterError", "MailError", "SendReport", "SmtpConfig", "send", "to_email"]


class MailError(IpsinfraError):
    """One or more letters could not be delivered; the message lists which."""


class LetterError(InvalidInput):
    """A letter cannot be built: an address that does not parse, a header that would not
    come out as set. The message names the letter and the field."""


class SmtpConfig(BaseModel):
    """Where letters go by SMTP.

    ``starttls`` (port 587/25) or ``smtps`` (implicit TLS, port 465) verify the
    server's certificate against the system's CAs or ``ca_file``. ``username``
    (AUTH) requires one of them unless ``insecure_plain_auth`` is set: the
    password would cross the network in clear.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    smtps: bool = Field(default=False, description="implicit TLS from the first byte (port 465)")
    ca_file: str | None = Field(default=None, description="CA bundle to verify the server with")
    username: str | None = None
    secret: SecretRef | None = None
    insecure_plain_auth: bool = Field(
        default=False, description="allow AUTH without TLS (the password travels in clear); never by default"
    )
    timeout: float = Field(default=30.0, gt=0)
    envelope_from: str | None = Field(default=None, description="MAIL FROM; the letter's sender when unset")
    helo: str | None = None

    @model_validator(mode="after")
    def _auth_needs_tls(self) -> Self:
        problem = tls_problem(self)
        if problem:
            raise ValueError(problem)
        return self


def tls_problem(cfg: SmtpConfig) -> str | None:
    """Why ``cfg`` must not be used, or None."""
    if cfg.starttls and cfg.smtps:
        return "smtp.starttls: value True: choose STARTTLS or SMTPS, not both"
    if cfg.username and not (cfg.starttls or cfg.smtps) and not cfg.insecure_plain_auth:
        return (
            "smtp.starttls: value False: SMTP AUTH needs STARTTLS or SMTPS (the password would "
            "travel in clear); set smtp.insecure_plain_auth: true to allow it anyway"
        )
    return None


class Delivery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    to: str
    via: str  # "smtp" | "outbox" | "none"
    message_id: str
    path: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class SendReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    deliveries: list[Delivery]

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.error is not None]

    def raise_on_error(self) -> SendReport:
        if self.failed:
            raise MailError("; ".join(f"{d.kind} to {d.to}: {d.error} (via {d.via})" for d in self.failed))
        return self


def to_email(letter: Letter, *, date: dt.datetime | None = None) -> EmailMessage:
    """An RFC 5322 message for ``letter`` (UTF-8 text/plain).

    Addresses are parsed and re-rendered, the Subject folded to one line with
    control characters removed (:mod:`ipsinfra.abuse.headers`); an In-Reply-To
    that is not a ``<id@host>`` is left out.

    Raises:
        LetterError: the letter's ``to`` or ``sender`` is not one address.
    """
    kind = letter.kind.value
    sender = _address(letter.sender, kind, "sender")
    recipient = _address(letter.to, kind, "to")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = one_line(letter.subject)
    msg["Date"] = email.utils.format_datetime(date or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = email.utils.make_msgid(idstring=kind, domain=sender.domain or None)
    reply_to = parse_msg_id(letter.in_reply_to)
    if reply_to:
        msg["In-Reply-To"] = reply_to
        msg["References"] = reply_to
    msg["X-Ipsinfra-Letter"] = kind
    msg.set_content(letter.body, charset="utf-8")
    if letter.lang != "en":  # after set_content, which drops Content-* headers
        msg["Content-Language"] = one_line(letter.lang, limit=35)
    return msg


def _address(value: str, kind: str, field: str) -> Address:
    try:
        return parse_address(value, field=f"letter {kind}: {field}")
    except InvalidInput as exc:
        raise LetterError(str(exc)) from None


def _as_bytes(msg: EmailMessage, kind: str, linesep: str) -> bytes:
    """``msg`` serialised, after checking the bytes carry exactly the header fields set.

    The check does not trust the interpreter: Python 3.11 before 3.11.10 wrote an
    encoded word carrying newlines as extra header lines.
    """
    try:
        data = msg.as_bytes(policy=msg.policy.clone(linesep=linesep))
    except (ValueError, UnicodeError, LookupError) as exc:
        raise LetterError(f"letter {kind}: value {type(exc).__name__}: cannot be written: {exc}") from None
    written = email.parser.BytesHeaderParser(policy=policy.compat32).parsebytes(data)
    expected = [name.lower() for name in msg]
    found = [name.lower() for name in written]
    if found != expected or written.defects:
        extra = sorted(set(found) - set(expected)) or found
        raise LetterError(
            f"letter {kind}: value {extra!r}: the written headers are not the ones set; not sent"
        )
    return data


def _write_outbox(outbox: Path, data: bytes, index: int, kind: str) -> Path:
    outbox.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = outbox / f"{stamp}-{index:02d}-{kind}.eml"
    # Write then rename: whoever watches the folder never sees half a letter.
    fd, tmp = tempfile.mkstemp(dir=outbox, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _tls_context(cfg: SmtpConfig) -> ssl.SSLContext:
    # Certificate and host name verified; ca_file for a private CA.
    return ssl.create_default_context(cafile=cfg.ca_file)


def _connect(cfg: SmtpConfig) -> smtplib.SMTP:
    """A connected (and, with a username, authenticated) client.

    TLS is up before AUTH is ever sent; a configuration that would send the
    password in clear is refused before connecting.
    """
    problem = tls_problem(cfg)  # again: model_construct() skips the validator
    if problem:
        raise InvalidInput(problem)
    if cfg.username and cfg.secret is None:
        raise InvalidInput("smtp.secret: value None: a username needs a secret reference")
    client: smtplib.SMTP
    if cfg.smtps:
        client = smtplib.SMTP_SSL(
            cfg.host, cfg.port, local_hostname=cfg.helo, timeout=cfg.timeout, context=_tls_context(cfg)
        )
    else:
        client = smtplib.SMTP(cfg.host, cfg.port, local_hostname=cfg.helo, timeout=cfg.timeout)
    try:
        client.ehlo()
        if cfg.starttls:
            client.starttls(context=_tls_context(cfg))
            client.ehlo()
        if cfg.username and cfg.secret is not None:
            if not (cfg.starttls or cfg.smtps) and not cfg.insecure_plain_auth:  # pragma: no cover
                raise InvalidInput("smtp: AUTH without TLS")
            client.login(cfg.username, cfg.secret.resolve())
    except BaseException:
        client.close()
        raise
    return client


class _Prepared:
    """One letter, built and serialised (or the reason it could not be)."""

    def __init__(self, index: int, letter: Letter) -> None:
        self.index, self.letter = index, letter
        self.kind = letter.kind.value
        self.message_id = ""
        self.eml = b""
        self.smtp = b""
        self.envelope_to = ""
        self.envelope_from = ""
        self.error: str | None = None
        try:
            msg = to_email(letter)
            self.message_id = str(msg["Message-ID"])
            self.eml = _as_bytes(msg, self.kind, "\n")
            self.smtp = _as_bytes(msg, self.kind, "\r\n")
            self.envelope_to = _address(letter.to, self.kind, "to").addr_spec
            self.envelope_from = _address(letter.sender, self.kind, "sender").addr_spec
        except IpsinfraError as exc:
            self.error = str(exc)
        except (ValueError, LookupError, TypeError) as exc:  # UnicodeError: a body the policy cannot encode
            self.error = f"letter {self.kind}: value {type(exc).__name__}: cannot be written: {exc}"

    def delivery(self, via: str, *, path: Path | None = None, error: str | None = None) -> Delivery:
        return Delivery(
            kind=self.kind,
            to=one_line(self.letter.to, limit=200),
            via=via,
            message_id=self.message_id,
            path=str(path) if path is not None else None,
            error=error,
        )


def _to_outbox(item: _Prepared, outbox: Path, smtp_error: str | None = None) -> Delivery:
    try:
        path = _write_outbox(outbox, item.eml, item.index, item.kind)
    except OSError as exc:
        problem = f"outbox {outbox}: {type(exc).__name__}: {exc}"
        return item.delivery(
            "none", error=f"SMTP failed ({smtp_error}); {problem}" if smtp_error else problem
        )
    if smtp_error is None:
        return item.delivery("outbox", path=path)
    return item.delivery("outbox", path=path, error=f"SMTP failed ({smtp_error}); written to the outbox")


def send(letters: Sequence[Letter], *, smtp: SmtpConfig | None, outbox: Path | None) -> SendReport:
    """Send ``letters`` through ``smtp``, or write them to ``outbox`` when SMTP is not configured.

    Each letter is built, checked and sent on its own: one that cannot be built
    (an address that does not parse) or delivered is reported in its
    :class:`Delivery` and the others still go. Never raises for a letter or the
    transport, so a caller that has already acted (blocked a server) always
    gets its report.

    Raises:
        InvalidInput: neither ``smtp`` nor ``outbox`` is given.
    """
    if smtp is None and outbox is None:
        raise InvalidInput("smtp: value None: configure SMTP or give an outbox folder")
    prepared = [_Prepared(i, letter) for i, letter in enumerate(letters)]
    results: dict[int, Delivery] = {
        p.index: p.delivery("none", error=p.error) for p in prepared if p.error is not None
    }
    ready = [p for p in prepared if p.error is None]

    if smtp is None:
        assert outbox is not None
        for item in ready:
            results[item.index] = _to_outbox(item, outbox)
        return SendReport(deliveries=[results[i] for i in range(len(prepared))])

    def fallback(item: _Prepared, error: str) -> Delivery:
        if outbox is not None:
            return _to_outbox(item, outbox, smtp_error=error)
        return item.delivery("none", error=error)

    client: smtplib.SMTP | None = None
    if ready:
        try:
            client = _connect(smtp)
        except (OSError, smtplib.SMTPException, IpsinfraError) as exc:
            problem = f"{smtp.host}:{smtp.port}: {type(exc).__name__}: {exc}"
            for item in ready:
                results[item.index] = fallback(item, problem)
            ready = []
    try:
        for item in ready:
            assert client is not None
            try:
                refused = client.sendmail(
                    smtp.envelope_from or item.envelope_from, [item.envelope_to], item.smtp
                )
            except (OSError, smtplib.SMTPException) as exc:
                results[item.index] = fallback(item, f"{type(exc).__name__}: {exc}")
                continue
            if refused:
                results[item.index] = fallback(item, f"refused: {refused}")
                continue
            results[item.index] = item.delivery("smtp")
    finally:
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()
    return SendReport(deliveries=[results[i] for i in range(len(prepared))])
