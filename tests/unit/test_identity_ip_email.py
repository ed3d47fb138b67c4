"""The IP and e-mail identities (issue 22): one canonical form, every spelling equal.

Property tests (hypothesis): parse(format(x)) == x for both identities, and
every way a platform or a person spells one IPv6 address (case, zero padding
of groups, compressed or expanded) is the same address and the same key.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipsinfra.abuse.headers import AddressError, parse_address, parse_addresses
from ipsinfra.abuse.intake import parse_complaint
from ipsinfra.errors import InvalidInput
from ipsinfra.identity import email_ascii_domain, ip_key, parse_email, parse_ip
from ipsinfra.models import Client, Site, build

# --- IP addresses ---------------------------------------------------------------------

v4s = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
v6s = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


@given(st.one_of(v4s, v6s))
def test_ip_parse_format_round_trip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert parse_ip(str(ip)) == ip
    assert ip_key(str(ip)) == str(ip) == ip_key(ip)
    assert parse_ip(ip_key(str(ip))) == ip


@st.composite
def v6_spellings(draw: st.DrawFn) -> tuple[ipaddress.IPv6Address, str]:
    ip = draw(v6s)
    groups = []
    for group in ip.exploded.split(":"):
        digits = group.lstrip("0") or "0"
        digits = digits.zfill(draw(st.integers(len(digits), 4)))
        groups.append("".join(c.upper() if draw(st.booleans()) else c for c in digits))
    style = draw(st.sampled_from(["expanded", "compressed", "upper"]))
    if style == "expanded":
        text = ":".join(groups)
    elif style == "compressed":
        text = ip.compressed
    else:
        text = ip.compressed.upper()
    return ip, draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " ", "\n"]))


@given(v6_spellings(), v6_spellings())
def test_every_spelling_of_one_ipv6_address_compares_equal(
    a: tuple[ipaddress.IPv6Address, str], b: tuple[ipaddress.IPv6Address, str]
) -> None:
    ip, text = a
    assert parse_ip(text) == ip
    assert ip_key(text) == ip.compressed
    other_ip, other_text = b
    assert (ip_key(text) == ip_key(other_text)) == (ip == other_ip)


@pytest.mark.parametrize(
    "spellings",
    [
        ["2001:DB8::0010", "2001:db8::10", "2001:0db8:0000:0000:0000:0000:0000:0010", "2001:db8:0:0::10"],
        ["::ffff:192.0.2.7", "::FFFF:c000:0207", "0:0:0:0:0:ffff:192.0.2.7"],
        ["192.0.2.7", " 192.0.2.7\n"],
    ],
)
def test_known_spellings_share_one_key(spellings: list[str]) -> None:
    assert len({ip_key(s) for s in spellings}) == 1


@pytest.mark.parametrize(
    "value", ["", "192.0.2.256", "192.0.2.07", "fe80::1%eth0", "2001:db8:::1", "192.0.2.0/24", "x" * 500]
)
def test_non_addresses_are_refused_naming_field_and_value(value: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_ip(value, field="dc_list.ip")
    assert str(err.value).startswith("dc_list.ip: value ")
    assert repr(value[:20]).rstrip("'") in str(err.value)


# --- e-mail addresses -----------------------------------------------------------------

_LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-"
atoms = st.text(_LOCAL_CHARS, min_size=1, max_size=10)
# "x1" first: never one of the RFC 2142 role names the validator lower-cases.
locals_ = st.lists(atoms, min_size=1, max_size=3).map(lambda parts: "x1" + ".".join(parts))
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True).filter(lambda s: "--" not in s)
domains = st.tuples(
    st.lists(labels, min_size=1, max_size=3), st.sampled_from(["example", "org", "ru", "test"])
).map(lambda t: ".".join([*t[0], t[1]]))


@given(locals_, domains, st.randoms(use_true_random=False))
def test_email_parse_format_round_trip(local: str, domain: str, rnd: object) -> None:
    shouted = "".join(c.upper() if rnd.random() < 0.5 else c for c in domain)  # type: ignore[attr-defined]
    canonical = parse_email(f" {local}@{shouted} ")
    assert canonical == f"{local}@{domain}"  # domain lower case, local part as written
    assert parse_email(canonical) == canonical


def test_rfc_2606_placeholders_are_addresses() -> None:
    assert parse_email("Ops@IPSINFRA.Invalid") == "Ops@ipsinfra.invalid"
    assert parse_email("Support@ipsinfra.invalid") == "support@ipsinfra.invalid"  # RFC 2142 role name
    assert parse_email("a@b.test") == "a@b.test"
    with pytest.raises(InvalidInput):
        parse_email("a..b@c.invalid")


def test_idna_domains_in_both_spellings_are_one_address() -> None:
    assert parse_email("Ivan@ПРИМЕР.рф") == parse_email("Ivan@xn--e1afmkfd.xn--p1ai") == "Ivan@пример.рф"
    assert email_ascii_domain(parse_email("Ivan@ПРИМЕР.рф")) == "xn--e1afmkfd.xn--p1ai"


@pytest.mark.parametrize(
    "value",
    [
        '"\\" <@>',
        '"unterminated <a@b.example>',
        "Ivan <a@b.example>",
        "a@b",
        "a@[192.0.2.1]",
        '"a b"@c.example',
        "a..b@c.example",
        "a@-b.example",
        "a@b.local",
        "a@localhost",
        "a@test",
        "a@invalid",
        "a@x.onion",
        "@b.example",
        "a@",
        "",
        "a" * 300 + "@b.example",
    ],
)
def test_bad_addresses_are_refused_naming_field_and_value(value: str) -> None:
    with pytest.raises(InvalidInput, match=r"^client\.email: value .*not an e-mail address"):
        parse_email(value, field="client.email")


# --- the intake's reply addresses -----------------------------------------------------

BROKEN = ['"\\" <@>', '"unterminated <a@b.example>']


@pytest.mark.parametrize("value", BROKEN)
def test_broken_reply_addresses_never_come_out_of_the_header_parser(value: str) -> None:
    with pytest.raises(AddressError, match="reply-to"):
        parse_address(value, field="reply-to")


@pytest.mark.parametrize("value", [*BROKEN, "x@[192.0.2.1]", '"quoted local"@b.example', "a@-b.example"])
def test_broken_reply_addresses_never_come_out_of_the_intake(value: str) -> None:
    raw = (
        "From: reporter@reporter.example\n"
        f"Reply-To: {value}\n"
        "Subject: spam\n"
        "Message-ID: <x1@reporter.example>\n"
        "Date: Thu, 26 Nov 2026 12:00:00 +0000\n"
        "\n"
        "Spam from 192.0.2.7\n"
    )
    # The intake refuses the complaint naming the header (the caller files it for
    # a person); it never answers to a half-parsed address.
    with pytest.raises(AddressError, match=r"^Reply-To: value "):
        parse_complaint(raw)


def test_good_addresses_are_re_rendered_canonical() -> None:
    found = parse_addresses("Ivan <IVAN@Client.EXAMPLE>, b@ПРИМЕР.рф", field="to")
    assert [str(a) for a in found] == ["Ivan <IVAN@client.example>", "b@xn--e1afmkfd.xn--p1ai"]


@pytest.mark.parametrize(
    ("value", "name", "addr"),
    [
        ("blocklist.example <autogenerated@blocklist.example>", "blocklist.example", "autogenerated"),
        ("Dr. A. Smith (Abuse Desk) <A.Smith@Dc.EXAMPLE>", "Dr. A. Smith", "A.Smith"),
        ("J.R. <abuse@dc.example>", "J.R.", "abuse"),
    ],
)
def test_an_unquoted_display_name_with_periods_is_an_address(value: str, name: str, addr: str) -> None:
    """RFC 5322 obs-phrase (4.1): obsolete but legal, and what real notifiers send. The name is
    quoted when we write it again; the address is checked and canonical as any other."""
    [found] = parse_addresses(value, field="From")
    assert (found.display_name, found.username) == (name, addr)
    assert found.domain in {"blocklist.example", "dc.example"}
    assert str(found) == f'"{name}" <{addr}@{found.domain}>'


@pytest.mark.parametrize(
    "value",
    [
        *BROKEN,
        'x.y <"\\" <@>>',  # an obsolete name does not excuse a broken address after it
        "blocklist.example <a@b.example>, other <>",  # ... nor a broken second address
        "blocklist.example <a@localhost>",  # the address itself is checked as always
        "a.b@c.example <a@b.example>",
        "<a@b.example>.",
        ".x <a@b.example>",
        " . <a@b.example>",
    ],
)
def test_an_obsolete_display_name_never_lets_a_broken_address_through(value: str) -> None:
    with pytest.raises(AddressError, match=r"^From: value .*not an e-mail address we can parse"):
        parse_addresses(value, field="From")


def test_a_notifier_with_an_obsolete_display_name_is_the_complaint_s_sender() -> None:
    raw = (
        "From: blocklist.example <Autogenerated@Blocklist.EXAMPLE>\n"
        "Subject: listed: 192.0.2.7\n"
        "Message-ID: <n1@blocklist.example>\n"
        "Date: Thu, 26 Nov 2026 12:00:00 +0000\n"
        "\n"
        "192.0.2.7 sends spam\n"
    )
    assert parse_complaint(raw).sender == "autogenerated@blocklist.example"


# --- the inventory's addresses --------------------------------------------------------


def test_inventory_addresses_are_canonical() -> None:
    site = Site(
        name="fra1",
        dc="Hetzner",
        dc_abuse_email=" Abuse@Hetzner.EXAMPLE ",
        abuse_trusted_senders=("@SpamHaus.ORG", "SBL-Team@Spamhaus.Example"),
    )
    assert site.dc_abuse_email == "abuse@hetzner.example"
    assert site.abuse_trusted_senders == ("@spamhaus.org", "sbl-team@spamhaus.example")
    idn = Site(name="msk1", dc="D", abuse_trusted_senders=("@ПРИМЕР.рф", "Abuse@xn--e1afmkfd.xn--p1ai"))
    # the intake's sender has IDNA A-labels, lower case: the trusted list is kept in that form
    assert idn.abuse_trusted_senders == ("@xn--e1afmkfd.xn--p1ai", "abuse@xn--e1afmkfd.xn--p1ai")
    assert Client(id="c1", name="Ivan", email="Ivan.Petrov@Mail.EXAMPLE").email == "Ivan.Petrov@mail.example"
    assert Client(id="c1", name="Ivan").email is None


@pytest.mark.parametrize(
    ("model", "data", "field", "value"),
    [
        (
            Client,
            {"id": "c1", "name": "Ivan", "email": '"unterminated <a@b.example>'},
            "email",
            "unterminated",
        ),
        (Client, {"id": "c1", "name": "Ivan", "email": "ivan@localhost"}, "email", "ivan@localhost"),
        (Site, {"name": "fra1", "dc": "H", "dc_abuse_email": "abuse@"}, "dc_abuse_email", "abuse@"),
        (
            Site,
            {"name": "fra1", "dc": "H", "abuse_trusted_senders": ["@nodot"]},
            "abuse_trusted_senders",
            "@nodot",
        ),
        (
            Site,
            {"name": "fra1", "dc": "H", "abuse_trusted_senders": ["a b@c.example"]},
            "abuse_trusted_senders",
            "a b",
        ),
    ],
)
def test_a_bad_inventory_address_is_refused_naming_field_and_value(
    model: type[Client] | type[Site], data: dict[str, object], field: str, value: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        build(model, data, where="inventory")
    assert f"inventory.{field}: value " in str(err.value)
    assert value in str(err.value)
