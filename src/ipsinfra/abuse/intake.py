"""Complaint intake: turn what arrives at the abuse address into a :class:`Complaint`.

Understands plain text, RFC 5322 / MIME mail (multipart, quoted-printable,
base64, KOI8-R / Windows-1251), ARF (RFC 5965 ``multipart/report;
report-type=feedback-report``), X-ARF (v0.1 ``X-ARF: YES`` and v0.2
``X-XARF: PLAIN``), Spamhaus SBL listing notices and complaints a datacenter
forwards to us (with the reaction time it states, e.g. "within 24 hours" /
"в течение 24 часов").

Target IPs come from what the complainant says (body, report fields), never
from ``Received:`` chains (those name the complainant's own relays). For ARF and
X-ARF the report's ``Source-IP`` / ``Source`` field is authoritative.

Example::

    >>> c = parse_complaint(b"Subject: spam\\n\\nSpam from 192.0.2.7, see logs.\\n",
    ...                     received_at=dt.datetime(2025, 3, 3, tzinfo=dt.UTC))
    >>> [str(ip) for ip in c.ips], c.format.value
    (['192.0.2.7'], 'plain')
"""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.utils
import enum
import hashlib
import ipaddress
import re
from collections.abc import Iterable
from email import policy
from email.headerregistry import Address
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from ipsinfra.errors import InvalidInput
from ipsinfra.models import IPAddress

__all__ = [
    "Complaint",
    "ComplaintFormat",
    "IPNetwork",
    "extract_ips",
    "extract_reaction_hours",
    "parse_complaint",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4 = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
# Neither preceded nor followed by more dotted digits: "1.2.3.4.5" is no address.
_V4_TOKEN = rf"(?<![\d.])(?:{_V4})(?!\.?\d)"
_CIDR4_RE = re.compile(rf"{_V4_TOKEN}/(?:3[0-2]|[12]?\d)(?!\d)")
_RANGE4_RE = re.compile(rf"({_V4_TOKEN})\s*(?:-|–|—|to|по|до)\s*({_V4_TOKEN})")
_V4_RE = re.compile(_V4_TOKEN)
# IPv6 candidates: hex groups with at least two colons; ipaddress decides.
_V6_RE = re.compile(
    r"(?<![0-9A-Za-z:.])((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})(/\d{1,3})?(?![0-9A-Za-z:])"
)
# An IP right after these is where the traffic went (the complainant's side).
_DEST_BEFORE_RE = re.compile(
    r"(?:\bDST=|\bdst[=:]\s*|\bdest(?:ination)?[=:]?\s*|->\s*|→\s*|\bto\s+port\b)$", re.I
)
_RECEIVED_LINE_RE = re.compile(r"^\s*>?\s*(?:Received|X-Received|Authentication-Results|ARC-[A-Za-z-]+):")
_FORWARD_MARKER_RE = re.compile(
    r"^\s*(?:-{2,}\s*(?:Original Message|Forwarded message|Пересылаемое сообщение|"
    r"Перенаправленное сообщение|Исходное сообщение)\s*-*|Begin forwarded message:|"
    r"-{5,}\s*Forwarded by .*)\s*$",
    re.I | re.M,
)
_SBL_REF_RE = re.compile(r"(?<![A-Za-z-])SBL\s?(\d{3,8})\b")
_HEADERISH_RE = re.compile(
    r"^(?:From|To|Subject|Date|Received|Return-Path|Message-I[Dd]|MIME-Version|Delivered-To|"
    r"Reply-To|Content-Type|X-[A-Za-z0-9-]+):[ \t]",
    re.I,
)
_TAG_RE = re.compile(r"<[^>]+>")
# A log line: syslog "Mar  6 03:12:40", ISO / Russian dates, or an access log "ip - - [".
_LOG_LINE_RE = re.compile(
    r"^\s*(?:[A-Z][a-z]{2}\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}|"
    r"\d{2}\.\d{2}\.\d{4}\s+\d{2}:\d{2}|\[?\d{1,2}/[A-Z][a-z]{2}/\d{4}:|\S+\s+-\s+\S+\s+\[)"
)

_WORD_NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "six": 6,
    "twelve": 12,
    "twenty-four": 24,
    "forty-eight": 48,
    "a": 1,
    "an": 1,
}
_HOURS_RES: list[tuple[re.Pattern[str], int]] = [
    # (pattern, multiplier); group 1 is the number (or empty for "a day" / "суток").
    (
        re.compile(
            r"\b(?:within|in|during|in the next|no later than)\s+(\d{1,3}|one|two|three|four|six|twelve|"
            r"twenty-four|forty-eight|an)\s*(?:-\s*)?(?:hours?|hrs?|h)\b",
            re.I,
        ),
        1,
    ),
    (re.compile(r"\b(?:within|in|during)\s+(\d{1,2}|one|two|three|a)\s+(?:business\s+)?days?\b", re.I), 24),
    (re.compile(r"\bв\s+течени[еи]\s+(\d{1,3})\s*(?:-?[хи]|-?ти)?\s*час", re.I), 1),
    (re.compile(r"\bне\s+позднее\s+(?:чем\s+(?:через\s+)?)?(\d{1,3})\s*(?:-?[хи]|-?ти)?\s*час", re.I), 1),
    (re.compile(r"\bв\s+течени[еи]\s+(\d{1,2})\s*(?:-?х)?\s*(?:суток|дней|дня)", re.I), 24),
    (re.compile(r"\bв\s+течени[еи]\s+()(?:суток|одних\s+суток|дня)", re.I), 24),
    (re.compile(r"\bв\s+течени[еи]\s+()часа\b", re.I), 1),
]

_PRIVATE_NETS = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
]


class ComplaintFormat(enum.StrEnum):
    PLAIN = "plain"
    MIME = "mime"
    ARF = "arf"
    XARF = "xarf"
    SBL_NOTICE = "sbl_notice"
    DC_FORWARD = "dc_forward"


class Complaint(BaseModel):
    """One complaint as received. ``statement`` is what the complainant says (what
    :func:`ipsinfra.abuse.classify` reads); ``evidence`` adds attached samples and headers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    format: ComplaintFormat
    message_id: str | None = None
    sender: str | None = None
    reply_to: str | None = None
    subject: str = ""
    received_at: dt.datetime
    ips: tuple[IPAddress, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    statement: str = ""
    evidence: str = ""
    dc_reaction_hours: int | None = None
    sbl_ref: str | None = None
    report_type: str | None = None
    report_category: str | None = None
    reported_domain: str | None = None
    arrival_date: dt.datetime | None = None

    @property
    def text(self) -> str:
        """Subject, structured report type and statement: the input of classification."""
        head = [self.subject]
        if self.report_type:
            head.append(f"Report-Type: {self.report_type}")
        if self.report_category:
            head.append(f"Category: {self.report_category}")
        return "\n".join([*head, self.statement])

    @property
    def answer_to(self) -> str | None:
        """Where the complainant's answer goes (§7.5): Reply-To, else From."""
        return self.reply_to or self.sender


# --------------------------------------------------------------------------- helpers


def _aware(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC, so deadlines compare without TypeError."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _parse_date(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return _aware(value)
    text = str(value).strip()
    try:
        return _aware(email.utils.parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return _aware(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _is_noise(ip: IPAddress) -> bool:
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or any(ip in net for net in _PRIVATE_NETS if net.version == ip.version)
    )


def _strip_received(text: str) -> str:
    """Drop quoted ``Received:`` headers (and their folded lines) from a body."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        if _RECEIVED_LINE_RE.match(line):
            skipping = True
            continue
        unquoted = re.sub(r"^(?:> ?)+", "", line)
        if skipping and unquoted[:1] in (" ", "\t"):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out)


def extract_ips(text: str) -> tuple[list[IPAddress], list[IPNetwork]]:
    """IPs and networks named in ``text``, in order of appearance, deduplicated.

    Skips quoted ``Received:`` lines, destination addresses in logs (``DST=``,
    ``-> ip``), private, loopback and link-local addresses. ``a.b.c.d/nn`` and
    ``a.b.c.d - e.f.g.h`` become networks (a /32 or /128 is an address).
    Addresses the prose names win: log lines (starting with a timestamp) are
    read only when the prose names none, since logs also show the other side
    (the bots that connect to a C&C, the complainant's own hosts).

    >>> extract_ips("SRC=203.0.113.9 DST=198.51.100.1, range 192.0.2.0/25")
    ([IPv4Address('203.0.113.9')], [IPv4Network('192.0.2.0/25')])
    """
    text = _strip_received(text)
    prose: list[str] = []
    logs: list[str] = []
    for line in text.splitlines():
        (logs if _LOG_LINE_RE.match(line) else prose).append(line)
    ips, nets = _extract("\n".join(prose))
    if ips or nets:
        return ips, nets
    return _extract("\n".join(logs))


def _extract(text: str) -> tuple[list[IPAddress], list[IPNetwork]]:
    found: list[tuple[int, IPAddress | IPNetwork]] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    def destination(start: int) -> bool:
        return bool(_DEST_BEFORE_RE.search(text[max(0, start - 24) : start]))

    for m in _RANGE4_RE.finditer(text):
        first, last = ipaddress.IPv4Address(m.group(1)), ipaddress.IPv4Address(m.group(2))
        if last <= first:
            continue
        taken.append(m.span())
        for net in ipaddress.summarize_address_range(first, last):
            found.append((m.start(), net))
    for m in _CIDR4_RE.finditer(text):
        if not free(*m.span()):
            continue
        taken.append(m.span())
        if not destination(m.start()):
            found.append((m.start(), ipaddress.ip_network(m.group(0), strict=False)))
    for m in _V4_RE.finditer(text):
        if free(*m.span()):
            taken.append(m.span())
            if not destination(m.start()):
                found.append((m.start(), ipaddress.IPv4Address(m.group(0))))
    for m in _V6_RE.finditer(text):
        if m.group(0).count(":") < 2 or not free(*m.span()):
            continue
        try:
            addr = ipaddress.IPv6Address(m.group(1))
        except ValueError:
            continue
        taken.append(m.span())
        if destination(m.start()):
            continue
        if m.group(2):
            try:
                found.append((m.start(), ipaddress.IPv6Network(m.group(0), strict=False)))
            except ValueError:
                continue
        else:
            found.append((m.start(), addr))

    ips: list[IPAddress] = []
    nets: list[IPNetwork] = []
    for _, item in sorted(found, key=lambda pair: pair[0]):
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            if item.num_addresses == 1:
                item = item.network_address
            else:
                if item not in nets and not _is_noise(item.network_address):
                    nets.append(item)
                continue
        if item not in ips and not _is_noise(item):
            ips.append(item)
    return ips, nets


def extract_reaction_hours(text: str) -> int | None:
    """The reaction time a text states, in hours; the strictest when several.

    >>> extract_reaction_hours("Please react within 24 hours.")
    24
    >>> extract_reaction_hours("Просим устранить в течение 12 часов")
    12
    """
    hours: list[int] = []
    for pattern, factor in _HOURS_RES:
        for m in pattern.finditer(text):
            raw = m.group(1).lower()
            n = int(raw) if raw.isdigit() else _WORD_NUMBERS.get(raw, 1)
            if n > 0:
                hours.append(n * factor)
    return min(hours) if hours else None


def _decode_part(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        inner = part.get_payload()
        return inner if isinstance(inner, str) else ""
    charset = part.get_content_charset()
    for candidate in (charset, "utf-8", "windows-1251"):
        if not candidate:
            continue
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def _part_text(part: email.message.Message) -> str:
    text = _decode_part(part)
    if part.get_content_type() == "text/html":
        text = re.sub(r"(?is)<(script|style).*?</\1>", " ", text)
        text = _TAG_RE.sub(" ", re.sub(r"(?i)<br\s*/?>|</p>", "\n", text))
    return text.replace("\r\n", "\n")


def _headers_text(msg: email.message.Message) -> str:
    return "\n".join(f"{k}: {v}" for k, v in msg.items())


def _addr(value: Any) -> str | None:
    if not value:
        return None
    addresses: Iterable[Address] = getattr(value, "addresses", ())
    for a in addresses:
        if a.addr_spec and "@" in a.addr_spec:
            return a.addr_spec.lower()
    parsed = email.utils.parseaddr(str(value))[1]
    return parsed.lower() or None


def _field_map(text: str) -> dict[str, str]:
    """``Key: value`` lines (ARF feedback-report, X-ARF v0.1) keyed in lower case."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z][A-Za-z0-9-]*):\s*(.*)$", line.strip())
        if m and m.group(1).lower() not in fields:
            fields[m.group(1).lower()] = m.group(2).strip()
    return fields


def _xarf_fields(text: str) -> dict[str, str]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        loaded = None
    if isinstance(loaded, dict):
        return {str(k).lower(): str(v) for k, v in loaded.items() if v is not None}
    return _field_map(text)


def _looks_like_mail(text: str) -> bool:
    head = text.lstrip("\ufeff").split("\n\n", 1)[0].splitlines()[:40]
    if not head or not _HEADERISH_RE.match(head[0]):
        return False
    return sum(bool(_HEADERISH_RE.match(h)) for h in head) >= 2


def _ip_of(value: str | None) -> IPAddress | None:
    if not value:
        return None
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


# --------------------------------------------------------------------------- parser


class _Parts:
    def __init__(self) -> None:
        self.statement: list[str] = []
        self.evidence: list[str] = []
        self.ip_text: list[str] = []


def parse_complaint(raw: bytes | str, received_at: dt.datetime | None = None) -> Complaint:
    """Parse one complaint. ``received_at`` wins over the ``Date:`` header.

    Raises:
        InvalidInput: empty input, or no ``received_at`` and no usable ``Date:``.
    """
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if not data.strip():
        raise InvalidInput("complaint: value '': the complaint is empty")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()[:32]
    text_probe = data[:8192].decode("utf-8", errors="replace").replace("\r\n", "\n")

    if not _looks_like_mail(text_probe):
        body = data.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        msg: email.message.Message | None = None
        parts = _Parts()
        parts.statement.append(body)
        parts.evidence.append(body)
        parts.ip_text.append(body)
        subject = ""
        headers_date = None
        fmt = ComplaintFormat.PLAIN
        feedback: dict[str, str] = {}
        xarf: dict[str, str] = {}
        forwarded_wrapper: str | None = None
    else:
        msg = email.message_from_bytes(data, policy=policy.default)
        subject = str(msg.get("Subject", "") or "").strip()
        headers_date = _parse_date(msg.get("Date"))
        parts, fmt, feedback, xarf, forwarded_wrapper = _read_message(msg)

    when = _aware(received_at) if received_at is not None else headers_date
    if when is None:
        raise InvalidInput("received_at: value None: the complaint has no Date header; pass received_at")

    statement = "\n\n".join(t.strip() for t in parts.statement if t.strip())
    evidence = "\n\n".join(t.strip() for t in parts.evidence if t.strip())

    # Targets: the report's own field first (ARF Source-IP, X-ARF Source), else the text.
    ips: list[IPAddress] = []
    nets: list[IPNetwork] = []
    structured = _ip_of(feedback.get("source-ip")) or (
        _ip_of(xarf.get("source")) if xarf.get("source-type", "ip").lower().startswith("ip") else None
    )
    if structured is not None:
        ips.append(structured)
    if structured is None or fmt not in (ComplaintFormat.ARF, ComplaintFormat.XARF):
        found_ips, nets = extract_ips("\n".join(parts.ip_text))
        ips.extend(ip for ip in found_ips if ip not in ips)
    if structured is None and xarf.get("source"):
        extra_ips, extra_nets = extract_ips(xarf["source"])
        ips.extend(ip for ip in extra_ips if ip not in ips)
        nets.extend(n for n in extra_nets if n not in nets)

    sbl = _SBL_REF_RE.search(f"{subject}\n{statement}")
    sbl_ref = f"SBL{sbl.group(1)}" if sbl else None
    sender = _addr(msg.get("From")) if msg is not None else None
    hours_text = forwarded_wrapper if forwarded_wrapper is not None else f"{subject}\n{statement}"
    dc_hours = extract_reaction_hours(hours_text)
    if fmt in (ComplaintFormat.PLAIN, ComplaintFormat.MIME):
        if forwarded_wrapper is not None:
            fmt = ComplaintFormat.DC_FORWARD
        elif sbl_ref and ("spamhaus" in (sender or "") or "spamhaus" in statement.lower()):
            fmt = ComplaintFormat.SBL_NOTICE

    message_id = str(msg.get("Message-ID", "") or "").strip() if msg is not None else ""
    report_type = feedback.get("feedback-type") or xarf.get("report-type")
    return Complaint(
        id=message_id.strip("<>") or digest,
        format=fmt,
        message_id=message_id or None,
        sender=sender,
        reply_to=_addr(msg.get("Reply-To")) if msg is not None else None,
        subject=subject,
        received_at=when,
        ips=tuple(ips),
        networks=tuple(nets),
        statement=statement,
        evidence=evidence,
        dc_reaction_hours=dc_hours,
        sbl_ref=sbl_ref,
        report_type=report_type.lower() if report_type else None,
        report_category=xarf.get("category", "").lower() or None,
        reported_domain=feedback.get("reported-domain") or xarf.get("domain") or None,
        arrival_date=_parse_date(feedback.get("arrival-date") or xarf.get("date")),
    )


def _read_message(
    msg: email.message.Message,
) -> tuple[_Parts, ComplaintFormat, dict[str, str], dict[str, str], str | None]:
    parts = _Parts()
    feedback: dict[str, str] = {}
    xarf: dict[str, str] = {}
    wrapper: str | None = None
    content_type = msg.get_content_type()
    is_arf = content_type == "multipart/report" and msg.get_param("report-type") == "feedback-report"
    is_xarf = bool(msg.get("X-XARF")) or str(msg.get("X-ARF", "")).strip().lower() in {"yes", "plain"}

    if is_arf or is_xarf:
        fmt = ComplaintFormat.ARF if is_arf else ComplaintFormat.XARF
        subparts = _subparts(msg) if msg.is_multipart() else [msg]
        for index, part in enumerate(subparts):
            ctype = part.get_content_type()
            if ctype == "message/feedback-report":
                text = _feedback_text(part)
                feedback = _field_map(text)
                parts.statement.append(text)
                parts.evidence.append(text)
            elif is_xarf and index == 1 and ctype.startswith("text/"):
                text = _part_text(part)
                xarf = _xarf_fields(text)
                parts.statement.append(text)
                parts.evidence.append(text)
            elif index == 0 and ctype.startswith("text/"):
                text = _part_text(part)
                parts.statement.append(text)
                parts.evidence.append(text)
                parts.ip_text.append(text)
            else:  # the original message, its headers or log excerpts: evidence only
                parts.evidence.append(_flatten(part))
        return parts, fmt, feedback, xarf, None

    fmt = ComplaintFormat.MIME if msg.is_multipart() else ComplaintFormat.PLAIN
    text_parts, attached = _split_parts(msg)
    # An HTML alternative repeats the plain text; keep it only when nothing else exists.
    plain = [_part_text(p) for p in text_parts if p.get_content_type() == "text/plain"]
    body = "\n\n".join(plain or [_part_text(p) for p in text_parts])
    parts.evidence.append(body)
    parts.statement.append(body)
    parts.ip_text.append(body)
    marker = _FORWARD_MARKER_RE.search(body)
    if marker is not None:
        wrapper = body[: marker.start()]
    if attached:
        forwarded = wrapper is not None or bool(
            re.search(r"complain|abuse report|жалоб|обращени|forward|пересыла", body, re.I)
        )
        for part in attached:
            inner = _inner_message(part)
            if forwarded and inner is not None:
                # A DC wrapping the original complaint: the inner body is the complaint.
                wrapper = body if wrapper is None else wrapper
                inner_parts, _, inner_fb, inner_x, _ = _read_message(inner)
                subj = str(inner.get("Subject", "") or "")
                parts.statement.append(f"Subject: {subj}\n" + "\n".join(inner_parts.statement))
                parts.evidence.extend(inner_parts.evidence)
                parts.ip_text.extend(inner_parts.ip_text)
                if inner_fb.get("source-ip"):
                    parts.ip_text.append(inner_fb["source-ip"])
                if inner_x.get("source"):
                    parts.ip_text.append(inner_x["source"])
            else:
                parts.evidence.append(_flatten(part))
    return parts, fmt, feedback, xarf, wrapper


def _split_parts(
    msg: email.message.Message,
) -> tuple[list[email.message.Message], list[email.message.Message]]:
    """Inline text parts of ``msg``, and the messages / header blocks attached to it
    (top level only: what those contain is theirs)."""
    texts: list[email.message.Message] = []
    attached: list[email.message.Message] = []

    def visit(part: email.message.Message) -> None:
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "text/rfc822-headers"):
            attached.append(part)
        elif part.is_multipart():
            for sub in _subparts(part):
                visit(sub)
        elif part.get_content_maintype() == "text" and part.get_content_disposition() != "attachment":
            texts.append(part)

    visit(msg)
    return texts, attached


def _subparts(part: email.message.Message) -> list[email.message.Message]:
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, email.message.Message)] if isinstance(payload, list) else []


def _inner_message(part: email.message.Message) -> email.message.Message | None:
    if part.get_content_type() != "message/rfc822":
        return None
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
        return payload[0]
    return None


def _feedback_text(part: email.message.Message) -> str:
    # policy.default parses message/feedback-report's body as a list of header blocks.
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(_headers_text(p) for p in payload if isinstance(p, email.message.Message))
    return _part_text(part)


def _flatten(part: email.message.Message) -> str:
    inner = _inner_message(part)
    if inner is not None:
        bodies = [_part_text(p) for p in inner.walk() if p.get_content_maintype() == "text"]
        return _headers_text(inner) + "\n\n" + "\n".join(bodies)
    if part.get_content_maintype() == "text" or part.get_content_type() == "message/feedback-report":
        return _part_text(part)
    return f"[{part.get_content_type()} attachment {part.get_filename() or ''}]".strip()
