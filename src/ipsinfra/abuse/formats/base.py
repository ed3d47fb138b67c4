"""What every complaint format turns a message part into: :class:`ReportCase` rows.

A case is one reported IP with the type the format itself gives it (ARF
``Feedback-Type``, X-ARF ``Report-Type``, the Shadowserver report name, the
ACNS source type, the Safe Browsing list type). Mapping a type to a §7
category is :mod:`ipsinfra.abuse.classify`'s job (``rules.yml``), never the
parser's. Parsers raise :class:`FormatRejected`; intake turns it into its own
refusal (too large, too complex, malformed) with the field and the value.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra.models import IPAddress

__all__ = ["EVIDENCE_CHARS", "FormatRejected", "ReportCase", "ip_or_none", "parse_time", "short", "xml_guard"]

EVIDENCE_CHARS = 300
_SPACE_RE = re.compile(r"\s+")
_DOCTYPE_RE = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


class ReportCase(BaseModel):
    """One reported IP as the report states it. ``report_type`` is the format's own
    word (lower case); ``scheme`` says whose vocabulary it is (``arf``, ``xarf``,
    ``shadowserver``, ``csv``, ``abusehub``, ``acns``, ``safebrowsing``, ``cleanmx``,
    ``netcraft``, ``projecthoneypot``, ``spamhaus``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ip: IPAddress
    scheme: str
    report_type: str | None = None
    observed_at: dt.datetime | None = None
    evidence: str = Field(default="", description=f"one line, at most {EVIDENCE_CHARS} characters")


class FormatRejected(Exception):
    """A report part that cannot be read within the limits. ``kind``: ``large``,
    ``complex`` or ``malformed``; the message names the field and the value."""

    def __init__(self, message: str, kind: str = "malformed") -> None:
        super().__init__(message)
        self.kind = kind


def short(text: str, limit: int = EVIDENCE_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    line = _SPACE_RE.sub(" ", text).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def ip_or_none(value: object) -> IPAddress | None:
    """The address ``value`` holds (``[2001:db8::1]``, `` 192.0.2.7 ``), else None."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip().strip("[]")[:64]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_time(value: object) -> dt.datetime | None:
    """An ISO 8601 / ``YYYY-MM-DD HH:MM:SS`` / RFC 5322 time (reports use all three), UTC
    when naive; else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()[:64]
    if text[:1].isalpha():  # "Tue, 04 Mar 2025 11:40:12 +0000"
        try:
            stamp = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.UTC)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    elif text.upper().endswith(" UTC"):
        text = text[:-4]
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def xml_guard(text: str, field: str) -> str:
    """``text`` if it may go to the stdlib's XML parser: no DOCTYPE or ENTITY declaration
    (no entity expansion, no external entity), so expat sees plain elements only.

    Raises:
        FormatRejected: a declaration is there.
    """
    m = _DOCTYPE_RE.search(text)
    if m:
        raise FormatRejected(
            f"{field}: value {m.group(0)!r}: XML with a DOCTYPE or ENTITY declaration is refused "
            "(entity expansion)",
            "complex",
        )
    return text
