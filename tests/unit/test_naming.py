from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipsinfra import naming
from ipsinfra.errors import InvalidName

ipv4 = st.integers(min_value=0, max_value=2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
orders = st.integers(min_value=1, max_value=10**12 - 1)


def test_rule_example() -> None:
    assert naming.vps_name(1234, "185.12.34.56") == "VPS1234(34.56)"
    assert naming.vps_name("1234", ipaddress.IPv4Address("185.12.34.56")) == "VPS1234(34.56)"


@pytest.mark.parametrize(
    ("order", "ip", "field"),
    [
        ("12a4", "185.12.34.56", "order"),
        (0, "185.12.34.56", "order"),
        (-5, "185.12.34.56", "order"),
        ("0123", "185.12.34.56", "order"),
        (True, "185.12.34.56", "order"),
        (1234, "300.1.1.1", "node_ip"),
        (1234, "2001:db8::1", "node_ip"),
        (1234, "not-an-ip", "node_ip"),
    ],
)
def test_bad_inputs_name_field_and_value(order: object, ip: str, field: str) -> None:
    with pytest.raises(InvalidName) as exc:
        naming.vps_name(order, ip)  # type: ignore[arg-type]
    assert isinstance(exc.value, ValueError)
    msg = str(exc.value)
    assert msg.startswith(f"{field}: value ")
    assert repr(order if field == "order" else ip) in msg


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("VPS 1234(34.56)", "no spaces"),
        ("vps1234(34.56)", "upper-case 'VPS'"),
        ("VPS1234(34.56", "parentheses"),
        ("VPS1234 (34.56)", "no spaces"),
        ("VPS1234(34.256)", "0-255"),
        ("VPS1234(34.056)", "leading zeros"),
        ("VPS1234(34)", "two octets"),
        ("VPS1234(34.56.78)", "two octets"),
        ("VPS(34.56)", "VPS<order>"),
        ("VPS0(34.56)", "VPS<order>"),
        ("VPS1234-34-56", "parentheses"),
        ("", "upper-case"),
    ],
)
def test_parse_refuses_non_house_forms(name: str, why: str) -> None:
    with pytest.raises(InvalidName) as exc:
        naming.parse_vps_name(name)
    assert repr(name) in str(exc.value)
    assert why in str(exc.value)


def test_parse() -> None:
    parsed = naming.parse_vps_name("VPS1234(34.56)")
    assert (parsed.order, parsed.octets) == (1234, "34.56")
    assert str(parsed) == "VPS1234(34.56)"


def test_pve_twin_both_ways() -> None:
    assert naming.pve_safe_name("VPS1234(34.56)") == "VPS1234-34-56"
    assert naming.from_pve_safe_name("VPS1234-34-56") == "VPS1234(34.56)"
    with pytest.raises(InvalidName):
        naming.from_pve_safe_name("VPS1234(34.56)")
    with pytest.raises(InvalidName):
        naming.pve_safe_name("VPS1234-34-56")


def test_renamed_for_node() -> None:
    assert naming.renamed_for_node("VPS1234(34.56)", "10.0.7.8") == "VPS1234(7.8)"


@given(orders, ipv4)
def test_names_round_trip(order: int, ip: str) -> None:
    name = naming.vps_name(order, ip)
    assert " " not in name
    parsed = naming.parse_vps_name(name)
    assert parsed.order == order
    assert parsed.octets == ".".join(ip.split(".")[2:])
    safe = naming.pve_safe_name(name)
    # DNS label: letters, digits and hyphens only
    assert all(ch.isalnum() or ch == "-" for ch in safe)
    assert naming.from_pve_safe_name(safe) == name


@given(st.text(max_size=30))
def test_parse_never_accepts_garbage(text: str) -> None:
    try:
        parsed = naming.parse_vps_name(text)
    except InvalidName:
        assert naming.order_of(text) is None
        return
    assert str(parsed) == text  # only exact house forms parse
    assert naming.order_of(text) == parsed.order


@given(orders, ipv4)
def test_order_of_agrees_with_parse(order: int, ip: str) -> None:
    name = naming.vps_name(order, ip)
    assert naming.order_of(name) == naming.parse_vps_name(name).order == order
    assert naming.order_of(name + " ") is None and naming.order_of(naming.pve_safe_name(name)) is None
