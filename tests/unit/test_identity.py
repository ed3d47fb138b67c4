"""One canonical form per identity (issue 22): interface names and MACs.

Property tests (hypothesis) that each canonical form is stable and that every
spelling a platform prints for the same port or MAC compares equal, then the
same claims on the real device output in ``../shared/fixtures`` (MAC tables,
interface status/description, LLDP of the platforms that have captures).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import netaddr
import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st
from netutils.constants import BASE_INTERFACES
from netutils.interface import split_interface
from pydantic import BaseModel, ValidationError

from ipsinfra.errors import InvalidInput
from ipsinfra.identity import (
    INTERFACE_ALIASES,
    InterfaceNames,
    MacAddress,
    check_interface_name,
    interface_key,
    parse_mac,
)
from ipsinfra.models import DedicatedServer, build, normalize_mac
from ipsinfra.network.mac_records import mac_of

CANONICAL_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
six_bytes = st.binary(min_size=6, max_size=6)


def spellings(mac: bytes) -> list[str]:
    """Every way switches, hypervisors and operators write ``mac``."""
    h = mac.hex()
    quads = [h[i : i + 4] for i in (0, 4, 8)]
    return [
        mac.hex(":"),  # Linux, libvirt, Proxmox, Alcatel, Extreme, Aruba CX
        mac.hex(":").upper(),
        mac.hex("-").upper(),  # Avaya, Windows
        mac.hex("."),
        mac.hex(" "),
        ".".join(quads),  # Cisco, Arista, Brocade, Allied Telesis
        "-".join(quads),  # Huawei, H3C Comware
        ":".join(quads),
        f"{h[:6]}-{h[6:]}",  # HP ProCurve
        f"{h[:6]}:{h[6:]}",
        h,
        h.upper(),
        ":".join(f"{b:x}" for b in mac),  # unpadded: 0:1:2:3:4:5
        "-".join(f"{b:X}" for b in mac),
        f"  {mac.hex(':')}\n",
    ]


# --- MACs -----------------------------------------------------------------------------


def netaddr_has_it(text: str) -> bool:
    """netaddr reads every dialect we accept but two: space-separated and dotted pairs."""
    text = text.strip()
    return " " not in text and not (len(text) == 17 and "." in text)


@given(six_bytes)
def test_every_mac_dialect_parses_to_one_stable_canonical_form(mac: bytes) -> None:
    canonical = mac.hex(":")
    for spelling in spellings(mac):
        assert parse_mac(spelling) == canonical, spelling
        assert normalize_mac(spelling) == canonical, spelling
        assert mac_of(spelling) == canonical, spelling  # the MAC-table parsers' path
    assert parse_mac(canonical) == canonical  # parse(format(x)) == x
    assert normalize_mac(canonical) is canonical  # the fast path hands canonical input back as is


@given(six_bytes)
def test_netaddr_reads_every_spelling_we_accept_as_the_same_address(mac: bytes) -> None:
    for spelling in filter(netaddr_has_it, spellings(mac)):
        assert netaddr.EUI(spelling.strip()).packed == mac, spelling


MAC_LIKE = st.text(alphabet="0123456789abcdefABCDEF:.- ", min_size=1, max_size=20)


@given(MAC_LIKE)
def test_whatever_parses_is_canonical_and_is_what_netaddr_reads(text: str) -> None:
    try:
        got = parse_mac(text)
    except ValueError:
        return
    assert CANONICAL_MAC.fullmatch(got)
    assert parse_mac(got) == got
    if netaddr_has_it(text):
        assert netaddr.EUI(text.strip()).packed == bytes.fromhex(got.replace(":", ""))


# Group sizes (of the 12 digits) that some dialect uses; every other grouping is refused.
DIALECT_GROUPS = {(12,), (6, 6), (4, 4, 4), (2, 2, 2, 2, 2, 2)}


@st.composite
def regrouped(draw: st.DrawFn) -> tuple[str, tuple[int, ...]]:
    """12 hex digits split at random places, joined with one separator."""
    digits = draw(six_bytes).hex()
    cuts = sorted(draw(st.sets(st.integers(1, 11), min_size=1, max_size=11)))
    sizes = tuple(b - a for a, b in zip([0, *cuts], [*cuts, 12], strict=True))
    sep = draw(st.sampled_from([":", "-", "."]))
    return sep.join(digits[a:b] for a, b in zip([0, *cuts], [*cuts, 12], strict=True)), sizes


@given(regrouped())
def test_twelve_digits_grouped_as_no_dialect_groups_them_are_refused(
    case: tuple[str, tuple[int, ...]],
) -> None:
    text, sizes = case
    assume(sizes not in DIALECT_GROUPS)
    with pytest.raises(ValueError, match="not a MAC address"):
        parse_mac(text)
    with pytest.raises(ValueError, match="not a MAC address"):
        mac_of(text)


@pytest.mark.parametrize(
    "bad",
    [
        "a:ab:bc:cd:de:ef:f",  # issue 22: twelve digits, misgrouped
        "aab:bcc:dde:eff",
        "aabbc-cddeef",  # netaddr reads this one
        "aabbccddeef",  # 11 digits: netaddr pads it
        "a.b.c",  # netaddr reads 00-0a-00-0b-00-0c
        "aa:bb-cc:dd:ee:ff",  # mixed separators
        "aabb.ccdd-eeff",
        "0:1:2:3:4:5:6",
        "0:1:2:3:4",
        "aa bb cc dd ee f",
        "ａａbbccddeeff",  # full-width digits
        "",
    ],
)
def test_misgrouped_and_malformed_macs_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a MAC address"):
        normalize_mac(bad)


def test_the_unpadded_form_is_accepted() -> None:
    assert normalize_mac("0:1:2:3:4:5") == "00:01:02:03:04:05"
    assert normalize_mac("52:54:0:ab:c:ef") == "52:54:00:ab:0c:ef"


def test_mac_address_field_type_stores_the_canonical_form() -> None:
    class Nic(BaseModel):
        mac: MacAddress

    assert Nic(mac="5254.00AB.CDEF").mac == "52:54:00:ab:cd:ef"
    with pytest.raises(ValidationError, match="not a MAC address"):
        Nic(mac="a:ab:bc:cd:de:ef:f")


# --- interface names ------------------------------------------------------------------

NUMBERS = st.from_regex(r"[0-9]{1,3}(/[0-9]{1,3}){0,2}(\.[0-9]{1,4})?", fullmatch=True)


@given(st.sampled_from(sorted(INTERFACE_ALIASES)), st.data())
def test_every_abbreviation_names_the_same_port_as_its_long_name(platform: str, data: st.DataObject) -> None:
    aliases = {**BASE_INTERFACES, **INTERFACE_ALIASES[platform]}
    short = data.draw(
        st.sampled_from(sorted(k for k in aliases if aliases.get(aliases[k]) in (None, aliases[k])))
    )
    number = data.draw(NUMBERS)
    names = InterfaceNames.of(platform)
    long = aliases[short] + number
    assert names.key(short + number) == names.key(long) == long
    assert names.same(short + number, long)
    assert names.key(names.key(short + number)) == names.key(short + number)  # stable


@given(st.sampled_from(sorted(INTERFACE_ALIASES)), st.text(max_size=30))
def test_the_canonical_form_is_stable_for_any_text(platform: str, text: str) -> None:
    key = interface_key(platform, text)
    assert interface_key(platform, key) == key


@given(st.sampled_from(["hp_procurve", "linux", "extreme_exos", "no_such_platform"]), st.text())
def test_platforms_without_abbreviations_compare_names_as_printed(platform: str, text: str) -> None:
    assert interface_key(platform, text) == text.strip()


@given(st.text().filter(lambda t: not re.fullmatch(r"\s*[a-z0-9/:-]+\.\d+\s*", t)))
def test_junos_names_without_a_unit_compare_as_printed(text: str) -> None:
    assert interface_key("juniper_junos", text) == text.strip()


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("xe-0/0/2.0", "xe-0/0/2", True),  # the MAC table names the unit, LLDP the port
        ("ge-0/0/0.0", "ge-0/0/0", True),
        ("et-0/0/48:1.0", "et-0/0/48:1", True),  # a channelised port
        ("ae7.0", "ae7", True),  # the LAG LLDP's Parent Interface names
        ("xe-0/0/2.0", "xe-0/0/2.100", True),  # two units, one port
        ("xe-0/0/2.0", "xe-0/0/20", False),
        ("irb.100", "irb.200", False),  # not ports: the unit is the interface
        ("lo0.0", "lo0", False),
        ("vlan.20", "vlan", False),
    ],
)
def test_junos_ports_compare_without_their_logical_unit(a: str, b: str, same: bool) -> None:
    assert InterfaceNames.of("juniper_junos").same(a, b) is same


@pytest.mark.parametrize(
    ("platform", "a", "b"),
    [
        ("arista_eos", "Et1", "Ethernet1"),
        ("arista_eos", "Et49/1", "Ethernet49/1"),
        ("arista_eos", "Po1", "Port-Channel1"),
        ("arista_eos", "po5", "Port-Channel5"),
        ("cisco_nxos", "Eth1/1", "Ethernet1/1"),
        ("cisco_nxos", "mgmt0", "Management0"),
        ("cisco_ios", "Gi1/0/1", "GigabitEthernet1/0/1"),
        ("cisco_ios", "Te1/1/3", "TenGigabitEthernet1/1/3"),
        ("cisco_ios", "Po15", "Port-channel15"),
        ("huawei_vrp", "XGE0/0/1", "XGigabitEthernet0/0/1"),
        ("huawei_vrp", "GE0/0/25", "GigabitEthernet0/0/25"),
        ("hp_comware", "XGE1/0/1", "Ten-GigabitEthernet1/0/1"),
        ("hp_comware", "BAGG1", "Bridge-Aggregation1"),
    ],
)
def test_what_one_platform_prints_for_one_port_compares_equal(platform: str, a: str, b: str) -> None:
    assert InterfaceNames.of(platform).same(a, b)


@pytest.mark.parametrize(
    ("platform", "a", "b"),
    [
        ("hp_procurve", "F1", "FourHundredGigabitEthernet1"),  # netutils' F is not HP's module F
        ("linux", "eth0", "Ethernet0"),
        ("juniper_junos", "ge-0/0/0", "GigabitEthernet0/0/0"),
        ("huawei_vrp", "XGE0/0/1", "TenGigabitEthernet0/0/1"),  # netutils' XGE is Cisco's
        ("hp_comware", "Bridge-Aggregation1", "Port-channel1"),
        ("cisco_ios", "Gi0/1", "Gi0/10"),
        ("cisco_ios", "Router", "Routed"),
    ],
)
def test_different_ports_stay_different(platform: str, a: str, b: str) -> None:
    assert not InterfaceNames.of(platform).same(a, b)


PORT_NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9/._:@+()-]{0,40}", fullmatch=True)


@given(PORT_NAMES)
def test_one_word_port_names_are_accepted_as_given(name: str) -> None:
    assert check_interface_name(name) == name


@given(
    PORT_NAMES,
    st.sampled_from(["\n", "\r", " ", "\t", "\x00", "\x1b", "?", "|", ";", "!", "$", "`"]),
    st.data(),
)
def test_a_port_name_that_is_not_one_word_is_refused_naming_field_and_value(
    name: str, bad: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(name)))
    value = name[:at] + bad + name[at:]
    with pytest.raises(InvalidInput) as exc:
        check_interface_name(value, field="switch_port")
    assert str(exc.value).startswith(f"switch_port: value {value!r}: a port name is one word")


def test_the_inventory_refuses_a_switch_port_with_a_newline() -> None:
    with pytest.raises(InvalidInput, match=r"ded1\.port: value 'Gi0/5\\nreload': a port name is one word"):
        build(DedicatedServer, {"name": "ded1", "site": "msk1", "port": "Gi0/5\nreload"}, "ded1")
    assert build(DedicatedServer, {"name": "ded1", "site": "msk1", "port": 25}, "ded1").port == "25"


# --- the real device output -----------------------------------------------------------

PORT_KEYS = ("destination_port", "ports", "interface", "port", "port_id", "fsp", "local_interface", "intf")
MAC_KEYS = ("mac_address", "destination_address", "mac")
# Values in the MAC columns of the captures that are not MACs (the templates capture them anyway).
NOT_MACS = {("arista_eos", "jenn.3057.8423"), ("cisco_ios", "")}


def _records(root: Path) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for yml in sorted(root.glob("*/*/*/*.yml")):
        platform, command = yml.parts[-3], yml.parts[-2]
        for record in yaml.safe_load(yml.read_text())["parsed_sample"]:
            out.append((platform, command, record))
    assert len(out) > 500, f"too few records under {root}"
    return out


def _ports(record: dict[str, Any]) -> list[str]:
    key = next((k for k in PORT_KEYS if k in record), None)
    value = record[key] if key else []
    return [p.strip() for p in (value if isinstance(value, list) else [value]) if p.strip()]


def test_every_mac_in_real_output_parses_as_netaddr_reads_it(shared_fixtures: Path) -> None:
    seen = 0
    for platform, _, record in _records(shared_fixtures):
        key = next((k for k in MAC_KEYS if k in record), None)
        if key is None:
            continue
        value = record[key]
        if (platform, value) in NOT_MACS:
            with pytest.raises(ValueError):
                parse_mac(value)
            continue
        got = parse_mac(value)
        assert netaddr.EUI(value).packed == bytes.fromhex(got.replace(":", "")), (platform, value)
        seen += 1
    assert seen > 300


def test_every_port_name_in_real_output_has_a_stable_canonical_form(shared_fixtures: Path) -> None:
    for platform, command, record in _records(shared_fixtures):
        for port in _ports(record):
            key = interface_key(platform, port)
            assert interface_key(platform, key) == key, (platform, command, port)


# LLDP ports of a type no table capture of the platform happens to hold (nothing to join).
NO_TABLE_CAPTURE = {("cisco_ios", "TwoGigabitEthernet"), ("juniper_junos", "ge-"), ("juniper_junos", "xe-")}


def test_lldp_ports_and_table_ports_of_a_platform_share_one_namespace(shared_fixtures: Path) -> None:
    """Every type of port LLDP names is a type the MAC/interface tables name, once both are canonical.

    As printed they are not: Arista's LLDP says ``Ethernet``, its tables ``Et``;
    Huawei's LLDP ``XGigabitEthernet``, its MAC table ``XGE``.
    """
    canonical: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    printed: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for platform, command, record in _records(shared_fixtures):
        side = "lldp" if "lldp" in command else "tables"
        for port in _ports(record):
            canonical[platform][side].add(split_interface(interface_key(platform, port))[0])
            printed[platform][side].add(split_interface(port)[0])
    with_lldp = {p for p in canonical if canonical[p]["lldp"]}
    assert with_lldp == {
        "arista_eos",
        "cisco_ios",
        "cisco_nxos",
        "hp_procurve",
        "huawei_vrp",
        "juniper_junos",
    }
    gaps = {(p, t) for p in with_lldp for t in canonical[p]["lldp"] - canonical[p]["tables"]}
    assert gaps == NO_TABLE_CAPTURE
    # the join is canonicalisation's doing: as printed, these two do not meet
    for platform in ("arista_eos", "huawei_vrp"):
        assert printed[platform]["lldp"] - printed[platform]["tables"], platform


def test_the_canonical_names_of_real_ports_are_netutils_own(shared_fixtures: Path) -> None:
    """Where a platform abbreviates, the key is netutils' canonical_interface_name with the platform's map."""
    from netutils.interface import canonical_interface_name

    checked = 0
    for platform, _, record in _records(shared_fixtures):
        if platform not in INTERFACE_ALIASES:
            continue
        for port in _ports(record):
            if split_interface(port)[1]:
                expected = canonical_interface_name(port, addl_name_map=dict(INTERFACE_ALIASES[platform]))
                assert interface_key(platform, port) == expected, (platform, port)
                checked += 1
    assert checked > 300
