"""naming: the edges the mutation run (issue 23) found unchecked — non-string input, the
255/256 octet boundary and the exact reason each malformed house name is refused."""

from __future__ import annotations

import ipaddress

import pytest

from ipsinfra import naming
from ipsinfra.errors import InvalidName

FORM = "expected VPS<order>(<a>.<b>), e.g. VPS1234(34.56)"


@pytest.mark.parametrize("value", [None, 1234, 12.5, b"VPS1234(34.56)", ["VPS1234(34.56)"]])
def test_non_string_names_are_refused_not_crashed_on(value: object) -> None:
    assert naming.order_of(value) is None  # type: ignore[arg-type]
    assert naming.is_vps_name(value) is False  # type: ignore[arg-type]
    with pytest.raises(InvalidName) as house:
        naming.parse_vps_name(value)  # type: ignore[arg-type]
    assert str(house.value) == f"name: value {value!r}: a house name is a string"
    with pytest.raises(InvalidName) as twin:
        naming.from_pve_safe_name(value)  # type: ignore[arg-type]
    assert str(twin.value) == f"name: value {value!r}: expected the DNS-safe twin VPS<order>-<a>-<b>"


def test_is_vps_name_is_true_only_for_house_names() -> None:
    assert naming.is_vps_name("VPS1234(34.56)") is True
    assert naming.is_vps_name("VPS1234-34-56") is False
    assert naming.is_vps_name("garbage") is False
    assert naming.order_of("VPS1234(34.56)") == 1234
    assert naming.order_of("VPS1234-34-56") is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        # 255 is an octet, 256 is not: the boundary on either side, in either position
        ("VPS01(255.1)", FORM),  # refused for the order's leading zero, not for 255
        ("VPS01(1.255)", FORM),
        ("VPS1234(256.1)", f"an octet is 0-255; {FORM}"),
        ("VPS1234(1.256)", f"an octet is 0-255; {FORM}"),
        ("VPS1234(300.1)", f"an octet is 0-255; {FORM}"),
        # a single 0 is an octet; "05" and "056" carry a leading zero
        ("VPS01(0.5)", FORM),
        ("VPS1234(34.05)", f"octets have no leading zeros; {FORM}"),
        ("VPS1234(05.34)", f"octets have no leading zeros; {FORM}"),
        ("VPS01(34.56)", FORM),
        # the octets are read after the FIRST parenthesis
        ("VPS1(2(3.4)", f"two octets separated by a dot go in the parentheses; {FORM}"),
    ],
)
def test_the_exact_reason_a_name_is_refused(name: str, reason: str) -> None:
    with pytest.raises(InvalidName) as exc:
        naming.parse_vps_name(name)
    assert str(exc.value) == f"name: value {name!r}: {reason}"


def test_ipv6_node_message_says_what_to_do() -> None:
    with pytest.raises(InvalidName) as exc:
        naming.vps_name(1234, ipaddress.IPv6Address("2001:db8::1"))
    assert str(exc.value) == (
        "node_ip: value '2001:db8::1': §8.5 names take the node's IPv4 octets; "
        "give the node an IPv4 main address"
    )
