"""``ipsinfra abuse`` commands: exit codes 0 / 1 / 2 and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ipsinfra.abuse.cli import app
from ipsinfra.abuse.dnsbl import query_name
from ipsinfra.lab.dns import DnsTestServer

CORPUS = Path(__file__).resolve().parent.parent / "data" / "complaints"
ZONE = "zen.test.example"
runner = CliRunner()


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsTestServer]:
    records = {
        query_name("192.0.2.2", ZONE): ["127.0.0.2"],
        query_name("192.0.2.254", ZONE): ["127.255.255.254"],
    }
    with DnsTestServer(records) as srv:
        yield srv


def run_check(dns: DnsTestServer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(
        app,
        ["check", *args, "--resolver", dns.host, "--port", str(dns.port), "--zone", ZONE, "--timeout", "3"],
    )
    return result.exit_code, result.stdout, result.stderr


def test_check_not_listed_is_0(dns: DnsTestServer) -> None:
    code, out, _ = run_check(dns, "192.0.2.77")
    assert code == 0 and "not listed" in out


def test_check_listed_is_1(dns: DnsTestServer) -> None:
    code, out, _ = run_check(dns, "192.0.2.77", "192.0.2.2", "--json")
    assert code == 1
    data = json.loads(out)
    assert [d["listed_in"] for d in data] == [[], ["SBL"]]
    assert data[1]["actionable"] is True


def test_check_query_error_is_1_and_says_never_block(dns: DnsTestServer) -> None:
    code, out, _ = run_check(dns, "192.0.2.254")
    assert code == 1 and "QUERY FAILED" in out and "never block" in out


def test_check_bad_ip_is_2_with_one_line(dns: DnsTestServer) -> None:
    code, _, err = run_check(dns, "300.1.1.1")
    assert code == 2
    assert err.strip().splitlines() == ["ipsinfra: error: ip: value '300.1.1.1': not an IPv4 or IPv6 address"]


def test_classify_immediate_is_1_and_json() -> None:
    result = runner.invoke(app, ["classify", str(CORPUS / "24_zeus_cnc.eml"), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["verdict"]["category"] == "malware" and data["verdict"]["immediate"] is True
    assert data["complaint"]["ips"] == ["198.51.100.77"]


def test_classify_not_immediate_is_0() -> None:
    result = runner.invoke(
        app, ["classify", str(CORPUS / "15_antivirus_spam.txt"), "--received-at", "2025-03-15T12:00:00+00:00"]
    )
    assert result.exit_code == 0
    assert "category:  spam" in result.stdout and "2025-03-16T12:00:00+00:00" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["classify", "/nonexistent/c.eml"], "file: value '/nonexistent/c.eml'"),
        (
            ["classify", str(CORPUS / "01_spam_plain_en.eml"), "--received-at", "yesterday"],
            "--received-at: value 'yesterday'",
        ),
        (
            ["classify", str(CORPUS / "01_spam_plain_en.eml"), "--default-hours", "72"],
            "default_hours: value 72",
        ),
    ],
)
def test_classify_bad_input_is_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
