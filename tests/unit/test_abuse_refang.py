"""Addresses inside complaints: entities decoded, defanged spellings undone (issue 22).

Extraction reads :func:`refang`'s copy; the statement keeps the text as sent.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import time

import pytest

from ipsinfra.abuse import extract_ips, parse_complaint
from ipsinfra.abuse.htmltext import decode_entities, html_to_text
from ipsinfra.abuse.targets import REFANGED, refang

T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
V4 = ipaddress.IPv4Address("192.0.2.7")
V6 = ipaddress.IPv6Address("2001:db8::7")


def mail(body: str, content_type: str = "text/plain") -> str:
    return (
        "From: Abuse Desk <abuse@reporter.example>\n"
        "To: abuse@host.example\n"
        "Subject: Spam from your network\n"
        "Message-ID: <r1@reporter.example>\n"
        "Date: Thu, 26 Nov 2026 12:00:00 +0000\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: {content_type}; charset="utf-8"\n'
        "\n"
        f"{body}\n"
    )


@pytest.mark.parametrize(
    "spelling",
    [
        "192.0.2[.]7",
        "192.0.2(.)7",
        "192[.]0[.]2[.]7",
        "192{.}0{.}2{.}7",
        "192[dot]0[DOT]2(dot)7",
        "hxxp://192.0.2[.]7/login.php",
        "hxxps://192[.]0[.]2[.]7:8443/",
        "HXXP://192.0.2.7/",
        "192&#46;0.2.7",
        "192&#x2e;0&period;2.7",
        "192.0.2&#91;.&#93;7",
    ],
)
def test_defanged_and_escaped_ipv4_is_found(spelling: str) -> None:
    assert extract_ips(f"Phishing at {spelling} since noon") == ([V4], [])


@pytest.mark.parametrize(
    "spelling", ["2001:db8[:]:7", "2001[:]db8[:][:]7", "2001:DB8::0007", "2001:db8&#58;:7"]
)
def test_defanged_ipv6_is_found(spelling: str) -> None:
    assert extract_ips(f"Scanning from {spelling} all night") == ([V6], [])


def test_defanged_networks_and_ranges() -> None:
    ips, nets = extract_ips("block 198.51.100[.]0/25 and 203.0.113[.]0 - 203.0.113[.]255")
    assert ips == []
    assert nets == [ipaddress.ip_network("198.51.100.0/25"), ipaddress.ip_network("203.0.113.0/24")]


def test_defanged_destinations_are_still_destinations() -> None:
    assert extract_ips("SRC=203.0.113[.]9 DST=198.51.100[.]1") == ([ipaddress.IPv4Address("203.0.113.9")], [])


def test_refang_maps_every_documented_spelling() -> None:
    for defanged, plain in REFANGED.items():
        assert refang(f"a{defanged}b") == f"a{plain}b"
        assert refang(f"a{defanged.upper()}b") == f"a{plain}b"
    assert refang("nothing to do") == "nothing to do"


def test_plain_text_part_entities_are_found_and_the_statement_is_kept_as_sent() -> None:
    body = "Spam from 203&#46;0.113.10 and hxxp://192.0.2[.]7/ today"
    c = parse_complaint(mail(body), received_at=T0)
    assert [str(ip) for ip in c.ips] == ["203.0.113.10", "192.0.2.7"]
    assert body in c.statement


def test_html_part_entities_decoded_and_no_nbsp_left_in_the_statement() -> None:
    body = "<p>Spam&nbsp;from <b>203&#46;0.113.10</b> and 192.0.2[.]7</p>"
    c = parse_complaint(mail(body, "text/html"), received_at=T0)
    assert [str(ip) for ip in c.ips] == ["203.0.113.10", "192.0.2.7"]
    assert "&nbsp;" not in c.statement and "\xa0" not in c.statement
    assert c.statement.split()[:3] == ["Spam", "from", "203.0.113.10"]
    assert "192.0.2[.]7" in c.statement  # the statement is quoted back as sent


def test_html_to_text_turns_no_break_spaces_into_spaces() -> None:
    assert html_to_text("a&nbsp;b&#160;c\xa0d\u202fe") == "a b c d e"


def test_decode_entities_is_bounded_on_huge_character_references() -> None:
    assert decode_entities("&#" + "9" * 5000 + ";x") == "\ufffdx"
    assert decode_entities("&#x" + "f" * 5000 + ";x") == "\ufffdx"
    assert decode_entities("no entities") == "no entities"


@pytest.mark.parametrize(
    "unit",
    ["[.]", "(.)", "[:]", "hxxp://", "&#46;", "&#", "&", "[", "[.", "hxx", "&#999999999999;"],
)
def test_refang_is_linear_and_never_grows(unit: str) -> None:
    def cost(n: int) -> float:  # CPU seconds: a quadratic step shows, a busy machine does not
        text = unit * n
        start = time.process_time()
        out = refang(text)
        elapsed = time.process_time() - start
        assert len(out) <= len(text)
        return elapsed

    cost(1000)  # warm up
    small, large = cost(20_000), cost(200_000)
    # 10x the text: linear is ~10x; a quadratic step would be ~100x.
    assert large < max(small, 1e-3) * 40


def test_refang_is_bounded_through_the_intake() -> None:
    body = "192.0.2[.]7 " + "[.](.)[:]&#46;hxxp://" * 20_000
    start = time.perf_counter()
    c = parse_complaint(mail(body), received_at=T0)
    assert time.perf_counter() - start < 10
    assert V4 in c.ips
