"""Issue 21 follow-ups: one unattended ``abuse watch`` run blocks at most ``--max-blocks``
servers in all, and ``playbooks/abuse_watch.yml`` runs it from AWX / cron.

The per-complaint limits (abuse/policy.py) apply to one message; a mailbox holding many
one-server notices from a trusted (or spoofed trusted) sender would block one server per
message without end. These tests put such notices in a real Maildir and a real mbox and
read back what happened from the journal, the inventory's write-back, the stored
proposal, the outbox and the mailbox files, never from the report alone. The fleet is
the blast-radius tests' one: libvirt test-driver nodes from an inventory on disk.
"""

from __future__ import annotations

import json
import mailbox
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipsinfra.abuse import dnsbl
from ipsinfra.abuse.policy import PROPOSAL_PREFIX, BlockBudget
from ipsinfra.journal import Journal
from ipsinfra.lab.dns import DnsTestServer
from tests.integration.test_abuse_blast_radius import (
    ABUSE,
    DC,
    IPS,
    ZONE,
    TestFleet,
    _inventory,
    read_host_vars,
    sbl,
    site,
    zeus,
)
from tests.integration.test_abuse_mailbox import ARRIVED, run, zeus_one

# One server on each node: kvm1, kvm2, kvm3.
TARGETS = [IPS[1], IPS[3], IPS[5]]
HOSTS = ["VPS4001-1-11", "VPS4003-2-12", "VPS4005-3-13"]  # their host_vars files
SERVERS = ["VPS4001(1.11)", "VPS4003(2.12)", "VPS4005(3.13)"]


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsTestServer]:
    """Spamhaus zen on loopback: every target is listed in the SBL (127.0.0.2)."""
    with DnsTestServer({dnsbl.query_name(ip, ZONE): ["127.0.0.2"] for ip in TARGETS}) as srv:
        yield srv


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dns: DnsTestServer) -> dict[str, Any]:
    monkeypatch.setenv("IPSINFRA_LOCK_DIR", str(tmp_path / "locks"))
    inv = _inventory(tmp_path)  # block-style YAML host_vars: each block is written back
    journal = tmp_path / "j.sqlite3"
    outbox = tmp_path / "outbox"
    base = ["-i", str(inv), "--journal", str(journal), "--abuse-from", ABUSE, "--outbox", str(outbox)]
    args = [*base, "--dnsbl-resolver", dns.host, "--dnsbl-port", str(dns.port), "--dnsbl-zone", ZONE]
    return {"inventory": inv, "journal": journal, "outbox": outbox, "base": base, "args": args, "dns": dns}


def notices() -> list[bytes]:
    """Three one-server notices from senders the site trusts, each within every per-message limit:
    an SBL listing (confirmed by the DNSBL) and two Zeus reports from the DC."""
    return [
        sbl(TARGETS[0], ref="700001").encode(),
        zeus_one(TARGETS[1], "budget-2@dc-lab.example"),
        zeus_one(TARGETS[2], "budget-3@dc-lab.example"),
    ]


def maildir_with(root: Path, raws: list[bytes]) -> Path:
    box = mailbox.Maildir(root, create=True)
    keys = [box.add(raw) for raw in raws]
    box.close()
    for n, key in enumerate(keys):  # arrival order: the order they are handled in
        when = ARRIVED.timestamp() + 60 * n
        os.utime(root / "new" / key, (when, when))
    return root


def mbox_with(path: Path, raws: list[bytes]) -> Path:
    box = mailbox.mbox(path, create=True)
    for raw in raws:
        msg = mailbox.mboxMessage(raw)
        msg.set_from("reporter@example.org", ARRIVED.timetuple())
        box.add(msg)
    box.close()
    return path


def blocks(journal: Path) -> list[str]:
    if not journal.exists():
        return []
    with Journal(journal) as jr:
        return [e.target for e in jr.entries(action="vds.block")]


def recorded_blocked(inventory: Path) -> list[str]:
    """The VDS whose inventory record says blocked (the write-back after each block)."""
    out = []
    for host, server in zip(HOSTS, SERVERS, strict=True):
        if read_host_vars(inventory / "host_vars" / f"{host}.yml").get("blocked"):
            out.append(server)
    return out


def letters_about(outbox: Path) -> dict[str, int]:
    """How many letters in the outbox name each server."""
    texts = [p.read_text(errors="replace") for p in outbox.iterdir()] if outbox.exists() else []
    return {s: sum(s in t for t in texts) for s in SERVERS}


def stored_proposal(journal: Path, pid: str) -> dict[str, Any]:
    with Journal(journal) as jr:
        data = jr.get_state(PROPOSAL_PREFIX + pid)
    assert data is not None, pid
    return dict(data)


# --------------------------------------------------------------------------- the library


def test_handle_complaint_takes_the_run_budget(tmp_path: Path) -> None:
    """The library API: ``run_budget`` is what the run may still block; past it, a proposal."""
    fleet = TestFleet(tmp_path, site())
    try:
        with Journal(tmp_path / "j.sqlite3") as journal:
            spent = BlockBudget(limit=2, blocked=2)
            held = fleet.handle(zeus(DC, [IPS[0]], msgid="b1@dc-fleet.example"), journal, run_budget=spent)
            assert [s.action for s in held.services] == ["proposed"] and held.blocked_servers == []
            assert held.proposal is not None and held.proposal_stored
            assert held.proposal.reasons == ["this run already blocked 2 servers (--max-blocks 2)"]
            assert fleet.blocked() == []

            left = BlockBudget(limit=2, blocked=1)
            done = fleet.handle(zeus(DC, [IPS[2]], msgid="b2@dc-fleet.example"), journal, run_budget=left)
            assert [s.action for s in done.services] == ["blocked"] and done.proposal is None
            assert done.blocked_servers == [fleet.names[IPS[2]]] and fleet.blocked() == [fleet.names[IPS[2]]]
            [why] = journal.entries(action="abuse.immediate")
            assert why.detail.endswith("; the run may block 1 more (--max-blocks 2)")

            # Two servers in one complaint with one left: the whole complaint waits.
            two = zeus(DC, [IPS[3], IPS[4]], msgid="b3@dc-fleet.example")
            both = fleet.handle(two, journal, max_targets=2, run_budget=left.spent(0))
            assert [s.action for s in both.services] == ["proposed", "proposed"]
            assert both.proposal is not None and both.proposal.reasons == [
                "this run already blocked 1 server; 2 more would pass the run's limit of 2 (--max-blocks 2)"
            ]
            assert fleet.blocked() == [fleet.names[IPS[2]]]
    finally:
        for driver in fleet.drivers.values():
            driver.close()


# --------------------------------------------------------------------------- the CLI


def test_a_maildir_of_trusted_one_server_notices_blocks_max_blocks_then_proposes(
    lab: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    md = maildir_with(tmp_path / "Maildir", notices())
    source = f"maildir:{md}"

    rc, out, err = run(["abuse", "watch", source, *lab["args"], "--max-blocks", "2", "--json"], capsys)
    assert rc == 1, out + err  # the third waits for a person
    report = json.loads(out)
    first, second, third = report["messages"]
    assert [m["status"] for m in report["messages"]] == ["done"] * 3
    assert first["category"] == "spamhaus_sbl" and first["services"] == [
        f"{TARGETS[0]} ({SERVERS[0]}): blocked"
    ]
    assert second["services"] == [f"{TARGETS[1]} ({SERVERS[1]}): blocked"]
    assert third["services"] == [f"{TARGETS[2]} ({SERVERS[2]}): proposed"]
    assert third["held"] == ["this run already blocked 2 servers (--max-blocks 2)"]
    pid = third["proposal"]
    assert pid and (report["blocked"], report["max_blocks"], report["budget_reached"]) == (2, 2, True)
    assert report["summary"].endswith(
        f"3 done, 1 proposal(s) waiting: {pid}, the run's block limit was reached (2 of 2 blocked)"
    )
    # What the fleet, the inventory, the store and the outbox say.
    assert blocks(lab["journal"]) == ["kvm1/VPS4001(1.11)", "kvm2/VPS4003(2.12)"]
    assert recorded_blocked(lab["inventory"]) == SERVERS[:2]
    proposal = stored_proposal(lab["journal"], pid)
    assert proposal["status"] == "proposed" and [t["server"] for t in proposal["targets"]] == [SERVERS[2]]
    assert proposal["reasons"] == ["this run already blocked 2 servers (--max-blocks 2)"]
    assert any(x.startswith("client_ticket to admin@c1.example") for x in proposal["letters"])  # drafted
    sent = letters_about(lab["outbox"])
    assert sent[SERVERS[0]] and sent[SERVERS[1]] and sent[SERVERS[2]] == 0  # sent only after --confirm
    assert sorted(os.listdir(md / "new")) == [] and len(os.listdir(md / "cur")) == 3

    rc, out, err = run(["abuse", "watch", source, *lab["args"], "--max-blocks", "2"], capsys)
    assert (rc, out.strip()) == (0, f"{source}: nothing new"), err  # the budget is per run; mail acts once

    # A person is not bound by the run's budget: --confirm blocks the third.
    confirm = ["abuse", "handle", "--confirm", pid, *lab["base"]]
    rc, out, err = run(confirm, capsys)
    assert rc == 0, out + err
    assert blocks(lab["journal"])[-1] == "kvm3/VPS4005(3.13)"
    assert recorded_blocked(lab["inventory"]) == SERVERS
    assert letters_about(lab["outbox"])[SERVERS[2]]


def test_the_text_report_names_the_reason_and_check_counts_what_it_would_block(
    lab: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    md = maildir_with(tmp_path / "Maildir", notices())
    before = sorted(os.listdir(md / "new"))
    source = f"maildir:{md}"
    rc, out, err = run(["abuse", "watch", source, *lab["args"], "--max-blocks", "1", "--check"], capsys)
    assert rc == 1, out + err
    lines = out.splitlines()
    assert f"  {TARGETS[0]} ({SERVERS[0]}): checked" in lines
    assert f"  {TARGETS[1]} ({SERVERS[1]}): proposed" in lines
    assert f"  {TARGETS[2]} ({SERVERS[2]}): proposed" in lines
    assert lines.count("    held: this run already blocked 1 server (--max-blocks 1)") == 2
    assert lines[-1].endswith("(1 of 1 blocked) (--check: nothing changed)")
    # --check changed nothing anywhere.
    assert sorted(os.listdir(md / "new")) == before
    assert blocks(lab["journal"]) == [] and recorded_blocked(lab["inventory"]) == []
    assert not lab["outbox"].exists() or not list(lab["outbox"].iterdir())
    with Journal(lab["journal"]) as jr:
        assert jr.latest_states(PROPOSAL_PREFIX) == {}


def test_an_mbox_run_takes_the_budget_from_the_site(
    lab: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Without --max-blocks: the smallest abuse_max_blocks_per_run of the inventory's sites."""
    site_file = lab["inventory"] / "group_vars" / "lab.yml"
    data = json.loads(site_file.read_text(encoding="utf-8"))
    data["ipsinfra_site"]["abuse_max_blocks_per_run"] = 1
    site_file.write_text(json.dumps(data), encoding="utf-8")
    path = mbox_with(tmp_path / "abuse.mbox", notices())
    before = path.read_bytes()
    source = f"mbox:{path}"

    rc, out, err = run(["abuse", "watch", source, *lab["args"], "--json"], capsys)
    assert rc == 1, out + err
    report = json.loads(out)
    assert [s for m in report["messages"] for s in m["services"]] == [
        f"{TARGETS[0]} ({SERVERS[0]}): blocked",
        f"{TARGETS[1]} ({SERVERS[1]}): proposed",
        f"{TARGETS[2]} ({SERVERS[2]}): proposed",
    ]
    why = (
        "this run already blocked 1 server (abuse_max_blocks_per_run 1 of site lab; --max-blocks for one run)"
    )
    assert [m["held"] for m in report["messages"][1:]] == [[why], [why]]
    assert blocks(lab["journal"]) == ["kvm1/VPS4001(1.11)"]
    assert path.read_bytes() == before  # an mbox is read, never written

    # The next run: the store remembers every message; nothing is acted on again.
    rc, out, err = run(["abuse", "watch", source, *lab["args"]], capsys)
    assert (rc, out.strip()) == (0, f"{source}: nothing new (3 processed before)"), err
    assert blocks(lab["journal"]) == ["kvm1/VPS4001(1.11)"]


def test_a_handling_that_fails_half_way_is_charged_to_the_budget(
    lab: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A message whose handling raised may have blocked what it names: counted, never a free pass.
    (Here another job holds the VDS's lock, so nothing was blocked; the run cannot know that.)"""
    from ipsinfra import locks

    raws = notices()
    md = maildir_with(tmp_path / "Maildir", [raws[1], raws[0], raws[2]])  # kvm2's first
    with locks.hold("vds-4003", "another job on VPS4003(2.12)", lock_dir=tmp_path / "locks"):
        rc, out, err = run(
            ["abuse", "watch", f"maildir:{md}", *lab["args"], "--max-blocks", "2", "--json"], capsys
        )
    assert rc == 1, out + err
    report = json.loads(out)
    failed, blocked, held = report["messages"]
    assert failed["status"] == "failed" and "busy" in failed["detail"]
    assert blocked["services"] == [f"{TARGETS[0]} ({SERVERS[0]}): blocked"]
    assert held["services"] == [f"{TARGETS[2]} ({SERVERS[2]}): proposed"]
    assert held["held"] == [
        "this run already blocked 1 server and may have blocked 1 more (a handling that failed half-way) "
        "(--max-blocks 2)"
    ]
    assert (report["blocked"], report["maybe_blocked"]) == (1, 1)
    assert report["summary"].endswith("(1 of 2 blocked, 1 more may have been)")
    assert blocks(lab["journal"]) == ["kvm1/VPS4001(1.11)"]
    # The failed one is retried by the next run, with a budget of its own.
    rc, out, err = run(["abuse", "watch", f"maildir:{md}", *lab["args"], "--max-blocks", "2"], capsys)
    assert rc == 0 and out.splitlines()[-1].endswith(": 1 done"), out + err
    assert blocks(lab["journal"]) == ["kvm1/VPS4001(1.11)", "kvm2/VPS4003(2.12)"]


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        ("0", "ipsinfra: error: --max-blocks: value 0: must be at least 1"),
        ("-3", "ipsinfra: error: --max-blocks: value -3: must be at least 1"),
        ("two", "Invalid value for '--max-blocks'"),
        ("1.5", "Invalid value for '--max-blocks'"),
    ],
)
def test_a_bad_max_blocks_exits_2_naming_it_and_reads_nothing(
    lab: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str, expect: str
) -> None:
    md = maildir_with(tmp_path / "Maildir", notices())
    before = sorted(os.listdir(md / "new"))
    rc, out, err = run(["abuse", "watch", f"maildir:{md}", *lab["args"], "--max-blocks", value], capsys)
    assert rc == 2 and expect in err, out + err
    assert "Traceback" not in err
    assert sorted(os.listdir(md / "new")) == before
    assert not lab["journal"].exists() and not lab["outbox"].exists()


# --------------------------------------------------------------------------- playbooks/abuse_watch.yml


@pytest.mark.slow
def test_the_abuse_watch_playbook_through_ansible_runner(lab: dict[str, Any], tmp_path: Path) -> None:
    """The playbook an AWX schedule runs: a Maildir of three trusted notices, abuse_max_blocks=2."""
    from ipsinfra import playbooks

    md = maildir_with(tmp_path / "Maildir", notices())
    extravars: dict[str, Any] = {
        "ipsinfra_journal": str(lab["journal"]),
        "abuse_source": f"maildir:{md}",
        "abuse_from": ABUSE,
        "abuse_outbox": str(lab["outbox"]),
        "abuse_max_blocks": 2,
        "abuse_dnsbl_resolver": lab["dns"].host,
        "abuse_dnsbl_port": lab["dns"].port,
        "abuse_dnsbl_zone": ZONE,
    }
    env = {"IPSINFRA_LOCK_DIR": str(tmp_path / "locks")}

    def watch_once(kept: str, **more: Any) -> Any:
        return playbooks.run(
            "abuse_watch",
            lab["inventory"],
            extravars={**extravars, **more},
            envvars=env,
            keep_artifacts=tmp_path / kept,
            timeout=180,
        )

    first = watch_once("a1")
    # A proposal waits for a person: the play turns red, after doing and reporting the rest.
    assert not first.ok
    failure = first.failures["localhost"]
    assert "a message needs a person" in failure and "ipsinfra abuse handle --confirm P-" in failure
    stats = first.data["abuse_watch"]
    assert stats["statuses"] == ["done", "done", "done"]
    assert (str(stats["blocked"]), str(stats["max_blocks"]), str(stats["exit_code"])) == ("2", "2", "1")
    [pid] = stats["proposals"]
    assert blocks(lab["journal"]) == ["kvm1/VPS4001(1.11)", "kvm2/VPS4003(2.12)"]
    assert stored_proposal(lab["journal"], pid)["reasons"] == [
        "this run already blocked 2 servers (--max-blocks 2)"
    ]
    assert sorted(os.listdir(md / "new")) == [] and len(os.listdir(md / "cur")) == 3
    assert first.hosts["localhost"].changed == 1

    again = watch_once("a2")
    assert again.ok, again.failures
    assert again.hosts["localhost"].changed == 0
    assert again.data["abuse_watch"]["statuses"] == [] and str(again.data["abuse_watch"]["blocked"]) == "0"
    assert len(blocks(lab["journal"])) == 2

    bad = watch_once("a3", abuse_max_blocks=0)
    assert not bad.ok
    assert "max_blocks: value 0: must be at least 1" in bad.failures["localhost"], bad.failures
    assert len(blocks(lab["journal"])) == 2


def test_the_playbook_refuses_to_run_without_its_mailbox(lab: dict[str, Any], tmp_path: Path) -> None:
    from ipsinfra import playbooks

    result = playbooks.run(
        "abuse_watch",
        lab["inventory"],
        extravars={"abuse_from": ABUSE, "abuse_outbox": str(lab["outbox"])},
        envvars={"IPSINFRA_LOCK_DIR": str(tmp_path / "locks")},
        timeout=120,
    )
    assert not result.ok
    assert (
        "set abuse_source (imaps://, maildir: or mbox:), abuse_from and abuse_outbox"
        in (result.failures["localhost"])
    )
    assert not lab["journal"].exists()
