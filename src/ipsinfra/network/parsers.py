"""Switch output -> models. Pure: text in, models out; never opens a socket.

Two families:

* vendor CLI text, parsed by ntc-templates (TextFSM) and normalised here, for
  every platform ntc-templates covers (cisco_ios, cisco_nxos, arista_eos,
  hp_procurve, huawei_vrp, ...); which commands per platform, tested on real
  output, is listed in :mod:`ipsinfra.network.switches`. The vendors' words
  for a port's state (NX-OS's cut ``notconnec``, Huawei's ``*down``, HP's
  ``Enabled: No``...) are read here;
* Linux-bridge switches (Cumulus/SONiC-style): ``bridge -j fdb show``,
  ``ip -j link`` and ``lldpcli -f json show neighbors``.

ntc-templates' records come through :mod:`ipsinfra.network.fast_tables`: the
same records, and for the MAC tables of its ``FAST_TEMPLATES`` over ten times
sooner on a 10k-line table; output it is not sure of goes to ntc-templates.

Example::

    >>> parse_mac_table("cisco_ios", "show mac address-table", text)
    [MacEntry(mac='00:10:0d:e0:e2:89', port='FastEthernet0/1', vlan=1, kind='dynamic'), ...]
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from ipsinfra.identity import interface_key
from ipsinfra.network import fast_tables
from ipsinfra.network.errors import SwitchCommandFailed, SwitchOutputError, UnknownPlatform
from ipsinfra.network.mac_records import mac_entries_from_records
from ipsinfra.network.models import Interface, LldpNeighbor, MacEntry

__all__ = [
    "interfaces_from_records",
    "mac_entries_from_records",
    "neighbors_from_records",
    "parse_bridge_fdb",
    "parse_interfaces",
    "parse_ip_link",
    "parse_lldp_neighbors",
    "parse_lldpcli",
    "parse_mac_table",
    "parse_ntc",
]

log = logging.getLogger(__name__)

# Lines a CLI prints for a command it does not know or refuses.
CLI_ERROR_RE = re.compile(
    r"^\s*(% ?(Invalid|Incomplete|Ambiguous|Unknown|Unrecognized)|Error:|Unrecognized command"
    r"|syntax error|command not found|Unknown command)",
    re.IGNORECASE | re.MULTILINE,
)
MAC_TOKEN_RE = re.compile(
    r"\b([0-9a-f]{4}[.-][0-9a-f]{4}[.-][0-9a-f]{4}|[0-9a-f]{2}([:-])[0-9a-f]{2}(\2[0-9a-f]{2}){4})\b",
    re.IGNORECASE,
)


# Every match of CLI_ERROR_RE holds "%" or, lower-cased, one of these: on ASCII
# text (where IGNORECASE is lower-casing) their absence rules a refusal out
# without running the regex over a 10k-line table (test_every_kind_of_refusal_is_caught
# keeps the two in step).
_CLI_ERROR_WORDS = ("error:", "unrecognized command", "syntax error", "command not found", "unknown command")


def _check_cli_error(platform: str, command: str, text: str) -> None:
    if text.isascii() and "%" not in text:
        lowered = text.lower()
        if not any(word in lowered for word in _CLI_ERROR_WORDS):
            return
    match = CLI_ERROR_RE.search(text)
    if match:
        line = text[match.start() :].splitlines()[0].strip()
        raise SwitchCommandFailed(f"{platform}: {command!r} was refused: {line!r}")


def parse_ntc(platform: str, command: str, text: str) -> list[dict[str, Any]]:
    """ntc-templates' records for ``command`` on ``platform``, errors translated.

    The records of ``ntc_templates.parse.parse_output``, from TextFSM run
    directly where the index names one template (:func:`fast_tables.textfsm_records`).

    Raises:
        UnknownPlatform: ntc-templates has no template for this platform/command.
        SwitchCommandFailed: the output is the CLI refusing the command.
        SwitchOutputError: the template hit an ``Error`` state (garbage output).
    """
    from ntc_templates.parse import ParsingException, parse_output
    from textfsm import TextFSMError

    _check_cli_error(platform, command, text)
    try:
        records = fast_tables.textfsm_records(platform, command, text)
        if records is not None:
            return records
        records = parse_output(platform=platform, command=command, data=text)
    except ParsingException as exc:
        raise UnknownPlatform(f"{platform}: ntc-templates has no template for {command!r}") from exc
    except TextFSMError as exc:
        raise SwitchOutputError(f"{platform}: cannot parse the output of {command!r}: {exc}") from exc
    return [dict(r) for r in records]


def _first(record: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if key in record:
            return record[key]
    return None


def parse_mac_table(platform: str, command: str, text: str) -> list[MacEntry]:
    """Parse a MAC-table command's output with ntc-templates into :class:`MacEntry`.

    The records come from :mod:`ipsinfra.network.fast_tables` where it vouches
    for them (the same records, sooner), else from ntc-templates. An empty
    table is fine; output that holds MAC-like tokens but yields no record is
    garbage (a wrong template, a pager prompt, a banner) and raises
    :class:`SwitchOutputError` rather than claiming the table is empty.
    """
    fast = fast_tables.mac_entries(platform, command, text)
    if fast is not None and fast.entries:  # else ntc-templates gives the verdict, as before
        _check_cli_error(platform, command, text)
        if not fast.rest:
            return fast.entries
        # normalising per record, in two parts is the same as in one
        return fast.entries + mac_entries_from_records(parse_ntc(platform, command, fast.rest))
    records = parse_ntc(platform, command, text)
    entries = mac_entries_from_records(records)
    if not entries and MAC_TOKEN_RE.search(text):
        raise SwitchOutputError(
            f"{platform}: {command!r} printed MAC addresses but none parsed ({len(records)} records)"
        )
    if not records and text.strip() and not re.search(r"mac|address|fdb|vlan", text, re.IGNORECASE):
        first = text.strip().splitlines()[0][:80]
        raise SwitchOutputError(f"{platform}: {command!r} printed no MAC table: {first!r}")
    return entries


# Status words -> (admin_up, oper_up), lower case. "admin down" is a port shut
# down in its configuration; err-disabled and the like are ports the switch
# stopped itself (the configuration still says up: IOS's description table
# prints them "down", not "admin down").
_STATUS_WORDS: dict[str, tuple[bool | None, bool | None]] = {
    **dict.fromkeys(("admin down", "administratively down", "disabled", "deleted"), (False, False)),
    **dict.fromkeys(("up", "connected"), (True, True)),
    **dict.fromkeys(
        (
            "down",
            "notconnect",
            "inactive",
            "suspended",
            "err-disabled",
            "errdisabled",  # Arista
            "lowerlayerdown",  # Arista's protocol column
            "notpresent",
            # NX-OS
            "xcvrabsent",
            "sfpabsent",
            "noopermembers",
            "channeldown",
            "linkflaperrdisabled",
            "suspnd",
        ),
        (True, False),
    ),
    "monitoring": (True, None),  # a SPAN destination: up in its configuration, link not shown
}
# NX-OS cuts its status column at 9 characters ("notconnec", "xcvrAbsen", "channelDo").
_NXOS_STATUS_WIDTH = 9


def _status(value: str) -> tuple[bool | None, bool | None]:
    """(admin_up, oper_up) from a status word such as ``connected`` or ``admin down``.

    Also Huawei's PHY column: ``*down`` is administratively down, ``^down``
    (standby) and ``#down`` (loop detected) are down, and a suffix such as
    ``(s)`` (spoofing) or ``(p)`` (port alarm) qualifies the state before it.
    """
    v = re.sub(r"\s+", " ", value.strip().lower())
    v = re.sub(r"\([a-z]{1,2}\)$", "", v)
    if v.startswith("*"):
        return False, False
    v = v.lstrip("^#")
    if v in _STATUS_WORDS:
        return _STATUS_WORDS[v]
    if len(v) == _NXOS_STATUS_WIDTH:
        cut = [state for word, state in _STATUS_WORDS.items() if word.startswith(v)]
        if len(set(cut)) == 1:
            return cut[0]
    return None, None


# What a switch prints in a text column that is empty: NX-OS "--", Arista's "-"
# is text someone typed (it shows in its description table too).
_EMPTY = {"--"}


def _text(value: Any) -> str:
    text = str(value or "").strip()
    return "" if text in _EMPTY else text


def interfaces_from_records(records: Iterable[Mapping[str, Any]], *, platform: str = "") -> list[Interface]:
    """Normalise ``show interfaces status``/``description``-style records, merged by port.

    Records name the same port when its names are the same on ``platform``
    (:func:`ipsinfra.identity.interface_key`: ``Et1`` and ``Ethernet1`` on
    ``arista_eos``); the port keeps the first record's spelling.

    ``description`` (or ``name`` in Cisco's status table) is the description;
    a later record for the same port fills what an earlier one left empty.
    The state comes from ``status`` (Huawei: ``phy``; HP: ``enabled`` and
    ``status``) and the ``protocol`` column where there is one.

    >>> interfaces_from_records([{"port": "Eth1/1", "name": "--", "status": "notconnec", "vlan_id": "1"}])
    [Interface(name='Eth1/1', description='', admin_up=True, oper_up=False, vlan='1')]
    """
    merged: dict[str, dict[str, Any]] = {}
    for record in records:
        name = str(_first(record, ("port", "interface", "intf")) or "").strip()
        if not name:
            continue
        row = merged.setdefault(interface_key(platform, name), {"name": name})
        if "description" in record:  # the full text; Cisco's status table cuts "name" at 18
            row["description"] = _text(record["description"])
        elif "description" not in row:
            desc = _text(_first(record, ("name", "desc")))
            if desc:
                row["description"] = desc
        admin, oper = _status(str(_first(record, ("status", "phy")) or ""))
        if str(record.get("enabled", "")).strip().lower() == "no":  # HP: disabled in the configuration
            admin, oper = False, False
        if "protocol" in record and admin is not False:
            oper = _status(str(record["protocol"]))[1] is True
        if admin is not None:
            row["admin_up"] = admin
        if oper is not None:
            row["oper_up"] = oper
        vlan = _text(record.get("vlan_id", record.get("vlan", "")))
        if vlan and "vlan" not in row:
            row["vlan"] = vlan
    return [Interface(**row) for row in merged.values()]


def parse_interfaces(platform: str, outputs: Mapping[str, str]) -> list[Interface]:
    """Parse several interface commands' outputs (command -> text) into merged interfaces."""
    records: list[dict[str, Any]] = []
    for command, text in outputs.items():
        records.extend(parse_ntc(platform, command, text))
    return interfaces_from_records(records, platform=platform)


def _caps(value: Any) -> tuple[str, ...]:
    """``"B,R"``, ``"B, R"``, ``"Router, Station Only"`` (commas) or ``"bridge router"`` (Huawei)."""
    if isinstance(value, list):
        items = [str(v) for v in value]
    else:
        text = str(value or "")
        items = text.split(",") if "," in text else text.split()
    return tuple(c.strip() for c in items if c.strip())


def neighbors_from_records(records: Iterable[Mapping[str, Any]]) -> list[LldpNeighbor]:
    """Normalise ntc-templates LLDP records (``show lldp neighbors [detail]``)."""
    out: list[LldpNeighbor] = []
    for record in records:
        local = str(_first(record, ("local_interface", "local_port", "local_intf")) or "").strip()
        if not local:
            continue
        out.append(
            LldpNeighbor(
                local_port=local,
                name=str(_first(record, ("neighbor_name", "neighbor", "system_name")) or "").strip(),
                port_id=str(
                    _first(record, ("neighbor_port_id", "neighbor_interface", "port_id")) or ""
                ).strip(),
                chassis_id=str(_first(record, ("chassis_id",)) or "").strip(),
                capabilities=_caps(_first(record, ("capabilities", "enabled_capabilities"))),
            )
        )
    return out


_ARISTA_LLDP_RE = re.compile(
    r"^Interface (?P<local>\S+) detected"
    r"|^\s+(?P<neighbor>Neighbor) \S"
    r"|^\s+- System Name: \"(?P<name>\S+)\""
    r"|^\s+Enabled Capabilities\s*:\s*(?P<caps>.*?)\s*$",
    re.MULTILINE,
)


def _arista_capabilities(records: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Arista's records with the enabled capabilities ntc-templates' template leaves out.

    Its ``show lldp neighbors detail`` template has no capabilities value, and
    without them a switch upstream would not count as one. The text is read
    again for them, neighbour by neighbour; they are added only when that reading
    finds the same neighbours in the same order (the template keeps only those
    with a system name), else the records are returned as they were.
    """
    found: list[dict[str, str]] = []
    local = ""
    for m in _ARISTA_LLDP_RE.finditer(text):
        if m.group("local"):
            local = m.group("local")
        elif m.group("neighbor"):
            found.append({"local": local, "name": "", "caps": ""})
        elif found and m.group("name"):
            found[-1]["name"] = m.group("name")
        elif found and m.group("caps") is not None:
            found[-1]["caps"] = m.group("caps")
    named = [f for f in found if f["name"]]
    pairs = [(f["local"], f["name"]) for f in named]
    if pairs != [(r.get("local_interface"), r.get("neighbor_name")) for r in records]:
        log.warning(
            "arista_eos: LLDP capabilities not matched to %d records; uplinks known by MAC count only",
            len(records),
        )
        return records
    return [{**r, "capabilities": f["caps"].split(",")} for r, f in zip(records, named, strict=True)]


def parse_lldp_neighbors(platform: str, command: str, text: str) -> list[LldpNeighbor]:
    """Parse an LLDP neighbours command's output with ntc-templates.

    Records without a local port (some IOS captures print none) are dropped:
    a neighbour on no known port says nothing about any port.
    """
    records = parse_ntc(platform, command, text)
    if platform == "arista_eos":
        records = _arista_capabilities(records, text)
    return neighbors_from_records(records)


# --- Linux bridge switches ----------------------------------------------------


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        first = text.strip().splitlines()[0][:80] if text.strip() else ""
        raise SwitchOutputError(f"linux: {what} did not print JSON ({exc.msg}): {first!r}") from None


def parse_bridge_fdb(text: str, *, bridge: str | None = None) -> list[MacEntry]:
    """``bridge -j fdb show`` -> learnt MAC entries on bridge ports.

    Keeps entries whose ``master`` is a bridge (``bridge`` if given); drops the
    ports' own addresses (``permanent``), ``self`` entries of the NICs and group
    addresses. Example input line::

        {"mac":"02:00:00:00:01:01","ifname":"swp1","master":"br0","state":""}
    """
    data = _json(text, "bridge -j fdb show")
    if not isinstance(data, list):
        raise SwitchOutputError("linux: bridge -j fdb show: expected a JSON list")
    entries: list[MacEntry] = []
    for row in data:
        if not isinstance(row, dict) or "master" not in row or "ifname" not in row:
            continue
        if bridge is not None and row["master"] != bridge:
            continue
        if row.get("state") == "permanent" or "self" in row.get("flags", []):
            continue
        try:
            entry = MacEntry(
                mac=row["mac"],
                port=row["ifname"],
                vlan=row.get("vlan"),
                kind="static" if row.get("state") == "static" else "dynamic",
            )
        except (ValidationError, KeyError):
            continue
        if not entry.multicast:
            entries.append(entry)
    return entries


def parse_ip_link(text: str, *, bridge: str | None = None) -> list[Interface]:
    """``ip -j link`` -> the bridge's ports: ``ifalias`` is the description.

    Only links with a ``master`` (enslaved to ``bridge`` if given) are ports.
    """
    data = _json(text, "ip -j link")
    if not isinstance(data, list):
        raise SwitchOutputError("linux: ip -j link: expected a JSON list")
    out: list[Interface] = []
    for row in data:
        if not isinstance(row, dict) or "ifname" not in row or "master" not in row:
            continue
        if bridge is not None and row["master"] != bridge:
            continue
        flags = row.get("flags", [])
        out.append(
            Interface(
                name=row["ifname"],
                description=row.get("ifalias", "") or "",
                admin_up="UP" in flags,
                oper_up=row.get("operstate") == "UP" or "LOWER_UP" in flags,
            )
        )
    return out


def _lldp_items(node: Any) -> list[tuple[str, Any]]:
    """lldpcli's JSON is a dict keyed by name for one item, a list of such dicts for many."""
    if isinstance(node, dict):
        return list(node.items())
    if isinstance(node, list):
        return [item for sub in node for item in _lldp_items(sub)]
    return []


def parse_lldpcli(text: str) -> list[LldpNeighbor]:
    """``lldpcli -f json show neighbors`` -> neighbours by local port.

    Example input (lldpd 1.0)::

        {"lldp": {"interface": {"swp1": {"chassis": {"ded1": {"id": {...},
          "capability": [{"type": "Bridge", "enabled": false}, ...]}},
          "port": {"id": {"type": "mac", "value": "..."}, "descr": "veth0"}}}}}
    """
    data = _json(text, "lldpcli -f json show neighbors")
    lldp = data.get("lldp") if isinstance(data, dict) else None
    if not isinstance(lldp, dict):
        raise SwitchOutputError("linux: lldpcli -f json: no 'lldp' object")
    out: list[LldpNeighbor] = []
    for port, info in _lldp_items(lldp.get("interface", {})):
        if not isinstance(info, dict):
            continue
        name, chassis = "", {}
        for cname, cinfo in _lldp_items(info.get("chassis", {})):
            if isinstance(cinfo, dict) and "id" in cinfo:
                name, chassis = cname, cinfo
            elif cname == "name" and isinstance(cinfo, dict):  # chassis without a name key level
                name = str(cinfo.get("value", ""))
        caps = [
            str(c.get("type", ""))
            for c in chassis.get("capability", [])
            if isinstance(c, dict) and c.get("enabled")
        ]
        chassis_id = chassis.get("id", {})
        port_info = info.get("port", {}) if isinstance(info.get("port"), dict) else {}
        port_id = port_info.get("id", {})
        out.append(
            LldpNeighbor(
                local_port=port,
                name=name,
                port_id=str(port_id.get("value", "") if isinstance(port_id, dict) else port_id),
                chassis_id=str(chassis_id.get("value", "") if isinstance(chassis_id, dict) else ""),
                capabilities=tuple(caps),
            )
        )
    return out
