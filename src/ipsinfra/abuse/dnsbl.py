"""Spamhaus DNSBL look-ups (zen, or a DQS zone) with dnspython.

Every A record of the answer is read (an address can be in SBL and DROP and
XBL at once). ``127.255.255.252/254/255`` mean the QUERY failed (a typo in the
zone, a public resolver, a rate limit): such a result has ``error`` set, an
empty ``listed_in`` and ``actionable == False``, and :func:`decide_block`
refuses it, so a failed query can never lead to a block. NXDOMAIN is "not
listed". A timeout raises :class:`ipsinfra.errors.OperationTimeout`.

Example::

    >>> decode("192.0.2.9", ["127.0.0.2", "127.0.0.9"]).listed_in
    ['SBL', 'DROP']
    >>> decode("192.0.2.9", ["127.255.255.254"]).actionable
    False
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
from pydantic import BaseModel, ConfigDict, computed_field, model_validator

from ipsinfra.errors import InvalidInput, IpsinfraError, OperationTimeout
from ipsinfra.models import IPAddress

__all__ = [
    "CODES",
    "DEFAULT_ZONE",
    "QUERY_ERRORS",
    "BlockDecision",
    "DnsblQueryFailed",
    "DnsblResult",
    "check",
    "decide_block",
    "decode",
    "parse_ip",
    "query_name",
]

DEFAULT_ZONE = "zen.spamhaus.org"
DQS_SUFFIX = "dq.spamhaus.net"
CODES: dict[str, str] = {
    "127.0.0.2": "SBL",
    "127.0.0.3": "CSS",
    "127.0.0.9": "DROP",
    "127.0.0.4": "XBL",
    "127.0.0.5": "XBL",
    "127.0.0.6": "XBL",
    "127.0.0.7": "XBL",
    "127.0.0.10": "PBL",
    "127.0.0.11": "PBL",
}
QUERY_ERRORS: dict[str, str] = {
    "127.255.255.252": "typing error in the DNSBL name",
    "127.255.255.254": "query via a public/open resolver (Spamhaus refuses those)",
    "127.255.255.255": "excessive number of queries (rate limited)",
}
# Listings that justify a block: SBL/DROP (§7.2) and XBL (an infected host, §7.3).
ACTIONABLE = {"SBL": "spamhaus_sbl", "DROP": "spamhaus_sbl", "XBL": "botnet"}
_ORDER = ["SBL", "CSS", "DROP", "XBL", "PBL"]
_DQS_KEY_RE = re.compile(r"^[A-Za-z0-9]{8,64}$")


class DnsblQueryFailed(IpsinfraError):
    """The DNSBL answer says the query itself failed; it proves nothing about the IP."""


class DnsblResult(BaseModel):
    """One IP's answer. ``error`` set means the query failed: never act on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ip: IPAddress
    zone: str
    records: list[str] = []
    listed_in: list[str] = []
    unknown: list[str] = []
    error: str | None = None

    @model_validator(mode="after")
    def _error_lists_nothing(self) -> DnsblResult:
        if self.error is not None and self.listed_in:
            raise ValueError("a failed query cannot list the IP anywhere")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def listed(self) -> bool:
        return self.error is None and bool(self.listed_in)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def actionable(self) -> bool:
        """True only for a successful query with an SBL, DROP or XBL listing."""
        return self.error is None and any(x in ACTIONABLE for x in self.listed_in)


class BlockDecision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    block: bool
    category: str | None
    reason: str


def parse_ip(value: str) -> IPAddress:
    """An IP address or InvalidInput naming the value."""
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        raise InvalidInput(f"ip: value {value!r}: not an IPv4 or IPv6 address") from None


def _zone_for(zone: str, dqs_key: str | None) -> str:
    zone = zone.strip().rstrip(".").lower()
    if not zone or " " in zone:
        raise InvalidInput(f"zone: value {zone!r}: not a DNS zone")
    if dqs_key is None:
        return zone
    if not _DQS_KEY_RE.fullmatch(dqs_key):
        raise InvalidInput("dqs_key: value '***': a DQS key is 8-64 letters and digits")
    if zone.endswith(".spamhaus.org"):
        zone = zone.removesuffix(".spamhaus.org")
    elif zone.endswith("." + DQS_SUFFIX):
        zone = zone.removesuffix("." + DQS_SUFFIX)
    if "." in zone:
        raise InvalidInput(f"zone: value {zone!r}: DQS serves Spamhaus zones only (zen, sbl, xbl, ...)")
    return f"{dqs_key}.{zone}.{DQS_SUFFIX}"


def query_name(ip: IPAddress | str, zone: str = DEFAULT_ZONE, dqs_key: str | None = None) -> str:
    """The name to look up: reversed octets (IPv4) or nibbles (IPv6) under the zone.

    >>> query_name("192.0.2.9")
    '9.2.0.192.zen.spamhaus.org'
    >>> query_name("192.0.2.9", dqs_key="abcdefghijklmnopqrstuvwxyz")
    '9.2.0.192.abcdefghijklmnopqrstuvwxyz.zen.dq.spamhaus.net'
    """
    addr = parse_ip(ip) if isinstance(ip, str) else ip
    # reverse_pointer is "9.2.0.192.in-addr.arpa" / nibbles + ".ip6.arpa"
    reversed_part = addr.reverse_pointer.rsplit(".", 2)[0]
    return f"{reversed_part}.{_zone_for(zone, dqs_key)}"


def _mask(zone: str, dqs_key: str | None) -> str:
    return zone.replace(dqs_key, "***") if dqs_key else zone


def decode(ip: IPAddress | str, records: Iterable[str], *, zone: str = DEFAULT_ZONE) -> DnsblResult:
    """Turn the A records of one answer into a result (pure).

    Any query-error code, or an answer outside 127.0.0.0/8 (a resolver that
    rewrites NXDOMAIN to an address of its own), makes the whole answer an error.
    """
    addr = parse_ip(ip) if isinstance(ip, str) else ip
    recs = [str(r).strip() for r in records]
    errors: list[str] = []
    listed: set[str] = set()
    unknown: list[str] = []
    for rec in recs:
        if rec in QUERY_ERRORS:
            errors.append(f"{rec}: {QUERY_ERRORS[rec]}")
        elif rec in CODES:
            listed.add(CODES[rec])
        else:
            try:
                in_loopback = ipaddress.IPv4Address(rec) in ipaddress.IPv4Network("127.0.0.0/8")
            except ValueError:
                in_loopback = False
            if not in_loopback:
                errors.append(f"{rec}: answer outside 127.0.0.0/8 (a resolver rewriting NXDOMAIN?)")
            else:
                unknown.append(rec)
    if errors:
        return DnsblResult(ip=addr, zone=zone, records=recs, error="; ".join(errors), unknown=unknown)
    return DnsblResult(
        ip=addr,
        zone=zone,
        records=recs,
        listed_in=[x for x in _ORDER if x in listed],
        unknown=unknown,
    )


def check(
    ip: IPAddress | str,
    *,
    resolver: str | None = None,
    port: int = 53,
    zone: str = DEFAULT_ZONE,
    dqs_key: str | None = None,
    timeout: float = 5.0,
) -> DnsblResult:
    """Look ``ip`` up in the DNSBL and decode every A record.

    Args:
        resolver: the name server's IP; the system's resolvers when None.
        port: the name server's port.
        zone: the DNSBL zone; with ``dqs_key`` the matching DQS zone is used.
        timeout: seconds for the whole look-up.

    Raises:
        InvalidInput: a bad IP, zone, DQS key or resolver address.
        OperationTimeout: no answer in ``timeout`` seconds.
    """
    addr = parse_ip(ip) if isinstance(ip, str) else ip
    name = query_name(addr, zone, dqs_key)
    shown_zone = _mask(_zone_for(zone, dqs_key), dqs_key)
    if not 1 <= port <= 65535:
        raise InvalidInput(f"port: value {port!r}: must be 1-65535")
    if resolver is not None:
        parse_ip(resolver)
        res = dns.resolver.Resolver(configure=False)
        res.port = port  # before the name servers: they take the port when set
        res.nameservers = [resolver]
    else:
        res = dns.resolver.Resolver()
        res.port = port
    try:
        answer = res.resolve(name, "A", lifetime=timeout, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return DnsblResult(ip=addr, zone=shown_zone)
    except dns.exception.Timeout:
        raise OperationTimeout(
            f"DNSBL query for {addr} in {shown_zone} via {resolver or 'system resolver'}:{port} "
            f"got no answer in {timeout}s"
        ) from None
    except dns.resolver.NoNameservers as exc:
        return DnsblResult(ip=addr, zone=shown_zone, error=f"no name server answered usefully: {exc}")
    except dns.exception.DNSException as exc:
        return DnsblResult(ip=addr, zone=shown_zone, error=f"{type(exc).__name__}: {exc}")
    records = [rr.to_text() for rr in answer.rrset] if answer.rrset is not None else []
    return decode(addr, records, zone=shown_zone)


def decide_block(result: DnsblResult) -> BlockDecision:
    """Whether a DNSBL result justifies a block. Refuses (raises) on a failed query.

    Raises:
        DnsblQueryFailed: ``result.error`` is set: the answer proves nothing.
    """
    if result.error is not None:
        raise DnsblQueryFailed(f"ip {result.ip}: the DNSBL query failed ({result.error}); never block on it")
    for listing in result.listed_in:
        if listing in ACTIONABLE:
            return BlockDecision(
                block=True,
                category=ACTIONABLE[listing],
                reason=f"{result.ip} is listed in Spamhaus {listing}",
            )
    if result.listed_in:
        return BlockDecision(
            block=False,
            category=None,
            reason=f"{result.ip} is listed only in {', '.join(result.listed_in)} (no abuse by itself)",
        )
    return BlockDecision(block=False, category=None, reason=f"{result.ip} is not listed in {result.zone}")
