"""House names of VPS (§8.5, §9.10) and the DNS-safe twin Proxmox accepts.

>>> vps_name(1234, "185.12.34.56")
'VPS1234(34.56)'
>>> parse_vps_name("VPS1234(34.56)")
VpsName(order=1234, octets='34.56')
>>> pve_safe_name("VPS1234(34.56)")
'VPS1234-34-56'
>>> from_pve_safe_name("VPS1234-34-56")
'VPS1234(34.56)'
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

from ipsinfra.errors import InvalidName

# No leading zeros: "VPS01(1.2)" or "(034.56)" would not round-trip.
_ORDER = r"[1-9][0-9]{0,11}"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_HOUSE_RE = re.compile(rf"VPS(?P<order>{_ORDER})\((?P<a>{_OCTET})\.(?P<b>{_OCTET})\)")
_SAFE_RE = re.compile(rf"VPS(?P<order>{_ORDER})-(?P<a>{_OCTET})-(?P<b>{_OCTET})")


class VpsName(NamedTuple):
    """A parsed house name: the order number and the node's last two octets."""

    order: int
    octets: str

    def __str__(self) -> str:
        return f"VPS{self.order}({self.octets})"


def check_order(order: int | str) -> int:
    """The order number as an int; raises InvalidName for anything but digits >= 1."""
    if isinstance(order, bool):
        raise InvalidName(f"order: value {order!r}: an order number is a positive integer")
    if isinstance(order, int):
        if order < 1:
            raise InvalidName(f"order: value {order!r}: an order number is a positive integer")
        return order
    if isinstance(order, str) and re.fullmatch(_ORDER, order):
        return int(order)
    raise InvalidName(f"order: value {order!r}: an order number is digits only, no leading zero")


def node_octets(node_ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The last two octets ``"34.56"`` of a node's IPv4 main address."""
    try:
        ip = (
            ipaddress.ip_address(str(node_ip).strip())
            if not isinstance(node_ip, ipaddress._BaseAddress)
            else node_ip
        )
    except ValueError:
        raise InvalidName(f"node_ip: value {str(node_ip)!r}: not an IP address") from None
    if not isinstance(ip, ipaddress.IPv4Address):
        raise InvalidName(
            f"node_ip: value {str(node_ip)!r}: §8.5 names take the node's IPv4 octets; "
            "give the node an IPv4 main address"
        )
    _, _, c, d = str(ip).split(".")
    return f"{c}.{d}"


def vps_name(order: int | str, node_ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The §8.5 house name for ``order`` on a node whose main IP is ``node_ip``."""
    return f"VPS{check_order(order)}({node_octets(node_ip)})"


def parse_vps_name(name: str) -> VpsName:
    """Parse a house name exactly; raises InvalidName naming what is wrong."""
    if not isinstance(name, str):
        raise InvalidName(f"name: value {name!r}: a house name is a string")
    m = _HOUSE_RE.fullmatch(name)
    if m is None:
        raise InvalidName(f"name: value {name!r}: {_why_not_house(name)}")
    return VpsName(int(m["order"]), f"{m['a']}.{m['b']}")


def is_vps_name(name: str) -> bool:
    return isinstance(name, str) and _HOUSE_RE.fullmatch(name) is not None


def order_of(name: str) -> int | None:
    """The order number of a house name, or None if ``name`` is not one (one match, no error)."""
    m = _HOUSE_RE.fullmatch(name) if isinstance(name, str) else None
    return int(m["order"]) if m is not None else None


def _why_not_house(name: str) -> str:
    form = "expected VPS<order>(<a>.<b>), e.g. VPS1234(34.56)"
    if any(ch.isspace() for ch in name):
        return f"no spaces allowed (§8.5); {form}"
    if not name.startswith("VPS"):
        return f"must start with upper-case 'VPS'; {form}"
    if "(" not in name or not name.endswith(")"):
        return f"the node octets go in parentheses; {form}"
    inner = name[name.index("(") + 1 : -1]
    parts = inner.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return f"two octets separated by a dot go in the parentheses; {form}"
    if any(int(p) > 255 for p in parts):
        return f"an octet is 0-255; {form}"
    if any(len(p) > 1 and p.startswith("0") for p in parts):
        return f"octets have no leading zeros; {form}"
    return form


def pve_safe_name(name: str) -> str:
    """The DNS-safe twin Proxmox accepts as a VM name: ``VPS1234-34-56``."""
    parsed = parse_vps_name(name)
    a, b = parsed.octets.split(".")
    return f"VPS{parsed.order}-{a}-{b}"


def from_pve_safe_name(safe: str) -> str:
    """The house name back from its DNS-safe twin."""
    m = _SAFE_RE.fullmatch(safe) if isinstance(safe, str) else None
    if m is None:
        raise InvalidName(f"name: value {safe!r}: expected the DNS-safe twin VPS<order>-<a>-<b>")
    return f"VPS{m['order']}({m['a']}.{m['b']})"


def renamed_for_node(name: str, node_ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """§9.10: the same order's name with the new node's octets."""
    return vps_name(parse_vps_name(name).order, node_ip)
