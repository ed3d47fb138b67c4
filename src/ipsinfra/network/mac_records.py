"""ntc-templates MAC-table records -> :class:`MacEntry`: the one normalisation every path uses.

A record is a dict of a template's values (lower-case names). Which value is
the MAC, the port(s), the VLAN and the type differs by platform; the key lists
below say where to look, in order of preference. :mod:`ipsinfra.network.parsers`
applies this to ntc-templates' records, and :mod:`ipsinfra.network.fast_tables`
to the values of a line it matched: both through the ``*_of`` functions here.

Example::

    >>> mac_entries_from_records([{"destination_address": "0010.0DE0.E289",
    ...     "destination_port": ["Fa0/1"], "type": "Dynamic", "vlan_id": "1"}])
    [MacEntry(mac='00:10:0d:e0:e2:89', port='Fa0/1', vlan=1, kind='dynamic')]
"""

from __future__ import annotations

import contextlib
import logging
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ipsinfra.identity import parse_mac
from ipsinfra.network.models import MacEntry

__all__ = [
    "KIND_KEYS",
    "MAC_KEYS",
    "PORT_KEYS",
    "VLAN_KEYS",
    "kind_of",
    "mac_entries_from_records",
    "mac_keys",
    "mac_of",
    "ports_of",
    "vlan_of",
]

log = logging.getLogger(__name__)

# ntc-templates field names, by meaning, in order of preference.
MAC_KEYS = ("mac_address", "destination_address", "mac")
PORT_KEYS = ("destination_port", "ports", "interface", "port", "port_id", "fsp")
VLAN_KEYS = ("vlan_id", "vid", "vlan")
KIND_KEYS = ("type", "status", "state", "mac_type")


def mac_keys(keys: Iterable[str]) -> tuple[str | None, str | None, str | None, str | None]:
    """The keys holding (ports, MAC, type, VLAN) among a record's ``keys``; ``None``: absent."""
    present = set(keys)
    port, mac, kind, vlan = (
        next((k for k in group if k in present), None)
        for group in (PORT_KEYS, MAC_KEYS, KIND_KEYS, VLAN_KEYS)
    )
    return port, mac, kind, vlan


def ports_of(value: Any, key: str | None) -> list[str]:
    """The ports a record's port value names (a list of them, or one)."""
    items = value if isinstance(value, list) else [value]
    ports = [str(p).strip() for p in items if p is not None and str(p).strip()]
    if key == "fsp":  # huawei smartax prints frame/slot/port as "0 /1 /0"
        ports = [re.sub(r"\s+", "", p) for p in ports]
    return ports


def vlan_of(value: Any) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdecimal() else None  # isdigit() would let "²" through to int()


def kind_of(value: Any) -> str:
    return str(value or "").strip().lower()


def mac_of(raw: Any) -> str:
    """``normalize_mac(str(raw))`` (what :class:`MacEntry` stores): :func:`ipsinfra.identity.parse_mac`.

    Strict grouping: ``a:ab:bc:cd:de:ef:f`` (twelve hex digits, misgrouped) is
    refused, and the record skipped, as any other malformed MAC.
    """
    return parse_mac(raw if type(raw) is str else str(raw))


_MacFields = Callable[[Mapping[str, Any]], tuple[Any, Any, Any, Any]]


def _mac_fields(record: Mapping[str, Any]) -> tuple[str | None, _MacFields]:
    """The port key, and record -> (ports, MAC, type, VLAN), for records with ``record``'s keys."""
    keys = mac_keys(record)
    if all(keys):
        return keys[0], operator.itemgetter(*keys)
    port, mac, kind, vlan = keys
    return port, lambda r: (
        r[port] if port else None,
        r[mac] if mac else None,
        r[kind] if kind else None,
        r[vlan] if vlan else None,
    )


def mac_entries_from_records(records: Iterable[Mapping[str, Any]]) -> list[MacEntry]:
    """Normalise ntc-templates MAC-table records of any platform into :class:`MacEntry`.

    One entry per (MAC, port): a record listing several ports (a multicast group
    on Arista) gives several entries. Records without a valid MAC or a port
    (``Self`` entries, malformed lines) are skipped and logged at debug level.
    """
    # Built for 10k-line tables: the keys are found once per record layout, a
    # (port, type, VLAN) triple is normalised once per table, and the entries
    # are built from values checked here (MacEntry.trusted), not validated.
    entries: list[MacEntry] = []
    layout: Any = None
    port_key, fields = _mac_fields({})
    normalised: dict[tuple[Any, Any, Any], tuple[list[str], str, int | None]] = {}
    for record in records:
        if record.keys() != layout:
            layout = record.keys()
            port_key, fields = _mac_fields(record)
            normalised = {}
        raw_ports, raw_mac, raw_kind, raw_vlan = fields(record)
        if type(raw_ports) is list and len(raw_ports) == 1:
            raw_ports = raw_ports[0]  # [x] and x give the same ports
        try:
            ports, kind, vlan = normalised[raw_ports, raw_kind, raw_vlan]
        except (KeyError, TypeError):  # TypeError: a list (of several ports), not hashable
            ports, kind, vlan = ports_of(raw_ports, port_key), kind_of(raw_kind), vlan_of(raw_vlan)
            with contextlib.suppress(TypeError):
                normalised[raw_ports, raw_kind, raw_vlan] = ports, kind, vlan
        if not ports or raw_mac is None:
            log.debug("skipping MAC record without port or MAC: %r", record)
            continue
        try:
            mac = mac_of(raw_mac)
        except ValueError:
            log.debug("skipping MAC record with a malformed MAC: %r", record)
            continue
        for port in ports:
            entries.append(MacEntry.trusted(mac, port, vlan, kind))
    return entries
