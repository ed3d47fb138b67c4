"""The MAC-table fast path gives exactly ntc-templates' answer, or steps aside."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ipsinfra.models import normalize_mac
from ipsinfra.network import fast_tables
from ipsinfra.network.errors import SwitchOutputError
from ipsinfra.network.mac_records import mac_of
from ipsinfra.network.models import MacEntry
from ipsinfra.network.parsers import mac_entries_from_records, parse_mac_table, parse_ntc
from tests.unit.test_network_parsers import _fixture_cases

DATA = Path(__file__).resolve().parents[1] / "data" / "network"

REPO = Path(__file__).resolve().parents[2]
MAC_TABLES = REPO.parent / "shared" / "fixtures" / "ntc-templates-mac-tables"
IOS = ("cisco_ios", "show mac address-table")

# The lab switch's (and a Catalyst 2960/3750's) layout.
IOS_HEAD = (
    "          Mac Address Table\n-------------------------------------------\n\n"
    "Vlan    Mac Address       Type        Ports\n----    -----------       --------    -----\n"
)


def _platform_command(relpath: Path) -> tuple[str, str]:
    return relpath.parts[0], relpath.parts[1].replace("_", " ")


def ntc_records(platform: str, command: str, text: str) -> list[dict[str, Any]]:
    """The reference: ntc-templates' own ``parse_output``."""
    from ntc_templates.parse import parse_output

    return [dict(r) for r in parse_output(platform=platform, command=command, data=text)]


def ntc_entries(platform: str, command: str, text: str) -> list[MacEntry]:
    """The reference entries: ntc-templates' records, each entry validated by pydantic."""
    entries = mac_entries_from_records(ntc_records(platform, command, text))
    return [MacEntry.model_validate(e.model_dump()) for e in entries]


def fast_records(platform: str, command: str, text: str) -> list[dict[str, Any]] | None:
    fast = fast_tables.parse(platform, command, text)
    if fast is None:
        return None
    return fast.records + (parse_ntc(platform, command, fast.rest) if fast.rest else [])


def ios_table(rows: int, *, seed: int = 5) -> str:
    """A generated ``show mac address-table`` of ``rows`` entries, IOS layout."""
    rnd = random.Random(seed)
    lines = [" All    0100.0ccc.cccc    STATIC      CPU", " All    ffff.ffff.ffff    STATIC      CPU"]
    for i in range(rows - len(lines)):
        mac = f"{rnd.getrandbits(48) & ~(1 << 40):012x}"
        port = rnd.choice(["Gi1/0/1", "Gi1/0/17", "Te1/1/4", "Po12", "Vl87 "])
        kind = rnd.choice(["DYNAMIC", "DYNAMIC", "STATIC"])
        vlan = rnd.choice([1, 10, 87, 4094]) if i % 97 else rnd.randint(1, 4094)
        lines.append(f"{vlan:>4}    {mac[:4]}.{mac[4:8]}.{mac[8:]}    {kind:<11} {port}")
    return IOS_HEAD + "\n".join(lines) + f"\nTotal Mac Addresses for this criterion: {rows}\n"


@pytest.mark.parametrize("relpath", _fixture_cases())
def test_fast_path_equals_ntc_templates_on_every_fixture_it_claims(
    relpath: Path | None, shared_fixtures: Path
) -> None:
    assert relpath is not None
    platform, command = _platform_command(relpath)
    text = (shared_fixtures / "ntc-templates-mac-tables" / relpath).read_text()

    fast = fast_tables.parse(platform, command, text)
    entries = fast_tables.mac_entries(platform, command, text)

    if fast_tables.template_for(platform, command) is None:
        assert fast is None and entries is None  # not claimed: ntc-templates alone, as before
    elif fast is not None:  # None: the fast path stepped aside (listed in the next test)
        assert fast_records(platform, command, text) == ntc_records(platform, command, text)
        # the MAC lane: what the records give, without building them
        assert entries == fast_tables.FastEntries(mac_entries_from_records(fast.records), fast.rest)
    else:
        assert entries is None
    assert parse_mac_table(platform, command, text) == ntc_entries(platform, command, text)


def test_every_claimed_template_takes_the_fast_path_on_real_output(shared_fixtures: Path) -> None:
    taken: set[str] = set()
    stepped_aside: list[str] = []
    for raw in sorted((shared_fixtures / "ntc-templates-mac-tables").glob("*/*/*.raw")):
        platform, command = _platform_command(raw.relative_to(shared_fixtures / "ntc-templates-mac-tables"))
        template = fast_tables.template_for(platform, command)
        if template is None:
            continue
        if fast_tables.parse(platform, command, raw.read_text()) is None:
            stepped_aside.append(raw.stem)
        else:
            taken.add(template)
    assert taken == set(fast_tables.FAST_TEMPLATES)
    # Cisco's Catalyst 6500 layout lists a multicast group's ports over several
    # lines (TextFSM Continue.Record): ntc-templates parses it, not the fast path.
    assert sorted(stepped_aside) == [f"cisco_ios_show_mac-address-table{n}" for n in (2, 5, 8, 9)]


def test_a_section_outside_the_fast_subset_is_handed_to_ntc_templates(shared_fixtures: Path) -> None:
    raw = shared_fixtures / "ntc-templates-mac-tables/arista_eos/show_mac_address-table"
    text = (raw / "arista_eos_show_mac_address-table.raw").read_text()

    fast = fast_tables.parse("arista_eos", "show mac address-table", text)

    assert fast is not None
    # The unicast table is the fast path's; from the multicast table's header on
    # (ports listed several to a line), the text is ntc-templates'.
    assert len(fast.records) == 19
    assert fast.rest.splitlines()[0].split() == ["Vlan", "mac", "Address", "Type", "Ports"]
    assert "c867.3057.8423" in fast.rest and "c867.3057.8423" not in str(fast.records)


def test_generated_10k_line_table_matches_ntc_templates_many_times_sooner() -> None:
    text = ios_table(10_000)
    parse_mac_table(*IOS, ios_table(10, seed=1))  # both read their template once, then cache it
    ntc_records(*IOS, ios_table(10, seed=1))

    started = time.perf_counter()
    reference = ntc_records(*IOS, text)
    ntc_entries = mac_entries_from_records(reference)
    ntc_s = time.perf_counter() - started
    fast_runs = []
    for _ in range(3):
        started = time.perf_counter()
        entries = parse_mac_table(*IOS, text)
        fast_runs.append(time.perf_counter() - started)
    fast = fast_tables.parse(*IOS, text)

    assert fast is not None and fast.rest == ""
    assert fast.records == reference
    assert len(entries) == 10_000
    assert entries == [MacEntry.model_validate(e.model_dump()) for e in ntc_entries]
    assert entries[0] == MacEntry(mac="01:00:0c:cc:cc:cc", port="CPU", vlan=None, kind="static")
    print(f"10k-line cisco_ios table: fast path {min(fast_runs):.3f} s, ntc-templates {ntc_s:.3f} s")
    assert min(fast_runs) * 5 < ntc_s


@pytest.mark.parametrize(
    "odd",
    [
        pytest.param("  10    0010.0de0.e289    DYNAMIC", id="row-without-a-port"),
        pytest.param("  10    0010.0de0.e28     DYNAMIC     Gi1/0/1", id="short-mac"),
        pytest.param("Multicast Entries", id="unknown-section"),
        pytest.param("\x1b[7m--More--\x1b[0m", id="pager-prompt"),
    ],
)
def test_an_odd_line_in_the_table_goes_to_ntc_templates(odd: str) -> None:
    text = IOS_HEAD + "  10    0010.0de0.e289    DYNAMIC     Gi1/0/1\n" + odd + "\n"

    assert fast_tables.parse(*IOS, text) is None
    with pytest.raises(SwitchOutputError):  # ntc-templates' Error state, as before
        parse_mac_table(*IOS, text)


def test_an_unknown_line_before_the_table_goes_to_ntc_templates() -> None:
    # TextFSM's Start state skips lines it does not know; the fast path does not
    # vouch for them and lets ntc-templates decide.
    text = "sw1 uptime is 3 weeks\n" + IOS_HEAD + "  10    0010.0de0.e289    DYNAMIC     Gi1/0/1\n"

    assert fast_tables.parse(*IOS, text) is None
    assert parse_mac_table(*IOS, text) == ntc_entries(*IOS, text)
    assert [e.port for e in parse_mac_table(*IOS, text)] == ["Gi1/0/1"]


def test_the_fast_path_steps_aside_where_it_has_no_template() -> None:
    assert fast_tables.parse("cisco_ios", "show interfaces status", "Port  Name  Status\n") is None
    assert fast_tables.parse("no_such_os", "show mac address-table", IOS_HEAD) is None
    assert fast_tables.template_for(*IOS) == "cisco_ios_show_mac-address-table.textfsm"
    assert fast_tables.template_for("cisco_ios", "sh mac address-table") == (
        "cisco_ios_show_mac-address-table.textfsm"  # ntc-templates' abbreviations too
    )


def test_empty_and_garbage_tables_keep_their_verdicts() -> None:
    empty = IOS_HEAD + "Total Mac Addresses for this criterion: 0\n"
    assert parse_mac_table(*IOS, empty) == []
    with pytest.raises(SwitchOutputError, match="none parsed"):
        parse_mac_table(*IOS, "Mac Address Table\nzz 0010.0de0.e289 ??? what\n%%%%\n")


# The spellings switches print, and near misses (too short, not hex, full-width digits).
MAC_SPELLINGS = [
    *("0010.0DE0.e289", "00:10:0d:E0:e2:89", "00-10-0D-E0-E2-89", "00100d-e0e289", "0010-0de0-e289"),
    *(" 0010.0de0.e289", "0010.0de0-e289", "00 10 0d e0 e2 89"),
    *("00:10:0d:e0:e2", "0010.0de0.e28g", "0010 0de0 e2", "00100de0e2 8", "\uff1010.0de0.e289"),
]


def _normalised(fn: Any, raw: str) -> str | None:
    try:
        return str(fn(raw))
    except ValueError:
        return None


@pytest.mark.parametrize("raw", MAC_SPELLINGS)
def test_mac_shortcut_agrees_with_normalize_mac(raw: str) -> None:
    assert _normalised(mac_of, raw) == _normalised(normalize_mac, raw)


@settings(max_examples=500)
@given(st.text(alphabet="0123456789abcdefABCDEF.:- g\t", min_size=10, max_size=20))
def test_mac_shortcut_agrees_with_normalize_mac_on_any_spelling(raw: str) -> None:
    assert _normalised(mac_of, raw) == _normalised(normalize_mac, raw)


def test_trusted_entries_are_the_validated_ones() -> None:
    trusted = MacEntry.trusted("00:10:0d:e0:e2:89", "Gi1/0/1", 10, "dynamic")
    validated = MacEntry(mac="0010.0de0.e289", port="Gi1/0/1", vlan=10, kind="dynamic")

    assert trusted == validated and hash(trusted) == hash(validated)
    assert repr(trusted) == repr(validated)
    assert trusted.model_fields_set == validated.model_fields_set
    assert trusted.model_dump() == validated.model_dump()
    with pytest.raises(ValidationError):
        trusted.port = "Gi1/0/2"  # type: ignore[misc]  # frozen, as validated ones are
    moved = trusted.model_copy(update={"port": "Gi1/0/2"})
    assert moved.port == "Gi1/0/2" and trusted.port == "Gi1/0/1"
    assert MacEntry.trusted("00:10:0d:e0:e2:8a", "Gi1/0/1", None, "").model_fields_set == {
        "mac",
        "port",
        "vlan",
        "kind",
    }


def _lab_outputs() -> list[tuple[str, str, str]]:
    from ipsinfra.lab.switches import IosSwitchState

    state = IosSwitchState(hostname="sw1", ports=[f"Gi1/0/{i}" for i in range(1, 49)])
    state.learn("52:54:00:aa:00:01", "Gi1/0/3")
    state.port_states["Gi1/0/3"].description = "ded1 (a server)"
    state.port_states["Gi1/0/7"].admin_up = False
    state.neighbor("Gi1/0/48", "core1", "B,R")
    return [
        ("cisco_ios", "show interfaces status", state.show_status()),
        ("cisco_ios", "show interfaces description", state.show_description()),
        ("cisco_ios", "show lldp neighbors detail", state.show_lldp()),
        (
            "cisco_ios",
            "show lldp neighbors detail",
            (DATA / "cisco_ios_show_lldp_neighbors_detail.txt").read_text(),
        ),
    ]


def test_textfsm_records_are_ntc_templates_records(shared_fixtures: Path) -> None:
    cases = _lab_outputs()
    for raw in sorted((shared_fixtures / "ntc-templates-mac-tables").glob("*/*/*.raw")):
        platform, command = _platform_command(raw.relative_to(shared_fixtures / "ntc-templates-mac-tables"))
        cases.append((platform, command, raw.read_text()))

    for platform, command, text in cases:
        assert fast_tables.textfsm_records(platform, command, text) == ntc_records(platform, command, text), (
            platform,
            command,
        )
        assert parse_ntc(platform, command, text) == ntc_records(platform, command, text)


# A template with the TextFSM corners the fast path must reproduce: an optional
# List value (an unmatched one is 'None' in ntc-templates' rows), an optional
# plain value (''), a Required value, a record rule capturing nothing.
CORNERS = r"""Value List PORTS (\S+)
Value MAC ([0-9a-f.]+)
Value NOTE (\S+)
Value Required VLAN (\d*)

Start
  ^MAC\s+VLAN -> Table

Table
  ^${MAC}\s+${VLAN}(\s+${PORTS})?(\s+\(${NOTE}\))?\s*$$ -> Record
  ^Total -> Record
  ^\s*$$
  ^. -> Error
"""


def test_the_fast_path_keeps_textfsm_corners(tmp_path: Path) -> None:
    from ntc_templates.parse import parse_output

    (tmp_path / "corners.textfsm").write_text(CORNERS)
    (tmp_path / "index").write_text(
        "Template, Hostname, Platform, Command\n\ncorners.textfsm, .*, acme, show macs\n"
    )
    text = "MAC  VLAN\n0010.0de0.e289 10 Gi1 (x)\n0010.0de0.e28a 11\n0010.0de0.e28b  (gone)\n\nTotal: 3\n"
    table = fast_tables._compile("corners.textfsm", CORNERS, ())
    assert table is not None

    fast = table.records(text)
    entries = table.mac_entries(text)

    assert fast is not None and fast.rest == ""
    records = fast.records
    assert records == [dict(r) for r in parse_output("acme", "show macs", text, template_dir=str(tmp_path))]
    assert records[1]["ports"] == ["None"] and records[1]["note"] == ""
    assert [r["mac"] for r in records] == ["0010.0de0.e289", "0010.0de0.e28a"]  # no VLAN: dropped
    assert entries is not None and entries.entries == mac_entries_from_records(records)
    assert [(e.port, e.vlan) for e in entries.entries] == [("Gi1", 10), ("None", 11)]  # as ntc-templates says


def test_templates_outside_the_subset_are_not_compiled() -> None:
    filldown = "Value Filldown VLAN (\\d+)\nValue MAC (\\S+)\n\nStart\n  ^${MAC}\\s+${VLAN} -> Record\n"
    continue_record = "Value MAC (\\S+)\n\nStart\n  ^${MAC} -> Continue.Record\n"
    assert fast_tables._compile("filldown", filldown, ()) is None
    assert fast_tables._compile("continue-record", continue_record, ()) is None


def test_records_do_not_share_their_lists() -> None:
    text = "MAC  VLAN\n0010.0de0.e289 10\n0010.0de0.e28a 11\n"
    table = fast_tables._compile("corners.textfsm", CORNERS, ())
    assert table is not None
    fast = table.records(text)
    assert fast is not None
    records = fast.records
    records[0]["ports"].append("Gi9")
    assert records[1]["ports"] == ["None"]
    blank_list = fast_tables._compile("corners.textfsm", CORNERS.replace("(\\s+${PORTS})?", ""), ())
    assert blank_list is not None
    no_ports = blank_list.records(text)
    assert no_ports is not None
    first, second = no_ports.records
    first["ports"].append("Gi9")
    assert second["ports"] == [] and first["ports"] is not second["ports"]
    assert blank_list.mac_entries(text) == fast_tables.FastEntries([])  # no port: no entry
