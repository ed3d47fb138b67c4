"""Sending letters: SMTP when configured, an outbox folder of ``.eml`` files otherwise.

Results are data: :func:`send` returns one :class:`Delivery` per letter, so one
refused recipient never hides the others; ``report.raise_on_error()`` for
callers that want an exception. When SMTP fails and an outbox is given too, the
letter is written there instead (nothing is lost) and the delivery says so.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import smtplib
import ssl
import tempfile
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra.abuse.letters import Letter
from ipsinfra.errors import InvalidInput, IpsinfraError
from ipsinfra.models import SecretRef

__all__ = ["Delivery", "MailError", "SendReport", "SmtpConfig", "send", "to_email"]


class MailError(IpsinfraError):
    """One or more letters could not be delivered; the message lists which."""


class SmtpConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    ca_file: str | None = None
    username: str | None = None
    secret: SecretRef | None = None
    timeout: float = Field(default=30.0, gt=0)
    envelope_from: str | None = Field(default=None, description="MAIL FROM; the letter's sender when unset")
    helo: str | None = None


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
    """An RFC 5322 message for ``letter`` (UTF-8 text/plain)."""
    msg = EmailMessage()
    msg["From"] = letter.sender
    msg["To"] = letter.to
    msg["Subject"] = letter.subject
    msg["Date"] = email.utils.format_datetime(date or dt.datetime.now(dt.UTC))
    domain = letter.sender.rpartition("@")[2] or None
    msg["Message-ID"] = email.utils.make_msgid(idstring=letter.kind.value, domain=domain)
    if letter.in_reply_to:
        msg["In-Reply-To"] = letter.in_reply_to
        msg["References"] = letter.in_reply_to
    msg["X-Ipsinfra-Letter"] = letter.kind.value
    msg.set_content(letter.body, charset="utf-8")
    if letter.lang != "en":  # after set_content, which drops Content-* headers
        msg["Content-Language"] = letter.lang
    return msg


def _write_outbox(outbox: Path, msg: EmailMessage, index: int, kind: str) -> Path:
    outbox.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = outbox / f"{stamp}-{index:02d}-{kind}.eml"
    # Write then rename: whoever watches the folder never sees half a letter.
    fd, tmp = tempfile.mkstemp(dir=outbox, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(msg.as_bytes())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _connect(cfg: SmtpConfig) -> smtplib.SMTP:
    client = smtplib.SMTP(cfg.host, cfg.port, local_hostname=cfg.helo, timeout=cfg.timeout)
    try:
        client.ehlo()
        if cfg.starttls:
            context = ssl.create_default_context(cafile=cfg.ca_file)
            client.starttls(context=context)
            client.ehlo()
        if cfg.username:
            if cfg.secret is None:
                raise InvalidInput("smtp.secret: value None: a username needs a secret reference")
            client.login(cfg.username, cfg.secret.resolve())
    except BaseException:
        client.close()
        raise
    return client


def send(letters: Sequence[Letter], *, smtp: SmtpConfig | None, outbox: Path | None) -> SendReport:
    """Send ``letters`` through ``smtp``, or write them to ``outbox`` when SMTP is not configured.

    Raises:
        InvalidInput: neither ``smtp`` nor ``outbox`` is given.
    """
    if smtp is None and outbox is None:
        raise InvalidInput("smtp: value None: configure SMTP or give an outbox folder")
    messages = [to_email(letter) for letter in letters]
    deliveries: list[Delivery] = []

    def fallback(i: int, letter: Letter, msg: EmailMessage, error: str) -> Delivery:
        if outbox is not None:
            path = _write_outbox(outbox, msg, i, letter.kind.value)
            return Delivery(
                kind=letter.kind.value,
                to=letter.to,
                via="outbox",
                message_id=str(msg["Message-ID"]),
                path=str(path),
                error=f"SMTP failed ({error}); written to the outbox",
            )
        return Delivery(
            kind=letter.kind.value, to=letter.to, via="none", message_id=str(msg["Message-ID"]), error=error
        )

    if smtp is None:
        assert outbox is not None
        for i, (letter, msg) in enumerate(zip(letters, messages, strict=True)):
            path = _write_outbox(outbox, msg, i, letter.kind.value)
            deliveries.append(
                Delivery(
                    kind=letter.kind.value,
                    to=letter.to,
                    via="outbox",
                    message_id=str(msg["Message-ID"]),
                    path=str(path),
                )
            )
        return SendReport(deliveries=deliveries)

    try:
        client = _connect(smtp)
    except (OSError, smtplib.SMTPException) as exc:
        problem = f"{smtp.host}:{smtp.port}: {type(exc).__name__}: {exc}"
        return SendReport(
            deliveries=[
                fallback(i, letter, msg, problem)
                for i, (letter, msg) in enumerate(zip(letters, messages, strict=True))
            ]
        )
    try:
        for i, (letter, msg) in enumerate(zip(letters, messages, strict=True)):
            try:
                refused = client.send_message(
                    msg, from_addr=smtp.envelope_from or letter.sender, to_addrs=[letter.to]
                )
            except (OSError, smtplib.SMTPException) as exc:
                deliveries.append(fallback(i, letter, msg, f"{type(exc).__name__}: {exc}"))
                continue
            if refused:
                deliveries.append(fallback(i, letter, msg, f"refused: {refused}"))
                continue
            deliveries.append(
                Delivery(kind=letter.kind.value, to=letter.to, via="smtp", message_id=str(msg["Message-ID"]))
            )
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    return SendReport(deliveries=deliveries)
