"""Complaint intake: turn what arrives at the abuse address into a :class:`Complaint`.

Understands plain text, RFC 5322 / MIME mail (multipart, quoted-printable,
base64, KOI8-R / Windows-1251), ARF (RFC 5965 ``multipart/report;
report-type=feedback-report``), X-ARF (v0.1 ``X-ARF: YES`` and v0.2
``X-XARF: PLAIN``), Spamhaus SBL listing notices and complaints a datacenter
forwards to us (with the reaction time it states, e.g. "within 24 hours" /
"в течение 24 часов").

Structured reports are read by :mod:`ipsinfra.abuse.formats` into
:attr:`Complaint.cases`, one per reported IP with the format's own type: ARF
(``Source-IP``, else the top ``Received:`` of the reported message), X-ARF
v0.1/v0.2 fields and JSON (abusix schema, xarf-spec v4), ACNS notices,
Shadowserver and similar CSV reports (plain, ``.gz``, ``.zip``; one case per
row; AbuseHUB's CSV), Google Safe Browsing XML and CleanMX tables, and the
notifiers' own text forms (Netcraft incidents, Project Honey Pot, Safe Browsing
text/HTML, Spamhaus listings: :mod:`ipsinfra.abuse.formats.detect`). Where there are cases their
IPs are the targets; otherwise target IPs come from what the complainant says,
never from ``Received:`` chains (those name the complainant's own relays).
Attachments are decompressed within ``max_attachment_bytes``,
``max_compression_ratio`` and ``max_archive_members``.

Anyone can write to the abuse address, so intake is bounded (:class:`IntakeLimits`):
size, MIME parts, nesting, header fields, the X-ARF YAML (no anchors or aliases)
are refused past their limits with an error naming size and limit; IPs and
networks past theirs are cut and the cut is reported in ``Complaint.truncated``.
Every regex here is linear, HTML is stripped by a linear scan, and whatever
the stdlib's parser raises on a hostile message becomes a
:class:`MalformedComplaint`: the answer is a :class:`Complaint` or an
:class:`~ipsinfra.errors.InvalidInput`, never a traceback.

Example::

    >>> c = parse_complaint(b"Subject: spam\\n\\nSpam from 192.0.2.7, see logs.\\n",
    ...                     received_at=dt.datetime(2025, 3, 3, tzinfo=dt.UTC))
    >>> [str(ip) for ip in c.ips], c.format.value
    (['192.0.2.7'], 'plain')
"""

from __future__ import annotations

import codecs
import datetime as dt
import email.errors
import email.message
import email.parser
import email.policy
import email.utils
import enum
import functools
import hashlib
import ipaddress
import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ipsinfra.abuse.formats.base import FormatRejected, ReportCase
from ipsinfra.abuse.formats.detect import Caps, Found, find_cases
from ipsinfra.abuse.headers import one_line, parse_addresses
from ipsinfra.abuse.htmltext import html_to_text
from ipsinfra.abuse.targets import IPNetwork, _extract_targets, _Found, extract_ips
from ipsinfra.errors import InvalidInput, IpsinfraError
from ipsinfra.models import IPAddress

__all__ = [
    "CLASSIFY_CHARS",
    "Complaint",
    "ComplaintFormat",
    "ComplaintRejected",
    "ComplaintTooComplex",
    "ComplaintTooLarge",
    "IPNetwork",
    "IntakeLimits",
    "MalformedComplaint",
    "ReceivedSource",
    "extract_ips",
    "extract_reaction_hours",
    "parse_complaint",
]

MiB = 1024 * 1024


class IntakeLimits(BaseModel):
    """What one complaint may cost. Anyone can write to the abuse address, so every
    dimension of a complaint is bounded; each default is far above any real complaint.

    Past ``max_bytes``, ``max_parts``, ``max_depth``, ``max_header_bytes``,
    ``max_headers`` or ``max_yaml_bytes`` the complaint is refused with an error naming the size and
    the limit. Past ``max_ips`` / ``max_networks`` the first ones (in the order
    the text names them) are kept and :attr:`Complaint.truncated` says how many
    were dropped.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: int = Field(default=5 * MiB, ge=1, description="the raw complaint, bytes")
    max_parts: int = Field(default=200, ge=1, description="MIME parts, all levels together")
    max_depth: int = Field(default=32, ge=1, le=100, description="nesting of multiparts and attached mail")
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, description="one header field, bytes")
    max_headers: int = Field(default=1000, ge=10, description="header fields of one part")
    max_ips: int = Field(default=1000, ge=1, description="addresses kept from the text")
    max_networks: int = Field(default=256, ge=1, description="networks and ranges kept from the text")
    max_yaml_bytes: int = Field(default=256 * 1024, ge=1, description="an X-ARF YAML report")
    max_lines: int = Field(
        default=200_000,
        ge=100,
        description="lines of the complaint and of any decoded part, runs of blank lines counted as one",
    )
    max_params: int = Field(default=100, ge=1, description="parameters of one Content-Type / -Disposition")
    max_target_chars: int = Field(
        default=1 * MiB, ge=1, description="characters of the text read for target addresses (the first ones)"
    )
    max_report_bytes: int = Field(
        default=1 * MiB, ge=1, description="one X-ARF JSON, ACNS or Safe Browsing XML report"
    )
    max_attachment_bytes: int = Field(
        default=64 * MiB, ge=1, description="all attachments of one complaint, uncompressed, bytes"
    )
    max_compression_ratio: int = Field(
        default=200, ge=1, description="uncompressed / compressed size of one .gz or .zip member"
    )
    max_archive_members: int = Field(default=100, ge=1, description="files in the attachments and archives")
    max_cases: int = Field(default=5000, ge=1, description="report rows kept (one case each)")


DEFAULT_LIMITS = IntakeLimits()

# How much of a statement classification and the reaction-time search read (see
# Complaint.text): ~150 keyword rules over megabytes of logs would cost seconds.
CLASSIFY_CHARS = 64 * 1024


class ComplaintRejected(InvalidInput):
    """A complaint that cannot be read: too large, too complex or malformed. Nothing was acted on."""


class ComplaintTooLarge(ComplaintRejected):
    """The complaint (or one of its parts) is larger than the configured limit."""


class ComplaintTooComplex(ComplaintRejected):
    """Too many MIME parts, nested too deep, or a YAML report with aliases."""


class MalformedComplaint(ComplaintRejected):
    """A part of the complaint the parser cannot read (a header, a charset, a date)."""


# A whole forward marker line, searched in one pass over "\n" + body (a Python loop
# over 2 million short lines took a second). Starts with the newline, so the search
# skips from line to line in C; no part can match a newline except where it must, and
# the runs are possessive (a multi-line ``^\s*...$`` search took 73 s on 50 KB of
# blank lines; a greedy ``-{2,}`` backtracks over every dash of a 1 MB line).
_FORWARD_MARKER_RE = re.compile(
    r"\n[ \t]*+(?:-{2,}+[ \t]*+(?:Original Message|Forwarded message|Пересылаемое сообщение|"
    r"Перенаправленное сообщение|Исходное сообщение)[ \t]*+-*+|Begin forwarded message:|"
    r"-{5,}+[ \t]*+Forwarded by [^\n]*)[ \t\r]*+(?=\n|\Z)",
    re.I,
)
_FORWARD_HINT_RE = re.compile(r"complain|abuse report|жалоб|обращени|forward|пересыла", re.I)
# Starts with its literal: the search skips to each "SBL" instead of trying every position.
_SBL_REF_RE = re.compile(r"SBL(?<![A-Za-z-]SBL)\s?(\d{3,8})\b")
_HEADERISH_RE = re.compile(
    r"^(?:From|To|Subject|Date|Received|Return-Path|Message-I[Dd]|MIME-Version|Delivered-To|"
    r"Reply-To|Content-Type|X-[A-Za-z0-9-]+):[ \t]",
    re.I,
)
_FIELD_RE = re.compile(r"([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*)")
# Codecs a charset parameter may not name: not charsets, and punycode decoding is
# quadratic in its input (and raises a bare UnicodeError).
_NOT_CHARSETS = frozenset({"punycode", "idna", "unicode-escape", "raw-unicode-escape", "undefined"})

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
    # "\s*(?:suffix\s*)?" and never "\s*(?:suffix)?\s*": two optional runs of spaces
    # side by side are quadratic on a long run of spaces.
    (re.compile(r"\bв\s+течени[еи]\s+(\d{1,3})\s*(?:(?:-?[хи]|-?ти)\s*)?час", re.I), 1),
    (re.compile(r"\bне\s+позднее\s+(?:чем\s+(?:через\s+)?)?(\d{1,3})\s*(?:(?:-?[хи]|-?ти)\s*)?час", re.I), 1),
    (re.compile(r"\bв\s+течени[еи]\s+(\d{1,2})\s*(?:-?х\s*)?(?:суток|дней|дня)", re.I), 24),
    (re.compile(r"\bв\s+течени[еи]\s+()(?:суток|одних\s+суток|дня)", re.I), 24),
    (re.compile(r"\bв\s+течени[еи]\s+()часа\b", re.I), 1),
]


# Where Complaint.received_at came from: the operator's --received-at, the top
# Received: header (our own MTA stamped it), the mailbox (IMAP INTERNALDATE,
# Maildir file time, mbox "From " line), or the clock when nothing else said.
ReceivedSource = Literal["override", "received-header", "mailbox", "now"]


class ComplaintFormat(enum.StrEnum):
    PLAIN = "plain"
    MIME = "mime"
    ARF = "arf"
    XARF = "xarf"
    SBL_NOTICE = "sbl_notice"
    DC_FORWARD = "dc_forward"
    SHADOWSERVER = "shadowserver"
    CSV_REPORT = "csv_report"
    ACNS = "acns"
    SAFE_BROWSING = "safe_browsing"
    CLEANMX = "cleanmx"
    NETCRAFT = "netcraft"
    PROJECT_HONEYPOT = "project_honeypot"


# The format a complaint is when its cases come from a report of this scheme.
_SCHEME_FORMATS = {
    "shadowserver": ComplaintFormat.SHADOWSERVER,
    "csv": ComplaintFormat.CSV_REPORT,
    "acns": ComplaintFormat.ACNS,
    "safebrowsing": ComplaintFormat.SAFE_BROWSING,
    "cleanmx": ComplaintFormat.CLEANMX,
    "abusehub": ComplaintFormat.CSV_REPORT,
    "netcraft": ComplaintFormat.NETCRAFT,
    "projecthoneypot": ComplaintFormat.PROJECT_HONEYPOT,
    "spamhaus": ComplaintFormat.SBL_NOTICE,
    "xarf": ComplaintFormat.XARF,  # X-ARF fields in an attached file of a mail without X-ARF headers
}


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
    received_at: dt.datetime = Field(
        description="when WE received it (see received_source); the deadlines count from here"
    )
    received_source: ReceivedSource = Field(
        default="now",
        description="override | received-header | mailbox | now: where received_at came from",
    )
    ips: tuple[IPAddress, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    cases: tuple[ReportCase, ...] = Field(
        default=(),
        description="one per report row (ARF, X-ARF, CSV row, ACNS, Safe Browsing URL): IP and the "
        "format's own type; classify() maps the type to a category",
    )
    statement: str = ""
    evidence: str = ""
    dc_reaction_hours: int | None = None
    sbl_ref: str | None = None
    report_type: str | None = None
    report_category: str | None = None
    reported_domain: str | None = None
    arrival_date: dt.datetime | None = Field(
        default=None,
        description="the report's Arrival-Date (ARF) / Date (X-ARF), else the mail's Date: informational",
    )
    truncated: tuple[str, ...] = Field(
        default=(), description="what intake's limits dropped (IPs, networks past the caps), one line each"
    )
    notes: tuple[str, ...] = Field(
        default=(),
        description="what intake read around without refusing (an unreadable Received or Date, an mbox line)",
    )

    @property
    def text(self) -> str:
        """Subject, structured report type and statement: the input of classification.

        Only the first :data:`CLASSIFY_CHARS` characters of the statement (a
        complaint says what it is about at the top; keyword rules over megabytes
        of logs cost seconds). :func:`parse_complaint` notes the cut in
        :attr:`truncated`.
        """
        head = [self.subject]
        if self.report_type:
            head.append(f"Report-Type: {self.report_type}")
        if self.report_category:
            head.append(f"Category: {self.report_category}")
        return "\n".join([*head, self.statement[:CLASSIFY_CHARS]])

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
    text = str(value).strip()[:200]
    try:
        return _aware(email.utils.parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError, OverflowError):  # a +9999999999 zone overflows
        pass
    try:
        return _aware(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        return None


# The word a reaction-time pattern cannot match without (lower case), where there is one.
_HOURS_NEEDS: dict[re.Pattern[str], str | None] = {
    pattern: next((w for w in ("течени", "позднее") if w in pattern.pattern), None)
    for pattern, _ in _HOURS_RES
}


def extract_reaction_hours(text: str) -> int | None:
    """The reaction time a text states, in hours; the strictest when several.

    >>> extract_reaction_hours("Please react within 24 hours.")
    24
    >>> extract_reaction_hours("Просим устранить в течение 12 часов")
    12
    """
    hours: list[int] = []
    lowered = text.lower()
    for pattern, factor in _HOURS_RES:
        needs = _HOURS_NEEDS[pattern]
        if needs is not None and needs not in lowered:
            continue  # a substring search in C instead of a regex trying every position
        for m in pattern.finditer(text):
            raw = m.group(1).lower()
            n = int(raw) if raw.isdigit() else _WORD_NUMBERS.get(raw, 1)
            if n > 0:
                hours.append(n * factor)
    return min(hours) if hours else None


def _charset(name: str | None) -> str | None:
    """``name`` if it is a text encoding we may decode a body with, else None."""
    if not name or len(name) > 40:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    return None if info.name in _NOT_CHARSETS else info.name


def _decode_part(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        inner = part.get_payload()
        return inner if isinstance(inner, str) else ""
    for candidate in (_charset(part.get_content_charset()), "utf-8", "windows-1251"):
        if not candidate:
            continue
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeError, ValueError):  # UnicodeError: a codec's own complaint
            continue
    return payload.decode("latin-1")


def _part_text(part: email.message.Message) -> str:
    text = _decode_part(part)
    if part.get_content_type() == "text/html":
        text = html_to_text(text)
    # What a transfer encoding hid is bounded as the raw complaint is (base64 of
    # 3 MB of newlines): blank runs squeezed, then the lines counted.
    text = _BLANK_RUN_RE.sub(_one_blank_line, text.replace("\r\n", "\n"))
    budget = getattr(part, "_budget", None)
    limits = budget.limits if isinstance(budget, _Budget) else DEFAULT_LIMITS
    _check_lines(f"{part.get_content_type()} part", text.count("\n"), limits)
    return text


# Two or more blank (or blanks-only) lines in a row: one blank line is what they say.
# Every per-line pass over a complaint (the e-mail parser's first) costs per line,
# and 5 MB of newlines are 5 million lines. One character class, no repeated group:
# a group repeated a million times costs the regex engine ~190 bytes per repetition.
_BLANK_RUN_RE = re.compile(r"\n[ \t\r\n]*\n")
_BLANK_RUN_BYTES_RE = re.compile(rb"\n[ \t\r\n]*\n")


def _one_blank_line(m: re.Match[str]) -> str:
    return "\n\n" if m.group(0).count("\n") > 2 else m.group(0)


def _one_blank_line_bytes(m: re.Match[bytes]) -> bytes:
    return b"\n\n" if m.group(0).count(b"\n") > 2 else m.group(0)


def _squeeze_blank_lines_bytes(data: bytes) -> bytes:
    """``data`` with every run of blank lines made one blank line (``data`` itself when it has none).

    Safe for MIME: a blank line still ends the headers and still precedes a
    boundary; base64 ignores blank lines; a text loses only vertical space.
    """
    if b"\n\n\n" not in data and not _THREE_LINES_RE.search(data):
        return data
    return _BLANK_RUN_BYTES_RE.sub(_one_blank_line_bytes, data)


_THREE_LINES_RE = re.compile(rb"\n[ \t\r]*\n[ \t\r]*\n")


def _check_lines(what: str, lines: int, limits: IntakeLimits) -> None:
    if lines > limits.max_lines:
        raise ComplaintTooLarge(
            f"{what}: value {lines} lines: more lines than the limit of {limits.max_lines} (max_lines; "
            "runs of blank lines count as one)"
        )


def _raw_header(msg: email.message.Message, name: str) -> str | None:
    """The first ``name`` header as written (unparsed: the policy's parser raises on
    hostile values, so each field is parsed where its errors can name it)."""
    key = name.lower()
    for k, v in msg.raw_items():
        if k.lower() == key:
            return str(v)
    return None


def _headers_text(msg: email.message.Message) -> str:
    return "\n".join(f"{one_line(k, limit=100)}: {one_line(str(v))}" for k, v in msg.raw_items())


def _addr(msg: email.message.Message, field: str) -> str | None:
    """The first address of ``field`` (From, Reply-To), strictly parsed, lower case.

    Raises:
        AddressError: the field is there but holds no address we can parse.
    """
    value = _raw_header(msg, field)
    if value is None or not value.strip():
        return None
    address = parse_addresses(value, field=field)[0]
    return address.addr_spec.lower()


def _field_map(text: str) -> dict[str, str]:
    """``Key: value`` lines (ARF feedback-report, X-ARF v0.1) keyed in lower case."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        m = _FIELD_RE.fullmatch(line.strip())
        if m and m.group(1).lower() not in fields:
            fields[m.group(1).lower()] = m.group(2).strip()
    return fields


class _NoAliasLoader(yaml.SafeLoader):
    """A SafeLoader that refuses anchors and aliases, and nesting past a small depth.

    X-ARF reports are flat ``key: value`` documents; an alias is how a 617-byte
    "billion laughs" document grows to gigabytes, and the composer recurses
    once per nesting level.
    """

    MAX_DEPTH = 20

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ComplaintTooComplex(
                f"X-ARF report: value {event.start_mark.line + 1}:{event.start_mark.column + 1}: "
                "YAML anchors and aliases are refused (an alias bomb grows without bound)"
            )
        self._depth += 1
        if self._depth > self.MAX_DEPTH:
            raise ComplaintTooComplex(
                f"X-ARF report: value {event.start_mark.line + 1}:{event.start_mark.column + 1}: "
                f"YAML nested deeper than {self.MAX_DEPTH} levels"
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))
_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)


def _load_yaml_c(text: str) -> Any:
    """``text`` loaded by libyaml (a tenth of the pure-Python loader's time), after the same
    refusals as :class:`_NoAliasLoader` made on libyaml's own event stream: an anchor or
    alias anywhere, a node nested deeper than ``MAX_DEPTH``."""
    open_collections = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, _NODE_EVENTS):
            mark = event.start_mark
            where = f"{mark.line + 1}:{mark.column + 1}" if mark is not None else "?"
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise ComplaintTooComplex(
                    f"X-ARF report: value {where}: YAML anchors and aliases are refused "
                    "(an alias bomb grows without bound)"
                )
            if open_collections + 1 > _NoAliasLoader.MAX_DEPTH:
                raise ComplaintTooComplex(
                    f"X-ARF report: value {where}: YAML nested deeper than {_NoAliasLoader.MAX_DEPTH} levels"
                )
            if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                open_collections += 1
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            open_collections -= 1
    return yaml.load(text, Loader=yaml.CSafeLoader)  # the safe loader, in C


def _xarf_fields(text: str, limits: IntakeLimits) -> dict[str, str]:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_yaml_bytes:
        raise ComplaintTooLarge(
            f"X-ARF report: value {size} bytes: larger than the limit of {limits.max_yaml_bytes} bytes"
        )
    loader: _NoAliasLoader | None = None
    try:
        if _LIBYAML:
            loaded = _load_yaml_c(text)
        else:  # pragma: no cover - PyYAML built without libyaml
            loader = _NoAliasLoader(text)  # its reader already raises on a NUL
            loaded = loader.get_single_data()
    except IpsinfraError:
        raise
    except (yaml.YAMLError, ValueError, OverflowError, TypeError, RecursionError):
        # Not YAML (X-ARF v0.1 is "Key: value" lines), or a value the constructor
        # rejects (a 2025-13-45 timestamp): read it as lines.
        loaded = None
    finally:
        if loader is not None:
            loader.dispose()
    if isinstance(loaded, dict):
        return {one_line(str(k)).lower(): one_line(str(v)) for k, v in loaded.items() if v is not None}
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
        return ipaddress.ip_address(value.strip().strip("[]")[:100])
    except ValueError:
        return None


# --------------------------------------------------------------------------- parser


class _Budget:
    """Counts the parts of one message while it is parsed."""

    def __init__(self, limits: IntakeLimits) -> None:
        self.limits = limits
        self.parts = 1


_PARAMETER_HEADERS = frozenset({"content-type", "content-disposition"})


class _BoundedMessage(email.message.EmailMessage):
    """An EmailMessage that refuses, as the parser attaches it, a part past the budget.

    The check runs before the parser descends into the part, so nesting never
    gets deep enough for the parser's own recursion to fail (2,000 levels of
    multipart were a ``RecursionError``).
    """

    def __init__(self, policy: Any = None, *, budget: _Budget) -> None:
        super().__init__(policy=policy)
        self._budget = budget
        self._depth = 1
        self._headers_seen = 0

    def set_raw(self, name: str, value: Any) -> None:
        """Called by the parser for each header field: refused past the limits, before more are read."""
        limits = self._budget.limits
        self._headers_seen += 1
        if self._headers_seen > limits.max_headers:
            raise ComplaintTooComplex(
                f"complaint: value headers>{limits.max_headers}: more header fields in one part than the "
                f"limit of {limits.max_headers}"
            )
        if len(value) > limits.max_header_bytes:
            raise ComplaintTooLarge(
                f"{one_line(name, limit=60)}: value {len(value)} bytes: a header larger than "
                f"the limit of {limits.max_header_bytes} bytes"
            )
        if name.lower() in _PARAMETER_HEADERS and value.count(";") > limits.max_params:
            # The policy parses these again on every read, each parameter in Python:
            # 12,000 of them took 4.5 s for a 50 KB message.
            raise ComplaintTooComplex(
                f"{one_line(name, limit=60)}: value {value.count(';')} parameters: more than the limit of "
                f"{limits.max_params} (max_params)"
            )
        super().set_raw(name, value)

    def attach(self, payload: Any) -> None:
        if isinstance(payload, _BoundedMessage):
            budget = self._budget
            budget.parts += 1
            payload._depth = self._depth + 1
            if payload._depth > budget.limits.max_depth:
                raise ComplaintTooComplex(
                    f"complaint: value depth>{budget.limits.max_depth}: MIME parts nested deeper than "
                    f"the limit of {budget.limits.max_depth} levels"
                )
            if budget.parts > budget.limits.max_parts:
                raise ComplaintTooComplex(
                    f"complaint: value parts>{budget.limits.max_parts}: more MIME parts than the "
                    f"limit of {budget.limits.max_parts}"
                )
        super().attach(payload)


class _MemoPolicy(email.policy.EmailPolicy):
    """``policy.default`` that parses each short header value once.

    The default policy parses a header again on every read, and intake reads
    Content-Type ~16 times per complaint (``get_content_type``, ``is_multipart``,
    ``get_param``...): half of the time of a whole parse went there. Header
    objects are immutable, so one parsed value is shared; long values are not
    kept (the cache stays small whatever the complaint).
    """

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name") or len(value) > _MEMO_MAX_CHARS:
            return super().header_fetch_parse(name, value)
        return _parsed_header(self, name, value)


_MEMO_MAX_CHARS = 2048


@functools.lru_cache(maxsize=512)
def _parsed_header(memo: _MemoPolicy, name: str, value: str) -> Any:
    return email.policy.EmailPolicy.header_fetch_parse(memo, name, value)


_MEMO_POLICY = _MemoPolicy()


def _parse_mime(data: bytes, limits: IntakeLimits) -> email.message.EmailMessage:
    budget = _Budget(limits)

    def factory(policy: Any = None) -> _BoundedMessage:
        return _BoundedMessage(policy, budget=budget)

    msg = email.parser.BytesParser(factory, policy=_MEMO_POLICY).parsebytes(data)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


class _Parts:
    def __init__(self) -> None:
        self.statement: list[str] = []
        self.evidence: list[str] = []
        self.ip_text: list[str] = []


def parse_complaint(
    raw: bytes | str,
    received_at: dt.datetime | None = None,
    *,
    mailbox_date: dt.datetime | None = None,
    limits: IntakeLimits | None = None,
) -> Complaint:
    """Parse one complaint.

    The receipt time is ours (``Complaint.received_at``, its origin in
    ``received_source``), the first of:

    1. ``received_at``: the operator's override (``--received-at``), for a file whose headers lie;
    2. the date of the top ``Received:`` header (the part after its last ``;``),
       the one our own mail server stamped; unreadable -> the next rule, with a note;
    3. ``mailbox_date``: what the mailbox says (IMAP INTERNALDATE, Maildir file
       time), else the date of an mbox ``From sender date`` first line;
    4. now (UTC).

    The ``Date:`` header is the complainant's claim: informational
    (``arrival_date`` when the report has no Arrival-Date), never required, and
    an unreadable one is a note, not an error. An mbox ``From `` first line (mail
    saved by a mail client, procmail, formail) is taken off and ``>From `` body
    lines unquoted.

    Bounded by ``limits`` (default :class:`IntakeLimits`): whatever the input, this
    returns a :class:`Complaint` or raises an :class:`~ipsinfra.errors.InvalidInput`.

    Raises:
        ComplaintTooLarge: the complaint, a header or its X-ARF report is past its limit.
        ComplaintTooComplex: too many MIME parts, nested too deep, YAML aliases.
        MalformedComplaint: a part of it cannot be read (the message names the field).
        AddressError: From or Reply-To holds no address we can parse.
        InvalidInput: empty input.
    """
    limits = limits or DEFAULT_LIMITS
    size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
    if size > limits.max_bytes:
        raise ComplaintTooLarge(
            f"complaint: value {size} bytes: larger than the limit of {limits.max_bytes} bytes (max_bytes)"
        )
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if not data.strip():
        raise InvalidInput("complaint: value '': the complaint is empty")
    try:
        return _parse(data, raw, received_at, mailbox_date, limits)
    except IpsinfraError:
        raise
    except RecursionError:  # pragma: no cover - the depth limit comes first
        raise ComplaintTooComplex("complaint: value nesting: too deep to read") from None
    except (
        ValueError,
        LookupError,
        OverflowError,
        TypeError,
        AttributeError,
        AssertionError,
        email.errors.MessageError,
    ) as exc:
        # The stdlib's e-mail parser fails on hostile input in ways that change between
        # Python versions; whatever it is, it is this complaint's fault, not a crash.
        detail = one_line(f"{type(exc).__name__}: {exc}", limit=200)
        raise MalformedComplaint(f"complaint: value {detail!r}: the message cannot be read") from None


def _parse(
    data: bytes,
    raw: bytes | str,
    received_at: dt.datetime | None,
    mailbox_date: dt.datetime | None,
    limits: IntakeLimits,
) -> Complaint:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()[:32]
    notes: list[str] = []
    squeezed = _squeeze_blank_lines_bytes(data)
    if squeezed is not data:
        data = raw = squeezed
    _check_lines("complaint", data.count(b"\n"), limits)
    mbox = _strip_mbox_from(data, notes)
    if mbox is not None:
        data, mbox_date = mbox
        raw = data
        mailbox_date = mailbox_date or mbox_date
    text_probe = data[:8192].decode("utf-8", errors="replace").replace("\r\n", "\n")

    msg: email.message.EmailMessage | None = None
    if not _looks_like_mail(text_probe):
        body = data.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        parts = _Parts()
        parts.statement.append(body)
        parts.evidence.append(body)
        parts.ip_text.append(body)
        subject = ""
        headers_date = None
        date_text: str | None = None
        fmt = ComplaintFormat.PLAIN
        feedback: dict[str, str] = {}
        xarf: dict[str, str] = {}
        forwarded_wrapper: str | None = None
    else:
        msg = _parse_mime(data, limits)
        subject = one_line(_raw_header(msg, "Subject") or "")
        date_text = _raw_header(msg, "Date")
        headers_date = _parse_date(one_line(date_text)) if date_text is not None else None
        parts, fmt, feedback, xarf, forwarded_wrapper = _read_message(msg, limits)

    when, source = _receipt_time(msg, received_at, mailbox_date, notes)
    if headers_date is None and date_text is not None and date_text.strip():
        notes.append(f"Date: value {one_line(date_text, limit=80)!r}: not a date; ignored (informational)")

    statement = "\n\n".join(t.strip() for t in parts.statement if t.strip())
    evidence = "\n\n".join(t.strip() for t in parts.evidence if t.strip())

    # Targets: the reports' own rows first (ARF Source-IP or Received chain, X-ARF
    # Source, CSV rows, ACNS, Safe Browsing, CleanMX): then they are the targets,
    # one case each. Else the text.
    reports = _report_cases(msg, subject, statement, feedback, xarf, limits)
    found = _Found(limits.max_ips, limits.max_networks)
    for case in reports.cases:
        found.add_ip(case.ip)
    for net in reports.networks or ():
        found.add_net(net)  # the range a listing names besides its cases' addresses
    target_cut: str | None = None
    if not reports.cases:
        ip_text = "\n".join(parts.ip_text)
        _check_lines("complaint text", ip_text.count("\n"), limits)
        if len(ip_text) > limits.max_target_chars:
            # A complaint names its targets at the top; past this, reading costs ~0.1 s/MB per pass.
            target_cut = (
                f"targets: addresses were read from the first {limits.max_target_chars} of "
                f"{len(ip_text)} characters (max_target_chars)"
            )
            ip_text = ip_text[: limits.max_target_chars]
        _extract_targets(ip_text, found)
        if xarf.get("source"):
            _extract_targets(xarf["source"], found)
    kept = set(found.ips)
    cases = tuple(c for c in reports.cases if c.ip in kept)

    cuts = found.notes() + reports.notes + ([target_cut] if target_cut else [])
    if len(statement) > CLASSIFY_CHARS:
        cuts.append(
            f"statement: {len(statement)} characters; classification and the reaction time read "
            f"the first {CLASSIFY_CHARS}"
        )

    sbl = _SBL_REF_RE.search(f"{subject}\n{statement}")
    sbl_ref = f"SBL{sbl.group(1)}" if sbl else None
    sender = _addr(msg, "From") if msg is not None else None
    hours_text = forwarded_wrapper if forwarded_wrapper is not None else f"{subject}\n{statement}"
    dc_hours = extract_reaction_hours(hours_text[: len(subject) + 1 + CLASSIFY_CHARS])
    if fmt in (ComplaintFormat.PLAIN, ComplaintFormat.MIME):
        if forwarded_wrapper is not None:
            fmt = ComplaintFormat.DC_FORWARD
        elif sbl_ref and ("spamhaus" in (sender or "") or "spamhaus" in statement.lower()):
            fmt = ComplaintFormat.SBL_NOTICE
        elif cases:
            fmt = _SCHEME_FORMATS.get(cases[0].scheme, fmt)
    if reports.xarf_json:
        fmt = ComplaintFormat.XARF

    message_id = one_line(_raw_header(msg, "Message-ID") or "", limit=250) if msg is not None else ""
    report_type = reports.report_type or feedback.get("feedback-type") or xarf.get("report-type")
    return Complaint(
        id=message_id.strip("<>") or digest,
        format=fmt,
        message_id=message_id or None,
        sender=sender,
        reply_to=_addr(msg, "Reply-To") if msg is not None else None,
        subject=subject,
        received_at=when,
        received_source=source,
        ips=tuple(found.ips),
        networks=tuple(found.nets),
        cases=cases,
        statement=statement,
        evidence=evidence,
        dc_reaction_hours=dc_hours,
        sbl_ref=sbl_ref,
        report_type=report_type.lower() if report_type else None,
        report_category=xarf.get("category", "").lower() or None,
        reported_domain=feedback.get("reported-domain") or xarf.get("domain") or None,
        arrival_date=_parse_date(feedback.get("arrival-date") or xarf.get("date")) or headers_date,
        truncated=tuple(cuts),
        notes=tuple(notes),
    )


# An mbox envelope line: "From sender asctime-date" (mboxo/mboxrd; ">From " when
# quoted once more). Bounded: one line of at most 1,000 bytes.
_MBOX_FROM_RE = re.compile(rb">?From ([^\s]{1,500})[ \t]+([^\r\n]{1,200}?)[ \t]*")
_MBOX_NEXT_FIELD_RE = re.compile(rb"[!-9;-~]{1,100}:")
# A quoted body line, found by its newline (a search skipping in C from line to line).
_MBOX_QUOTED_RE = re.compile(rb"\n>(>*From )")


def _strip_mbox_from(data: bytes, notes: list[str]) -> tuple[bytes, dt.datetime | None] | None:
    """``data`` without its mbox ``From sender date`` first line, and that line's
    date (None when unreadable, with a note); None when there is no such line.

    Taken off only when a header field follows it ("From the logs we see..."
    stays a plain-text complaint); ``>From `` body lines (mboxrd quoting) lose
    one ``>``.
    """
    if not data.startswith((b"From ", b">From ")):
        return None
    end = data.find(b"\n", 0, 1024)
    if end < 0:
        return None
    m = _MBOX_FROM_RE.fullmatch(data[:end].rstrip(b"\r"))
    rest = data[end + 1 :]
    if m is None or not _MBOX_NEXT_FIELD_RE.match(rest):
        return None
    date_text = m.group(2).decode("latin-1")
    when = _parse_date(date_text)
    if when is None:
        notes.append(f"mbox From line: value {one_line(date_text, limit=80)!r}: not a date; ignored")
    if b">From " in rest:
        rest = _MBOX_QUOTED_RE.sub(rb"\n\1", rest)
    return rest, when


def _receipt_time(
    msg: email.message.Message | None,
    received_at: dt.datetime | None,
    mailbox_date: dt.datetime | None,
    notes: list[str],
) -> tuple[dt.datetime, ReceivedSource]:
    """When we received the complaint, and from where that is known (see :func:`parse_complaint`)."""
    if received_at is not None:
        return _aware(received_at), "override"
    top = _raw_header(msg, "Received") if msg is not None else None
    if top is not None:
        _, semicolon, tail = top.rpartition(";")
        when = _parse_date(one_line(tail, limit=200)) if semicolon else None
        if when is not None:
            return when, "received-header"
        shown = one_line(tail if semicolon else top, limit=80)
        notes.append(f"Received: value {shown!r}: no readable date after its last ';'; not used")
    if mailbox_date is not None:
        return _aware(mailbox_date), "mailbox"
    return dt.datetime.now(dt.UTC), "now"


def _report_cases(
    msg: email.message.Message | None,
    subject: str,
    statement: str,
    feedback: dict[str, str],
    xarf: dict[str, str],
    limits: IntakeLimits,
) -> Found:
    """The report rows of the complaint (:func:`ipsinfra.abuse.formats.detect.find_cases`),
    a report past its limits refused as this module refuses."""
    caps = Caps(
        max_cases=limits.max_cases,
        max_report_bytes=limits.max_report_bytes,
        max_attachment_bytes=limits.max_attachment_bytes,
        max_compression_ratio=limits.max_compression_ratio,
        max_archive_members=limits.max_archive_members,
    )
    try:
        return find_cases(msg, subject, statement, feedback, xarf, caps)
    except FormatRejected as exc:
        refusal: type[ComplaintRejected] = MalformedComplaint
        if exc.kind == "large":
            refusal = ComplaintTooLarge
        elif exc.kind == "complex":
            refusal = ComplaintTooComplex
        raise refusal(str(exc)) from None


def _forward_marker(body: str) -> int | None:
    """Where the first forward marker line ("---- Original Message ----") starts, or None."""
    m = _FORWARD_MARKER_RE.search("\n" + body)
    return None if m is None else m.start()  # the "\n" put in front: the line's start in body


def _read_message(
    msg: email.message.Message, limits: IntakeLimits
) -> tuple[_Parts, ComplaintFormat, dict[str, str], dict[str, str], str | None]:
    parts = _Parts()
    feedback: dict[str, str] = {}
    xarf: dict[str, str] = {}
    wrapper: str | None = None
    content_type = msg.get_content_type()
    is_arf = content_type == "multipart/report" and msg.get_param("report-type") == "feedback-report"
    x_arf = one_line(_raw_header(msg, "X-ARF") or "", limit=20).lower()
    is_xarf = bool((_raw_header(msg, "X-XARF") or "").strip()) or x_arf in {"yes", "plain"}

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
                xarf = _xarf_fields(text, limits)
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
    marker = _forward_marker(body)
    if marker is not None:
        wrapper = body[:marker]
    if attached:
        forwarded = wrapper is not None or bool(_FORWARD_HINT_RE.search(body))
        for part in attached:
            inner = _inner_message(part)
            if forwarded and inner is not None:
                # A DC wrapping the original complaint: the inner body is the complaint.
                wrapper = body if wrapper is None else wrapper
                inner_parts, _, inner_fb, inner_x, _ = _read_message(inner, limits)
                subj = one_line(_raw_header(inner, "Subject") or "")
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
    name = one_line(str(part.get_filename() or ""), limit=200)
    return f"[{part.get_content_type()} attachment {name}]".strip()
