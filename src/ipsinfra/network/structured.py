"""Switch output as JSON (EOS/NX-OS ``| json``, Junos ``| display json``) -> the TextFSM path's models. Pure.

Where a switch prints a table as JSON, :mod:`ipsinfra.network.switches` asks
for that and reads it here; everything else goes through TextFSM
(:mod:`ipsinfra.network.parsers`), as before. Which platform reads what::

    arista_eos     MAC table   show mac address-table | json
                   interfaces  show interfaces status | json
                   LLDP        show lldp neighbors detail | json
    cisco_nxos     MAC table   show mac address-table | json
                   interfaces  TextFSM (show interface status, show interface description)
                   LLDP        TextFSM (show lldp neighbors detail)
    juniper_junos  MAC table   show ethernet-switching table detail | display json
                   interfaces  none read (as on the text path)
                   LLDP        show lldp neighbors detail | display json
    every other    TextFSM (or the Linux bridge's own JSON)

NX-OS's interface and LLDP views stay on TextFSM: the only public captures
of their JSON at hand lack what the text gives (``show lldp neighbors | json``
has no system name).

Every shape read here is that of a public capture, cited below (cited, not
copied: no third-party JSON is stored in the project; the unit tests write
documents of these shapes with their own values, and build some from the real
text captures in ``../shared/fixtures`` to check that both paths agree)::

    arista_eos     show mac address-table | json
                       NAPALM test/eos/mocked_data/test_get_mac_address_table/normal/
                       show_mac_address_table.json; static entries: SuzieQ eos-input/macs.output
                   show interfaces status | json
                       pyntc tests/unit/test_devices/device_mocks/eos/enable_json/show_interfaces_status
                   show lldp neighbors detail | json
                       NAPALM test/eos/mocked_data/test_get_lldp_neighbors_detail/normal/
                       show_lldp_neighbors__detail.json; SuzieQ eos-input/lldp.output
    cisco_nxos     show mac address-table | json
                       one row (NX-OS 7): NAPALM test/nxos/mocked_data/test_get_mac_address_table/
                       normal/show_mac_address-table.json; rows: SuzieQ nxos-input/macs.output
    juniper_junos  show ethernet-switching table detail | display json
                       SuzieQ junos-input/macs.output (leaf01; spine01's: empty)
                   show lldp neighbors detail | display json
                       SuzieQ junos-input/lldp.output

    NAPALM  napalm-automation/napalm @ ee70e634555f6d1f9d32369f2151dde526ad6dfd
    SuzieQ  netenglabs/suzieq @ 584b22abb1d66f8cb50da76f35f0522b1607bff7, tests/integration/sqcmds/
    pyntc   networktocode/pyntc @ 2d710b8c8015d6ba0315061dae50566f47952013
    (all Apache-2.0)

They are EOS's ``unicastTable.tableEntries``, NX-OS's
``TABLE_mac_address.ROW_mac_address`` (an object for one row, a list for
more), Junos's ``[{"data": ...}]`` leaves. Two forms no cited capture shows
are read as assumed: an EOS trunk port's ``vlanInformation``
(``interfaceMode`` ``trunk``, no ``vlanId``) and EOS's ``multicastTable``
entries (their ports in ``interfaces``).

The records are those the TextFSM path gives for the same table: MACs
canonical (:func:`ipsinfra.identity.parse_mac`), ports as the switch prints
them (compared through :class:`ipsinfra.identity.InterfaceNames`: EOS's JSON
says ``Ethernet8`` where its text says ``Et8``, the same key), the state words
of :func:`ipsinfra.network.parsers.interfaces_from_records`.

Strict: an answer of any other shape raises :class:`StructuredOutputError`
naming the command and the field (``unicastTable.tableEntries[3].macAddress``);
nothing is skipped. An answer over :data:`MAX_JSON_CHARS` characters or with
more than :data:`MAX_ROWS` rows is refused before or while it is read (memory
stays bounded). A switch that refuses the JSON form of a command (EOS's
``% This is an unconverted command``, an OS without the pipe: ``% Invalid
input``, ``syntax error``) raises :class:`JsonPipeRejected`, on which the
caller falls back to the text command.

Example::

    >>> parse_mac_table("arista_eos", "show mac address-table | json", text)[0]
    MacEntry(mac='00:00:5e:00:53:01', port='Ethernet5', vlan=10, kind='dynamic')
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from ipsinfra.identity import parse_mac
from ipsinfra.network.errors import SwitchCommandFailed, SwitchOutputError, UnknownPlatform
from ipsinfra.network.models import Interface, LldpNeighbor, MacEntry
from ipsinfra.network.parsers import _status

__all__ = [
    "MAX_JSON_CHARS",
    "MAX_ROWS",
    "JsonPipeRejected",
    "StructuredOutputError",
    "load",
    "parse_interfaces",
    "parse_lldp_neighbors",
    "parse_mac_table",
]

# A 48-port switch's busiest answer (EOS's LLDP detail, NAPALM's capture cited
# above) is 68 kB and a 10k-entry EOS MAC table about 1.5 MB: the caps leave room for
# the largest tables while keeping a runaway answer from filling memory.
MAX_JSON_CHARS = 32 * 1024 * 1024
MAX_ROWS = 200_000


class StructuredOutputError(SwitchOutputError):
    """A JSON answer of a shape not read here; the message names the command and the field."""


class JsonPipeRejected(SwitchCommandFailed):
    """The switch refused the JSON form of a command; the text command is the way to read it."""


# How a CLI says it will not run a command: IOS-style "% ..." lines (EOS's
# "% This is an unconverted command", nautobot/nornir-nautobot#280), Junos's
# "syntax error", and the words parsers.CLI_ERROR_RE knows.
_REFUSAL_RE = re.compile(
    r"^\s*(%.*|(error|syntax error|invalid|unrecognized|unknown command|cmd exec error)\b.*)$",
    re.IGNORECASE | re.MULTILINE,
)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class _Reader:
    """Typed access to one answer: each failure names the command and the field's path."""

    platform: str
    command: str
    max_rows: int
    rows: int = 0

    def fail(self, path: str, expected: str, value: Any) -> NoReturn:
        raise StructuredOutputError(
            f"{self.platform}: {self.command!r}: field {path or '(top level)'!r}: "
            f"expected {expected}, got {type(value).__name__} {_shown(value)}"
        )

    def missing(self, path: str) -> NoReturn:
        raise StructuredOutputError(f"{self.platform}: {self.command!r}: field {path!r} is missing")

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, "an object", value)
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(path, "a list", value)
        return value

    def rows_of(self, value: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
        """NX-OS's ``ROW_x``: an object for one row, a list of objects for more."""
        if isinstance(value, dict):
            return [(path, value)]
        return [(f"{path}[{i}]", self.obj(v, f"{path}[{i}]")) for i, v in enumerate(self.items(value, path))]

    def key(self, record: Mapping[str, Any], name: str, path: str) -> Any:
        where = f"{path}.{name}" if path else name
        if name not in record:
            self.missing(where)
        return record[name]

    def text(self, record: Mapping[str, Any], name: str, path: str, *, default: str | None = None) -> str:
        where = f"{path}.{name}" if path else name
        if name not in record:
            if default is None:
                self.missing(where)
            return default
        value = record[name]
        if not isinstance(value, str):
            self.fail(where, "a string", value)
        return value

    def word(self, record: Mapping[str, Any], name: str, path: str) -> str:
        """A required, non-blank string (a port name, a MAC)."""
        value = self.text(record, name, path).strip()
        if not value:
            self.fail(f"{path}.{name}", "a non-empty string", record[name])
        return value

    def mac(self, record: Mapping[str, Any], name: str, path: str) -> str:
        value = self.word(record, name, path)
        try:
            return parse_mac(value)
        except ValueError:
            self.fail(f"{path}.{name}", "a MAC address", value)

    def vlan(self, value: Any, path: str, *, none: tuple[str, ...] = ()) -> int | None:
        """A VLAN number: an int, or its decimal text (NX-OS); a word in ``none`` is no VLAN."""
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 4095:
            return value
        if isinstance(value, str):
            text = value.strip()
            if text in none:
                return None
            if text.isascii() and text.isdecimal() and int(text) <= 4095:
                return int(text)
        self.fail(path, "a VLAN number", value)

    def count(self, path: str, rows: int = 1) -> None:
        self.rows += rows
        if self.rows > self.max_rows:
            raise StructuredOutputError(
                f"{self.platform}: {self.command!r}: more than {self.max_rows} rows (at {path}): refused"
            )


def _refusal(text: str) -> str | None:
    """The line in which a CLI refuses a command, if ``text`` is such an answer."""
    match = _REFUSAL_RE.search(text)
    return match.group(1).strip() if match else None


def load(platform: str, command: str, text: str, *, max_chars: int = MAX_JSON_CHARS) -> Any:
    """The JSON document a switch printed for ``command``.

    Raises:
        JsonPipeRejected: the switch refused the command (see the module docstring).
        StructuredOutputError: over ``max_chars``, not JSON, or JSON nested too deep.
    """
    if len(text) > max_chars:
        raise StructuredOutputError(
            f"{platform}: {command!r}: the answer has {len(text)} characters, "
            f"over the cap of {max_chars}: refused"
        )
    body = text.strip()
    if not body.startswith(("{", "[")):
        refused = _refusal(body)
        if refused is not None:
            raise JsonPipeRejected(f"{platform}: {command!r} was refused: {refused[:120]!r}")
        first = body.splitlines()[0][:80] if body else ""
        raise StructuredOutputError(f"{platform}: {command!r} did not print JSON: {first!r}")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise StructuredOutputError(
            f"{platform}: {command!r}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise StructuredOutputError(f"{platform}: {command!r}: JSON nested too deep") from None
    if isinstance(data, dict) and list(data) == ["errors"]:  # eAPI's form of a refusal
        raise JsonPipeRejected(f"{platform}: {command!r} was refused: {_shown(data['errors'])}")
    return data


# --- Arista EOS ------------------------------------------------------------------------


# EOS prints MACs in the canonical form already: such a one needs no parsing.
_CANONICAL_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


def _eos_unicast_entry(r: _Reader, row: Any, path: str) -> MacEntry:
    """One ``unicastTable`` entry, every field checked (raises naming the one that is wrong)."""
    entry = r.obj(row, path)
    mac = r.mac(entry, "macAddress", path)
    port = r.word(entry, "interface", path)
    vlan = r.vlan(r.key(entry, "vlanId", path), f"{path}.vlanId")
    kind = r.text(entry, "entryType", path).strip().lower()
    return MacEntry.trusted(mac, port, vlan, kind)


def _eos_mac_table(r: _Reader, data: Any) -> list[MacEntry]:
    """``{"unicastTable": {"tableEntries": [{"macAddress", "interface", "vlanId", "entryType"}]},
    "multicastTable": {"tableEntries": [...]}}``; a multicast entry names its ports in ``interfaces``."""
    root = r.obj(data, "")
    out: list[MacEntry] = []
    unicast = r.obj(r.key(root, "unicastTable", ""), "unicastTable")
    rows = r.items(r.key(unicast, "tableEntries", "unicastTable"), "unicastTable.tableEntries")
    r.count("unicastTable.tableEntries", len(rows))
    append, trusted, canonical = out.append, MacEntry.trusted, _CANONICAL_MAC.fullmatch
    for i, row in enumerate(rows):
        # The usual entry is checked inline (a 10k-entry table in a fraction of the
        # time); anything else goes through the full check, which names what is wrong.
        if type(row) is dict:
            mac, port = row.get("macAddress"), row.get("interface")
            vlan, kind = row.get("vlanId"), row.get("entryType")
            if (
                type(mac) is str
                and canonical(mac)
                and type(port) is str
                and port
                and port == port.strip()
                and type(vlan) is int
                and 0 <= vlan <= 4095
                and type(kind) is str
            ):
                append(trusted(mac, port, vlan, kind.strip().lower()))
                continue
        append(_eos_unicast_entry(r, row, f"unicastTable.tableEntries[{i}]"))
    if "multicastTable" in root:
        multicast = r.obj(root["multicastTable"], "multicastTable")
        table = r.items(r.key(multicast, "tableEntries", "multicastTable"), "multicastTable.tableEntries")
        for i, row in enumerate(table):
            path = f"multicastTable.tableEntries[{i}]"
            entry = r.obj(row, path)
            mac = r.mac(entry, "macAddress", path)
            vlan = r.vlan(r.key(entry, "vlanId", path), f"{path}.vlanId")
            kind = r.text(entry, "entryType", path, default="").strip().lower()
            ports = r.items(r.key(entry, "interfaces", path), f"{path}.interfaces")
            for j, port in enumerate(ports):
                r.count(path)
                if not isinstance(port, str) or not port.strip():
                    r.fail(f"{path}.interfaces[{j}]", "a port name", port)
                out.append(MacEntry.trusted(mac, port.strip(), vlan, kind))
    return out


def _eos_interfaces(r: _Reader, data: Any) -> list[Interface]:
    """``{"interfaceStatuses": {"Ethernet8": {"description", "linkStatus", "vlanInformation": {...}}}}``.

    ``linkStatus`` carries the words of the text's Status column (``connected``,
    ``notconnect``, ``disabled``, ``errdisabled``...); ``lineProtocolStatus``,
    where EOS prints it, is the protocol column of the description table.
    """
    statuses = r.obj(r.key(r.obj(data, ""), "interfaceStatuses", ""), "interfaceStatuses")
    out: list[Interface] = []
    for name, value in statuses.items():
        path = f"interfaceStatuses.{name}"
        r.count(path)
        if not name.strip():
            r.fail("interfaceStatuses", "port names", name)
        row = r.obj(value, path)
        admin, oper = _status(r.text(row, "linkStatus", path))
        protocol = r.text(row, "lineProtocolStatus", path, default="")
        if protocol and admin is not False:
            oper = _status(protocol)[1] is True
        vlan: str | None = None
        if "vlanInformation" in row:
            info = r.obj(row["vlanInformation"], f"{path}.vlanInformation")
            if "vlanId" in info:
                number = r.vlan(info["vlanId"], f"{path}.vlanInformation.vlanId")
                vlan = None if number is None else str(number)
            else:
                mode = r.text(info, "interfaceMode", f"{path}.vlanInformation", default="")
                vlan = mode if mode in ("trunk", "routed") else None
        out.append(
            Interface(
                name=name.strip(),
                description=r.text(row, "description", path, default="").strip(),
                admin_up=admin,
                oper_up=oper,
                vlan=vlan,
            )
        )
    return out


def _unquote(value: str) -> str:
    """EOS quotes a port ID that is a name (``"Ethernet1"``), as its text does; the records do not."""
    text = value.strip()
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _eos_neighbors(r: _Reader, data: Any) -> list[LldpNeighbor]:
    """``{"lldpNeighbors": {"Ethernet47": {"lldpNeighborInfo": [{"systemName", "chassisId",
    "systemCapabilities": {"bridge": true, ...}, "neighborInterfaceInfo": {"interfaceId"}}]}}}``.

    ``systemCapabilities`` maps each capability the neighbour has to whether it
    is enabled: the enabled ones are the neighbour's capabilities here.
    """
    ports = r.obj(r.key(r.obj(data, ""), "lldpNeighbors", ""), "lldpNeighbors")
    out: list[LldpNeighbor] = []
    for local, value in ports.items():
        path = f"lldpNeighbors.{local}"
        infos = r.items(r.key(r.obj(value, path), "lldpNeighborInfo", path), f"{path}.lldpNeighborInfo")
        for i, item in enumerate(infos):
            where = f"{path}.lldpNeighborInfo[{i}]"
            r.count(where)
            info = r.obj(item, where)
            caps: list[str] = []
            if "systemCapabilities" in info:
                for cap, on in r.obj(info["systemCapabilities"], f"{where}.systemCapabilities").items():
                    if not isinstance(on, bool):
                        r.fail(f"{where}.systemCapabilities.{cap}", "true or false", on)
                    if on:
                        caps.append(cap)
            port_id = ""
            if "neighborInterfaceInfo" in info:
                iface = r.obj(info["neighborInterfaceInfo"], f"{where}.neighborInterfaceInfo")
                port_id = _unquote(r.text(iface, "interfaceId", f"{where}.neighborInterfaceInfo", default=""))
            out.append(
                LldpNeighbor(
                    local_port=local,
                    name=r.text(info, "systemName", where, default="").strip(),
                    port_id=port_id,
                    chassis_id=r.text(info, "chassisId", where, default="").strip(),
                    capabilities=tuple(caps),
                )
            )
    return out


# --- Cisco NX-OS -----------------------------------------------------------------------


def _nxos_mac_table(r: _Reader, data: Any) -> list[MacEntry]:
    """``{"TABLE_mac_address": {"ROW_mac_address": [{"disp_mac_addr", "disp_port", "disp_vlan",
    "disp_type"}]}}``.

    ``disp_vlan`` is ``"-"`` for the supervisor's own entries, as in the text.
    NX-OS 7 prints a gateway MAC's type as ``G`` with ``disp_is_static``
    (``enabled``); the text's Type column says ``static`` there, and so does this.
    """
    table = r.obj(r.key(r.obj(data, ""), "TABLE_mac_address", ""), "TABLE_mac_address")
    out: list[MacEntry] = []
    for path, row in r.rows_of(
        r.key(table, "ROW_mac_address", "TABLE_mac_address"), "TABLE_mac_address.ROW_mac_address"
    ):
        r.count(path)
        mac = r.mac(row, "disp_mac_addr", path)
        port = r.word(row, "disp_port", path)
        vlan = r.vlan(r.key(row, "disp_vlan", path), f"{path}.disp_vlan", none=("-", ""))
        kind = r.text(row, "disp_type", path).strip().lower()
        if kind not in ("dynamic", "static") and "disp_is_static" in row:
            kind = "static" if r.text(row, "disp_is_static", path).strip() == "enabled" else "dynamic"
        out.append(MacEntry.trusted(mac, port, vlan, kind))
    return out


# --- Juniper Junos ---------------------------------------------------------------------


def _junos_leaf(r: _Reader, record: Mapping[str, Any], name: str, path: str, *, required: bool = True) -> str:
    """A Junos JSON leaf: ``"name": [{"data": "value"}]`` (``""`` when absent and not required)."""
    where = f"{path}.{name}"
    if name not in record:
        if required:
            r.missing(where)
        return ""
    items = r.items(record[name], where)
    if len(items) != 1:
        r.fail(where, "one value", items)
    return r.text(r.obj(items[0], f"{where}[0]"), "data", f"{where}[0]").strip()


def _junos_mac_table(r: _Reader, data: Any) -> list[MacEntry]:
    """``{"l2ng-l2ald-rtb-macdb": [{"l2ng-l2ald-mac-entry-vlan": [{"l2ng-l2-mac-address": [{"data"}],
    "l2ng-l2-vlan-id", "l2ng-l2-mac-logical-interface", ...}]}]}``; an empty table is ``[{}]``.

    Ports are the logical interfaces the table names (``xe-0/0/2.0``), as in the
    text. The detail view says nothing of static or learnt: ``kind`` is ``""``.
    """
    out: list[MacEntry] = []
    dbs = r.items(r.key(r.obj(data, ""), "l2ng-l2ald-rtb-macdb", ""), "l2ng-l2ald-rtb-macdb")
    for i, db in enumerate(dbs):
        path = f"l2ng-l2ald-rtb-macdb[{i}]"
        table = r.obj(db, path)
        if not table:
            continue  # the whole answer of a switch that learnt nothing
        entries = r.items(
            r.key(table, "l2ng-l2ald-mac-entry-vlan", path), f"{path}.l2ng-l2ald-mac-entry-vlan"
        )
        for j, item in enumerate(entries):
            where = f"{path}.l2ng-l2ald-mac-entry-vlan[{j}]"
            r.count(where)
            entry = r.obj(item, where)
            mac_text = _junos_leaf(r, entry, "l2ng-l2-mac-address", where)
            try:
                mac = parse_mac(mac_text)
            except ValueError:
                r.fail(f"{where}.l2ng-l2-mac-address", "a MAC address", mac_text)
            port = _junos_leaf(r, entry, "l2ng-l2-mac-logical-interface", where)
            if not port:
                r.fail(f"{where}.l2ng-l2-mac-logical-interface", "a port name", port)
            vlan_text = _junos_leaf(r, entry, "l2ng-l2-vlan-id", where, required=False)
            vlan = r.vlan(vlan_text, f"{where}.l2ng-l2-vlan-id", none=("",))
            out.append(MacEntry.trusted(mac, port, vlan, ""))
    return out


def _junos_neighbors(r: _Reader, data: Any) -> list[LldpNeighbor]:
    """``{"lldp-neighbors-information": [{"lldp-neighbor-information": [{"lldp-local-interface": [{"data"}],
    "lldp-remote-system-name", "lldp-remote-chassis-id", "lldp-remote-port-description",
    "lldp-remote-port-id", "lldp-remote-system-capabilities-enabled": [{"data": "Bridge Router "}]}]}]}``.

    The remote port is its description where it sends one, else its ID: what
    the summary's ``Port info`` column (the text path) shows.
    """
    out: list[LldpNeighbor] = []
    infos = r.items(r.key(r.obj(data, ""), "lldp-neighbors-information", ""), "lldp-neighbors-information")
    for i, block in enumerate(infos):
        path = f"lldp-neighbors-information[{i}]"
        table = r.obj(block, path)
        neighbours = r.items(table.get("lldp-neighbor-information", []), f"{path}.lldp-neighbor-information")
        for j, item in enumerate(neighbours):
            where = f"{path}.lldp-neighbor-information[{j}]"
            r.count(where)
            n = r.obj(item, where)
            local = _junos_leaf(r, n, "lldp-local-interface", where)
            if not local:
                r.fail(f"{where}.lldp-local-interface", "a port name", local)
            port = _junos_leaf(r, n, "lldp-remote-port-description", where, required=False)
            caps = _junos_leaf(r, n, "lldp-remote-system-capabilities-enabled", where, required=False)
            out.append(
                LldpNeighbor(
                    local_port=local,
                    name=_junos_leaf(r, n, "lldp-remote-system-name", where, required=False),
                    port_id=port or _junos_leaf(r, n, "lldp-remote-port-id", where, required=False),
                    chassis_id=_junos_leaf(r, n, "lldp-remote-chassis-id", where, required=False),
                    capabilities=tuple(caps.split()),
                )
            )
    return out


# --- entry points ----------------------------------------------------------------------

_MAC_TABLES: dict[str, Callable[[_Reader, Any], list[MacEntry]]] = {
    "arista_eos": _eos_mac_table,
    "cisco_nxos": _nxos_mac_table,
    "juniper_junos": _junos_mac_table,
}
_INTERFACES: dict[str, Callable[[_Reader, Any], list[Interface]]] = {"arista_eos": _eos_interfaces}
_NEIGHBORS: dict[str, Callable[[_Reader, Any], list[LldpNeighbor]]] = {
    "arista_eos": _eos_neighbors,
    "juniper_junos": _junos_neighbors,
}


def _parse(
    table: Mapping[str, Callable[[_Reader, Any], Any]],
    what: str,
    platform: str,
    command: str,
    text: str,
    max_chars: int,
    max_rows: int,
) -> Any:
    reader = table.get(platform)
    if reader is None:
        raise UnknownPlatform(f"{platform}: no JSON reader for {what}")
    data = load(platform, command, text, max_chars=max_chars)
    return reader(_Reader(platform, command, max_rows), data)


def parse_mac_table(
    platform: str, command: str, text: str, *, max_chars: int = MAX_JSON_CHARS, max_rows: int = MAX_ROWS
) -> list[MacEntry]:
    """The MAC table ``command`` printed as JSON, as :class:`MacEntry` records (see the module docstring)."""
    entries: list[MacEntry] = _parse(
        _MAC_TABLES, "the MAC table", platform, command, text, max_chars, max_rows
    )
    return entries


def parse_interfaces(
    platform: str, command: str, text: str, *, max_chars: int = MAX_JSON_CHARS, max_rows: int = MAX_ROWS
) -> list[Interface]:
    """The interface table ``command`` printed as JSON, as :class:`Interface` records."""
    interfaces: list[Interface] = _parse(
        _INTERFACES, "interfaces", platform, command, text, max_chars, max_rows
    )
    return interfaces


def parse_lldp_neighbors(
    platform: str, command: str, text: str, *, max_chars: int = MAX_JSON_CHARS, max_rows: int = MAX_ROWS
) -> list[LldpNeighbor]:
    """The LLDP neighbours ``command`` printed as JSON, as :class:`LldpNeighbor` records."""
    neighbors: list[LldpNeighbor] = _parse(_NEIGHBORS, "LLDP", platform, command, text, max_chars, max_rows)
    return neighbors
