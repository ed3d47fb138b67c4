"""Google Safe Browsing alerts for network administrators, XML form: a root with a
``date`` attribute, ``<list type="N">`` elements holding ``<url_info url=... ip=...>``.
The list type is Google's: 0 compromised, 1 social engineering (phishing),
2 distribution, 3 unwanted software, 4 malicious software (the type codes as
AbuseIO's Google parser documents them; Google's schema: safebrowsing/alerts/xml/message.xsd).
A URL without an ``ip`` attribute whose host is an address reports that address;
nothing is resolved.

The plain e-mail form (text or HTML, Google's default) is read too
(:func:`parse_safebrowsing_text`): the notice names Safe Browsing and lists the
URLs under headings that are the list types' names ("Malicious software",
"Social engineering", ...; Google documents the five in its announcement of
2016-04-06, "Improvements to Safe Browsing Alerts for Network Administrators").
A heading is the list type, so a text case has the same report type (the code)
as an XML one; a URL line names its address (``http://shop.example/x
203.0.113.5``) or has one as its host.

Example::

    >>> xml = ('<message date="2025-03-05T10:00:00Z"><list type="1">'
    ...        '<url_info url="http://192.0.2.9/x" ip="192.0.2.9"/></list></message>')
    >>> [(str(c.ip), c.report_type) for c in parse_safebrowsing(xml, 1 << 20, 10)]
    [('192.0.2.9', '1')]
"""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET

from ipsinfra.abuse.formats.base import FormatRejected, ReportCase, ip_or_none, parse_time, short, xml_guard
from ipsinfra.abuse.targets import refang

__all__ = ["LIST_TYPES", "looks_like_safebrowsing", "parse_safebrowsing", "parse_safebrowsing_text"]

LIST_TYPES = {
    "0": "compromised",
    "1": "social engineering",
    "2": "distribution",
    "3": "unwanted software",
    "4": "malicious software",
}


# A heading line of the text form: the list type's name, perhaps "(2)" or ":" after it.
_HEADING_RE = re.compile(
    r"^[ \t*#>-]{0,8}"
    r"(compromised|social engineering|distribution|unwanted software|malicious software|malware)"
    r"(?:[ \t]+(?:sites?|urls?|pages?|domains?))?[ \t]*(?:\(\d{1,6}\))?[ \t]*:?[ \t]*$",
    re.IGNORECASE,
)
_HEADING_CODES = {
    "compromised": "0",
    "social engineering": "1",
    "distribution": "2",
    "unwanted software": "3",
    "malicious software": "4",
    "malware": "4",
}
_MARKER_RE = re.compile(r"\bSafe ?Browsing\b", re.IGNORECASE)
_URL_RE = re.compile(r"\b(?:https?|ftp)://[^\s<>\"']{1,2000}", re.IGNORECASE)
_LINE_IP_RE = re.compile(
    r"(?<![0-9A-Za-z.:])\[?((?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{2,41})\]?"
    r"(?![0-9A-Za-z.:])"
)
_MAX_TEXT_LINES = 50_000


def looks_like_safebrowsing(text: str) -> bool:
    head = text.lstrip("\ufeff \t\r\n")[:4096]
    return head.startswith("<") and "<list" in head and "url_info" in text[:65536]


def _host_ip(url: str) -> str:
    try:
        host = urllib.parse.urlsplit(url[:2000]).hostname
    except ValueError:
        return ""
    return host or ""


def parse_safebrowsing(text: str, max_bytes: int, max_rows: int) -> list[ReportCase]:
    """One case per reported URL that names an address.

    Raises:
        FormatRejected: too large, a DOCTYPE/ENTITY, or not XML.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise FormatRejected(
            f"Safe Browsing alert: value {size} bytes: larger than the limit of {max_bytes} bytes "
            "(max_report_bytes)",
            "large",
        )
    xml_guard(text, "Safe Browsing alert")
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise FormatRejected(f"Safe Browsing alert: value {str(exc)[:80]!r}: not readable XML") from None
    when = parse_time(root.get("date"))
    cases: list[ReportCase] = []
    for listed in root.iter():
        if listed.tag.rsplit("}", 1)[-1] != "list":
            continue
        code = (listed.get("type") or "").strip()[:8]
        for info in listed:
            if info.tag.rsplit("}", 1)[-1] != "url_info" or len(cases) >= max_rows:
                continue
            url = info.get("url", "")
            ip = ip_or_none(info.get("ip", "")) or ip_or_none(_host_ip(url))
            if ip is None:
                continue
            label = LIST_TYPES.get(code, "unknown list")
            cases.append(
                ReportCase(
                    ip=ip,
                    scheme="safebrowsing",
                    report_type=code or None,
                    observed_at=when,
                    evidence=short(f"Safe Browsing list {code} ({label}): {url}"),
                )
            )
    return cases


def parse_safebrowsing_text(text: str, max_rows: int) -> list[ReportCase]:
    """One case per URL line under a list-type heading of a text/HTML Safe Browsing
    notice that names an address; [] when the text is not one."""
    if _MARKER_RE.search(text[:65536]) is None:
        return []
    code: str | None = None
    heading = ""
    cases: list[ReportCase] = []
    for index, raw in enumerate(text.splitlines()):
        if index >= _MAX_TEXT_LINES or len(cases) >= max_rows:
            break
        line = raw.strip()[:2200]
        head = _HEADING_RE.match(line)
        if head is not None:
            heading = head.group(1).lower()
            code = _HEADING_CODES[heading]
            continue
        if code is None or not line:
            continue
        clean = refang(line)
        url_m = _URL_RE.search(clean)
        if url_m is None:
            continue
        url = url_m.group(0).rstrip(".,;)")
        rest = clean[: url_m.start()] + " " + clean[url_m.end() :]
        ip = next((x for x in (ip_or_none(m.group(1)) for m in _LINE_IP_RE.finditer(rest)) if x), None)
        ip = ip or ip_or_none(_host_ip(url))
        if ip is None:
            continue
        cases.append(
            ReportCase(
                ip=ip,
                scheme="safebrowsing",
                report_type=code,
                evidence=short(f"Safe Browsing list {code} ({LIST_TYPES[code]}, heading {heading!r}): {url}"),
            )
        )
    return cases
