"""§5.1 outage notices: decided from an audit report, the fleet and the journal; sent once."""

from __future__ import annotations

import datetime as dt
import email
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra import outage
from ipsinfra.abuse.mail import SmtpConfig
from ipsinfra.audit.checks import unreachable
from ipsinfra.audit.findings import AuditReport, CheckOutcome, NodeAudit
from ipsinfra.errors import InvalidInput
from ipsinfra.inventory import Fleet
from ipsinfra.journal import Journal
from ipsinfra.models import Client
from tests.unit.fleetkit import fleet, node, vds

T0 = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)


def the_fleet() -> Fleet:
    nodes = (
        node("kvm1", "185.12.34.56"),
        node("kvm2", "185.12.34.57"),
        node("pve1", "198.51.100.30", kind="proxmox", site="fra1"),
    )
    machines = (
        vds("VPS1(34.56)", "kvm1", client="a", ips=["185.12.34.101"]),
        vds("VPS2(34.56)", "kvm1", client="a", ips=["185.12.34.102"]),
        vds("VPS3(34.56)", "kvm1", client="b", ips=["185.12.34.103"]),
        vds("VPS4(34.56)", "kvm1", client="nomail"),
        vds("VPS5(34.56)", "kvm1", client="b", cancelled=True),
        vds("VPS8(34.56)", "kvm1", client="b", blocked=True),
        vds("VPS6(34.57)", "kvm2", client="a", ips=["185.12.34.106"]),
        vds("VPS7(100.30)", "pve1", client="c"),
    )
    f = fleet(*nodes, vds=machines)
    clients = {
        "a": Client(id="a", name="Alpha Ltd", email="ops@a.example"),
        "b": Client(id="b", name="Beta GmbH", email="it@b.example"),
        "c": Client(id="c", name="Gamma", email="c@c.example"),
        "nomail": Client(id="nomail", name="No Mail"),
    }
    return f.model_copy(update={"clients": clients})


def report(*down: str, nodes: tuple[str, ...] = ("kvm1", "kvm2", "pve1")) -> AuditReport:
    audits = [
        NodeAudit(node=n, reachable=False, outcomes=[unreachable(n, "connection refused")])
        if n in down
        else NodeAudit(node=n, reachable=True, outcomes=[CheckOutcome(check="node_reachable", node=n)])
        for n in nodes
    ]
    return AuditReport(started=T0, duration_s=1.0, nodes=audits)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "j.sqlite3") as j:
        yield j


def outbox_letters(outbox: Path) -> list[email.message.Message]:
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(outbox.glob("*.eml"))]


def test_one_notice_per_client_then_nothing_then_resolved(journal: Journal, tmp_path: Path) -> None:
    f = the_fleet()
    box = tmp_path / "outbox"
    first = outage.process(report("kvm1"), f, journal, outbox=box, now=T0)
    assert [i.node for i in first.opened] == ["kvm1"]
    incident = first.opened[0]
    assert [s.name for s in incident.services] == ["VPS1(34.56)", "VPS2(34.56)", "VPS3(34.56)", "VPS4(34.56)"]
    assert incident.clients == ["a", "b", "nomail"] and incident.no_address == ["nomail"]
    assert "node kvm1 (msk1/DataLine) unreachable" in incident.text and "connection refused" in incident.text
    assert "No Mail" not in incident.text and "nomail" in incident.text
    assert [(n.kind, n.client, n.services) for n in first.notices] == [
        ("outage", "a", ["VPS1(34.56)", "VPS2(34.56)"]),
        ("outage", "b", ["VPS3(34.56)"]),
    ]
    assert any("nomail has no e-mail" in p for p in first.problems)
    assert first.sent is not None and not first.sent.failed
    sent = outbox_letters(box)
    assert sorted(m["To"] for m in sent) == ["it@b.example", "ops@a.example"]
    body_a = next(m for m in sent if m["To"] == "ops@a.example").get_payload(decode=True).decode()
    assert "Dear Alpha Ltd" in body_a and "VPS1(34.56) (185.12.34.101)" in body_a and "VPS3" not in body_a
    assert "VPS6" not in body_a  # kvm2 answers
    assert first.handover[0].startswith("§5.1 OUTAGE node kvm1 unreachable since 2026-11-20 03:00 UTC")
    state = journal.get_state("outage:kvm1")
    assert state is not None and state["status"] == "open"
    assert state["notified"] == {"a": ["VPS1(34.56)", "VPS2(34.56)"], "b": ["VPS3(34.56)"]}

    second = outage.process(report("kvm1"), f, journal, outbox=box, now=T0 + dt.timedelta(hours=1))
    assert second.opened == [] and second.notices == [] and second.ongoing == ["kvm1"]
    assert second.handover[0].startswith("§5.1 ongoing: node kvm1 unreachable since 2026-11-20 03:00 UTC")
    assert len(outbox_letters(box)) == 2

    back = T0 + dt.timedelta(hours=2)
    third = outage.process(report(), f, journal, outbox=box, now=back)
    assert third.resolved == ["kvm1"]
    assert [(n.kind, n.client) for n in third.notices] == [("resolved", "a"), ("resolved", "b")]
    assert "after 120 min" in third.handover[0]
    resolved_a = [m for m in outbox_letters(box) if m["Subject"].startswith("Resolved")]
    assert len(resolved_a) == 2
    assert journal.get_state("outage:kvm1")["status"] == "resolved"  # type: ignore[index]

    fourth = outage.process(report(), f, journal, outbox=box, now=back)
    assert fourth.notices == [] and fourth.handover == []
    assert len(outbox_letters(box)) == 4
    actions = [e.action for e in journal.entries()]
    assert actions.count("outage.open") == 1 and actions.count("outage.resolved") == 1
    assert actions.count("outage.notice.outage") == 2 and actions.count("outage.notice.resolved") == 2


def test_a_client_on_two_down_nodes_gets_one_letter(journal: Journal) -> None:
    got = outage.notices(report("kvm1", "kvm2"), the_fleet(), journal, now=T0)
    a = [n for n in got.notices if n.client == "a"]
    assert len(a) == 1 and a[0].services == ["VPS1(34.56)", "VPS2(34.56)", "VPS6(34.57)"]
    assert a[0].nodes == ["kvm1", "kvm2"]


def test_site_down(journal: Journal) -> None:
    got = outage.notices(report("kvm1", "kvm2"), the_fleet(), journal, now=T0)
    assert all(i.site_down for i in got.opened)
    assert "site msk1 (DataLine) down" in got.opened[0].text
    assert "every node of the site is unreachable" in got.opened[0].text
    assert "at the datacenter\nDataLine" in got.notices[0].letter.body
    assert "site msk1 (DataLine) DOWN" in got.handover[0]
    one = outage.notices(report("kvm1"), the_fleet(), journal, now=T0)
    assert not one.opened[0].site_down  # kvm2 answers: a node outage, not the site
    # pve1 is alone at fra1: one node cannot tell a site outage from a node outage
    assert not outage.notices(report("pve1"), the_fleet(), journal, now=T0).opened[0].site_down


def test_notices_write_nothing(journal: Journal) -> None:
    outage.notices(report("kvm1"), the_fleet(), journal, now=T0)
    assert journal.get_state("outage:kvm1") is None
    assert list(journal.entries()) == []


def test_nodes_not_audited_are_left_alone(journal: Journal, tmp_path: Path) -> None:
    f = the_fleet()
    outage.process(report("kvm1"), f, journal, outbox=tmp_path, now=T0)
    got = outage.process(report(nodes=("pve1",)), f, journal, outbox=tmp_path, now=T0)
    assert got.resolved == [] and got.notices == []
    assert journal.get_state("outage:kvm1")["status"] == "open"  # type: ignore[index]


def test_failed_delivery_is_retried_next_audit(journal: Journal, tmp_path: Path) -> None:
    f = the_fleet()
    dead = SmtpConfig(host="127.0.0.1", port=1, timeout=2)  # nothing listens on port 1
    first = outage.process(report("pve1"), f, journal, smtp=dead, now=T0)
    assert first.sent is not None and len(first.sent.failed) == 1
    assert journal.get_state("outage:pve1")["notified"] == {}  # type: ignore[index]
    again = outage.process(report("pve1"), f, journal, outbox=tmp_path, now=T0)
    assert [(n.kind, n.client) for n in again.notices] == [("outage", "c")]
    assert again.opened == [] and again.ongoing == ["pve1"]
    assert journal.get_state("outage:pve1")["notified"] == {"c": ["VPS7(100.30)"]}  # type: ignore[index]


def test_something_to_send_needs_a_way_to_send(journal: Journal) -> None:
    with pytest.raises(InvalidInput, match="smtp"):
        outage.process(report("kvm1"), the_fleet(), journal, now=T0)
    assert journal.get_state("outage:kvm1") is None


def test_templates_are_strict() -> None:
    with pytest.raises(outage.OutageTemplateError, match=r"client_notice\.en\.txt\.j2"):
        outage.render("client_notice.en.txt.j2", {"services": []})
