"""Spamhaus listing notices: the SBL record a notification carries, which says what is
listed and on which list::

    Ref: SBL545123
    203.0.113.128/25 is listed on the Spamhaus Block List (SBL)

The list named on that line is the listing type, each case's report type:
``sbl`` (the Spamhaus Block List), ``css`` (Combined Spam Sources, part of the
SBL) or ``drop`` (Don't Route Or Peer, and its extended EDROP). ``rules.yml``
maps all three to ``spamhaus_sbl`` (§7.2); the DNSBL look-up still confirms the
listing before anything is blocked (:mod:`ipsinfra.abuse.policy`).

The cases are the listed address (a single host, ``/32`` or ``/128``) and the
addresses the notice names inside the listed range (the hosts of a snowshoe
operation); an address outside every listed range is not the listing's. A
listed range itself is returned in :attr:`Listing.networks` (a case is one
address). The line layout is the SBL record's (``Ref:`` line, then "... is
listed on the Spamhaus Block List (SBL)"); the sender's address is not looked at.

Example::

    >>> text = "Ref: SBL545123\\n192.0.2.9/32 is listed on the Spamhaus Block List (SBL)\\n"
    >>> listing = parse_spamhaus(text, 10)
    >>> listing.kind, [(str(c.ip), c.report_type) for c in listing.cases]
    ('sbl', [('192.0.2.9', 'sbl')])
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ipsinfra.abuse.formats.base import ReportCase, short
from ipsinfra.abuse.targets import IPNetwork, extract_ips

__all__ = ["Listing", "parse_spamhaus"]

# "<ip or net> is listed on the Spamhaus Block List (SBL)": bounded tokens, one line.
_LISTED_RE = re.compile(
    r"([0-9A-Fa-f:.]{2,45}(?:/\d{1,3})?)[ \t]+is[ \t]+(?:now[ \t]+)?listed[ \t]+(?:on|in)[ \t]+(?:the[ \t]+)?"
    r"([^\n]{1,120})",
    re.IGNORECASE,
)
_LISTED_WORD_RE = re.compile(r"\blisted[ \t]+(?:on|in)\b", re.IGNORECASE)
_REF_RE = re.compile(r"\bSBL[ \t]?(\d{3,8})\b")
_CSS_RE = re.compile(r"\bCSS\b|Combined Spam Sources", re.IGNORECASE)
_DROP_RE = re.compile(r"\bE?DROP\b|Don'?t Route Or Peer", re.IGNORECASE)
# "SBL-XBL" (the old combined zone) is not an SBL listing (as in rules.yml).
_SBL_RE = re.compile(r"(?<![A-Za-z-])SBL\b(?!-)|Spamhaus Block ?List", re.IGNORECASE)
_NOTICE_CHARS = 262_144


@dataclass
class Listing:
    """What a Spamhaus notice lists: ``kind`` (sbl, css, drop), the cases, the ranges."""

    kind: str
    ref: str | None
    cases: list[ReportCase] = field(default_factory=list)
    networks: list[IPNetwork] = field(default_factory=list)


def _kind(list_name: str) -> str | None:
    if "spamhaus" not in list_name.lower() and not _SBL_RE.search(list_name):
        return None
    if _CSS_RE.search(list_name):
        return "css"
    if _DROP_RE.search(list_name):
        return "drop"
    if _SBL_RE.search(list_name):
        return "sbl"
    return None


def parse_spamhaus(text: str, max_rows: int) -> Listing | None:
    """The listing a Spamhaus notice states; None when the text states none."""
    head = text[:_NOTICE_CHARS]
    if _LISTED_WORD_RE.search(head) is None:
        return None  # most complaints: one pass, no per-position work below
    m = next((x for x in _LISTED_RE.finditer(head) if _kind(x.group(2)) is not None), None)
    if m is None:
        return None
    kind = _kind(m.group(2)) or "sbl"
    ref_m = _REF_RE.search(head)
    ref = f"SBL{ref_m.group(1)}" if ref_m else None
    try:
        listed = ipaddress.ip_network(m.group(1), strict=False)
    except ValueError:
        return None
    listing = Listing(kind=kind, ref=ref)
    # The listing line first, then the hosts the notice names (within the listed range).
    ips, _ = extract_ips(m.group(1) + "\n" + head[m.end() :], max_ips=max_rows, max_networks=max_rows)
    if listed.num_addresses > 1:
        listing.networks.append(listed)
    for ip in ips:
        if ip.version != listed.version or ip not in listed:
            continue
        listing.cases.append(
            ReportCase(
                ip=ip,
                scheme="spamhaus",
                report_type=kind,
                evidence=short(f"Spamhaus {ref or kind.upper()}: {listed} listed ({kind}); {ip} named in it"),
            )
        )
    return listing
