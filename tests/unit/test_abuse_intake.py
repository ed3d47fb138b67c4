"""parse_complaint details: IP extraction, reaction times, ids, dates, bad input."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest

from ipsinfra.abuse import ComplaintFormat, extract_ips, extract_reaction_hours, parse_complaint
from ipsinfra.errors import InvalidInput

T0 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.UTC)


def test_received_chain_and_destinations_are_not_targets() -> None:
    text = (
        "Spam from 203.0.113.45.\n"
        "Received: from mx.example.com (mx.example.com [198.51.100.25])\n"
        "\tby relay.example.com ([198.51.100.26]); Mon, 3 Mar 2025\n"
        "> Received: from x ([198.51.100.27])\n"
        ">\tby y ([198.51.100.28])\n"
        "IN=eth0 SRC=203.0.113.45 DST=198.51.100.10 PROTO=TCP\n"
        "flow 203.0.113.45:5353 -> 198.51.100.11:22\n"
        "internal 10.1.2.3, 192.168.0.1, 127.0.0.1, fe80::1\n"
    )
    ips, nets = extract_ips(text)
    assert ips == [ipaddress.ip_address("203.0.113.45")]
    assert nets == []


def test_ranges_cidr_ipv6_and_non_addresses() -> None:
    ips, nets = extract_ips(
        "hosts 192.0.2.0 - 192.0.2.15, 198.51.100.0/24 and 203.0.113.5/32, v6 2001:db8::/32 "
        "and 2001:db8::7; not addresses: version 1.2.3.4.5, time 10:22:33, mac aa:bb:cc:dd:ee:ff"
    )
    assert [str(i) for i in ips] == ["203.0.113.5", "2001:db8::7"]
    assert [str(n) for n in nets] == ["192.0.2.0/28", "198.51.100.0/24", "2001:db8::/32"]


def test_prose_wins_over_log_lines_but_logs_count_alone() -> None:
    text = "C&C on 203.0.113.200\n2025-03-13 02:11:05 tcp 192.0.2.17:49812 -> 203.0.113.200:8443\n"
    assert [str(i) for i in extract_ips(text)[0]] == ["203.0.113.200"]
    only_logs = "Mar  6 03:12:40 hp1 sshd[1]: Failed password for root from 192.0.2.44 port 5 ssh2\n"
    assert [str(i) for i in extract_ips(only_logs)[0]] == ["192.0.2.44"]


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("Please react within 24 hours.", 24),
        ("please resolve within 48h", 48),
        ("within two days", 48),
        ("Просим отреагировать в течение 24 часов", 24),
        ("в течение 12-ти часов", 12),
        ("в течение суток", 24),
        ("в течении 3 суток", 72),
        ("react within 24 hours, critical ones within 4 hours", 4),
        ("no time stated", None),
    ],
)
def test_reaction_hours(text: str, hours: int | None) -> None:
    assert extract_reaction_hours(text) == hours


def test_plain_text_without_received_at_is_received_now() -> None:
    before = dt.datetime.now(dt.UTC)
    c = parse_complaint("Spam from 192.0.2.1")
    assert before <= c.received_at <= dt.datetime.now(dt.UTC) and c.received_source == "now"
    c = parse_complaint("Spam from 192.0.2.1", received_at=T0)
    assert c.format is ComplaintFormat.PLAIN and c.received_at == T0 and c.received_source == "override"
    assert c.id.startswith("sha256:") and c.id == parse_complaint("Spam from 192.0.2.1", T0).id


def test_received_at_wins_over_date_and_message_id_is_the_id() -> None:
    raw = (
        b"From: a@example.com\nSubject: s\nDate: Mon, 03 Mar 2025 10:00:00 +0300\n"
        b"Message-ID: <x1@example.com>\n\nspam"
    )
    # The Date header is the complainant's claim: informational, never the receipt time.
    by_date = parse_complaint(raw)
    assert by_date.arrival_date == dt.datetime(2025, 3, 3, 7, 0, tzinfo=dt.UTC)
    assert by_date.received_source == "now" and by_date.received_at > by_date.arrival_date
    later = dt.datetime(2025, 3, 4)
    c = parse_complaint(raw, received_at=later)
    assert c.received_at == later.replace(tzinfo=dt.UTC) and c.received_source == "override"
    assert c.id == "x1@example.com"
    assert c.sender == "a@example.com" and c.answer_to == "a@example.com"


def test_empty_input() -> None:
    with pytest.raises(InvalidInput, match="complaint: value ''"):
        parse_complaint(b"  \n")


def test_complaint_is_frozen() -> None:
    c = parse_complaint("spam 192.0.2.1", T0)
    with pytest.raises(ValueError, match="frozen"):
        c.subject = "x"  # type: ignore[misc]
