"""classify(): precedence, negation, substrings, deadlines (§7.2, §7.3)."""

from __future__ import annotations

import datetime as dt

import pytest

from ipsinfra.abuse import CATEGORIES, IMMEDIATE, RuleSet, classify, load_rules
from ipsinfra.errors import InvalidInput

T0 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.UTC)


def test_categories_and_immediate_set_follow_the_rules() -> None:
    for name in ("spamhaus_sbl", "malware", "botnet", "exploit", "virus", "phishing", "csam", "terrorism"):
        assert name in CATEGORIES
    assert {"spam", "copyright", "scan", "other"} <= set(CATEGORIES)
    assert {"spamhaus_sbl", "malware", "botnet", "exploit", "virus", "csam", "terrorism"} == IMMEDIATE


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("phishing site hosting malware", "malware"),
        ("Spamhaus SBL listing for a phishing and malware host", "spamhaus_sbl"),
        ("SpyEye drop zone on your server", "malware"),
        ("Our antivirus flagged nothing, but you send spam", "spam"),
        ("an anti-virus advert in unsolicited e-mail", "spam"),
        ("The attachment contained a virus (Win32/Example)", "virus"),
        ("listed in XBL: the host is infected", "botnet"),
        ("listed in the Spamhaus PBL only", "other"),
        ("see sbl-xbl.spamhaus.org", "other"),
        ("Ваш сервер распространяет вирусы", "virus"),
        ("проверено антивирусом; спам-рассылка с вашего IP", "spam"),
        ("We found no malware; the page is a phishing kit.", "phishing"),
        ("вредоносное ПО не обнаружено, но идет фишинг", "phishing"),
        ("This is not a false positive: the host serves malware", "malware"),
        ("not only spam but also a trojan dropper", "malware"),
        ("nothing to see here", "other"),
    ],
)
def test_category(text: str, category: str) -> None:
    assert classify(text, T0).category == category


def test_immediate_deadline_is_received_time_even_with_dc_hours() -> None:
    v = classify("Ref: SBL123456", T0, dc_reaction_hours=24)
    assert v.immediate and v.deadline == T0 and v.is_sbl
    assert any("§7.2" in r for r in v.reasons)


def test_dc_hours_then_default() -> None:
    assert classify("spam from 192.0.2.1", T0, 6).deadline == T0 + dt.timedelta(hours=6)
    assert classify("spam", T0).deadline == T0 + dt.timedelta(hours=24)
    assert classify("spam", T0, default_hours=48).deadline == T0 + dt.timedelta(hours=48)


@pytest.mark.parametrize("hours", [23, 49, 0])
def test_default_hours_must_be_24_to_48(hours: int) -> None:
    with pytest.raises(InvalidInput, match="default_hours: value"):
        classify("spam", T0, default_hours=hours)


def test_naive_received_at_is_utc() -> None:
    v = classify("spam", dt.datetime(2025, 3, 3, 10, 0))
    assert v.deadline == T0 + dt.timedelta(hours=24)


def test_matched_and_reasons_explain_the_choice() -> None:
    v = classify("phishing site hosting malware", T0)
    assert "malware:malware" in v.matched and "phishing:phishing" in v.matched
    assert any("less severe" in r for r in v.reasons)


def test_rules_are_data_and_validated() -> None:
    assert load_rules() is load_rules()  # loaded once
    custom = RuleSet(
        {"categories": [{"name": "spam", "severity": 1, "immediate": False, "patterns": [r"\bbuy now\b"]}]}
    )
    assert classify("Buy now!", T0, rules=custom).category == "spam"
    with pytest.raises(InvalidInput, match="most severe"):
        RuleSet(
            {
                "categories": [
                    {"name": "a", "severity": 1, "immediate": False, "patterns": []},
                    {"name": "b", "severity": 2, "immediate": True, "patterns": []},
                ]
            }
        )
    with pytest.raises(InvalidInput, match="rules"):
        RuleSet({"categories": [{"name": "a", "severity": 1, "immediate": False, "patterns": ["("]}]})


# ----------------------------------------------------------- a reaction time stated in the text (issue 20)

STATED = [
    ("Spam from 192.0.2.7. Please react within 12 hours.", 12),
    ("Spam from 192.0.2.7, resolve within two days please", 48),
    ("We see port scans from 192.0.2.7; fix in 24h.", 24),
    ("Scanning from 192.0.2.7. Respond within 6 hrs or within 2 days.", 6),  # the strictest
    ("С вашего IP 192.0.2.7 идёт спам. Просим устранить в течение 6 часов.", 6),
    ("Сканирование портов с 192.0.2.7, примите меры в течение 2-х суток", 48),
    ("Спам с 192.0.2.7; ответьте не позднее чем через 3 часа", 3),
    ("Spam from 192.0.2.7, nothing stated", None),
    ("Спам с 192.0.2.7, срок не указан", None),
]


@pytest.mark.parametrize(("text", "hours"), STATED)
def test_a_plain_text_states_its_reaction_time(text: str, hours: int | None) -> None:
    v = classify(text, T0)
    assert not v.immediate
    if hours is None:  # §7.3: no stated reaction time -> the default
        assert v.deadline == T0 + dt.timedelta(hours=24)
        assert v.reasons[-1] == "§7.3: no stated reaction time; default 24 h"
        assert classify(text, T0, default_hours=48).deadline == T0 + dt.timedelta(hours=48)
    else:
        assert v.deadline == T0 + dt.timedelta(hours=hours)
        assert v.reasons[-1] == f"§7.3: the datacenter's stated reaction time, {hours} h"


@pytest.mark.parametrize(("text", "hours"), STATED)
def test_either_door_gives_the_same_verdict(text: str, hours: int | None) -> None:
    from ipsinfra.abuse import parse_complaint

    complaint = parse_complaint(("\n" + text + "\n").encode(), received_at=T0)
    assert complaint.dc_reaction_hours == hours
    by_intake = classify(complaint, complaint.received_at)
    assert classify(text, T0) == by_intake
    assert classify("\n" + text + "\n", T0) == by_intake


def test_the_callers_hours_win_over_the_texts() -> None:
    assert classify("spam; react within 12 hours", T0, 36).deadline == T0 + dt.timedelta(hours=36)


def test_immediate_categories_ignore_a_stated_time() -> None:
    assert classify("Your server hosts malware; react within 12 hours", T0).deadline == T0


def test_only_the_first_64_kib_are_read_by_either_door() -> None:
    from ipsinfra.abuse import parse_complaint
    from ipsinfra.abuse.intake import CLASSIFY_CHARS

    filler = "log line 192.0.2.7 ok\n" * (CLASSIFY_CHARS // 22 + 10)
    late = "Spam from 192.0.2.7.\n" + filler + "Please react within 2 hours.\n"
    assert classify(late, T0).deadline == T0 + dt.timedelta(hours=24)
    early = "Spam from 192.0.2.7. Please react within 2 hours.\n" + filler
    assert classify(early, T0).deadline == T0 + dt.timedelta(hours=2)
    for text in (late, early):
        complaint = parse_complaint(text.encode(), received_at=T0)
        assert classify(text, T0) == classify(complaint, complaint.received_at)
