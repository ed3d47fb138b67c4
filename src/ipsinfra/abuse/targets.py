"""Target addresses in a complaint's text: IPs, CIDR networks and ranges, in linear time.

Part of intake (:mod:`ipsinfra.abuse.intake`): addresses the complainant names
are the targets; quoted ``Received:`` lines, log destinations (``DST=``,
``-> ip``) and private, loopback, link-local and multicast addresses are not.
A complaint can name 100,000 addresses: every pass here is linear in the text,
and with caps the work is bounded whatever the text (what was cut is counted
for the caller to report).

Addresses are read from a copy of the text made by :func:`refang`: HTML
character references decoded (``203&#46;0.113.10``, in text/plain parts too)
and the defanged spellings abuse reports use so that an address is not a
link undone (``192.0.2[.]7``, ``hxxp://``, ``2001:db8[:]:7``). The statement
quoted back to anyone keeps the text as it was sent.

Example::

    >>> extract_ips("SRC=203.0.113.9 DST=198.51.100.1, range 192.0.2.0/25")
    ([IPv4Address('203.0.113.9')], [IPv4Network('192.0.2.0/25')])
"""

from __future__ import annotations

import heapq
import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Any

from ipsinfra.abuse.htmltext import decode_entities
from ipsinfra.models import IPAddress

__all__ = ["REFANGED", "IPNetwork", "extract_ips", "refang"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# The same first octet, written to start with a character class: the regex engine
# then skips to the next digit in C instead of trying every position of the text
# (10x faster on text without digits: 5 MB of "<" took 0.5 s per pass). The
# look-behind after the first digit is the one before it ("not after a digit or a dot").
_FIRST_OCTET = r"[0-9](?<![\d.][0-9])(?:(?<=2)5[0-5]|(?<=2)[0-4]\d|(?<=1)\d\d|(?<=[1-9])\d|)"
# Neither preceded nor followed by more dotted digits: "1.2.3.4.5" is no address.
_V4_TOKEN = rf"{_FIRST_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)"
_CIDR4_RE = re.compile(rf"{_V4_TOKEN}/(?:3[0-2]|[12]?\d)(?!\d)")
_RANGE4_RE = re.compile(rf"({_V4_TOKEN})\s*(?:-|–|—|to|по|до)\s*({_V4_TOKEN})")
_V4_RE = re.compile(_V4_TOKEN)
# IPv6 candidates: hex groups with at least two colons; ipaddress decides.
# (Its first character a class too: a hex digit starting a group, or the ":" of "::".)
_V6_RE = re.compile(
    r"([0-9A-Fa-f:](?<![0-9A-Za-z:.][0-9A-Fa-f:])(?:(?<=:)|(?<=[0-9A-Fa-f])[0-9A-Fa-f]{0,3}:)"
    r"(?:[0-9A-Fa-f]{0,4}:){1,6}[0-9A-Fa-f]{0,4})(/\d{1,3})?(?![0-9A-Za-z:])"
)
# An IP right after these is where the traffic went (the complainant's side).
_DEST_BEFORE_RE = re.compile(
    r"(?:\bDST=|\bdst[=:]\s*|\bdest(?:ination)?[=:]?\s*|->\s*|→\s*|\bto\s+port\b)$", re.I
)
# Every regex below runs over untrusted text and is linear in it: no two adjacent
# quantifiers can match the same characters (``\s*>?\s*`` could, and was
# quadratic on a line of spaces), and none spans lines unless it consumes them.
_RECEIVED_LINE_RE = re.compile(r"\s*(?:>\s*)?(?:Received|X-Received|Authentication-Results|ARC-[A-Za-z-]+):")
_QUOTE_PREFIX_RE = re.compile(r"^(?:> ?)+")

# A log line: syslog "Mar  6 03:12:40", ISO / Russian dates, or an access log "ip - - [".
_LOG_LINE_RE = re.compile(
    r"^\s*(?:[A-Z][a-z]{2}\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}|"
    r"\d{2}\.\d{2}\.\d{4}\s+\d{2}:\d{2}|\[?\d{1,2}/[A-Z][a-z]{2}/\d{4}:|\S+\s+-\s+\S+\s+\[)"
)
_PRIVATE_NETS = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
]
# Never a target: private (above), loopback, link-local, multicast, unspecified. As
# integer ranges per IP version: a complaint can name 100,000 addresses.
_NOISE_RANGES: dict[int, list[tuple[int, int]]] = {
    version: [
        (int(net.network_address), int(net.broadcast_address))
        for net in (
            *(n for n in _PRIVATE_NETS if n.version == version),
            *(
                ipaddress.ip_network(n)
                for n in (
                    ("127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "0.0.0.0/32")
                    if version == 4
                    else ("::1/128", "fe80::/10", "ff00::/8", "::/128")
                )
            ),
        )
    ]
    for version in (4, 6)
}


# The defanged spellings refang() undoes, and what each becomes. Literal
# alternatives only: one regex pass, linear, the result never longer than the text.
REFANGED: dict[str, str] = {
    "[.]": ".",
    "(.)": ".",
    "{.}": ".",
    "[dot]": ".",
    "(dot)": ".",
    "[:]": ":",
    "hxxp://": "http://",
    "hxxps://": "https://",
}
_REFANG_RE = re.compile("|".join(re.escape(k) for k in sorted(REFANGED, key=len, reverse=True)), re.I)


def refang(text: str) -> str:
    """A copy of ``text`` to read addresses from: entities decoded, defanged spellings undone.

    Abuse reports write ``192.0.2[.]7``, ``192[.]0[.]2[.]7``, ``192.0.2(.)7``,
    ``hxxp://`` / ``hxxps://`` and ``2001:db8[:]:7`` so that nothing in them is
    a link; every spelling in :data:`REFANGED` (case-insensitive) becomes the
    plain one. Only for extraction: never shown, never quoted back.

    >>> refang("hXXp://192.0.2[.]7/ and 198&#46;51.100(.)9, 2001:db8[:][:]7")
    'http://192.0.2.7/ and 198.51.100.9, 2001:db8::7'
    """
    text = decode_entities(text)
    return _REFANG_RE.sub(lambda m: REFANGED[m.group(0).lower()], text)


def _is_noise(ip: IPAddress) -> bool:
    value = int(ip)
    return any(low <= value <= high for low, high in _NOISE_RANGES[ip.version])


def _strip_received(text: str) -> str:
    """Drop quoted ``Received:`` headers (and their folded lines) from a body."""
    if "Received" not in text and "Authentication-Results" not in text and "ARC-" not in text:
        return text  # nothing to drop: no pass over every line
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        if _RECEIVED_LINE_RE.match(line):
            skipping = True
            continue
        if skipping and _QUOTE_PREFIX_RE.sub("", line)[:1] in (" ", "\t"):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out)


class _Found:
    """IPs and networks in order of appearance, de-duplicated and capped; what the caps
    dropped is counted and reported by :meth:`notes`, never silent."""

    def __init__(self, max_ips: int | None, max_networks: int | None) -> None:
        self.max_ips, self.max_networks = max_ips, max_networks
        self.ips: list[IPAddress] = []
        self.nets: list[IPNetwork] = []
        self.seen_ips: set[IPAddress] = set()
        self.seen_nets: set[IPNetwork] = set()
        self.dropped_ips = 0
        self.dropped_nets = 0
        self.horizon: tuple[int, int] | None = None  # (characters read, characters in the text)
        self.seen_ranges: set[tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]] = set()
        # Networks that summarising ranges may produce, duplicates included.
        self.range_budget = 4 * max_networks if max_networks is not None else 1 << 62

    @property
    def candidates_per_pass(self) -> int | None:
        """How many candidates one regex pass reads before it stops: 4x what can be kept."""
        if self.max_ips is None or self.max_networks is None:
            return None
        return 4 * (self.max_ips + self.max_networks)

    def add_ip(self, ip: IPAddress) -> bool:
        """Keep ``ip`` (or count it as dropped); whether it is a target at all (not noise)."""
        if _is_noise(ip):
            return False
        if ip not in self.seen_ips:
            self.seen_ips.add(ip)
            if self.max_ips is not None and len(self.ips) >= self.max_ips:
                self.dropped_ips += 1
            else:
                self.ips.append(ip)
        return True

    def add_net(self, net: IPNetwork) -> bool:
        if net.num_addresses == 1:
            return self.add_ip(net.network_address)
        if _is_noise(net.network_address):
            return False
        if net not in self.seen_nets:
            self.seen_nets.add(net)
            if self.max_networks is not None and len(self.nets) >= self.max_networks:
                self.dropped_nets += 1
            else:
                self.nets.append(net)
        return True

    @property
    def nets_full(self) -> bool:
        return self.max_networks is not None and len(self.nets) >= self.max_networks

    def notes(self) -> list[str]:
        notes = []
        if self.horizon is not None:
            read, total = self.horizon
            notes.append(
                f"targets: more than {self.candidates_per_pass} address candidates; addresses were read "
                f"from the first {read} of {total} characters only"
            )
        if self.dropped_ips:
            notes.append(
                f"ips: {len(self.ips) + self.dropped_ips} distinct addresses named; only the first "
                f"{self.max_ips} kept (max_ips={self.max_ips})"
            )
        if self.dropped_nets:
            notes.append(
                f"networks: {len(self.nets) + self.dropped_nets} networks or ranges named; only the first "
                f"{self.max_networks} kept (max_networks={self.max_networks})"
            )
        return notes


def extract_ips(
    text: str, *, max_ips: int | None = None, max_networks: int | None = None
) -> tuple[list[IPAddress], list[IPNetwork]]:
    """IPs and networks named in ``text``, in order of appearance, deduplicated.

    Reads :func:`refang`'s copy of ``text``. Skips quoted ``Received:`` lines,
    destination addresses in logs (``DST=``, ``-> ip``), private, loopback and
    link-local addresses. ``a.b.c.d/nn`` and
    ``a.b.c.d - e.f.g.h`` become networks (a /32 or /128 is an address).
    Addresses the prose names win: log lines (starting with a timestamp) are
    read only when the prose names none, since logs also show the other side
    (the bots that connect to a C&C, the complainant's own hosts).

    Linear in ``text``. With ``max_ips`` and ``max_networks`` only the first ones
    are kept and the work is bounded whatever the text (:func:`parse_complaint`
    sets them from :class:`IntakeLimits` and reports what was dropped).

    >>> extract_ips("SRC=203.0.113.9 DST=198.51.100.1, range 192.0.2.0/25")
    ([IPv4Address('203.0.113.9')], [IPv4Network('192.0.2.0/25')])
    """
    found = _Found(max_ips, max_networks)
    _extract_targets(text, found)
    return found.ips, found.nets


def _extract_targets(text: str, found: _Found) -> None:
    text = _strip_received(refang(text))
    prose: list[str] = []
    logs: list[str] = []
    for line in text.splitlines():
        (logs if _LOG_LINE_RE.match(line) else prose).append(line)
    if not _extract("\n".join(prose), found):
        _extract("\n".join(logs), found)


# One candidate: (start, end, what). ``what`` is a regex match read only if the
# candidate is kept, a (first, last) range, or an IPv6 address / network.
_Candidate = tuple[int, int, Any]


def _candidates(
    matches: Iterator[re.Match[str]], read: Callable[[re.Match[str]], Any], limit: int | None
) -> tuple[list[_Candidate], int | None]:
    """The candidates of one pass, stopping after ``limit``; and where it stopped (or None)."""
    out: list[_Candidate] = []
    for m in matches:
        what = read(m)
        if what is None:
            continue
        out.append((m.start(), m.end(), what))
        if limit is not None and len(out) >= limit:
            return out, m.start()
    return out, None


def _claim(candidates: list[_Candidate], taken: list[tuple[int, int]]) -> list[_Candidate]:
    """The candidates that overlap nothing in ``taken`` (both in text order); ``taken`` grows.

    One walk over both lists: linear, where a check against every span taken
    so far was quadratic (118 s for 20,000 addresses).
    """
    kept: list[_Candidate] = []
    j = 0
    for cand in candidates:
        start, end = cand[0], cand[1]
        while j < len(taken) and taken[j][1] <= start:
            j += 1
        if j < len(taken) and taken[j][0] < end:
            continue
        kept.append(cand)
    taken[:] = list(heapq.merge(taken, ((c[0], c[1]) for c in kept)))
    return kept


def _range_of(m: re.Match[str]) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None:
    first, last = ipaddress.IPv4Address(m.group(1)), ipaddress.IPv4Address(m.group(2))
    return (first, last) if last > first else None


def _v6_of(m: re.Match[str]) -> IPAddress | IPNetwork | None:
    if m.group(0).count(":") < 2:
        return None
    try:
        addr = ipaddress.IPv6Address(m.group(1))
        return ipaddress.IPv6Network(m.group(0), strict=False) if m.group(2) else addr
    except ValueError:
        return None


def _extract(text: str, found: _Found) -> bool:
    """Add the targets ``text`` names to ``found``; whether it named any.

    Four passes in order of precedence (ranges, CIDR, IPv4, IPv6): a candidate
    overlapping one of an earlier pass is not read. Each pass stops after
    ``found.candidates_per_pass`` candidates; then only candidates before the
    earliest stop are read (there every pass is complete, so precedence holds)
    and ``found.horizon`` records it.
    """
    limit = found.candidates_per_pass
    # The IPv4 pass first: where it stops, nothing later is read, so the other passes
    # stop there too (plus a margin for their look-aheads) instead of scanning an
    # address-dense text to its end for ranges and CIDRs that would be dropped.
    v4 = _candidates(_V4_RE.finditer(text), lambda m: m, limit)
    end = len(text) if v4[1] is None else min(len(text), v4[1] + 100)
    passes = [
        _candidates(_RANGE4_RE.finditer(text, 0, end), _range_of, limit),
        _candidates(_CIDR4_RE.finditer(text, 0, end), lambda m: m, limit),
        v4,
        _candidates(_V6_RE.finditer(text, 0, end), _v6_of, limit),
    ]
    stops = [stop for _, stop in passes if stop is not None]
    lists = [cands for cands, _ in passes]
    if stops:
        horizon = min(stops)
        lists = [[c for c in cands if c[1] <= horizon] for cands in lists]
        if found.horizon is None:
            found.horizon = (horizon, len(text))
    taken: list[tuple[int, int]] = []
    ranges, cidrs, v4s, v6s = (_claim(cands, taken) for cands in lists)
    any_target = False
    # Destinations are claimed (so no shorter match reads them) but never targets.
    for start, _, what in heapq.merge(ranges, cidrs, v4s, v6s, key=lambda c: c[0]):
        if isinstance(what, tuple):
            any_target = True
            if found.nets_full or found.range_budget <= 0 or what in found.seen_ranges:
                # A range is up to 62 networks: summarised only within the budget.
                found.dropped_nets += what not in found.seen_ranges
                continue
            found.seen_ranges.add(what)
            for net in ipaddress.summarize_address_range(*what):
                found.range_budget -= 1
                found.add_net(net)
            continue
        if _destination(text, start):
            continue
        if isinstance(what, re.Match):
            token = what.group(0)
            what = ipaddress.ip_network(token, strict=False) if "/" in token else ipaddress.IPv4Address(token)
        if isinstance(what, ipaddress.IPv4Network | ipaddress.IPv6Network):
            any_target = found.add_net(what) or any_target
        else:
            any_target = found.add_ip(what) or any_target
    return any_target


def _destination(text: str, start: int) -> bool:
    return bool(_DEST_BEFORE_RE.search(text[max(0, start - 24) : start]))
