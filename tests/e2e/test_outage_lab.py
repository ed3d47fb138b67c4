"""Outage notices (§5.1) on the embedded lab: a libvirtd daemon killed, fakepve nodes
taken offline, the audit run three times; then the nodes come back."""

from __future__ import annotations

import datetime as dt
import email
from email.message import Message
from pathlib import Path

import pytest

from ipsinfra import audit, outage
from ipsinfra.lab.fleet import Lab

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]

DURING_TRIAL = dt.date(2017, 6, 5)  # the example's trial VPS1002 runs then


def audit_and_notify(lab: Lab, outbox: Path) -> outage.OutageNotices:
    """What ``ipsinfra audit --notify --outbox DIR`` does: audit.run, then outage.process."""
    assert lab.fleet is not None and lab.pool is not None
    with lab.journal() as journal:
        report = audit.run(
            lab.fleet,
            lab.pool,
            journal=journal,
            today=DURING_TRIAL,
            recheck_delay=0.2,
            probe_for=lab.probe_for,
        )
        return outage.process(report, lab.fleet, journal, outbox=outbox)


def letters(outbox: Path) -> list[Message]:
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(outbox.glob("*.eml"))]


def test_outage_notices_once_then_resolved(lab: Lab, tmp_path: Path) -> None:
    box = tmp_path / "outbox"
    clean = audit_and_notify(lab, box)
    assert clean.notices == [] and clean.opened == [] and clean.handover == []

    lab.daemons["kvm2"].kill_libvirtd()
    for pve_node in ("pve1", "pve2"):  # the whole fra1 site
        lab.pve.call(lambda n=pve_node: lab.pve.pve.set_node_offline(n))

    first = audit_and_notify(lab, box)
    assert sorted(i.node for i in first.opened) == ["kvm2", "pve1", "pve2"]
    by_node = {i.node: i for i in first.opened}
    assert not by_node["kvm2"].site_down  # kvm1 still answers
    assert by_node["pve1"].site_down and "site fra1 (Example DC Frankfurt) down" in by_node["pve1"].text
    # one notice per affected client: c1 (VPS1003 on kvm2), c3 (VPS1005+1006 on pve1);
    # c2's VPS1004 is blocked (§7.2): not a service to tell about
    assert [(n.client, n.services) for n in first.notices] == [
        ("c1", ["VPS1003(113.20)"]),
        ("c3", ["VPS1005(100.30)", "VPS1006(100.30)"]),
    ]
    sent = letters(box)
    assert sorted(m["To"] for m in sent) == ["admin@c1.example", "it@c3.example"]
    c3 = next(m for m in sent if m["To"] == "it@c3.example").get_payload(decode=True)
    assert b"Example DC Frankfurt" in c3 and b"VPS1006(100.30)" in c3
    assert any(line.startswith("§5.1 OUTAGE node kvm2 unreachable") for line in first.handover)

    second = audit_and_notify(lab, box)
    assert second.notices == [] and second.opened == []
    assert sorted(second.ongoing) == ["kvm2", "pve1", "pve2"]
    assert len(letters(box)) == 2

    lab.reboot("kvm2")  # a fresh libvirtd; autostart brings its VDS back
    for pve_node in ("pve1", "pve2"):
        lab.pve.call(lambda n=pve_node: lab.pve.pve.set_node_offline(n, False))
    back = audit_and_notify(lab, box)
    assert sorted(back.resolved) == ["kvm2", "pve1", "pve2"]
    assert [(n.kind, n.client) for n in back.notices] == [("resolved", "c1"), ("resolved", "c3")]
    assert sum(m["Subject"].startswith("Resolved") for m in letters(box)) == 2

    quiet = audit_and_notify(lab, box)
    assert quiet.notices == [] and quiet.handover == []
    assert len(letters(box)) == 4
