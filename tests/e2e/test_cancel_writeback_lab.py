"""§7.2 on the lab, through ``ipsinfra abuse handle``: a new client's only VDS named in a
Spamhaus SBL notice is blocked and cancelled, and the inventory records it (issue 17).

Real libvirtd + qemu (kvm1) and fakepve (pve1); the SBL listing is confirmed by a
loopback name server playing the zone. What happened is read back from the
hypervisor, the inventory files, ``ansible-inventory`` and the journal; a second
run of the same notice changes none of them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ipsinfra import cli, inventory, metadata, naming
from ipsinfra.abuse import dnsbl
from ipsinfra.hypervisors import connect
from ipsinfra.lab.dns import DnsTestServer
from ipsinfra.lab.fleet import DAEMON_MEMORY_MIB, Lab, spec_from_record
from ipsinfra.models import Client, Disk, HypervisorKind, Nic, Vds, VdsState
from tests.e2e.test_writeback_lab import snapshot
from tests.unit.test_inventory import ansible_list

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]

ZONE = "zen.lab.example"
NOTICE = """\
From: Spamhaus SBL Team <sbl-team@spamhaus.example>
To: abuse@ips.example
Subject: SBL{ref}: {ip} spam source
Date: {date}
Message-ID: <sbl{ref}@spamhaus.example>

Spamhaus SBL listing SBL{ref}: {ip}/32 is listed in the Spamhaus Block List (SBL).
Reason: spam source, snowshoe spam operation.
"""


def new_client_vds(lab: Lab, node: str, order: int, ip: str, today: dt.date) -> Vds:
    """Sales' part: client c9, activated today with this one VDS, recorded and running on ``node``."""
    assert lab.fleet is not None and lab.pool is not None
    where = lab.fleet.nodes[node]
    name = naming.vps_name(order, where.main_ip)
    record = Vds(
        name=name,
        node=node,
        client="c9",
        vcpus=1,
        memory_mib=DAEMON_MEMORY_MIB,
        disks=[Disk(name="disk0" if where.kind is HypervisorKind.LIBVIRT else "scsi0", size_gib=10)],
        ips=[ip],
        nics=[Nic(mac=f"52:54:00:50:{order % 100:02d}:01")],
        os="debian-12",
        activated=today,
        autostart=True,
    )
    client = Client(
        id="c9",
        name="Fresh Start LLC",
        address="9 New Street, Moscow",
        email="owner@c9.example",
        activated=today,
        services=1,
    )
    spec = spec_from_record(record, where)
    if where.kind is HypervisorKind.LIBVIRT:  # a diskless guest, as the lab's own VDS
        plain = connect(where.model_copy(update={"direct_boot": None}))
        try:
            plain.define(spec, start=True)
        finally:
            plain.close()
    else:
        lab.driver(node).define(spec, start=True)
    lab.update_inventory(client=client)
    lab.update_inventory(vds=record)
    assert lab.driver(node).get_vds(name).state is VdsState.RUNNING
    return record


def handle(lab: Lab, tmp_path: Path, ip: str, dns: DnsTestServer, today: dt.date) -> int:
    """``ipsinfra abuse handle`` on an SBL notice for ``ip``, as the shift runs it."""
    complaint = tmp_path / "sbl.eml"
    now = dt.datetime.combine(today, dt.time(9, 0), tzinfo=dt.UTC)
    complaint.write_text(
        NOTICE.format(ref="750001", ip=ip, date=now.strftime("%a, %d %b %Y %H:%M:%S +0000")),
        encoding="utf-8",
    )
    return cli.main(
        [
            "abuse", "handle", str(complaint), "--abuse-from", "abuse@ips.example",
            "--outbox", str(tmp_path / "outbox"), "-i", str(lab.inventory_dir),
            "--journal", str(lab.journal_path),
            "--dnsbl-resolver", dns.host, "--dnsbl-port", str(dns.port), "--dnsbl-zone", ZONE,
        ]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("node", "order", "ip"),
    [("kvm1", 5001, "203.0.113.111"), ("pve1", 5002, "198.51.100.131")],
    ids=["libvirt", "proxmox"],
)
def test_sbl_blocks_cancels_and_the_inventory_records_it(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str], node: str, order: int, ip: str
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    record = new_client_vds(lab, node, order, ip, today)
    name, host = record.name, naming.pve_safe_name(record.name)
    inv = lab.inventory_dir
    rel = f"host_vars/{host}.yml"
    before = snapshot(inv)
    with lab.journal() as journal:
        first_seq = max((e.seq for e in journal.entries()), default=0)
    capsys.readouterr()

    with DnsTestServer({dnsbl.query_name(ip, ZONE): ["127.0.0.2"]}) as dns:
        rc = handle(lab, tmp_path, ip, dns, today)
        out = capsys.readouterr().out
        assert rc == 0, out
        assert f"{ip} ({name}): blocked, cancelled" in out
        assert f"inventory updated: {rel}" in out

        # The hypervisor: stopped, off autostart (§7.2), its description says Cancelled.
        vds = lab.driver(node).get_vds(name)
        assert vds.state is VdsState.STOPPED and vds.autostart is False
        facts = metadata.parse(vds.description)
        assert facts.get("status") == "Cancelled" and facts.get("blocked") == "spamhaus_sbl"

        # The inventory: only this VDS's file, and in it only the keys the block and cancel set.
        after = snapshot(inv)
        assert {k for k in set(before) | set(after) if before.get(k) != after.get(k)} == {rel}
        old_lines = set(before[rel].decode().splitlines())
        new_lines = set(after[rel].decode().splitlines())
        assert new_lines - old_lines == {
            "autostart: false",
            "blocked: true",
            "blocked_reason: spamhaus_sbl",
            "cancelled: true",
        }
        assert old_lines - new_lines == {"autostart: true"}
        loaded = inventory.load(inv).vds[name]
        assert (loaded.blocked, loaded.blocked_reason, loaded.cancelled, loaded.autostart) == (
            True,
            "spamhaus_sbl",
            True,
            False,
        )
        hostvars = ansible_list(inv, tmp_path)["_meta"]["hostvars"][host]  # Ansible reads the same
        assert (hostvars["blocked"], hostvars["blocked_reason"], hostvars["cancelled"]) == (
            True,
            "spamhaus_sbl",
            True,
        )
        assert hostvars["autostart"] is False

        # The journal: the fleet's changes first, then the record's.
        with lab.journal() as journal:
            lines = [(e.action, e.result, e.target) for e in journal.entries() if e.seq > first_seq]
        actions = [a for a, _, _ in lines]
        order_of = actions.index
        assert order_of("vds.block") < order_of("vds.cancel") < order_of("inventory.write_back")
        [written] = [line for line in lines if line[0] == "inventory.write_back"]
        assert written[1] == "ok" and name in written[2]
        assert ("vds.cancel", "ok", f"{node}/{name}") in lines
        with lab.journal() as journal:
            seq = max(e.seq for e in journal.entries())

        # The same notice again: already blocked, already cancelled, no file touched, no new write-back.
        rc = handle(lab, tmp_path, ip, dns, today)
        again = capsys.readouterr().out
    assert rc == 0, again
    assert f"{ip} ({name}): already blocked, cancelled" in again
    assert "inventory updated" not in again
    assert snapshot(inv) == after
    with lab.journal() as journal:
        later = [(e.action, e.result) for e in journal.entries() if e.seq > seq]
        assert journal.verify().ok
    assert ("inventory.write_back", "ok") not in later
    assert ("vds.cancel", "ok") not in later, later  # cancelled once, not again
    assert lab.driver(node).get_vds(name).state is VdsState.STOPPED
