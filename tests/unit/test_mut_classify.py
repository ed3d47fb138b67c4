"""classify: what the mutation run (issue 23) found unchecked — a later mention after a negated
one, case-blind ignore and negation patterns, report types that never override a keyword,
the clause and reach of a negation, and the exact reasons and deadlines."""

from __future__ import annotations

import datetime as dt
from importlib import resources

import pytest
import yaml

from ipsinfra.abuse import RuleSet, classify
from ipsinfra.abuse.intake import Complaint, ComplaintFormat
from ipsinfra.errors import InvalidInput

T0 = dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC)


def complaint(statement: str, report_type: str | None = None, **kw: object) -> Complaint:
    return Complaint.model_validate(
        {
            "id": "c1",
            "format": ComplaintFormat.PLAIN,
            "received_at": T0,
            "statement": statement,
            "report_type": report_type,
            **kw,
        }
    )


def test_a_mention_after_a_negated_one_still_counts() -> None:
    v = classify("We found no phishing here; but your server hosts a phishing page.", T0)
    assert v.category == "phishing"
    assert v.matched == ["phishing:phishing"]
    assert v.reasons[0] == "matched phishing: 'phishing'"
    assert "ignored negated mentions: phishing:phishing" in v.reasons


def test_a_negated_mention_alone_is_other() -> None:
    v = classify("We found no phishing here.", T0)
    assert v.category == "other"
    assert v.matched == []
    assert v.reasons == [
        "no category rule matched",
        "ignored negated mentions: phishing:phishing",
        "§7.3: no stated reaction time; default 24 h",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Attachment SCANNED BY our gateway: malware",  # ignore pattern, upper case
        "Message Checked For Viruses and found clean",
        "VIRUS-FREE mail",
    ],
)
def test_ignore_patterns_are_case_blind(text: str) -> None:
    v = classify(text, T0)
    assert v.category == "other", text
    assert v.matched == []


@pytest.mark.parametrize("text", ["NO phishing here", "There is NOT a phishing site", "WITHOUT phishing"])
def test_negations_are_case_blind(text: str) -> None:
    assert classify(text, T0).category == "other"


def test_negations_after_are_case_blind() -> None:
    assert classify("phishing NOT FOUND", T0).category == "other"
    assert classify("phishing was Not Detected on the host", T0).category == "other"
    assert classify("phishing page found", T0).category == "phishing"


def test_a_negation_reaches_only_its_own_clause() -> None:
    assert classify("no reason to doubt: phishing on your host", T0).category == "phishing"
    assert classify("there is no doubt, but phishing is hosted", T0).category == "phishing"
    assert classify("no doubt\nphishing is hosted", T0).category == "phishing"
    assert classify("no " + "x" * 210 + " phishing", T0).category == "phishing"  # beyond the reach
    assert classify("no " + "x" * 150 + " phishing", T0).category == "other"
    assert classify("phishing " + "x" * 70 + " not found", T0).category == "phishing"  # 60 chars after


def test_a_keyword_beats_the_report_type() -> None:
    v = classify(complaint("Your host serves Zeus malware", report_type="abuse"), T0)
    assert v.category == "malware"
    assert not any(r.startswith("report type") for r in v.reasons)


def test_the_report_type_decides_when_no_keyword_matched() -> None:
    v = classify(complaint("see the attached report", report_type="Harvesting"), T0)
    assert v.category == "spam"
    assert v.reasons[0] == "report type 'Harvesting' means spam"
    unknown = classify(complaint("see the attached report", report_type="weird"), T0)
    assert unknown.category == "other"


def test_the_complaints_stated_reaction_time_is_used_unless_given() -> None:
    c = complaint("see the attached report", dc_reaction_hours=6)
    assert classify(c, T0).deadline == T0 + dt.timedelta(hours=6)
    assert classify(c, T0, 2).deadline == T0 + dt.timedelta(hours=2)
    assert classify(c, T0, 0).deadline == T0
    assert classify(c, T0, 0).reasons[-1] == "§7.3: the datacenter's stated reaction time, 0 h"


@pytest.mark.parametrize("hours", [24, 48])
def test_default_hours_at_both_ends(hours: int) -> None:
    v = classify("something odd", T0, default_hours=hours)
    assert v.deadline == T0 + dt.timedelta(hours=hours)
    assert v.reasons[-1] == f"§7.3: no stated reaction time; default {hours} h"


@pytest.mark.parametrize("hours", [23, 49])
def test_default_hours_just_outside(hours: int) -> None:
    with pytest.raises(InvalidInput) as exc:
        classify("x", T0, default_hours=hours)
    assert str(exc.value) == f"default_hours: value {hours}: must be 24-48 (§7.3)"


def test_negative_reaction_time_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        classify("x", T0, -1)
    assert str(exc.value) == "dc_reaction_hours: value -1: must not be negative"


def test_immediate_reasons_name_the_section() -> None:
    sbl = classify("Listed in the Spamhaus SBL: SBL123456", T0, 10)
    assert sbl.is_sbl and sbl.immediate and sbl.deadline == T0
    assert sbl.reasons[-1] == "§7.2: spamhaus_sbl needs an immediate reaction"
    mal = classify("Zeus malware", T0, 10)
    assert not mal.is_sbl
    assert mal.reasons[-1] == "§7.3: malware needs an immediate reaction"


def test_reasons_list_less_severe_matches_and_at_most_five_phrases() -> None:
    rules = RuleSet(
        {
            "categories": [
                {"name": "bad", "severity": 2, "immediate": False, "patterns": [r"\bbad\d\b"]},
                {"name": "meh", "severity": 1, "immediate": False, "patterns": [r"\bmeh\b"]},
            ]
        }
    )
    v = classify("bad1 bad2 BAD2 bad3 bad4 bad5 bad6 meh", T0, rules=rules)
    assert v.category == "bad"
    assert v.reasons[:2] == [
        "matched bad: 'bad1', 'bad2', 'bad3', 'bad4', 'bad5'",
        "also matched (less severe): meh",
    ]
    assert v.matched == [f"bad:bad{i}" for i in range(1, 7)] + ["meh:meh"]


def test_rule_data_checks() -> None:
    one = {"name": "a", "severity": 1, "immediate": False, "patterns": ["x"]}
    with pytest.raises(InvalidInput) as exc:
        RuleSet({"categories": [one], "report_types": {"t": "nope"}})
    assert str(exc.value) == "rules.report_types: value ['nope']: no such category"
    with pytest.raises(InvalidInput) as order:
        RuleSet({"categories": [one, {**one, "name": "b", "severity": 2}]})
    assert str(order.value) == "rules.categories: value order: list categories from the most severe down"
    same = RuleSet({"categories": [one, {**one, "name": "b"}], "report_types": {"T": "a"}})
    assert same.categories == ["a", "b", "other"]
    assert same.immediate("a") is False and same.immediate("zzz") is False
    assert classify(complaint("nothing", report_type="t"), T0, rules=same).category == "a"


def shipped_rules() -> RuleSet:
    """A RuleSet built now from the shipped rules.yml (the module's own is built at import)."""
    text = resources.files("ipsinfra.abuse").joinpath("rules.yml").read_text(encoding="utf-8")
    return RuleSet(yaml.safe_load(text))


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Attachment SCANNED BY our gateway: malware", "other"),
        ("VIRUS-FREE mail", "other"),
        ("NO phishing here", "other"),
        ("WITHOUT phishing", "other"),
        ("phishing NOT FOUND", "other"),
        ("phishing page found", "phishing"),
        ("We found no phishing here; but your server hosts a phishing page.", "phishing"),
        ("Your host serves Zeus malware", "malware"),
    ],
)
def test_a_ruleset_built_from_the_shipped_data_decides_the_same(text: str, category: str) -> None:
    assert classify(text, T0, rules=shipped_rules()).category == category


def rules(**extra: object) -> RuleSet:
    return RuleSet(
        {
            "categories": [
                {"name": "bad", "severity": 3, "immediate": False, "patterns": [r"\bbad\d*\b"]},
                {"name": "meh", "severity": 2, "immediate": False, "patterns": [r"\bmeh\b", r"\bbad1\b"]},
                {"name": "low", "severity": 1, "immediate": False, "patterns": [r"\blow\b"]},
            ],
            "negations": [r"\bx\b", r"\bno\b"],
            "negations_after": [r"^\s*not found"],
            **extra,
        }
    )


def test_a_negation_stops_at_the_last_clause_end() -> None:
    assert classify("x. bad", T0, rules=rules()).category == "bad"  # the clause starts after the '.'
    assert classify("hello. no doubt. bad here", T0, rules=rules()).category == "bad"
    assert classify("hello. no doubt, bad here", T0, rules=rules()).category == "bad"
    assert classify("hello. No bad here", T0, rules=rules()).category == "other"


def test_the_negation_after_reads_sixty_characters() -> None:
    assert classify("bad" + " " * 51 + "not found", T0, rules=rules()).category == "other"
    assert classify("bad" + " " * 52 + "not found", T0, rules=rules()).category == "bad"


def test_ignored_text_cannot_match_a_rule() -> None:
    r = rules(ignore=[r"secret"])
    assert classify("secret", T0, rules=r).category == "other"
    only_xx = RuleSet(
        {
            "ignore": ["secret"],
            "categories": [{"name": "a", "severity": 1, "immediate": False, "patterns": ["x"]}],
        }
    )
    assert classify("secret", T0, rules=only_xx).category == "other"
    assert classify("SECRET", T0, rules=only_xx).category == "other"


def test_each_category_keeps_its_own_phrases() -> None:
    v = classify("bad1 meh low", T0, rules=rules())
    assert v.matched == ["bad:bad1", "meh:meh", "meh:bad1", "low:low"]
    assert v.reasons[:2] == ["matched bad: 'bad1'", "also matched (less severe): meh, low"]


def test_negated_mentions_are_listed_up_to_fifty() -> None:
    def negated_reason(n: int) -> str:
        v = classify(". ".join(f"no bad{i}" for i in range(10, 10 + n)), T0, rules=rules())
        assert v.category == "other"
        return next(r for r in v.reasons if r.startswith("ignored negated mentions: "))

    assert negated_reason(2) == "ignored negated mentions: bad:bad10, bad:bad11"
    assert negated_reason(50).endswith(", bad:bad59")
    assert negated_reason(52).endswith(", bad:bad59 and 2 more")  # the first 50 in sorted order


def test_at_most_fifty_phrases_per_category() -> None:
    v = classify(" ".join(f"bad{i}" for i in range(2, 60)), T0, rules=rules())
    assert v.matched == [f"bad:bad{i}" for i in range(2, 52)]


def test_matches_after_five_hundred_are_not_read_once_decided() -> None:
    v = classify("bad2 " * 500 + "bad3", T0, rules=rules())
    assert v.matched == ["bad:bad2"]
    # ... but while every match so far was negated, the scan goes on
    late = classify("no bad2. " * 500 + "bad3", T0, rules=rules())
    assert late.category == "bad"
    assert late.matched == ["bad:bad3"]


def test_malformed_rule_data_names_the_error() -> None:
    with pytest.raises(InvalidInput) as exc:
        RuleSet({})
    assert str(exc.value) == "rules: value KeyError: the rule data is malformed: 'categories'"


# --------------------------------------------------- report types and cases (issue 21's classify, issue 23)


def typed_rules() -> RuleSet:
    """Three categories whose severity order is not their alphabetical order, and two general types."""
    return RuleSet(
        {
            "categories": [
                {"name": "zeta", "severity": 3, "immediate": False, "patterns": [r"\bzzz\b"]},
                {"name": "yank", "severity": 2, "immediate": False, "patterns": [r"\byyy\b"]},
                {"name": "alpha", "severity": 1, "immediate": False, "patterns": [r"\baaa\b"]},
            ],
            "report_types": {"z": "zeta", "y": "yank", "a": "alpha", "g-low": "alpha", "g-high": "zeta"},
            "general_types": ["G-Low", "g-high"],
        }
    )


def case(ip: str, report_type: str | None, **kw: object) -> dict[str, object]:
    return {"ip": ip, "scheme": "csv", "report_type": report_type, **kw}


def test_the_most_severe_row_decides_and_the_others_are_listed_by_severity() -> None:
    cases = [case("192.0.2.1", "a"), case("192.0.2.2", "y"), case("192.0.2.3", "z"), case("192.0.2.4", "a")]
    v = classify(complaint("see the report", cases=cases), T0, rules=typed_rules())
    assert v.category == "zeta"
    assert v.reasons[:2] == [
        "report type 'z' (csv) means zeta",
        "other rows of the report (less severe): yank, alpha",
    ]
    assert not any("also names" in r for r in v.reasons)  # no keyword in the text


def test_an_unknown_row_type_does_not_hide_the_rows_after_it() -> None:
    cases = [case("192.0.2.1", "weird"), case("192.0.2.2", "y")]
    v = classify(complaint("see the report", cases=cases), T0, rules=typed_rules())
    assert v.category == "yank"
    assert v.reasons[0] == "report type 'y' (csv) means yank"


def test_general_types_decide_by_severity_only_without_a_keyword() -> None:
    cases = [case("192.0.2.1", "g-low"), case("192.0.2.2", "G-HIGH")]
    r = typed_rules()
    assert r.map_type(None, "g-low") == ("alpha", False)  # the rule data's case does not matter
    assert r.map_type("csv", " z ") == ("zeta", True)
    v = classify(complaint("see the report", cases=cases), T0, rules=r)
    assert (v.category, v.reasons[0]) == ("zeta", "report type 'G-HIGH' (csv) means zeta")
    assert classify(complaint("see the report: aaa", cases=cases), T0, rules=r).category == "alpha"


def test_each_case_gets_its_own_verdict_with_what_the_row_said() -> None:
    seen = dt.datetime(2026, 3, 3, 1, 2, 3, tzinfo=dt.UTC)
    cases = [
        case("192.0.2.1", "y", observed_at=seen, evidence="row 1"),
        case("2001:db8::1", None, evidence="row 2"),  # no type: the text (yyy? no: aaa) decides
    ]
    c = complaint("see the report; aaa", cases=cases, dc_reaction_hours=6)
    v = classify(c, T0, rules=typed_rules())
    assert [cv.model_dump() for cv in v.cases] == [
        {
            "ip": "192.0.2.1",
            "scheme": "csv",
            "report_type": "y",
            "category": "yank",
            "immediate": False,
            "deadline": T0 + dt.timedelta(hours=6),
            "observed_at": seen,
            "reason": "report type 'y' (csv) means yank",
            "evidence": "row 1",
        },
        {
            "ip": "2001:db8::1",
            "scheme": "csv",
            "report_type": None,
            "category": "alpha",
            "immediate": False,
            "deadline": T0 + dt.timedelta(hours=6),
            "observed_at": None,
            "reason": "matched alpha: 'aaa'",
            "evidence": "row 2",
        },
    ]


def test_a_complaint_level_arf_type_is_read_in_arfs_vocabulary() -> None:
    # "auth-failure" is only in the ARF map (-> other, and it decides): the text's "spam" does not win
    arf = complaint("spam spam spam", report_type="auth-failure", format=ComplaintFormat.ARF)
    v = classify(arf, T0)
    assert v.category == "other"
    assert v.reasons[0] == "report type 'auth-failure' (arf) means other"
    assert v.reasons[1] == "the text also names spam; the report's own type decides"


def test_an_aware_received_time_keeps_its_zone() -> None:
    msk = dt.timezone(dt.timedelta(hours=3))
    at = dt.datetime(2026, 3, 3, 15, 0, tzinfo=msk)  # 12:00 UTC
    v = classify("something odd", at)
    assert v.deadline == T0 + dt.timedelta(hours=24)
    assert v.deadline.utcoffset() == dt.timedelta(hours=3)
