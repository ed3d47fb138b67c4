"""The DC's server list (§4.4): canonical IP keys, a BOM, bad rows, through the real checks.

Issue 22: the CSV keys were stored as typed while every lookup used the
normalised address, so ``2001:DB8::0010`` never matched ``2001:db8::10`` and
the name check passed as "the DC has no name for it"; an Excel export with a
byte-order mark lost its first column.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra.abuse.block import prove_target
from ipsinfra.audit import load_dc_names
from ipsinfra.audit.findings import AuditReport
from ipsinfra.audit.run import canonical_dc_names
from ipsinfra.audit.run import run as audit_run
from ipsinfra.errors import InvalidInput
from ipsinfra.hypervisors import DriverPool
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.inventory import Fleet
from ipsinfra.models import DedicatedServer, Site
from tests.contract.test_libvirt_testdriver import test_node

BOM = "\ufeff"


def write(tmp_path: Path, text: str, name: str = "dc.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


# --- the loader ----------------------------------------------------------------------


def test_ipv6_keys_are_canonical(tmp_path: Path) -> None:
    path = write(tmp_path, "ip,name\n2001:DB8::0010,dc-77\n2001:0db8:0:0:0:0:0:11,dc-78\n 192.0.2.7 ,dc-79\n")
    assert load_dc_names(path) == {"2001:db8::10": "dc-77", "2001:db8::11": "dc-78", "192.0.2.7": "dc-79"}


def test_a_bom_does_not_hide_the_first_column(tmp_path: Path) -> None:
    path = write(tmp_path, BOM + "ip,name\r\n198.51.100.10,srv-0042\r\n")
    assert load_dc_names(path) == {"198.51.100.10": "srv-0042"}


def test_header_names_ignore_case_and_blanks(tmp_path: Path) -> None:
    path = write(tmp_path, BOM + "IP , Name\n198.51.100.10,srv-0042\n")
    assert load_dc_names(path) == {"198.51.100.10": "srv-0042"}


def test_an_invalid_ip_refuses_the_list_naming_file_line_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "ip,name\n198.51.100.10,srv-1\n198.51.100.300,srv-2\n")
    with pytest.raises(InvalidInput) as err:
        load_dc_names(path)
    message = str(err.value)
    assert str(path) in message
    assert "line 3" in message
    assert "'198.51.100.300'" in message


@pytest.mark.parametrize("value", ["fe80::1%eth0", "srv-1", "192.0.2.0/24", "2001:db8:::1"])
def test_other_non_addresses_are_refused(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"ip,name\n{value},srv-1\n")
    with pytest.raises(InvalidInput, match="line 2"):
        load_dc_names(path)


def test_one_address_spelt_twice_with_two_names_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "ip,name\n2001:db8::10,srv-1\n2001:DB8:0:0::0010,srv-2\n")
    with pytest.raises(InvalidInput, match=r"line 3.*'srv-2'.*'srv-1' on line 2"):
        load_dc_names(path)


def test_one_address_spelt_twice_with_one_name_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "ip,name\n2001:db8::10,srv-1\n2001:DB8::0010,srv-1\n")
    assert load_dc_names(path) == {"2001:db8::10": "srv-1"}


def test_missing_columns_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="needs 'ip' and 'name'"):
        load_dc_names(write(tmp_path, "address,name\n192.0.2.7,srv-1\n"))
    bad = tmp_path / "cp1251.csv"
    bad.write_bytes("ip,name\n192.0.2.7,сервер\n".encode("cp1251"))
    with pytest.raises(InvalidInput, match="not a UTF-8 CSV"):
        load_dc_names(bad)


def test_canonical_dc_names_for_a_mapping_built_in_code() -> None:
    assert canonical_dc_names({"2001:DB8::0010": "a", "192.0.2.7": "b"}) == {
        "2001:db8::10": "a",
        "192.0.2.7": "b",
    }
    with pytest.raises(InvalidInput, match="dc_names"):
        canonical_dc_names({"not-an-ip": "a"})


# --- through the audit (§4.4 check) -----------------------------------------------------

TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def v6_node(tmp_path: Path) -> Iterator[tuple[Fleet, DriverPool]]:
    node = test_node(tmp_path, name="kvm1", ip="2001:db8::10")
    driver = LibvirtDriver(node)
    fleet = Fleet(sites={"lab": Site(name="lab", dc="Lab DC")}, nodes={"kvm1": node})
    yield fleet, DriverPool({"kvm1": node}, drivers={"kvm1": driver})
    driver.close()


def dc_findings(report: AuditReport) -> list[str]:
    return [f.message for n in report.nodes for f in n.findings if f.check == "dc_name"]


def audit(fleet: Fleet, pool: DriverPool, dc_names: dict[str, str]) -> AuditReport:
    return audit_run(fleet, pool, today=TODAY, reach=False, recheck_delay=0.0, dc_names=dc_names, processes=1)


def test_audit_finds_the_dc_name_of_an_ipv6_node_spelt_another_way(
    tmp_path: Path, v6_node: tuple[Fleet, DriverPool]
) -> None:
    fleet, pool = v6_node
    other = load_dc_names(write(tmp_path, "ip,name\n2001:DB8::0010,dc-srv-77\n"))
    assert dc_findings(audit(fleet, pool, other)) == [
        "the DC calls 2001:db8::10 'dc-srv-77', we call it 'kvm1'"
    ]
    same = load_dc_names(write(tmp_path, "ip,name\n2001:DB8:0:0:0:0:0:0010,kvm1\n", "same.csv"))
    assert dc_findings(audit(fleet, pool, same)) == []


def test_audit_reads_a_bom_list(tmp_path: Path, v6_node: tuple[Fleet, DriverPool]) -> None:
    fleet, pool = v6_node
    names = load_dc_names(write(tmp_path, BOM + "ip,name\r\n2001:db8::10,dc-srv-77\r\n"))
    assert dc_findings(audit(fleet, pool, names)) == [
        "the DC calls 2001:db8::10 'dc-srv-77', we call it 'kvm1'"
    ]


def test_audit_given_a_mapping_in_code_uses_canonical_keys(v6_node: tuple[Fleet, DriverPool]) -> None:
    fleet, pool = v6_node
    assert dc_findings(audit(fleet, pool, {"2001:DB8::0010": "dc-srv-77"})) != []


# --- through the proof of target before a block (§11.8) ---------------------------------


def dedicated_fleet() -> Fleet:
    server = DedicatedServer(name="srv-1", site="lab", ips=[ipaddress.ip_address("2001:db8::20")])
    return Fleet(sites={"lab": Site(name="lab", dc="Lab DC")}, dedicated={"srv-1": server})


def dc_step(ip: str, dc_names: dict[str, str]) -> tuple[bool, str]:
    proof = prove_target(ip, dedicated_fleet(), DriverPool({}), dc_names=dc_names)
    step = next(s for s in proof.steps if s.check == "dc_name")
    return step.ok, step.detail


def test_proof_of_target_fails_on_an_ipv6_dc_name_that_differs(tmp_path: Path) -> None:
    names = load_dc_names(write(tmp_path, BOM + "ip,name\n2001:0DB8::0020,dc-other\n"))
    ok, detail = dc_step("2001:DB8:0:0::20", names)
    assert not ok
    assert "'dc-other'" in detail and "§4.4" in detail


def test_proof_of_target_passes_when_the_dc_name_matches(tmp_path: Path) -> None:
    names = load_dc_names(write(tmp_path, BOM + "ip,name\n2001:0DB8::0020,srv-1\n"))
    assert dc_step("2001:db8::20", names) == (True, "the DC calls 2001:db8::20 'srv-1', we call it 'srv-1'")
