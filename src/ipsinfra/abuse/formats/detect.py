"""Find the structured reports in a parsed complaint and turn them into cases.

Called by :func:`ipsinfra.abuse.intake.parse_complaint` once the message is
parsed; looks, in this order, at

1. the ARF feedback report (``Source-IP``, else the top ``Received:`` field of
   the reported message) and the X-ARF v0.1/v0.2 report fields intake read;
2. every attached file (also inside forwarded mails): CSV reports (plain, ``.gz``,
   ``.zip``), X-ARF JSON, ACNS and Safe Browsing XML, all decompressed within
   one :class:`~.archive.Budget` for the whole complaint;
3. the statement: an ACNS notice inline, a Safe Browsing XML body, a CleanMX table;
4. when nothing above gave a case, the notifiers' own text forms, each keyed on
   its own markers (never the sender's address): a Netcraft incident notice
   (:mod:`.netcraft`), a Project Honey Pot notice (:mod:`.projecthoneypot`), a
   Safe Browsing alert as text or HTML (:mod:`.safebrowsing`), a Spamhaus
   listing (:mod:`.spamhaus`: its listing type, and the listed ranges in
   :attr:`Found.networks`).

Attached ``.txt`` files holding X-ARF v0.1/v0.2 fields (a ``report.txt``, WebIron's
``arf_reportN``) are read like the X-ARF part of an X-ARF mail, whether or not
the mail says ``X-ARF: YES``.

Cases are de-duplicated (same IP, type and time) and capped at ``max_cases``;
the cut is reported, never silent.
"""

from __future__ import annotations

import email.message
import re
from dataclasses import dataclass

from ipsinfra.abuse.formats import (
    acns,
    arf,
    cleanmx,
    csvreport,
    netcraft,
    projecthoneypot,
    safebrowsing,
    spamhaus,
    xarf,
)
from ipsinfra.abuse.formats.archive import Budget, expand
from ipsinfra.abuse.formats.base import FormatRejected, ReportCase, ip_or_none, parse_time, short
from ipsinfra.abuse.targets import IPNetwork

__all__ = ["Caps", "Found", "find_cases"]

_FILE_TYPES = frozenset(
    {
        "application/zip",
        "application/x-zip-compressed",
        "application/gzip",
        "application/x-gzip",
        "application/octet-stream",
        "text/csv",
        "application/csv",
        "application/json",
        "application/xml",
        "text/xml",
    }
)
_FILE_SUFFIXES = (".csv", ".zip", ".gz", ".gzip", ".json", ".xml")
_UNFOLD_RE = re.compile(r"\r?\n[ \t]+")
# X-ARF v0.1/v0.2 fields of an attached text file: "Key: value" lines.
_XARF_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,40}):[ \t]*([^\r\n]{0,500})$", re.MULTILINE)
_XARF_FILE_CHARS = 65536
_SMTP_AUTH_RE = re.compile(r"\bsmtp\.auth=([^\s;]{1,254})")


@dataclass(frozen=True)
class Caps:
    """The limits detection works under (from :class:`~ipsinfra.abuse.intake.IntakeLimits`)."""

    max_cases: int
    max_report_bytes: int
    max_attachment_bytes: int
    max_compression_ratio: int
    max_archive_members: int


@dataclass
class Found:
    cases: list[ReportCase]
    notes: list[str]
    xarf_json: bool = False
    report_type: str | None = None
    networks: list[IPNetwork] | None = None


def find_cases(
    msg: email.message.Message | None,
    subject: str,
    statement: str,
    feedback: dict[str, str],
    xarf_fields: dict[str, str],
    caps: Caps,
) -> Found:
    """The cases of one complaint (see the module docstring).

    Raises:
        FormatRejected: an attachment or report past its limit or unreadable.
    """
    found = Found(cases=[], notes=[])
    cases: list[ReportCase] = []
    if feedback and feedback.get("feedback-type", "").lower() != "xarf":
        case = _arf_case(msg, feedback)
        if case is not None:
            cases.append(case)
    if xarf_fields:
        case = _xarf_fields_case(xarf_fields)
        if case is not None:
            cases.append(case)
    if msg is not None:
        budget = Budget(caps.max_attachment_bytes, caps.max_compression_ratio, caps.max_archive_members)
        for part in msg.walk():
            if part.is_multipart() or not _is_file(part):
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes) or not payload:
                continue
            name = str(part.get_filename() or "")[:255] or f"attachment.{part.get_content_subtype()}"
            for inner, data in expand(name, payload, budget):
                more = _file_cases(inner, part.get_content_type(), data, caps, found)
                cases.extend(more)
                if len(cases) > caps.max_cases * 2:
                    break
    block = acns.find_acns(statement[: caps.max_report_bytes * 2])
    if block is not None:
        cases.extend(acns.parse_acns(block, caps.max_report_bytes))
    elif safebrowsing.looks_like_safebrowsing(statement):
        cases.extend(safebrowsing.parse_safebrowsing(statement, caps.max_report_bytes, caps.max_cases + 1))
    else:
        cases.extend(cleanmx.parse_cleanmx(subject, statement, caps.max_cases + 1))
    if not cases:
        cases.extend(_notifier_cases(subject, statement, caps, found))

    seen: set[tuple[object, ...]] = set()
    for case in cases:
        key = (case.ip, case.scheme, case.report_type, case.observed_at)
        if key in seen:
            continue
        seen.add(key)
        if len(found.cases) >= caps.max_cases:
            found.notes.append(
                f"cases: more than {caps.max_cases} report rows; the first {caps.max_cases} kept (max_cases)"
            )
            break
        found.cases.append(case)
    return found


def _notifier_cases(subject: str, statement: str, caps: Caps, found: Found) -> list[ReportCase]:
    """The cases of a notifier's own text form (see the module docstring, step 4)."""
    text = statement[: caps.max_report_bytes]
    rows = caps.max_cases + 1
    cases = netcraft.parse_netcraft(subject, text, rows)
    cases = cases or projecthoneypot.parse_projecthoneypot(text, rows)
    cases = cases or safebrowsing.parse_safebrowsing_text(text, rows)
    if cases:
        return cases
    listing = spamhaus.parse_spamhaus(f"{subject}\n{text}", rows)
    if listing is None:
        return []
    found.report_type = found.report_type or listing.kind
    found.networks = listing.networks
    return listing.cases


def _is_file(part: email.message.Message) -> bool:
    ctype = part.get_content_type()
    if ctype in _FILE_TYPES:
        return True
    name = str(part.get_filename() or "").lower()
    return name.endswith(_FILE_SUFFIXES) or (
        part.get_content_disposition() == "attachment" and ctype.startswith("text/") and name.endswith(".txt")
    )


def _file_cases(name: str, ctype: str, data: bytes, caps: Caps, found: Found) -> list[ReportCase]:
    """The cases of one attached file. A CSV or JSON file that cannot be read is evidence,
    not a report (a note says so); one past a limit (size, nesting) is refused."""
    lower = name.lower()
    text = data.decode("utf-8", errors="replace")
    try:
        if csvreport.looks_like_csv(lower, ctype):
            return csvreport.parse_csv(name, text, caps.max_cases + 1)  # one more: the cut shows
        if lower.endswith(".json") or ctype == "application/json":
            if not xarf.looks_like_json(text[:64]):
                return []
            cases = xarf.parse_json(text, caps.max_report_bytes)
            if cases:
                found.xarf_json = True
                found.report_type = found.report_type or cases[0].report_type
            return cases
    except FormatRejected as exc:
        if exc.kind != "malformed":
            raise
        found.notes.append(f"{exc}; read as evidence only")
        return []
    head = text[:65536].lower()
    if lower.endswith(".txt") and "report-type:" in head and "\nsource:" in "\n" + head:
        return _xarf_text_cases(text[:_XARF_FILE_CHARS])
    if "<infringement" in head:
        block = acns.find_acns(text)
        return acns.parse_acns(block, caps.max_report_bytes) if block else []
    if safebrowsing.looks_like_safebrowsing(text):
        return safebrowsing.parse_safebrowsing(text, caps.max_report_bytes, caps.max_cases + 1)
    return []


def _arf_case(msg: email.message.Message | None, feedback: dict[str, str]) -> ReportCase | None:
    ip = ip_or_none(feedback.get("source-ip", ""))
    how = "Source-IP"
    if ip is None and msg is not None:
        ip = arf.source_ip_from_received(_reported_received(msg))
        how = "the top Received of the reported message"
    if ip is None:
        return None
    ftype = feedback.get("feedback-type", "").strip().lower()[:64] or None
    # An outgoing filter's report (SpamExperts) names the mailbox that sent it: the account to look at.
    auth = _SMTP_AUTH_RE.search(feedback.get("authentication-results", ""))
    return ReportCase(
        ip=ip,
        scheme="arf",
        report_type=ftype,
        observed_at=parse_time(feedback.get("arrival-date", "")),
        evidence=short(
            f"ARF {ftype or '?'}: {ip} ({how}) {feedback.get('reported-domain', '')}"
            + (f" smtp.auth={auth.group(1)}" if auth else "")
        ),
    )


def _reported_received(msg: email.message.Message) -> list[str]:
    """The Received fields of the reported message (message/rfc822 or text/rfc822-headers part)."""
    payload = msg.get_payload()
    if not isinstance(payload, list):
        return []
    for part in payload:
        if not isinstance(part, email.message.Message):
            continue
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
                return [str(v) for k, v in inner[0].raw_items() if k.lower() == "received"]
        elif ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(part.get_payload())
            head = _UNFOLD_RE.sub(" ", text.split("\n\n", 1)[0][:65536])
            return [
                line.split(":", 1)[1] for line in head.splitlines() if line.lower().startswith("received:")
            ]
    return []


def _xarf_text_cases(text: str) -> list[ReportCase]:
    """The case of an attached file of X-ARF ``Key: value`` fields (blocklist.de's
    ``report.txt``, WebIron's ``arf_reportN``; WebIron quotes its Date)."""
    fields: dict[str, str] = {}
    for m in _XARF_FIELD_RE.finditer(text):
        fields.setdefault(m.group(1).lower(), m.group(2).strip().strip("'\""))
    case = _xarf_fields_case(fields)
    return [case] if case is not None else []


def _xarf_fields_case(fields: dict[str, str]) -> ReportCase | None:
    if not fields.get("source-type", "ip").lower().startswith("ip"):
        return None
    ip = ip_or_none(fields.get("source", ""))
    if ip is None:
        return None
    rtype = (fields.get("report-type") or fields.get("category") or "").strip().lower()[:64] or None
    return ReportCase(
        ip=ip,
        scheme="xarf",
        report_type=rtype,
        observed_at=parse_time(fields.get("date", "")),
        evidence=short(
            f"X-ARF {fields.get('category', '?')}/{rtype or '?'}: {ip} {fields.get('service', '')}"
        ),
    )
