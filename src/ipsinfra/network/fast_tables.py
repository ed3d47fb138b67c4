"""ntc-templates' records, sooner: MAC tables by the template's own regexes, the rest by TextFSM alone.

ntc-templates spends 70-130 µs per line of a MAC table (TextFSM's callbacks
on every value, then a ``CliTable`` of ``Row`` objects): about a second for one
10k-line table, where the same records take a few tens of ms here. Two paths,
both giving exactly the records ``ntc_templates.parse.parse_output`` gives:

* :func:`parse`, for the MAC-table templates in :data:`FAST_TEMPLATES`
  (proven on real output in ``shared/fixtures``), and :func:`mac_entries`,
  the same made straight into :class:`MacEntry` without building the records:
  the template ntc-templates' index picks is read once, and its compiled rule
  regexes run straight over the lines. Only for the TextFSM subset where a
  record is one line: ``Next``/``Error`` rules, ``Continue`` rules that
  capture and record nothing, every capturing rule ``Record``s, values plain,
  ``List`` or ``Required``. A state outside it (Arista's multicast table,
  Cisco's multi-line port lists) entered from ``Start`` hands the rest of the
  text to ntc-templates, which starts there in the same state with the same
  (empty) values; entered from elsewhere, the whole text goes there. A line
  no rule matches (TextFSM skips it silently) must be blank, a separator or a
  known preamble line of the template, else the fast path gives up: nothing
  it does not know is dropped here.
* :func:`textfsm_records`, for any template: TextFSM run directly, without
  the ``CliTable`` (most of the cost on a short table).

Example::

    >>> parse("cisco_ios", "show mac address-table", text).records[0]
    {'destination_address': '5254.0000.0001', 'type': 'DYNAMIC', 'vlan_id': '10',
     'destination_port': ['Gi1/0/1']}
"""

from __future__ import annotations

import functools
import io
import logging
import operator
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipsinfra.network.mac_records import (
    kind_of,
    mac_entries_from_records,
    mac_keys,
    mac_of,
    ports_of,
    vlan_of,
)
from ipsinfra.network.models import MacEntry

__all__ = [
    "FAST_TEMPLATES",
    "FastEntries",
    "FastParse",
    "mac_entries",
    "parse",
    "template_for",
    "textfsm_records",
]

# Template file -> lines TextFSM skips silently that are known not to be entries
# (regexes matched at the start of the line). Blank and separator lines are
# always known. A template whose states end in ``^. -> Error`` needs none.
FAST_TEMPLATES: dict[str, tuple[str, ...]] = {
    "cisco_ios_show_mac-address-table.textfsm": (
        r"\s*Mac Address Table\s*$",
        r"(Dynamic|Secure|Static|System Self) Addresses( \(User-defined\))? Count:\s+\d+\s*$",
        r"Total MAC addresses:\s+\d+\s*$",
        r"Non-static Address Table:\s*$",
        r"Unicast Entries\s*$",
    ),
    "cisco_nxos_show_mac_address-table.textfsm": (
        r"Legend:\s*$",
        r"\s+\* - primary entry, G - Gateway MAC",
        r"\s+age - seconds since last seen",
        r"\s+\(T\) - True, \(F\) - False\s*$",
        r"\s*VLAN\s+MAC Address\s+Type\s+age\s+Secure\s+NTFY\s+Ports\s*$",  # the rule wants no indent
    ),
    "arista_eos_show_mac_address-table.textfsm": (),
    "cisco_s300_show_mac_address-table.textfsm": (),
    "hp_procurve_show_mac-address.textfsm": (
        r"\s*Status and Counters - Port Address Table\s*$",
        r"\s*MAC Address\s+Port(\s+VLAN)?\s*$",
    ),
    "hp_comware_display_mac-address.textfsm": (r"MAC ADDR\s+VLAN ID\s+STATE\s+PORT INDEX\s+AGING TIME",),
    "huawei_vrp_display_mac-address.textfsm": (),
    "huawei_smartax_display_mac-address.textfsm": (),
    "huawei_smartax_display_mac-address_ont_0_1_2_0.textfsm": (),
    "huawei_ont_display_macaddress.textfsm": (),
    "alcatel_aos_show_mac-address-table.textfsm": (),
    "allied_telesis_awplus_show_mac_address-table.textfsm": (),
    "aruba_aoscx_show_mac-address-table.textfsm": (),
    "avaya_ers_show_mac-address-table.textfsm": (),
    "broadcom_icos_show_mac-addr-table.textfsm": (),
    "brocade_fastiron_show_mac-address.textfsm": (),
    "ruckus_fastiron_show_mac-address.textfsm": (),
    "extreme_exos_show_fdb.textfsm": (),
    "paloalto_panos_show_mac_all.textfsm": (
        r"(maximum of entries supported|default timeout|total MAC entries in table"
        r"|total MAC entries shown)\s*:",
        r"status: s - static",
        r"vlan\s+hw address\s+interface\s+status\s+ttl\s*$",
    ),
}

log = logging.getLogger(__name__)

_SEPARATOR_RE = re.compile(r"[\s\-+=]*$")
_STOP_STATES = ("End", "EOF")

# What a rule does once it matched, besides recording: go on (maybe to another
# state in the subset), raise, stop parsing, or move to a state outside the subset.
_NEXT, _ERROR, _STOP, _LEAVE = "next", "error", "stop", "leave"


@dataclass(frozen=True)
class FastParse:
    """Records as ntc-templates gives them, up to ``rest``: the text left to ntc-templates."""

    records: list[dict[str, Any]]
    rest: str = ""


@dataclass(frozen=True)
class FastEntries:
    """``mac_entries_from_records`` of ntc-templates' records, up to ``rest`` (left to ntc-templates)."""

    entries: list[MacEntry]
    rest: str = ""


@dataclass(frozen=True)
class _MacPlan:
    """Where a record rule's (ports, MAC, type, VLAN) come from, as mac_entries_from_records reads them.

    A field the rule does not capture is ``None``: for this normalisation the
    same as the record's blank ('' or []), and so is an unmatched group. A
    record TextFSM would not save for holding no value at all has no port
    either, so it gives no entry here too.
    """

    extract: Callable[[re.Match[str]], tuple[Any, ...]]  # match -> (port, MAC, type, VLAN), raw
    port_list: bool  # the port is a List value: the record holds [str(item)]
    port_key: str | None
    required: tuple[str, ...]  # groups of Required values: a record without one is not saved
    never: bool  # no entry can come of it (no MAC or no port in the template, a Required value missing)
    by_record: bool  # a List type or VLAN: build the record and normalise that


@dataclass(frozen=True)
class _Rule:
    match: Callable[[str], re.Match[str] | None]
    captures: tuple[tuple[str, str, bool], ...]  # (record key, regex group, List value?)
    empty_lists: tuple[str, ...]  # List values it does not capture: each record gets its own []
    records: bool  # Record, with something captured
    goes_on: bool  # Continue: the line is tried on the next rules too
    then: str  # _NEXT, _ERROR, _STOP or _LEAVE
    new_state: str
    mac: _MacPlan | None


@dataclass(frozen=True)
class _Table:
    """One template, compiled for the fast path."""

    template: str  # its file name
    blank: dict[str, Any]  # a record with nothing captured: '' or [] per value, in template order
    required: tuple[str, ...]
    states: dict[str, tuple[_Rule, ...]]
    handled: frozenset[str]  # states inside the subset
    ignorable: tuple[re.Pattern[str], ...]

    def run(self, text: str, emit: Callable[[_Rule, re.Match[str]], None]) -> str | None:
        """Call ``emit`` for each line a record rule matches; the text left to ntc-templates.

        ``None``: a line this path does not vouch for (what was emitted is void).
        """
        lines = text.splitlines()  # as TextFSM splits
        name, rules = "Start", self.states["Start"]
        for i, line in enumerate(lines):
            known = False
            for rule in rules:
                match = rule.match(line)
                if match is None:
                    continue
                then = rule.then
                if then == _ERROR:
                    return None  # ntc-templates raises; let it say so
                if then == _LEAVE:
                    return "\n".join(lines[i:]) if name == "Start" else None
                known = True
                if rule.records:
                    emit(rule, match)
                if rule.goes_on:
                    continue
                if then == _STOP:
                    return ""
                if rule.new_state:
                    name, rules = rule.new_state, self.states[rule.new_state]
                break
            if not known and not _SEPARATOR_RE.match(line) and not any(r.match(line) for r in self.ignorable):
                return None
        return ""

    def records(self, text: str) -> FastParse | None:
        """The records ntc-templates would give (up to ``rest``), or ``None``."""
        records: list[dict[str, Any]] = []

        def emit(rule: _Rule, match: re.Match[str]) -> None:
            record = self.record(rule, match)
            if record is not None:
                records.append(record)

        rest = self.run(text, emit)
        return None if rest is None else FastParse(records, rest)

    def mac_entries(self, text: str) -> FastEntries | None:
        """``mac_entries_from_records`` of :meth:`records`, built from each line's groups."""
        entries: list[MacEntry] = []
        append, trusted = entries.append, MacEntry.trusted
        normalised: dict[tuple[Any, Any, Any, bool], tuple[list[str], str, int | None]] = {}

        def emit(rule: _Rule, match: re.Match[str]) -> None:
            plan = rule.mac
            if plan is None or plan.never:
                return
            if plan.by_record:
                record = self.record(rule, match)
                entries.extend(mac_entries_from_records([record] if record is not None else []))
                return
            if plan.required and not all(match[g] for g in plan.required):
                return
            raw_port, raw_mac, raw_kind, raw_vlan = plan.extract(match)
            key = (raw_port, raw_kind, raw_vlan, plan.port_list)
            try:
                ports, kind, vlan = normalised[key]
            except KeyError:
                value = [str(raw_port)] if plan.port_list else raw_port
                ports, kind, vlan = ports_of(value, plan.port_key), kind_of(raw_kind), vlan_of(raw_vlan)
                normalised[key] = ports, kind, vlan
            if not ports:
                log.debug("skipping MAC line without a port: %r", match.string)
                return
            try:
                mac = mac_of(raw_mac if raw_mac is not None else "")
            except ValueError:
                log.debug("skipping MAC line with a malformed MAC: %r", match.string)
                return
            for port in ports:
                append(trusted(mac, port, vlan, kind))

        rest = self.run(text, emit)
        return None if rest is None else FastEntries(entries, rest)

    def record(self, rule: _Rule, match: re.Match[str]) -> dict[str, Any] | None:
        # TextFSM: an unmatched plain value is None, saved as ''; a record whose
        # values are all None or [] is not saved; a Required value that is
        # None or '' drops the record. ntc-templates' table rows then str() each
        # item of a List (an unmatched one is 'None').
        record = self.blank.copy()
        for key in rule.empty_lists:
            record[key] = []
        filled = False
        for key, group, is_list in rule.captures:
            value = match[group]
            if is_list:
                record[key] = [str(value)]
                filled = True
            elif value is not None:
                record[key] = value
                filled = True
        if not filled or (self.required and not all(record[key] for key in self.required)):
            return None
        return record


def _compile(name: str, template: str, ignorable: tuple[str, ...]) -> _Table | None:
    """Template ``name`` (its text) as a :class:`_Table`; ``None`` if ``Start`` leaves the subset."""
    import textfsm

    fsm = textfsm.TextFSM(io.StringIO(template))
    is_list: dict[str, bool] = {}
    required: list[str] = []
    blank: dict[str, Any] = {}
    for value in fsm.values:
        options = set(value.OptionNames())
        if not options <= {"List", "Required", "Key"} or {"List", "Required"} <= options:
            return None  # Filldown/Fillup carry values from line to line
        if "List" in options and value.compiled_regex.groupindex:
            return None  # a List of dicts
        key = value.name.lower()
        is_list[value.name] = "List" in options
        blank[key] = [] if "List" in options else ""
        if "Required" in options:
            required.append(key)

    compiled: dict[str, list[tuple[Any, re.Pattern[str], tuple[tuple[str, str, bool], ...]]]] = {}
    handled: set[str] = set()
    for state_name, fsm_rules in fsm.states.items():
        inside = True
        compiled[state_name] = []
        for r in fsm_rules:
            regex = re.compile(r.regex)
            captures = tuple((g.lower(), g, is_list[g]) for g in regex.groupindex if g in is_list)
            line_op, record_op = r.line_op or "Next", r.record_op or "NoRecord"
            if line_op != "Error" and (
                line_op not in {"Next", "Continue"}
                or record_op not in {"NoRecord", "Record"}
                or (captures and (record_op != "Record" or line_op == "Continue"))
                or (line_op == "Continue" and record_op != "NoRecord")
            ):
                inside = False
            compiled[state_name].append((r, regex, captures))
        if inside:
            handled.add(state_name)
    if "Start" not in handled:
        return None

    port_key, mac_key, kind_key, vlan_key = mac_keys(blank)

    def mac_plan(captures: tuple[tuple[str, str, bool], ...]) -> _MacPlan:
        group = {key: g for key, g, _ in captures}
        listed = {key for key, _, is_list in captures if is_list}
        fields = tuple(group.get(k) if k else None for k in (port_key, mac_key, kind_key, vlan_key))

        def some_fields(match: re.Match[str]) -> tuple[Any, ...]:
            return tuple(match[g] if g else None for g in fields)

        return _MacPlan(
            # all four captured (the usual row): one C call gives them
            extract=operator.methodcaller("group", *fields) if all(fields) else some_fields,
            port_list=port_key in listed,
            port_key=port_key,
            required=tuple(group[k] for k in required if k in group),
            never=port_key is None
            or mac_key is None
            or mac_key in listed
            or any(k not in group for k in required),
            by_record=kind_key in listed or vlan_key in listed,
        )

    def rule(r: Any, regex: re.Pattern[str], captures: tuple[tuple[str, str, bool], ...]) -> _Rule:
        if r.line_op == "Error":
            then = _ERROR
        elif r.new_state in _STOP_STATES:
            then = _STOP
        else:
            then = _LEAVE if r.new_state and r.new_state not in handled else _NEXT
        return _Rule(
            match=regex.match,
            captures=captures,
            empty_lists=tuple(
                k for k, v in blank.items() if isinstance(v, list) and k not in {c[0] for c in captures}
            ),
            records=r.record_op == "Record" and bool(captures),
            goes_on=r.line_op == "Continue",
            then=then,
            new_state=r.new_state if then == _NEXT else "",
            mac=mac_plan(captures) if r.record_op == "Record" and captures else None,
        )

    states = {state: tuple(rule(*r) for r in rules) for state, rules in compiled.items()}
    return _Table(
        template=name,
        blank=blank,
        required=tuple(required),
        states=states,
        handled=frozenset(handled),
        ignorable=tuple(re.compile(p) for p in ignorable),
    )


def _template_dir() -> str:
    """Where ``ntc_templates.parse.parse_output`` reads its index and templates."""
    import ntc_templates

    return os.environ.get("NTC_TEMPLATES_DIR") or str(Path(ntc_templates.__file__).parent / "templates")


@functools.lru_cache(maxsize=256)
def _template_name(template_dir: str, platform: str, command: str) -> str | None:
    """The Template column of ntc-templates' index for this platform and command (cached)."""
    from textfsm import clitable

    try:
        index = clitable.CliTable("index", template_dir).index
    except Exception:  # no index there: ntc-templates will say so
        return None
    row = index.GetRowMatch({"Command": command, "Platform": platform})
    return str(index.index[row]["Template"]) if row else None


@functools.lru_cache(maxsize=256)
def _template_text(template_dir: str, name: str) -> str:
    return Path(template_dir, name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=128)
def _table(template_dir: str, platform: str, command: str) -> _Table | None:
    name = _template_name(template_dir, platform, command)
    if name is None or name not in FAST_TEMPLATES:
        return None
    return _compile(name, _template_text(template_dir, name), FAST_TEMPLATES[name])


def _to_str(value: Any) -> Any:
    # as textfsm.texttable.Row stores a value (ntc-templates' records come from those rows)
    return [str(v) for v in value] if isinstance(value, list | tuple) else str(value)


def textfsm_records(platform: str, command: str, text: str) -> list[dict[str, Any]] | None:
    """``ntc_templates.parse.parse_output``'s records, from the same template run by TextFSM directly.

    ntc-templates builds a ``CliTable`` of ``Row`` objects (deep-copied) before
    making them dicts: several times the cost of the parse on a short table.
    ``None`` where the index names no template or several (merged by
    ``CliTable``): call ``parse_output`` then. A template's ``Error`` state
    raises ``textfsm.TextFSMError``, as there.
    """
    import textfsm

    template_dir = _template_dir()
    name = _template_name(template_dir, platform, command)
    if name is None or ":" in name:
        return None
    fsm = textfsm.TextFSM(io.StringIO(_template_text(template_dir, name)))
    keys = [h.lower() for h in fsm.header]
    return [dict(zip(keys, map(_to_str, row), strict=True)) for row in fsm.ParseText(text)]


def template_for(platform: str, command: str) -> str | None:
    """The template ntc-templates uses for ``command`` on ``platform``, if the fast path runs it."""
    table = _table(_template_dir(), platform, command)
    return None if table is None else table.template


def parse(platform: str, command: str, text: str) -> FastParse | None:
    """ntc-templates' records for this output, or ``None`` if the fast path cannot promise them."""
    table = _table(_template_dir(), platform, command)
    return None if table is None else table.records(text)


def mac_entries(platform: str, command: str, text: str) -> FastEntries | None:
    """``mac_entries_from_records`` of what :func:`parse` gives, straight from the lines.

    No record dicts are built: a 10k-line table's entries take a third less
    time (and far fewer objects for the garbage collector). ``None`` where
    :func:`parse` gives ``None``.
    """
    table = _table(_template_dir(), platform, command)
    return None if table is None else table.mac_entries(text)
