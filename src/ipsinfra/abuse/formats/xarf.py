"""X-ARF as JSON: the abusix schema (``Version`` "1"-"3", ``Report.ReportType``,
``Report.SourceIp``) and the xarf-spec v4 shape (``xarf_version``, ``category``
/ ``type``, ``source_identifier``). Sent as an ``application/json`` part of an
ARF envelope whose ``Feedback-Type`` is ``xarf`` (the abusix README), or as
an X-ARF mail's report part.

Example::

    >>> doc = ('{"Version": "3", "Report": {"ReportClass": "Content", "ReportType": "Malware", '
    ...        '"Date": "2025-03-05T10:00:00Z", "SourceIp": "192.0.2.55"}}')
    >>> [(str(c.ip), c.report_type) for c in parse_json(doc, 1 << 20)]
    [('192.0.2.55', 'malware')]
"""

from __future__ import annotations

import json
from typing import Any

from ipsinfra.abuse.formats.base import FormatRejected, ReportCase, ip_or_none, parse_time, short

__all__ = ["looks_like_json", "parse_json"]

_MAX_DEPTH = 20


def looks_like_json(text: str) -> bool:
    return text.lstrip("\ufeff \t\r\n")[:1] == "{"


def _depth(text: str) -> int:
    """Deepest bracket nesting, counted before json.loads recurses into it."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, max_bytes: int) -> list[ReportCase]:
    """The cases of one X-ARF JSON document (one: it reports one source).

    Raises:
        FormatRejected: too large, nested too deep, or not JSON.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise FormatRejected(
            f"X-ARF report: value {size} bytes: larger than the limit of {max_bytes} bytes "
            "(max_report_bytes)",
            "large",
        )
    if _depth(text) > _MAX_DEPTH:
        raise FormatRejected(f"X-ARF report: value depth>{_MAX_DEPTH}: JSON nested too deep", "complex")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FormatRejected(f"X-ARF report: value {str(exc)[:80]!r}: not JSON") from None
    if not isinstance(doc, dict):
        raise FormatRejected("X-ARF report: value not an object: an X-ARF report is a JSON object")
    report: dict[str, Any] = doc.get("Report") if isinstance(doc.get("Report"), dict) else doc  # type: ignore[assignment]
    ip = ip_or_none(report.get("SourceIp") or report.get("source_identifier") or report.get("Source"))
    if ip is None:
        return []  # no source address: the text decides
    rtype = report.get("ReportType") or report.get("type")
    rclass = report.get("ReportClass") or report.get("category")
    when = parse_time(report.get("Date") or report.get("timestamp"))
    detail = [
        f"{k}={report[k]}"
        for k in ("ReportSubType", "SourceUrl", "url", "MalwareName", "DestinationIp")
        if k in report
    ]
    return [
        ReportCase(
            ip=ip,
            scheme="xarf",
            report_type=str(rtype).strip().lower()[:64] if rtype else None,
            observed_at=when,
            evidence=short(f"X-ARF {rclass or '?'}/{rtype or '?'} {ip} {' '.join(str(d) for d in detail)}"),
        )
    ]
