"""Netcraft incident notices in text form: the takedown service's letters about an
attack FROM an address (brute force, a mail server sending fraud) that carry no
X-ARF part. (Netcraft's site notices, phishing and malware, come as ARF with an
``xarf.json`` part: :mod:`.xarf` reads those.)

The notice says what it is in its own fields: the line ``Netcraft Issue
Number: N`` (Dutch ``Nummer``) marks it, the subject ``Issue N: <attack type> at
<ip>`` names the attack type and the address, and a table with a ``Source IP``
column (tab separated: ``Date``, ``Source IP``, ``Target IP``) lists the events.
Only the ``Source IP`` column is reported: the ``Target IP`` is Netcraft's
sensor, never ours to act on. One case per source address, its time the latest
event. The layout is the one of the public samples in AbuseIO's parser-netcraft
(``samples/Netcraft_Example_13.eml``).

Example::

    >>> body = "Date\\tSource IP\\tTarget IP\\n2025-03-05 10:00:00\\t192.0.2.7\\t198.51.100.0/24\\n"
    >>> body += "Netcraft Issue Number: 12345678\\n"
    >>> subject = "Issue 12345678: Brute force attack at 192.0.2.7"
    >>> [(str(c.ip), c.report_type) for c in parse_netcraft(subject, body, 10)]
    [('192.0.2.7', 'brute force attack')]
"""

from __future__ import annotations

import datetime as dt
import re

from ipsinfra.abuse.formats.base import ReportCase, ip_or_none, parse_time, short
from ipsinfra.models import IPAddress

__all__ = ["parse_netcraft"]

_ISSUE_RE = re.compile(r"\bNetcraft Issue (?:Number|Nummer):[ \t]*(\d{4,12})\b", re.IGNORECASE)
# "Issue 12345678: Brute force attack at 192.0.2.7"; the type is the words before " at <ip>".
_SUBJECT_RE = re.compile(
    r"\bIssue[ \t]+(\d{4,12}):[ \t]*([A-Za-z][A-Za-z0-9 ,/()'-]{1,80}?)"
    r"[ \t]+at[ \t]+\[?([0-9A-Fa-f:.]{2,45})\]?",
    re.IGNORECASE,
)
_CELL_SPLIT_RE = re.compile(r"\t|[ ]{2,}")
_MAX_LINES = 20_000


def parse_netcraft(subject: str, body: str, max_rows: int) -> list[ReportCase]:
    """The cases of a Netcraft text incident notice; [] when it is not one, or it states
    no attack type (then the words decide)."""
    issue = _ISSUE_RE.search(body[:262_144])
    m = _SUBJECT_RE.search(subject[:500])
    if issue is None or m is None or m.group(1) != issue.group(1):
        return []
    kind = " ".join(m.group(2).lower().split())[:64]
    latest: dict[IPAddress, dt.datetime | None] = {}
    counts: dict[IPAddress, int] = {}
    rows: set[tuple[str, ...]] = set()  # the notice repeats its table in each language
    ip_col = time_col = None
    for index, line in enumerate(body.splitlines()):
        if index >= _MAX_LINES or len(latest) >= max_rows:
            break
        cells = [c.strip() for c in _CELL_SPLIT_RE.split(line.strip())]
        lowered = [c.lower() for c in cells]
        if "source ip" in lowered:
            ip_col = lowered.index("source ip")
            time_col = lowered.index("date") if "date" in lowered else None
            continue
        if ip_col is None:
            continue
        if len(cells) <= ip_col:
            ip_col = None  # the table ended
            continue
        ip = ip_or_none(cells[ip_col])
        if ip is None:
            ip_col = None
            continue
        if tuple(cells) in rows:
            continue
        rows.add(tuple(cells))
        when = parse_time(cells[time_col]) if time_col is not None and time_col < len(cells) else None
        before = latest.get(ip)
        latest[ip] = when if before is None or (when is not None and when > before) else before
        counts[ip] = counts.get(ip, 0) + 1
    if not latest:
        subject_ip = ip_or_none(m.group(3))
        if subject_ip is None:
            return []
        latest[subject_ip] = None
        counts[subject_ip] = 0
    return [
        ReportCase(
            ip=ip,
            scheme="netcraft",
            report_type=kind,
            observed_at=when,
            evidence=short(
                f"Netcraft issue {issue.group(1)}: {kind} from {ip}"
                + (f" ({counts[ip]} events in the table, last {when.isoformat()})" if when else "")
            ),
        )
        for ip, when in latest.items()
    ]
