"""The identities the proof of target (§11.8) and the port map (§4.6) compare, each in one canonical form.

A switch prints the same port as ``Et1`` in its MAC table and ``Ethernet1`` in
its LLDP table; an operator types a MAC as ``0:1:2:3:4:5``. Compared as raw
strings they differ, and a guard that compares them silently never fires. So
every value is parsed once where it comes in (switch output, the inventory,
a CLI argument) and compared only in its canonical form:

* **Interface names** (:class:`InterfaceNames`): per platform, the long name
  netutils' :func:`netutils.interface.canonical_interface_name` gives, with the
  platform's own additions where netutils' map is wrong for it (Huawei VRP's
  ``XGE`` is ``XGigabitEthernet``, H3C Comware's is ``Ten-GigabitEthernet``).
  Platforms whose names have no abbreviations (Junos ``ge-0/0/0``, HP
  ProCurve's ``1``/``A1``/``Trk1``, Linux ``swp1``, and any platform not
  listed in :data:`INTERFACE_ALIASES`) compare as printed: netutils would
  read ProCurve's module port ``F1`` as ``FourHundredGigabitEthernet1`` and
  Linux's ``eth0`` as ``Ethernet0``. On Junos a port's logical unit is
  dropped (the MAC table's ``xe-0/0/2.0`` is LLDP's ``xe-0/0/2``; ``irb.100``
  stays). The canonical form is a comparison key:
  models, maps and commands keep the name as the switch prints it, so a
  command names a port the way that switch lists it.
* **MAC addresses** (:func:`parse_mac`): ``aa:bb:cc:dd:ee:ff``, from every
  dialect switches and hypervisors print (see :data:`MAC_DIALECTS`), with
  strict grouping: ``a:ab:bc:cd:de:ef:f`` has twelve hex digits and is refused.
* **IP addresses** (:func:`parse_ip`, :func:`ip_key`): :mod:`ipaddress` values;
  as text, ``str()`` of one (``2001:DB8::0010`` is ``2001:db8::10``). Lists read
  from files (the DC's server list, §4.4) are keyed by this text.
* **E-mail addresses** (:func:`parse_email`, :data:`EmailAddress`): syntax by
  ``email-validator`` (never DNS), domain IDNA-normalised and lower case,
  local part as written.

Example::

    >>> names = InterfaceNames.of("arista_eos")
    >>> names.key("Et1"), names.same("Et1", "Ethernet1")
    ('Ethernet1', True)
    >>> InterfaceNames.of("huawei_vrp").key("XGE0/0/1")
    'XGigabitEthernet0/0/1'
    >>> parse_mac("0:1:2:3:4:5"), parse_mac("0010.0de0.e289"), parse_mac("001122-334455")
    ('00:01:02:03:04:05', '00:10:0d:e0:e2:89', '00:11:22:33:44:55')
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, TypeGuard

import email_validator
import idna
from pydantic import BeforeValidator

from ipsinfra.errors import InvalidInput

__all__ = [
    "INTERFACE_ALIASES",
    "MAC_DIALECTS",
    "PORT_NAME_RULE",
    "EmailAddress",
    "IPAddress",
    "InterfaceNames",
    "MacAddress",
    "check_interface_name",
    "email_ascii_domain",
    "interface_key",
    "ip_key",
    "is_interface_name",
    "parse_email",
    "parse_ip",
    "parse_mac",
]

# --- interface names ----------------------------------------------------------------

# Platforms whose CLI abbreviates interface types, and what each adds to (or
# corrects in) netutils' BASE_INTERFACES. A platform not named here compares
# its port names as printed (stripped).
INTERFACE_ALIASES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "cisco_ios": {},
        "cisco_xe": {},
        "cisco_nxos": {},
        "cisco_s300": {},
        "arista_eos": {},
        # VRP: MAC tables and `display interface description` print GE/XGE, LLDP
        # the full name. 10GE/25GE/40GE/100GE are full names on CloudEngine.
        "huawei_vrp": {
            "XGE": "XGigabitEthernet",
            "XGigabitEthernet": "XGigabitEthernet",
            "GE": "GigabitEthernet",
            "MEth": "MEth",
            "Eth-Trunk": "Eth-Trunk",
            "Vlanif": "Vlanif",
        },
        # Comware: XGE is Ten-GigabitEthernet, FGE FortyGigE, BAGG Bridge-Aggregation
        # (netutils would turn Bridge-Aggregation into IOS's Port-channel).
        "hp_comware": {
            "GE": "GigabitEthernet",
            "XGE": "Ten-GigabitEthernet",
            "Ten-GigabitEthernet": "Ten-GigabitEthernet",
            "FGE": "FortyGigE",
            "FortyGigE": "FortyGigE",
            "HGE": "HundredGigE",
            "HundredGigE": "HundredGigE",
            "WGE": "TwentyFiveGigE",
            "BAGG": "Bridge-Aggregation",
            "Bridge-Aggregation": "Bridge-Aggregation",
            "RAGG": "Route-Aggregation",
            "Route-Aggregation": "Route-Aggregation",
            "Vlan-int": "Vlan-interface",
            "Vlan-interface": "Vlan-interface",
            "MGE": "M-GigabitEthernet",
            "M-GigabitEthernet": "M-GigabitEthernet",
        },
    }
)

# What an operator-given port name (inventory `switch_port`, a CLI argument,
# a name put into a command) may hold: one word, no whitespace or control
# characters (`Gi0/5\nreload` would be a second command), none of `?` `|` `!`
# (help, pipes and comments on Cisco-style CLIs) or shell characters.
_PORT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9/._:@+()-]{0,63}")


PORT_NAME_RULE = (
    "a port name is one word of letters, digits and / . _ : @ + ( ) -, "
    "starting with a letter or digit, at most 64 characters"
)


def is_interface_name(value: object) -> TypeGuard[str]:
    """Whether ``value`` may be put into a command as a port name (see :func:`check_interface_name`)."""
    return isinstance(value, str) and _PORT_NAME_RE.fullmatch(value) is not None


def check_interface_name(value: object, *, field: str = "port") -> str:
    """``value`` as a port name fit for a command, or :class:`InvalidInput` naming ``field`` and value.

    Example: ``check_interface_name("Gi0/5\\nreload", field="port")`` raises
    ``InvalidInput("port: value 'Gi0/5\\nreload': a port name is one word of ...")``.
    """
    if not is_interface_name(value):
        raise InvalidInput(f"{field}: value {value!r}: {PORT_NAME_RULE}")
    return value


@functools.cache
def _alias_map(platform: str) -> Mapping[str, str] | None:
    extra = INTERFACE_ALIASES.get(platform)
    if extra is None:
        return None
    from netutils.constants import BASE_INTERFACES

    merged = {**BASE_INTERFACES, **extra}
    # only names that land on a long name that stays itself (netutils' own
    # "Management_short" -> "Ma" would make the key of a key another key)
    return MappingProxyType({k: v for k, v in merged.items() if merged.get(v, v) == v})


@functools.lru_cache(maxsize=8192)
def interface_key(platform: str, name: str) -> str:
    """The canonical form of port ``name`` on ``platform``: what comparisons compare.

    What ``netutils.interface.canonical_interface_name(name, addl_name_map=...)``
    gives with the platform's :data:`INTERFACE_ALIASES` (the same split and map),
    except that a type word without a number stays as printed and a platform
    not listed compares as printed. Never raises: switch output is canonicalised as printed (an odd entry such
    as NX-OS's ``sup-eth1(R)`` stays as it is). Cached: a switch has few ports.
    """
    text = name.strip()
    if platform == "juniper_junos":
        return _junos_port(text)
    aliases = _alias_map(platform)
    if aliases is None:
        return text
    from netutils.interface import split_interface

    kind, number = split_interface(text)
    long = aliases.get(kind)
    # a type word alone (`Router`, `CPU`) or an unknown one stays as printed
    return text if long is None or not number else long + number


# A Junos physical or aggregate port with a logical unit: the MAC table names the
# unit (``xe-0/0/2.0``, ``ae7.0``), LLDP and ``set interfaces ... disable`` the
# port (``xe-0/0/2``, ``ae7``). Other logical interfaces (``irb.100``,
# ``vlan.20``, ``lo0.0``) are not ports and keep their unit.
_JUNOS_UNIT_RE = re.compile(r"((?:[a-z]{2,4}-\d+/\d+/\d+(?::\d+)?)|(?:ae\d+))\.\d+")


def _junos_port(text: str) -> str:
    """Junos names compare as printed, except that a port's logical unit is dropped."""
    m = _JUNOS_UNIT_RE.fullmatch(text)
    return m.group(1) if m else text


@dataclass(frozen=True)
class InterfaceNames:
    """The port namespace of one platform: every spelling it prints maps to one key.

    >>> InterfaceNames.of("cisco_nxos").same("Eth1/1", "Ethernet1/1")
    True
    """

    platform: str

    @classmethod
    def of(cls, platform: str) -> InterfaceNames:
        return _names(platform)

    def key(self, name: str) -> str:
        """The canonical form of ``name`` (see :func:`interface_key`)."""
        return interface_key(self.platform, name)

    def same(self, a: str, b: str) -> bool:
        return interface_key(self.platform, a) == interface_key(self.platform, b)

    def keys(self, names: Iterable[str]) -> set[str]:
        return {interface_key(self.platform, n) for n in names}

    def parse(self, value: object, *, field: str = "port") -> str:
        """An operator-given port name, checked (:func:`check_interface_name`); returned as given."""
        return check_interface_name(value, field=field)


@functools.cache
def _names(platform: str) -> InterfaceNames:
    return InterfaceNames(platform)


# --- MAC addresses ---------------------------------------------------------------------

# The spellings accepted, one per alternative (upper or lower case, surrounding
# whitespace ignored). Grouping is strict: the digits must fall in the groups
# of the dialect, so a 12-digit string grouped any other way is refused.
MAC_DIALECTS: Mapping[str, str] = MappingProxyType(
    {
        "aa:bb:cc:dd:ee:ff": "six groups of 1-2 digits, `:` or `-` (0:1:2:3:4:5 is 00:01:02:03:04:05)",
        "aa.bb.cc.dd.ee.ff": "six groups of 2 digits, `.` or a space",
        "aabb.ccdd.eeff": "three groups of 4 digits, `.`, `-` or `:` (Cisco, Huawei, H3C)",
        "aabbcc-ddeeff": "two groups of 6 digits, `-` or `:` (HP ProCurve, PostgreSQL)",
        "aabbccddeeff": "12 digits",
    }
)
_H = "[0-9A-Fa-f]"
_G = rf"({_H}{{1,2}})"
_SIX_SHORT = re.compile(_G + "([:-])" + _G + (r"\2" + _G) * 4)  # groups 1, 3-7; 2 is the separator


def _padded(text: str) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` for a padded spelling (told apart by its length), else ``None``."""
    n = len(text)
    if n == 17:  # aa:bb:cc:dd:ee:ff, aa-bb-..., aa.bb...., aa bb ...
        sep = text[2]
        ok = text[5] == text[8] == text[11] == text[14] == sep and sep in ".:- "
    elif n == 14:  # aabb.ccdd.eeff, aabb-ccdd-eeff, aabb:ccdd:eeff
        sep = text[4]
        ok = text[9] == sep and sep in ".:-"
    elif n == 13:  # aabbcc-ddeeff, aabbcc:ddeeff
        sep = text[6]
        ok = sep in ":-"
    elif n == 12:  # aabbccddeeff
        sep, ok = "", True
    else:
        return None
    digits = text.replace(sep, "") if sep else text
    if not ok or len(digits) != 12:  # a separator anywhere else is refused here
        return None
    try:
        packed = bytes.fromhex(digits)
    except ValueError:
        return None
    # fromhex skips whitespace, so any would leave fewer bytes
    return packed.hex(":") if len(packed) == 6 else None


def parse_mac(value: str) -> str:
    """``aa:bb:cc:dd:ee:ff`` for a MAC in any of :data:`MAC_DIALECTS`, else ValueError.

    Called for every line of a MAC table (and by :func:`ipsinfra.models.normalize_mac`,
    which returns canonical input before calling it): the padded dialects are told
    apart by their length, not by a regex.
    """
    found = _padded(value)
    if found is not None:
        return found
    text = value.strip()
    if text != value:
        found = _padded(text)
        if found is not None:
            return found
    m = _SIX_SHORT.fullmatch(text)
    if m is not None:
        return ":".join(g.zfill(2) for g in m.group(1, 3, 4, 5, 6, 7)).lower()
    raise ValueError(f"not a MAC address: {value!r}")


def _mac_value(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not a MAC address: {value!r}")
    return parse_mac(value)


MacAddress = Annotated[str, BeforeValidator(_mac_value)]
"""A pydantic field type: any dialect in, ``aa:bb:cc:dd:ee:ff`` stored."""


# --- IP addresses ------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(value: str, *, field: str = "ip") -> IPAddress:
    """An IPv4 or IPv6 address, through :mod:`ipaddress` (surrounding blanks ignored).

    Every spelling of one address gives the same value: ``2001:DB8::0010``,
    ``2001:db8:0:0:0:0:0:10`` and ``2001:db8::10`` are one address. A zone
    (``fe80::1%eth0``) is refused: no record or list here names one, and an
    address with a zone compares unequal to the same address without it.

    Raises:
        InvalidInput: naming ``field`` and the value.
    """
    text = value.strip() if isinstance(value, str) else ""
    if 0 < len(text) <= _MAX_IP_CHARS and "%" not in text:
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            pass
    shown = value if not isinstance(value, str) or len(value) <= 80 else value[:80] + "..."
    raise InvalidInput(f"{field}: value {shown!r}: not an IPv4 or IPv6 address")


def ip_key(value: str | IPAddress, *, field: str = "ip") -> str:
    """The canonical text of an address (RFC 5952 for IPv6: lower case, compressed).

    >>> ip_key("2001:DB8::0010"), ip_key(" 192.0.2.7 ")
    ('2001:db8::10', '192.0.2.7')
    """
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    return str(parse_ip(value, field=field))


# The longest spelling ipaddress reads: an expanded IPv6 address with an IPv4 tail.
_MAX_IP_CHARS = 45


# --- e-mail addresses --------------------------------------------------------------

# RFC 5321's limit on a path is 256 octets, an address 254; a longer value is
# refused before the validator reads it, so the cost is bounded whatever comes in.
_MAX_EMAIL_CHARS = 254


def parse_email(value: str, *, field: str = "email") -> str:
    """An e-mail address (``local@domain``, no display name) in its canonical form.

    Syntax only, through ``email-validator`` with ``check_deliverability=False``:
    never a DNS query. The domain is IDNA-normalised (UTS #46) and lower case,
    in Unicode (``xn--e1afmkfd.xn--p1ai`` and ``ПРИМЕР.рф`` are both
    ``пример.рф``); the local part is kept as written (NFC), since only the
    receiving server may say two local parts are one mailbox, except the
    role names RFC 2142 makes case-insensitive (``abuse``, ``postmaster``...),
    which the validator lower-cases. Quoted local
    parts, bracketed IP domains and domains without a dot are refused. Of the
    special-use names, the RFC 2606 ones that are made for this are accepted:
    ``.test`` (fixtures, labs) and ``.invalid`` (a placeholder sender such as
    ``support@ipsinfra.invalid``, which no letter can reach); ``.local``,
    ``localhost``, ``.onion`` and ``.arpa`` are refused.

    >>> parse_email(" Ivan.Petrov@Client.EXAMPLE "), parse_email("ABUSE@dc.example")
    ('Ivan.Petrov@client.example', 'abuse@dc.example')

    Raises:
        InvalidInput: naming ``field`` and the value, with the validator's reason.
    """
    try:
        return _canonical_email(value)
    except ValueError as exc:
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:80] + "..."
        raise InvalidInput(f"{field}: value {shown!r}: {exc}") from None


def _canonical_email(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > _MAX_EMAIL_CHARS:
        raise ValueError("not an e-mail address")
    domain = text.rpartition("@")[2]
    if "." not in domain.strip("."):
        raise ValueError("not an e-mail address (the part after the @-sign needs a period)")
    # email-validator refuses the RFC 2606 names as undeliverable; it lets
    # ``.test`` through with test_environment. ``.invalid`` is read as ``.test``
    # and put back: the same syntax, and a placeholder that can never be delivered.
    placeholder = domain.rpartition(".")[2].lower() == "invalid"
    probe = text[: -len("invalid")] + "test" if placeholder else text
    try:
        found = email_validator.validate_email(
            probe, check_deliverability=False, test_environment=True, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"not an e-mail address ({exc})") from None
    normalized = str(found.normalized)
    return normalized[: -len("test")] + "invalid" if placeholder else normalized


def email_ascii_domain(address: str) -> str:
    """The domain of a canonical address as IDNA A-labels, for a header we write.

    >>> email_ascii_domain("ivan@пример.рф")
    'xn--e1afmkfd.xn--p1ai'
    """
    domain = address.rpartition("@")[2]
    return domain if domain.isascii() else idna.encode(domain).decode("ascii")


EmailAddress = Annotated[str, BeforeValidator(_canonical_email)]
"""A pydantic field type: an address checked by :func:`parse_email`, stored canonical."""
