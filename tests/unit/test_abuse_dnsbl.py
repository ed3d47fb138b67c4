"""DNSBL decoding (pure): every A record counts; 127.255.255.x never leads to a block."""

from __future__ import annotations

import ipaddress

import pytest

from ipsinfra.abuse.dnsbl import DnsblQueryFailed, DnsblResult, decide_block, decode, query_name
from ipsinfra.errors import InvalidInput


@pytest.mark.parametrize(
    ("records", "listed_in", "actionable", "category"),
    [
        (["127.0.0.2"], ["SBL"], True, "spamhaus_sbl"),
        (["127.0.0.9", "127.0.0.2"], ["SBL", "DROP"], True, "spamhaus_sbl"),
        (["127.0.0.3"], ["CSS"], False, None),
        (["127.0.0.4", "127.0.0.11"], ["XBL", "PBL"], True, "botnet"),
        (["127.0.0.10"], ["PBL"], False, None),
        ([], [], False, None),
    ],
)
def test_decode(records: list[str], listed_in: list[str], actionable: bool, category: str | None) -> None:
    result = decode("192.0.2.9", records)
    assert result.listed_in == listed_in
    assert result.error is None
    assert result.actionable is actionable
    decision = decide_block(result)
    assert decision.block is actionable
    assert decision.category == category


@pytest.mark.parametrize(
    "records",
    [
        ["127.255.255.254"],
        ["127.255.255.252"],
        ["127.255.255.255"],
        ["127.0.0.2", "127.255.255.254"],
        ["198.51.100.1"],
    ],
)
def test_query_errors_list_nothing_and_refuse_a_block(records: list[str]) -> None:
    result = decode("192.0.2.9", records)
    assert result.error
    assert result.listed_in == []
    assert not result.actionable and not result.listed
    with pytest.raises(DnsblQueryFailed, match="never block"):
        decide_block(result)


def test_an_errored_result_cannot_be_built_with_listings() -> None:
    with pytest.raises(ValueError, match="cannot list"):
        DnsblResult(ip=ipaddress.ip_address("192.0.2.9"), zone="z", listed_in=["SBL"], error="x")


def test_unknown_loopback_codes_are_kept_but_not_listed() -> None:
    result = decode("192.0.2.9", ["127.0.0.8"])
    assert result.unknown == ["127.0.0.8"] and result.listed_in == [] and result.error is None


def test_query_names() -> None:
    assert query_name("192.0.2.9") == "9.2.0.192.zen.spamhaus.org"
    v6 = query_name("2001:db8::1")
    assert v6.endswith(".8.b.d.0.1.0.0.2.zen.spamhaus.org")
    assert v6.startswith("1.0.0.0.0.0.0.0.")
    assert len(v6.removesuffix(".zen.spamhaus.org").split(".")) == 32
    key = "abcdefghijklmnopqrstuvwxyz"
    assert query_name("192.0.2.9", dqs_key=key) == f"9.2.0.192.{key}.zen.dq.spamhaus.net"
    assert (
        query_name("192.0.2.9", zone="sbl.spamhaus.org", dqs_key=key)
        == f"9.2.0.192.{key}.sbl.dq.spamhaus.net"
    )


@pytest.mark.parametrize(
    ("ip", "kwargs", "field"),
    [
        ("300.1.1.1", {}, "ip: value '300.1.1.1'"),
        ("192.0.2.9", {"dqs_key": "bad key!"}, "dqs_key: value '\\*\\*\\*'"),
        ("192.0.2.9", {"zone": "bl.example.org", "dqs_key": "abcdefghijk"}, "zone: value"),
    ],
)
def test_bad_input_names_field_and_value(ip: str, kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        query_name(ip, **kwargs)
