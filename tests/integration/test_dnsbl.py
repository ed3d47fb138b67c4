"""dnsbl.check against a real DNS server on 127.0.0.1 serving a test zone (UDP)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ipsinfra.abuse import dnsbl
from ipsinfra.abuse.dnsbl import DnsblQueryFailed, decide_block, query_name
from ipsinfra.errors import OperationTimeout
from ipsinfra.lab.dns import DnsTestServer

ZONE = "zen.test.example"
V6 = "2001:db8::25"
DQS_KEY = "abcdefghijklmnopqrstuvwxyz"
RECORDS = {
    query_name("192.0.2.2", ZONE): ["127.0.0.2"],
    query_name("192.0.2.9", ZONE): ["127.0.0.2", "127.0.0.9"],
    query_name("192.0.2.4", ZONE): ["127.0.0.4", "127.0.0.10"],
    query_name("192.0.2.10", ZONE): ["127.0.0.10"],
    query_name("192.0.2.254", ZONE): ["127.255.255.254"],
    query_name(V6, ZONE): ["127.0.0.2"],
    query_name("192.0.2.2", "zen.spamhaus.org", DQS_KEY): ["127.0.0.2"],
}


@pytest.fixture(scope="module")
def server() -> Iterator[DnsTestServer]:
    with DnsTestServer(RECORDS) as srv:
        yield srv


def look(server: DnsTestServer, ip: str, **kwargs: str) -> dnsbl.DnsblResult:
    zone = kwargs.pop("zone", ZONE)
    return dnsbl.check(ip, resolver=server.host, port=server.port, zone=zone, timeout=3, **kwargs)


@pytest.mark.parametrize(
    ("ip", "listed_in", "actionable"),
    [
        ("192.0.2.2", ["SBL"], True),
        ("192.0.2.9", ["SBL", "DROP"], True),
        ("192.0.2.4", ["XBL", "PBL"], True),
        ("192.0.2.10", ["PBL"], False),
        ("192.0.2.77", [], False),  # NXDOMAIN
        (V6, ["SBL"], True),
    ],
)
def test_check(server: DnsTestServer, ip: str, listed_in: list[str], actionable: bool) -> None:
    result = look(server, ip)
    assert result.error is None
    assert result.listed_in == listed_in
    assert result.actionable is actionable
    assert server.queries[-1].rstrip(".") == query_name(ip, ZONE)


def test_all_a_records_are_read(server: DnsTestServer) -> None:
    assert sorted(look(server, "192.0.2.9").records) == ["127.0.0.2", "127.0.0.9"]


def test_public_resolver_code_is_an_error_never_a_block(server: DnsTestServer) -> None:
    result = look(server, "192.0.2.254")
    assert result.error and "public" in result.error
    assert result.listed_in == [] and not result.actionable
    with pytest.raises(DnsblQueryFailed):
        decide_block(result)


def test_dqs_query_name_and_masked_key(server: DnsTestServer) -> None:
    result = look(server, "192.0.2.2", zone="zen.spamhaus.org", dqs_key=DQS_KEY)
    assert result.listed_in == ["SBL"]
    assert server.queries[-1].rstrip(".") == f"2.2.0.192.{DQS_KEY}.zen.dq.spamhaus.net"
    assert DQS_KEY not in result.model_dump_json()


def test_timeout_raises() -> None:
    with DnsTestServer({}, silent=True) as mute:
        started = time.monotonic()
        with pytest.raises(OperationTimeout, match=r"no answer in 0\.5s"):
            dnsbl.check("192.0.2.2", resolver=mute.host, port=mute.port, zone=ZONE, timeout=0.5)
        assert time.monotonic() - started < 5
        assert mute.queries  # the query did reach the server
