"""CleanMX site reports: the subject names the feed (``clean-mx-phishing``,
``clean-mx-viruses``, ``clean-mx-portals``) and the body is a pipe table, one row
per reported URL, with ``ip``, ``date``, ``url`` and, for portals, ``virusname``
columns (the layout AbuseIO's CleanMX parser reads). A portals row's own
``virusname`` is its type; the others take the subject's feed.

Example::

    >>> body = "|id |date |url |ip |\\n|1 |2025-03-05 10:00:00 |http://192.0.2.9/x |192.0.2.9 |\\n"
    >>> [(str(c.ip), c.report_type) for c in parse_cleanmx("[clean-mx-phishing] report", body, 10)]
    [('192.0.2.9', 'phishing')]
"""

from __future__ import annotations

import re

from ipsinfra.abuse.formats.base import ReportCase, ip_or_none, parse_time, short

__all__ = ["feed_of", "parse_cleanmx"]

_FEED_RE = re.compile(r"clean-mx-(phishing|viruses|portals)\b", re.IGNORECASE)


def feed_of(subject: str) -> str | None:
    m = _FEED_RE.search(subject[:500])
    return m.group(1).lower() if m else None


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_cleanmx(subject: str, body: str, max_rows: int) -> list[ReportCase]:
    """One case per table row with an address; [] when the subject names no CleanMX feed."""
    feed = feed_of(subject)
    if feed is None:
        return []
    header: list[str] | None = None
    cases: list[ReportCase] = []
    for line in body.splitlines():
        if not line.lstrip().startswith("|") or len(cases) >= max_rows:
            continue
        cells = _cells(line)
        if header is None:
            header = [c.lower() for c in cells]
            if "ip" not in header:
                header = None
            continue
        row = dict(zip(header, cells, strict=False))
        ip = ip_or_none(row.get("ip", ""))
        if ip is None:
            continue
        virus = row.get("virusname", "").strip().lower().replace(".", "_")[:64]
        rtype = virus if feed == "portals" and virus else feed
        url = row.get("url", "")
        cases.append(
            ReportCase(
                ip=ip,
                scheme="cleanmx",
                report_type=rtype,
                observed_at=parse_time(row.get("date", "")),
                evidence=short(f"CleanMX {feed}: {rtype} {url}"),
            )
        )
    return cases
