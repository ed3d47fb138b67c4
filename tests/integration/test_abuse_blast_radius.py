"""Issue 18 part 1: one e-mail to the public abuse mailbox must not stop the fleet.

Every node is a REAL libvirt test-driver connection (``test:///`` node files);
the DNSBL answers come from a real DNS server on 127.0.0.1. What a complaint
did is read back from the hypervisors and the journal, never from the result
alone.
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import json
import zipfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from ipsinfra import cli, naming
from ipsinfra.abuse import dnsbl
from ipsinfra.abuse.handle import confirm_proposal, handle_complaint
from ipsinfra.abuse.policy import PROPOSAL_PREFIX
from ipsinfra.errors import InvalidInput
from ipsinfra.hypervisors import DriverPool, HypervisorDriver
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.inventory import Fleet
from ipsinfra.journal import Journal
from ipsinfra.lab.dns import DnsTestServer
from ipsinfra.models import Client, Node, Site, VdsState
from tests.contract.base import spec_for
from tests.contract.test_libvirt_testdriver import test_node
from tests.nodefile import node_file

ZONE = "zen.test.example"
ABUSE = "abuse@ips.example"
DC = "abuse@dc-lab.example"
NODES = {"kvm1": "10.0.1.11", "kvm2": "10.0.2.12", "kvm3": "10.0.3.13"}
# Two VDS per node; the last octet of each one's IP is its index.
IPS = [f"198.51.100.{i + 1}" for i in range(6)]
WHEN = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def site(**kw: Any) -> Site:
    values: dict[str, Any] = {
        "name": "lab",
        "dc": "Lab DC",
        "dc_abuse_email": DC,
        "abuse_trusted_senders": (DC, "@spamhaus.example"),
    }
    values.update(kw)
    return Site.model_validate(values)


class TestFleet:
    __test__ = False

    def __init__(self, tmp_path: Path, the_site: Site) -> None:
        self.tmp_path = tmp_path
        self.nodes: dict[str, Node] = {}
        self.drivers: dict[str, HypervisorDriver] = {}
        self.names: dict[str, str] = {}  # ip -> VDS name
        records = {}
        for n, (name, ip) in enumerate(NODES.items()):
            node = test_node(tmp_path, name=name, ip=ip)
            driver = LibvirtDriver(node)
            for k in range(2):
                vip = IPS[2 * n + k]
                spec = spec_for(driver, 4000 + 2 * n + k, ips=[ipaddress.ip_address(vip)], autostart=True)
                driver.define(spec, start=True)
                records[spec.name] = driver.get_vds(spec.name).model_copy(update={"client": "c1"})
                self.names[vip] = spec.name
            self.nodes[name] = node
            self.drivers[name] = driver
        self.fleet = Fleet(
            sites={"lab": the_site},
            nodes=self.nodes,
            vds=records,
            clients={
                "c1": Client(
                    id="c1",
                    name="Example Hosting Ltd",
                    address="1 Example Street",
                    email="admin@c1.example",
                    activated=dt.date(2016, 3, 14),
                    services=3,
                )
            },
        )

    def pool(self) -> DriverPool:
        return DriverPool(self.nodes, drivers=self.drivers)

    def states(self) -> dict[str, tuple[str, bool]]:
        """Every VDS as its hypervisor reports it: (state, autostart)."""
        return {v.name: (v.state.value, v.autostart) for d in self.drivers.values() for v in d.list_vds()}

    def blocked(self) -> list[str]:
        return sorted(name for name, (state, auto) in self.states().items() if state != "running" or not auto)

    def handle(self, raw: str, journal: Journal, **kw: Any) -> Any:
        kw.setdefault("lock_dir", self.tmp_path / "locks")
        kw.setdefault("mailbox_date", WHEN)  # the mailbox got it when its Date says (no Received:)
        return handle_complaint(raw, self.fleet, self.pool(), abuse_from=ABUSE, journal=journal, **kw)

    def confirm(self, pid: str, journal: Journal, **kw: Any) -> Any:
        kw.setdefault("lock_dir", self.tmp_path / "locks")
        return confirm_proposal(pid, self.fleet, self.pool(), abuse_from=ABUSE, journal=journal, **kw)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[TestFleet]:
    fleet = TestFleet(tmp_path, site())
    yield fleet
    for driver in fleet.drivers.values():
        driver.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.sqlite3") as jr:
        yield jr


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsTestServer]:
    records = {
        dnsbl.query_name(IPS[0], ZONE): ["127.0.0.2"],  # SBL
        dnsbl.query_name(IPS[1], ZONE): ["127.255.255.254"],  # the query failed
        dnsbl.query_name(IPS[2], ZONE): ["127.0.0.10"],  # PBL only
    }
    with DnsTestServer(records) as srv:
        yield srv


def lookup_via(srv: DnsTestServer) -> Any:
    def lookup(ip: str) -> dnsbl.DnsblResult:
        return dnsbl.check(ip, resolver=srv.host, port=srv.port, zone=ZONE, timeout=3)

    return lookup


def mail(sender: str, subject: str, body: str, msgid: str) -> str:
    return (
        f"From: Reporter <{sender}>\nTo: {ABUSE}\nSubject: {subject}\n"
        f"Date: {WHEN.strftime('%a, %d %b %Y %H:%M:%S +0000')}\nMessage-ID: <{msgid}>\n\n{body}\n"
    )


def zeus(sender: str, ips: list[str], msgid: str = "mass@evil.example") -> str:
    return mail(sender, "Zeus malware", f"These hosts serve Zeus malware: {' '.join(ips)}", msgid)


def sbl(ip: str, ref: str = "654321", sender: str = "sbl-team@spamhaus.example") -> str:
    body = (
        f"Spamhaus SBL listing SBL{ref}\n\n  {ip}/32 is listed in the Spamhaus Block List (SBL).\n"
        "  Reason: spam source, snowshoe spam operation.\n\n-- The Spamhaus Project"
    )
    return mail(sender, f"SBL{ref}: {ip} spam source (snowshoe)", body, f"sbl{ref}-{ip}@spamhaus.example")


def journal_lines(journal: Journal, action: str) -> list[Any]:
    return list(journal.entries(action=action))


# --------------------------------------------------------------------------- the mass e-mail


def test_mass_mail_from_an_unknown_sender_blocks_nothing_and_proposes_every_server(
    lab: TestFleet, journal: Journal
) -> None:
    before = lab.states()
    result = lab.handle(zeus("someone@evil.example", IPS), journal)
    assert lab.states() == before  # not one VDS stopped, not one autostart turned off
    assert [s.action for s in result.services] == ["proposed"] * 6
    proposal = result.proposal
    assert proposal is not None and result.proposal_stored
    assert proposal.servers == sorted(lab.names.values())
    assert any("names 6 of our servers; the limit is 1" in r for r in proposal.reasons)
    assert any("someone@evil.example is not a trusted sender of lab" in r for r in proposal.reasons)
    assert all(t.proof.ok for t in proposal.targets)  # proven targets, read-only
    assert proposal.verdict.category == "malware" and proposal.deadline == WHEN
    assert any(x.startswith("client_ticket to admin@c1.example") for x in proposal.letters)
    assert result.letters == []  # nothing sent before a person decides
    [line] = journal_lines(journal, "abuse.proposal")
    assert line.target == proposal.id and line.result == "planned"
    assert journal.get_state(PROPOSAL_PREFIX + proposal.id) is not None
    assert journal_lines(journal, "vds.block") == []


def test_mass_mail_from_a_trusted_sender_past_the_limit_blocks_nothing(
    lab: TestFleet, journal: Journal
) -> None:
    """Decided: past the limit the WHOLE complaint waits (none blocked), whoever sent it. Blocking
    "the first one" would let the sender's ordering choose which client goes down."""
    before = lab.states()
    result = lab.handle(zeus(DC, IPS), journal)
    assert lab.states() == before
    assert [s.action for s in result.services] == ["proposed"] * 6
    assert result.proposal is not None
    assert result.proposal.reasons == [
        "names 6 of our servers; the limit is 1 (site abuse_max_targets or --max-targets)"
    ]


def test_the_limit_is_raised_only_explicitly(lab: TestFleet, journal: Journal) -> None:
    result = lab.handle(zeus(DC, IPS[:3], msgid="three@dc-lab.example"), journal, max_targets=3)
    assert [s.action for s in result.services] == ["blocked"] * 3
    assert lab.blocked() == sorted(lab.names[ip] for ip in IPS[:3])
    assert result.proposal is None


def test_the_site_config_raises_the_limit(tmp_path: Path, journal: Journal) -> None:
    fleet = TestFleet(tmp_path, site(abuse_max_targets=6))
    try:
        result = fleet.handle(zeus(DC, IPS), journal)
        assert [s.action for s in result.services] == ["blocked"] * 6
        assert len(fleet.blocked()) == 6
    finally:
        for d in fleet.drivers.values():
            d.close()


def test_a_trusted_sender_naming_one_server_blocks_it_at_once(lab: TestFleet, journal: Journal) -> None:
    result = lab.handle(zeus(DC, [IPS[4]], msgid="one@dc-lab.example"), journal)
    [service] = result.services
    assert service.action == "blocked" and service.server == lab.names[IPS[4]]
    assert lab.blocked() == [lab.names[IPS[4]]]
    assert result.proposal is None
    [why] = journal_lines(journal, "abuse.immediate")
    assert why.detail == f"from {DC}: a trusted sender of lab; 1 of our server(s), limit 1"
    assert {x.kind.value for x in result.letters} >= {"client_ticket", "complainant_reply"}


def test_an_unknown_sender_naming_one_server_only_proposes(lab: TestFleet, journal: Journal) -> None:
    result = lab.handle(zeus("x@evil.example", [IPS[4]], msgid="one@evil.example"), journal)
    assert [s.action for s in result.services] == ["proposed"]
    assert lab.blocked() == []


def test_a_non_immediate_complaint_is_unchanged_by_the_limits(lab: TestFleet, journal: Journal) -> None:
    raw = mail("x@evil.example", "Spam", f"Spam from {' '.join(IPS)}", "spam@evil.example")
    result = lab.handle(raw, journal)
    assert {s.action for s in result.services} == {"deadline"} and result.proposal is None
    assert lab.blocked() == []


# --------------------------------------------------------------------------- one report, many cases


def shadowserver(ips: list[str], report: str = "event4_sinkhole_http", sender: str = DC) -> bytes:
    """A Shadowserver-style report: the rows in a zipped CSV attachment, one row per IP."""
    rows = "".join(
        f'"2026-12-06 0{i}:10:00","tcp","{ip}",4{i}000,"203.0.113.200",80,"andromeda"\n'
        for i, ip in enumerate(ips)
    )
    csv_text = '"timestamp","protocol","src_ip","src_port","dst_ip","dst_port","infection"\n' + rows
    name = f"2026-12-06-{report}-lab-asn.csv"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, csv_text)
    msg = EmailMessage()
    msg["From"] = f"Reports <{sender}>"
    msg["To"] = ABUSE
    msg["Subject"] = f"[Shadowserver Report] 2026-12-06 {report}"
    msg["Date"] = WHEN.strftime("%a, %d %b %Y %H:%M:%S +0000")
    msg["Message-ID"] = f"<ss-{report}-{len(ips)}@shadowserver.example>"
    msg.set_content("Attached: the report for your network (open resolvers, botnet drones, malware).\n")
    msg.add_attachment(buf.getvalue(), maintype="application", subtype="zip", filename=name + ".zip")
    return msg.as_bytes()


def test_a_shadowserver_report_of_five_servers_proposes_and_blocks_nothing(
    lab: TestFleet, journal: Journal
) -> None:
    """Issue 21 Build 4: every row is a case; the limits apply to the report as a whole, so a
    trusted sender's report naming 5 of our servers (limit 1) blocks none of them."""
    before = lab.states()
    result = lab.handle(shadowserver(IPS[:5]), journal)
    assert result.complaint.format.value == "shadowserver"
    assert [str(c.ip) for c in result.complaint.cases] == IPS[:5]
    assert [c.category for c in result.verdict.cases] == ["botnet"] * 5
    assert lab.states() == before  # not one VDS stopped, not one autostart turned off
    assert [(s.ip, s.action) for s in result.services] == [(ip, "proposed") for ip in IPS[:5]]
    proposal = result.proposal
    assert proposal is not None and result.proposal_stored
    assert proposal.servers == sorted(lab.names[ip] for ip in IPS[:5])
    assert proposal.reasons == [
        "names 5 of our servers; the limit is 1 (site abuse_max_targets or --max-targets)"
    ]
    assert journal_lines(journal, "vds.block") == []


def test_a_report_of_mixed_rows_gives_each_ip_its_own_deadline(lab: TestFleet, journal: Journal) -> None:
    """An open-resolver row is not immediate: it gets a deadline, whatever the body's words."""
    result = lab.handle(shadowserver(IPS[:2], report="scan_dns"), journal)
    assert [c.category for c in result.verdict.cases] == ["vulnerable", "vulnerable"]
    assert [s.action for s in result.services] == ["deadline", "deadline"]
    assert result.proposal is None and lab.blocked() == []
    assert len(journal_lines(journal, "abuse.deadline")) == 2


# --------------------------------------------------------------------------- SBL and the DNSBL


def test_trusted_sbl_notice_confirmed_by_the_dnsbl_blocks(
    lab: TestFleet, journal: Journal, dns: DnsTestServer
) -> None:
    result = lab.handle(sbl(IPS[0]), journal, dnsbl_lookup=lookup_via(dns))
    assert result.verdict.category == "spamhaus_sbl"
    assert [s.action for s in result.services] == ["blocked"]
    assert lab.blocked() == [lab.names[IPS[0]]]
    [why] = journal_lines(journal, "abuse.immediate")
    assert why.target == "SBL654321" and why.detail.endswith("the DNSBL confirms the SBL listing")


@pytest.mark.parametrize(
    ("ip", "why"),
    [
        (IPS[1], "the DNSBL query failed (127.255.255.254"),
        (IPS[2], "does not list it in SBL (PBL)"),
        (IPS[3], "does not list it in SBL (not listed)"),
    ],
    ids=["query-failed", "pbl-only", "not-listed"],
)
def test_trusted_sbl_notice_not_confirmed_is_only_proposed(
    lab: TestFleet, journal: Journal, dns: DnsTestServer, ip: str, why: str
) -> None:
    result = lab.handle(sbl(ip), journal, dnsbl_lookup=lookup_via(dns))
    assert [s.action for s in result.services] == ["proposed"]
    assert result.proposal is not None and any(why in r for r in result.proposal.reasons)
    assert lab.blocked() == []


def test_sbl_notice_without_a_dnsbl_look_up_is_only_proposed(lab: TestFleet, journal: Journal) -> None:
    result = lab.handle(sbl(IPS[0]), journal)
    assert [s.action for s in result.services] == ["proposed"]
    assert result.proposal is not None and "no DNSBL look-up configured" in result.proposal.reasons[0]


def test_sbl_notice_from_a_lookalike_sender_is_only_proposed(
    lab: TestFleet, journal: Journal, dns: DnsTestServer
) -> None:
    raw = sbl(IPS[0], sender="sbl-team@spamhaus.example.evil.test")
    result = lab.handle(raw, journal, dnsbl_lookup=lookup_via(dns))
    assert [s.action for s in result.services] == ["proposed"] and lab.blocked() == []


# --------------------------------------------------------------------------- --confirm


def test_confirm_blocks_the_proposed_once_and_journals_it(lab: TestFleet, journal: Journal) -> None:
    proposal = lab.handle(zeus("someone@evil.example", IPS[:2]), journal).proposal
    assert proposal is not None and lab.blocked() == []
    done = lab.confirm(proposal.id, journal, actor="duty@ips")
    assert [s.action for s in done.services] == ["blocked", "blocked"] and done.already is None
    assert lab.blocked() == sorted(lab.names[ip] for ip in IPS[:2])
    assert {x.kind.value for x in done.letters} >= {"client_ticket", "complainant_reply"}
    [decision] = journal_lines(journal, "abuse.confirm")
    assert decision.target == proposal.id and decision.result == "ok" and decision.actor == "duty@ips"
    assert len(journal_lines(journal, "vds.block")) == 2
    stored = journal.get_state(PROPOSAL_PREFIX + proposal.id)
    assert stored is not None and stored["status"] == "confirmed" and stored["decided_by"] == "duty@ips"

    # Someone lifts one block by hand; a second confirm must not block it again.
    lab.drivers["kvm1"].set_autostart(lab.names[IPS[0]], True)
    lab.drivers["kvm1"].start(lab.names[IPS[0]])
    states = lab.states()
    again = lab.confirm(proposal.id, journal)
    assert again.services == [] and again.letters == []
    assert again.already is not None and "was confirmed at" in again.already and "duty@ips" in again.already
    assert lab.states() == states
    assert len(journal_lines(journal, "abuse.confirm")) == 1 and len(journal_lines(journal, "vds.block")) == 2


def test_handling_the_same_mail_again_keeps_the_stored_proposal(lab: TestFleet, journal: Journal) -> None:
    first = lab.handle(zeus("someone@evil.example", IPS[:2]), journal)
    assert first.proposal is not None
    lab.confirm(first.proposal.id, journal)
    second = lab.handle(zeus("someone@evil.example", IPS[:2]), journal)
    assert second.proposal is not None and second.proposal.id == first.proposal.id
    assert not second.proposal_stored and second.proposal.status == "confirmed"
    assert len(journal_lines(journal, "abuse.proposal")) == 1


def test_confirm_after_the_vds_moved_and_was_renamed_refuses(lab: TestFleet, journal: Journal) -> None:
    proposal = lab.handle(zeus("someone@evil.example", [IPS[0]]), journal).proposal
    assert proposal is not None
    old = lab.names[IPS[0]]
    # The VDS moves to kvm2 and takes kvm2's octets (§9.10); the inventory still says kvm1.
    lab.drivers["kvm1"].stop(old, force=True)
    lab.drivers["kvm1"].delete(old)
    moved = spec_for(lab.drivers["kvm2"], 4000, ips=[ipaddress.ip_address(IPS[0])], autostart=True)
    lab.drivers["kvm2"].define(moved, start=True)
    before = lab.states()
    done = lab.confirm(proposal.id, journal)
    [service] = done.services
    assert service.action == "refused" and f"node kvm1 does not report {old}" in service.detail
    assert lab.states() == before and done.letters == []
    [decision] = journal_lines(journal, "abuse.confirm")
    assert decision.result == "refused"
    [refusal] = journal_lines(journal, "server.block")
    assert refusal.result == "refused"


def test_the_dc_name_check_runs_on_both_paths(lab: TestFleet, journal: Journal) -> None:
    ip = IPS[0]
    wrong = {ip: "VPS9999(9.9)"}
    result = lab.handle(zeus(DC, [ip], msgid="dc1@dc-lab.example"), journal, dc_names=wrong)
    [service] = result.services
    assert service.action == "refused" and "names must match" in service.detail
    assert lab.blocked() == []
    # Proposed with the right name; the DC's list changed by the time of the confirmation.
    proposal = lab.handle(zeus("x@evil.example", [ip]), journal, dc_names={ip: lab.names[ip]}).proposal
    assert proposal is not None and proposal.dc_names == {ip: lab.names[ip]}
    done = lab.confirm(proposal.id, journal, dc_names=wrong)
    assert [s.action for s in done.services] == ["refused"] and lab.blocked() == []


def test_confirm_of_an_unknown_id_is_bad_input(lab: TestFleet, journal: Journal) -> None:
    with pytest.raises(InvalidInput, match="no such proposal"):
        lab.confirm("P-0123456789ab", journal)
    with pytest.raises(InvalidInput, match="a proposal id is P- and 12 hex digits"):
        lab.confirm("P-1; DROP TABLE", journal)


def test_check_proposes_without_storing(lab: TestFleet, journal: Journal) -> None:
    result = lab.handle(zeus("x@evil.example", IPS), journal, check=True)
    assert result.proposal is not None and not result.proposal_stored
    assert journal_lines(journal, "abuse.proposal") == [] and lab.blocked() == []


# --------------------------------------------------------------------------- the CLI


def _node_file(tmp_path: Path, name: str, ip: str, vds: list[tuple[int, str]]) -> Path:
    """A test:/// node file whose domains exist at every open (each CLI run opens it anew)."""
    return node_file(tmp_path, name, ip, vds, vcpus=2, autostart=True)


def write_host_vars(path: Path, data: dict[str, Any]) -> None:
    """Block-style YAML, as people write host_vars: the write-back edits these in place (it refuses
    a flow mapping, ``{...}``, and says so: see test_abuse_watch_inventory.py)."""
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    path.write_text("---\n" + text, encoding="utf-8")


def read_host_vars(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def _inventory(tmp_path: Path) -> Path:
    """The fleet on disk: 3 libvirt test-driver nodes, 2 VDS each; host_vars in block-style YAML (a
    block is written back into its record), hosts.yml and group_vars in JSON (never written back)."""
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    vds_hosts = []
    for n, (name, ip) in enumerate(NODES.items()):
        own = [(4000 + 2 * n + k, IPS[2 * n + k]) for k in range(2)]
        path = _node_file(tmp_path, name, ip, own)
        write_host_vars(
            inv / "host_vars" / f"{name}.yml",
            {"main_ip": ip, "uri": f"test://{path}", "cpus": 8, "vnc_listen": "127.0.0.1"},
        )
        for order, vip in own:
            house = naming.vps_name(order, ipaddress.ip_address(ip))
            host = house.replace("(", "-").replace(")", "").replace(".", "-")
            vds_hosts.append(host)
            write_host_vars(
                inv / "host_vars" / f"{host}.yml",
                {
                    "vds_name": house,
                    "node": name,
                    "client": "c1",
                    "vcpus": 2,
                    "memory_mib": 64,
                    "ips": [vip],
                    "nics": [{"mac": f"52:54:00:00:{order % 256:02x}:01"}],
                    "autostart": True,
                },
            )
    hosts = {
        "all": {
            "children": {
                "sites": {"children": {"lab": {"hosts": dict.fromkeys(NODES)}}},
                "nodes": {"children": {"libvirt_nodes": {"hosts": dict.fromkeys(NODES)}}},
                "vds": {"hosts": dict.fromkeys(vds_hosts)},
            }
        }
    }
    (inv / "hosts.yml").write_text(json.dumps(hosts), encoding="utf-8")
    (inv / "group_vars" / "libvirt_nodes.yml").write_text('{"kind": "libvirt"}', encoding="utf-8")
    the_site = {"dc": "Lab DC", "dc_abuse_email": DC, "abuse_trusted_senders": [DC, "@spamhaus.example"]}
    (inv / "group_vars" / "lab.yml").write_text(json.dumps({"ipsinfra_site": the_site}), encoding="utf-8")
    clients = {"c1": {"name": "Example Hosting Ltd", "email": "admin@c1.example", "services": 3}}
    (inv / "group_vars" / "all" / "clients.yml").write_text(
        json.dumps({"ipsinfra_clients": clients}), encoding="utf-8"
    )
    return inv


def test_cli_proposes_exit_3_then_confirms_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPSINFRA_LOCK_DIR", str(tmp_path / "locks"))
    inv = _inventory(tmp_path)
    complaint = tmp_path / "mass.eml"
    complaint.write_text(zeus("someone@evil.example", IPS), encoding="utf-8")
    dc_list = tmp_path / "dc.csv"
    dc_list.write_text("ip,name\n", encoding="utf-8")
    base = [
        "--abuse-from", ABUSE, "--outbox", str(tmp_path / "outbox"), "-i", str(inv),
        "--journal", str(tmp_path / "j.sqlite3"), "--no-dnsbl",
    ]  # fmt: skip
    records = sorted((inv / "host_vars").glob("VPS*.yml"))
    before = {r.name: r.read_text(encoding="utf-8") for r in records}
    assert cli.main(["abuse", "handle", str(complaint), *base, "--dc-list", str(dc_list)]) == 3
    out = capsys.readouterr().out
    assert out.count(": proposed") == 6 and "nothing was blocked" in out
    assert {r.name: r.read_text(encoding="utf-8") for r in records} == before  # nothing to write back
    pid = out.split("PROPOSAL ", 1)[1].split()[0]
    assert f"ipsinfra abuse handle --confirm {pid}" in out
    assert not (tmp_path / "outbox").exists() or not list((tmp_path / "outbox").iterdir())

    # the same mail with the limit raised explicitly: still an unknown sender, still only proposed
    assert cli.main(["abuse", "handle", str(complaint), *base, "--max-targets", "6"]) == 3
    capsys.readouterr()

    assert cli.main(["abuse", "handle", "--confirm", pid, *base, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["action"] for s in data["services"]] == ["blocked"] * 6 and data["already"] is None
    assert sum(1 for d in data["letters"] if d["kind"] == "client_ticket") == 6
    # Every record follows its block (one write-back of the six files).
    assert data["inventory_change"]["written"] is True and len(data["inventory_change"]["files"]) == 6
    assert [read_host_vars(r).get("blocked_reason") for r in records] == ["malware"] * 6

    assert cli.main(["abuse", "handle", "--confirm", pid, *base]) == 0
    out = capsys.readouterr().out
    assert "was confirmed at" in out and "nothing done again" in out

    assert cli.main(["abuse", "handle", "--confirm", "P-0123456789ab", *base]) == 2
    err = capsys.readouterr().err
    assert "no such proposal" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["abuse", "handle", str(complaint), "--confirm", pid, *base]) == 2
    assert "not both" in capsys.readouterr().err
    assert cli.main(["abuse", "handle", "--confirm", pid, "--check", *base]) == 2
    assert "it has no --check" in capsys.readouterr().err


def test_cli_trusted_sender_one_server_blocks_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPSINFRA_LOCK_DIR", str(tmp_path / "locks"))
    inv = _inventory(tmp_path)
    complaint = tmp_path / "one.eml"
    complaint.write_text(zeus(DC, [IPS[5]], msgid="one@dc-lab.example"), encoding="utf-8")
    rc = cli.main(
        [
            "abuse", "handle", str(complaint), "--abuse-from", ABUSE, "--outbox", str(tmp_path / "outbox"),
            "-i", str(inv), "--journal", str(tmp_path / "j.sqlite3"), "--no-dnsbl",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"{IPS[5]} (VPS4005(3.13)): blocked" in out and "PROPOSAL" not in out
    assert "inventory updated: host_vars/VPS4005-3-13.yml" in out.splitlines()
    record = read_host_vars(inv / "host_vars" / "VPS4005-3-13.yml")
    assert (record["blocked"], record["blocked_reason"], record["autostart"]) == (True, "malware", False)
    with Journal(tmp_path / "j.sqlite3") as jr:
        [line] = jr.entries(action="vds.block")
        assert line.target == "kvm3/VPS4005(3.13)" and line.result == "ok"
        assert line.after is not None and line.after["state"] == VdsState.STOPPED.value
        assert jr.entries(action="abuse.proposal") == []
        [written] = jr.entries(action="inventory.write_back")
        assert written.result == "ok" and written.after == {"files": ["host_vars/VPS4005-3-13.yml"]}
