"""The CLI doors to block/unblock, complaint handling and provisioning, on the lab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipsinfra import cli
from ipsinfra.abuse import dnsbl
from ipsinfra.lab.dns import DnsTestServer
from ipsinfra.lab.fleet import Lab
from ipsinfra.models import VdsState

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]

SBL = """\
From: Spamhaus <sbl-team@spamhaus.example>
To: abuse@ips.example
Subject: SBL777001: 198.51.100.105 spam source
Date: Thu, 26 Nov 2026 01:00:00 +0000
Message-ID: <sbl777001@spamhaus.example>

Spamhaus SBL listing SBL777001: 198.51.100.105/32 is listed in the SBL (spam source).
"""


def args(lab: Lab, *rest: str) -> list[str]:
    return [*rest, "-i", str(lab.inventory_dir), "--journal", str(lab.journal_path)]


def test_block_unblock_and_refusals(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(args(lab, "block", "203.0.113.101", "--reason", "malware", "--check")) == 0
    assert lab.driver("kvm1").get_vds("VPS1001(113.10)").state is VdsState.RUNNING
    assert cli.main(args(lab, "block", "203.0.113.101", "--reason", "malware", "--json")) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{") :])["changed"] is True
    assert lab.driver("kvm1").get_vds("VPS1001(113.10)").state is VdsState.STOPPED
    assert cli.main(args(lab, "unblock", "203.0.113.101")) == 0
    assert lab.driver("kvm1").get_vds("VPS1001(113.10)").state is VdsState.RUNNING
    capsys.readouterr()
    # not ours: refused, one line, exit 2, nothing changed
    assert cli.main(args(lab, "block", "203.0.113.199", "--reason", "spam")) == 2
    err = capsys.readouterr().err
    assert "belongs to 0 services" in err and len(err.strip().splitlines()) == 1
    assert cli.main(args(lab, "block", "300.1.1.1", "--reason", "spam")) == 2
    assert "ip: value '300.1.1.1'" in capsys.readouterr().err


def test_abuse_handle_blocks_and_writes_letters(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    complaint = tmp_path / "sbl.eml"
    complaint.write_text(SBL, encoding="utf-8")
    outbox = tmp_path / "outbox"
    # fra1 trusts @spamhaus.example (inventory/example); the SBL block is immediate only once
    # the DNSBL confirms the listing: a loopback name server plays the zone.
    zone = "zen.lab.example"
    with DnsTestServer({dnsbl.query_name("198.51.100.105", zone): ["127.0.0.2"]}) as dns:
        rc = cli.main(
            [
                "abuse", "handle", str(complaint), "--abuse-from", "abuse@ips.example",
                "--outbox", str(outbox), "-i", str(lab.inventory_dir),
                "--journal", str(lab.journal_path), "--json",
                "--dnsbl-resolver", dns.host, "--dnsbl-port", str(dns.port), "--dnsbl-zone", zone,
            ]
        )  # fmt: skip
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"]["category"] == "spamhaus_sbl" and data["verdict"]["immediate"]
    [service] = data["services"]
    assert service["server"] == "VPS1005(100.30)" and service["action"] == "blocked"
    assert lab.driver("pve1").get_vds("VPS1005(100.30)").state is VdsState.STOPPED
    kinds = sorted(d["kind"] for d in data["letters"])
    assert "client_ticket" in kinds and "dc_notice" in kinds  # fra1 is a rented DC: the DC is told (§7.2)
    assert len(list(outbox.glob("*.eml"))) == len(kinds)
