"""The blast-radius rules (issue 18 part 1), as pure functions: who may block at once, how many."""

from __future__ import annotations

import datetime as dt

import pytest

from ipsinfra.abuse import dnsbl
from ipsinfra.abuse.intake import CLASSIFY_CHARS, Complaint, ComplaintFormat
from ipsinfra.abuse.policy import (
    BlockBudget,
    max_targets_for,
    parse_proposal_id,
    proposal_id,
    run_budget_for,
    sbl_confirmation,
    sender_trusted,
    trimmed,
    why_not_now,
)
from ipsinfra.errors import InvalidInput
from ipsinfra.models import Site, build

WHEN = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)


def site(name: str = "fra1", **kw: object) -> Site:
    return Site.model_validate({"name": name, "dc": "DC", **kw})


def complaint(sender: str | None, **kw: object) -> Complaint:
    return Complaint.model_validate(
        {"id": "m1@x", "format": ComplaintFormat.PLAIN, "received_at": WHEN, "sender": sender, **kw}
    )


TRUSTING = site(abuse_trusted_senders=["Abuse@DC-fra.example", "@spamhaus.org"])


@pytest.mark.parametrize(
    ("sender", "trusted"),
    [
        ("abuse@dc-fra.example", True),
        ("sbl-team@spamhaus.org", True),
        ("ABUSE@dc-fra.example", True),
        ("abuse@dc-fra.example.evil.test", False),
        ("sbl@mail.spamhaus.org", False),  # a domain entry is that domain, not its subdomains
        ("spamhaus.org@evil.test", False),
        ("someone@evil.test", False),
        (None, False),
        ("", False),
    ],
)
def test_sender_trusted(sender: str | None, trusted: bool) -> None:
    assert sender_trusted(sender, TRUSTING) is trusted


def test_no_site_or_an_empty_list_trusts_nobody() -> None:
    assert not sender_trusted("abuse@dc-fra.example", None)
    assert not sender_trusted("abuse@dc-fra.example", site())


def test_trusted_senders_are_validated_and_lowered() -> None:
    assert TRUSTING.abuse_trusted_senders == ("abuse@dc-fra.example", "@spamhaus.org")
    assert site(abuse_trusted_senders="@Spamhaus.org").abuse_trusted_senders == ("@spamhaus.org",)
    for bad in ["spamhaus.org", "@", "a b@x.example", "<x@y.example>", "x@localhost"]:
        with pytest.raises(InvalidInput, match="abuse_trusted_senders"):
            build(Site, {"name": "s", "dc": "DC", "abuse_trusted_senders": [bad]})
    with pytest.raises(InvalidInput, match="abuse_max_targets"):
        build(Site, {"name": "s", "dc": "DC", "abuse_max_targets": 0})


def test_the_limit_is_the_smallest_of_the_sites_unless_overridden() -> None:
    assert max_targets_for([]) == 1
    assert max_targets_for([site()]) == 1
    assert max_targets_for([site(abuse_max_targets=5), site("msk1", abuse_max_targets=3)]) == 3
    assert max_targets_for([site(abuse_max_targets=5), None]) == 1
    assert max_targets_for([site()], override=10) == 10
    with pytest.raises(InvalidInput, match="max_targets"):
        max_targets_for([site()], override=0)


def test_why_not_now() -> None:
    assert why_not_now(complaint("abuse@dc-fra.example"), {"VPS1(1.1)": TRUSTING}) == []
    two = {"VPS1(1.1)": TRUSTING, "VPS2(1.1)": TRUSTING}
    assert why_not_now(complaint("abuse@dc-fra.example"), two) == [
        "names 2 of our servers; the limit is 1 (site abuse_max_targets or --max-targets)"
    ]
    assert why_not_now(complaint("abuse@dc-fra.example"), two, max_targets=2) == []
    # trusted by one site is not trusted by the other
    mixed = {"VPS1(1.1)": TRUSTING, "VPS2(2.2)": site("msk1")}
    reasons = why_not_now(complaint("abuse@dc-fra.example"), mixed, max_targets=2)
    assert reasons == ["sender abuse@dc-fra.example is not a trusted sender of msk1 (abuse_trusted_senders)"]
    assert "(no From address)" in why_not_now(complaint(None), {"VPS1(1.1)": TRUSTING})[0]


def test_a_run_blocks_at_most_its_budget_then_only_proposes() -> None:
    """abuse watch: one-server notices from a trusted sender, one per message, stop at the budget."""
    budget = BlockBudget(limit=2)
    one = {"VPS1(1.1)": TRUSTING}
    sender = complaint("abuse@dc-fra.example")
    assert why_not_now(sender, one, run_budget=budget) == []
    assert why_not_now(sender, one, run_budget=budget.spent(1)) == []
    assert budget.spent(1).spent(1).left == 0
    maybe = budget.spent(1, unsure=True)  # a handling that failed half-way: counted as blocked
    assert (maybe.blocked, maybe.unsure, maybe.left) == (0, 1, 1)
    assert maybe.spent(1).why_not(1) == (
        "this run already blocked 1 server and may have blocked 1 more "
        "(a handling that failed half-way) (--max-blocks 2)"
    )
    assert why_not_now(sender, one, run_budget=budget.spent(1).spent(1)) == [
        "this run already blocked 2 servers (--max-blocks 2)"
    ]
    # a complaint naming more than is left waits whole, even before the budget is spent
    two = {"VPS1(1.1)": TRUSTING, "VPS2(1.1)": TRUSTING}
    assert why_not_now(sender, two, max_targets=2, run_budget=budget.spent(1)) == [
        "this run already blocked 1 server; 2 more would pass the run's limit of 2 (--max-blocks 2)"
    ]
    # the budget's reason comes after the others; an untrusted sender is still named
    reasons = why_not_now(complaint("x@evil.example"), one, run_budget=budget.spent(2))
    assert reasons[0].startswith("sender x@evil.example is not a trusted sender")
    assert reasons[1] == "this run already blocked 2 servers (--max-blocks 2)"


def test_the_run_budget_is_the_smallest_site_setting_unless_overridden() -> None:
    assert run_budget_for([]).limit == 5
    assert run_budget_for([site()]).limit == 5  # the Site field's default
    budget = run_budget_for(
        [site(abuse_max_blocks_per_run=7), site("msk1", abuse_max_blocks_per_run=3), None]
    )
    assert (budget.limit, budget.blocked) == (3, 0)
    assert budget.spent(3).why_not(1) == (
        "this run already blocked 3 servers "
        "(abuse_max_blocks_per_run 3 of site msk1; --max-blocks for one run)"
    )
    assert run_budget_for([site(abuse_max_blocks_per_run=3)], override=10).limit == 10
    for bad in (0, -1, True, 2.5):
        with pytest.raises(InvalidInput, match=rf"^max_blocks: value {bad!r}: "):
            run_budget_for([site()], override=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="abuse_max_blocks_per_run"):
        build(Site, {"name": "s", "dc": "DC", "abuse_max_blocks_per_run": 0})


@pytest.mark.parametrize(
    ("records", "confirmed"),
    [
        (["127.0.0.2"], True),
        (["127.0.0.3"], True),
        (["127.0.0.9"], True),
        (["127.0.0.4"], False),  # XBL is not an SBL listing
        (["127.0.0.10"], False),
        ([], False),
        (["127.255.255.254"], False),
        (["127.255.255.252"], False),
        (["127.255.255.255"], False),
        (["127.0.0.2", "127.255.255.254"], False),  # any failure code makes the whole answer a failure
        (["10.0.0.1"], False),  # a resolver rewriting NXDOMAIN
    ],
)
def test_sbl_confirmation(records: list[str], confirmed: bool) -> None:
    result = dnsbl.decode("192.0.2.7", records)
    assert (sbl_confirmation("192.0.2.7", result) is None) is confirmed


def test_no_look_up_or_a_failed_one_confirms_nothing() -> None:
    assert "no DNSBL look-up configured" in (sbl_confirmation("192.0.2.7", None) or "")
    assert "look-up failed (OperationTimeout" in (sbl_confirmation("192.0.2.7", "OperationTimeout: x") or "")


def test_proposal_ids() -> None:
    c = complaint("x@y.example")
    pid = proposal_id(c, ["B", "A"])
    assert pid == proposal_id(c, ["A", "B", "A"]) and parse_proposal_id(f" {pid} ") == pid
    assert pid != proposal_id(c, ["A"])
    for bad in ["", "P-", "P-0123456789AB", "p-0123456789ab", "P-0123456789abc", "../P-0123456789ab"]:
        with pytest.raises(InvalidInput, match="confirm: value"):
            parse_proposal_id(bad)


def test_a_proposal_keeps_at_most_64_kib_of_the_complaint() -> None:
    big = complaint("x@y.example", statement="s" * (CLASSIFY_CHARS + 10), evidence="e" * 10)
    kept = trimmed(big)
    assert kept.statement.startswith("s" * CLASSIFY_CHARS) and "cut at" in kept.statement
    assert kept.evidence == "e" * 10
    small = complaint("x@y.example", statement="short")
    assert trimmed(small) is small
