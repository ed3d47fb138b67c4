"""ACNS (Automated Copyright Notice System) notices: the ``<Infringement>`` XML
that copyright agents embed in the mail body (often inside a PGP-signed text)
or attach as ``.xml``. ``Source/IP_Address`` is the reported address,
``Source/TimeStamp`` when it was seen, ``Source/Type`` (and ``SubType``'s
``BaseType``) the infringement type; every ACNS notice is about copyright.

The XML goes to the stdlib's parser only after :func:`~.base.xml_guard`
refused DOCTYPE/ENTITY declarations; bare ``&`` (some senders do not escape
them) are escaped first.

Example::

    >>> xml = ('<Infringement xmlns="http://www.acns.net/ACNS"><Source>'
    ...        '<TimeStamp>2025-03-05T08:06:44Z</TimeStamp><IP_Address>192.0.2.55</IP_Address>'
    ...        '<Type>BitTorrent</Type></Source></Infringement>')
    >>> [(str(c.ip), c.report_type) for c in parse_acns(xml, 1 << 20)]
    [('192.0.2.55', 'bittorrent')]
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ipsinfra.abuse.formats.base import FormatRejected, ReportCase, ip_or_none, parse_time, short, xml_guard

__all__ = ["find_acns", "parse_acns"]

_BARE_AMP_RE = re.compile(r"&(?!#?[A-Za-z0-9]{1,10};)")
_QUOTE_RE = re.compile(r"^[ \t]*(?:>[ \t]?)+", re.MULTILINE)


def find_acns(text: str) -> str | None:
    """The ``<Infringement>...</Infringement>`` block of a text (quote marks removed), or None.

    Raises:
        FormatRejected: a DOCTYPE or ENTITY declaration before it.
    """
    lower = text.lower()
    start = lower.find("<infringement")
    if start < 0:
        return None
    end = lower.find("</infringement>", start)
    if end < 0:
        return None
    xml_guard(text[max(0, start - 65536) : start], "ACNS notice")  # a DOCTYPE before the root
    block = text[start : end + len("</infringement>")]
    return _QUOTE_RE.sub("", block) if "\n>" in block or "\n >" in block else block


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: ET.Element | None, name: str) -> ET.Element | None:
    if node is None:
        return None
    return next((c for c in node if _local(c.tag) == name), None)


def _text(node: ET.Element | None, name: str) -> str:
    found = _child(node, name)
    return (found.text or "").strip() if found is not None else ""


def parse_acns(block: str, max_bytes: int) -> list[ReportCase]:
    """The case of one ACNS notice.

    Raises:
        FormatRejected: too large, a DOCTYPE/ENTITY, not XML, or no ``Source/IP_Address``.
    """
    size = len(block.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise FormatRejected(
            f"ACNS notice: value {size} bytes: larger than the limit of {max_bytes} bytes (max_report_bytes)",
            "large",
        )
    xml_guard(block, "ACNS notice")
    try:
        root = ET.fromstring(_BARE_AMP_RE.sub("&amp;", block))
    except ET.ParseError as exc:
        raise FormatRejected(f"ACNS notice: value {str(exc)[:80]!r}: not readable XML") from None
    source = _child(root, "Source")
    raw_ip = _text(source, "IP_Address")
    ip = ip_or_none(raw_ip)
    if ip is None:
        raise FormatRejected(f"ACNS notice: Source/IP_Address value {raw_ip[:64]!r}: not an IP address")
    sub = _child(source, "SubType")
    base = sub.get("BaseType", "") if sub is not None else ""
    kind = _text(source, "Type") or base or "copyright"
    case_id = _text(_child(root, "Case"), "ID")
    item = _child(_child(root, "Content"), "Item")
    title = _text(item, "Title") or _text(item, "FileName")
    port = _text(source, "Port")
    return [
        ReportCase(
            ip=ip,
            scheme="acns",
            report_type=kind.lower()[:64],
            observed_at=parse_time(_text(source, "TimeStamp")),
            evidence=short(f"ACNS case {case_id or '?'}: {kind} {base} {ip}:{port} {title!r}"),
        )
    ]
