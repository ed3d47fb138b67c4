"""Project Honey Pot monitor notices: the IPs of a watched network its honey pots
saw, each with its type letter and the time it was last seen::

    192.0.2.71 (H)
      - Mar 4, 2025 18:22:10

The letter is Project Honey Pot's own type: ``H`` harvester, ``S`` spam server,
``D`` dictionary attacker, ``C`` comment spammer, ``R`` rule breaker (the
letters and the line layout as AbuseIO's parser-projecthoneypot reads them).
The free service's notice lists the addresses under headings instead, one
address a line until a blank line: "IPs Engaged In Harvesting On Your
Network:" (``Email`` spam server, ``Dictionary``, ``Comment``) and "Other
Potentially Suspicious IPs On Your Network:" (``suspicious``); it has no times.
The letter lines or headings are the marker, together with the words "Project
Honey Pot"; the sender's address is not looked at. The report type is the type's name
(``harvester``...), mapped by ``rules.yml`` (``format_types.projecthoneypot``).

Example::

    >>> text = "Project Honey Pot\\n192.0.2.71 (H)\\n  - Mar 4, 2025 18:22:10\\n"
    >>> [(str(c.ip), c.report_type) for c in parse_projecthoneypot(text, 10)]
    [('192.0.2.71', 'harvester')]
"""

from __future__ import annotations

import datetime as dt
import re

from ipsinfra.abuse.formats.base import ReportCase, ip_or_none, parse_time, short

__all__ = ["HEADING_TYPES", "TYPE_LETTERS", "parse_projecthoneypot"]

TYPE_LETTERS = {
    "H": "harvester",
    "S": "spam server",
    "D": "dictionary attacker",
    "C": "comment spammer",
    "R": "rule breaker",
}
_MARKER_RE = re.compile(r"\bProject Honey ?Pot\b", re.IGNORECASE)
# One address line and the date line under it; bounded tokens, one line each.
_ENTRY_RE = re.compile(
    r"^[ \t]{0,8}([0-9A-Fa-f:.]{2,45})[ \t]{1,8}\(([HSDCR])\)[ \t]*\r?\n[ \t]{1,8}-[ \t]{1,8}([^\n]{1,80})$",
    re.MULTILINE,
)
# The free notice's section headings; group 1 the type word.
_HEADING_RE = re.compile(
    r"^[^\n]{0,40}?\b(?:Engaged[ \t]+In[ \t]+(Harvesting|Email|Dictionary|Comment)\b[^\n]{0,80}?"
    r"|Other[ \t]+(Potentially)[ \t]+Suspicious[ \t]+IPs[ \t]+)On[ \t]+Your[ \t]+Network:[ \t]*$",
    re.IGNORECASE,
)
_MAX_LINES = 50_000
HEADING_TYPES = {
    "harvesting": "harvester",
    "email": "spam server",
    "dictionary": "dictionary attacker",
    "comment": "comment spammer",
    "potentially": "suspicious",
}
_DATE_FORMATS = ("%b %d, %Y %H:%M:%S", "%b %d %Y, %H:%M:%S", "%d %b %Y %H:%M:%S")


def _when(text: str) -> dt.datetime | None:
    value = text.strip().rstrip(".")
    stamp = parse_time(value)
    if stamp is not None:
        return stamp
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return None


def parse_projecthoneypot(text: str, max_rows: int) -> list[ReportCase]:
    """One case per listed address and type; [] when the text is not such a notice."""
    if _MARKER_RE.search(text[:262_144]) is None:
        return []
    cases: list[ReportCase] = []
    for m in _ENTRY_RE.finditer(text):
        if len(cases) >= max_rows:
            break
        ip = ip_or_none(m.group(1))
        if ip is None:
            continue
        kind = TYPE_LETTERS[m.group(2)]
        when = _when(m.group(3))
        cases.append(
            ReportCase(
                ip=ip,
                scheme="projecthoneypot",
                report_type=kind,
                observed_at=when,
                evidence=short(
                    f"Project Honey Pot: {ip} ({m.group(2)}: {kind}), last seen {m.group(3).strip()}"
                ),
            )
        )
    return cases or _sections(text, max_rows)


def _sections(text: str, max_rows: int) -> list[ReportCase]:
    """The free notice: the addresses under each heading, up to the next blank line (one pass)."""
    cases: list[ReportCase] = []
    kind: str | None = None
    heading = ""
    for index, raw in enumerate(text.splitlines()):
        if index >= _MAX_LINES or len(cases) >= max_rows:
            break
        line = raw.strip()[:300]
        if not line:
            kind = None
            continue
        m = _HEADING_RE.search(line)
        if m is not None:
            kind = HEADING_TYPES[(m.group(1) or m.group(2)).lower()]
            heading = line
            continue
        ip = ip_or_none(line) if kind is not None else None
        if kind is not None and ip is not None:
            cases.append(
                ReportCase(
                    ip=ip,
                    scheme="projecthoneypot",
                    report_type=kind,
                    evidence=short(f"Project Honey Pot: {ip} listed under {heading!r}"),
                )
            )
    return cases
