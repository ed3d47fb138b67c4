"""The complaint corpus (tests/data/complaints) through parse_complaint + classify."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from ipsinfra.abuse import ComplaintFormat, classify, parse_complaint

CORPUS = Path(__file__).resolve().parent.parent / "data" / "complaints"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yml").read_text(encoding="utf-8"))
TXT_RECEIVED = dt.datetime(2025, 3, 15, 12, 0, tzinfo=dt.UTC)


def test_corpus_is_complete() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.suffix in {".eml", ".txt"}}
    assert files == set(EXPECTED), "every corpus file needs an entry in expected.yml and vice versa"
    assert len(files) >= 20


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus(name: str) -> None:
    want = EXPECTED[name]
    raw = (CORPUS / name).read_bytes()
    complaint = parse_complaint(raw, received_at=TXT_RECEIVED if name.endswith(".txt") else None)
    verdict = classify(complaint, complaint.received_at)

    assert complaint.format.value == want["format"]
    assert [str(t) for t in (*complaint.ips, *complaint.networks)] == [str(t) for t in want["targets"]]
    assert complaint.dc_reaction_hours == want.get("dc_hours")
    assert complaint.sbl_ref == want.get("sbl")
    assert verdict.category == want["category"], verdict.reasons
    assert verdict.immediate is want["immediate"]
    if want["hours"] is None:
        assert verdict.deadline == complaint.received_at
    else:
        assert verdict.deadline - complaint.received_at == dt.timedelta(hours=want["hours"])
    if "cases" in want:
        assert [[c.ip, c.report_type, c.category] for c in verdict.cases] == [
            [str(ip), str(rtype), category] for ip, rtype, category in want["cases"]
        ]
        assert [str(c.ip) for c in complaint.cases] == [c.ip for c in verdict.cases]
        for case in verdict.cases:  # one IP's verdict is its own rows' (what handle acts on)
            alone = classify(complaint, complaint.received_at, ip=case.ip)
            rows = [c for c in verdict.cases if c.ip == case.ip]
            assert alone.category in {c.category for c in rows}, alone.reasons
            assert alone.immediate is any(c.immediate for c in rows)


def _verdict_matches(name: str) -> list[str]:
    """What of sample ``name`` differs from expected.yml (format, targets, category,
    immediacy, each case's type and category); empty when it is handled."""
    want = EXPECTED[name]
    raw = (CORPUS / name).read_bytes()
    complaint = parse_complaint(raw, received_at=TXT_RECEIVED if name.endswith(".txt") else None)
    verdict = classify(complaint, complaint.received_at)
    wrong: list[str] = []
    if complaint.format.value != want["format"]:
        wrong.append(f"format {complaint.format.value}")
    if [str(t) for t in (*complaint.ips, *complaint.networks)] != [str(t) for t in want["targets"]]:
        wrong.append("targets")
    if (verdict.category, verdict.immediate) != (want["category"], want["immediate"]):
        wrong.append(f"category {verdict.category}")
    if "cases" in want and [[c.ip, c.report_type, c.category] for c in verdict.cases] != [
        [str(ip), str(rtype), category] for ip, rtype, category in want["cases"]
    ]:
        wrong.append("cases")
    return wrong


def test_corpus_score_and_format_coverage() -> None:
    """The corpus score (issue 21: "38 of 97 handled"): every sample handled (a verdict,
    the reported IPs, a category), and every ComplaintFormat has at least one sample."""
    failing = {name: wrong for name in sorted(EXPECTED) if (wrong := _verdict_matches(name))}
    handled = len(EXPECTED) - len(failing)
    assert not failing, f"corpus score {handled}/{len(EXPECTED)}; not handled: {failing}"

    covered: dict[str, int] = {}
    for want in EXPECTED.values():
        covered[want["format"]] = covered.get(want["format"], 0) + 1
    unknown = set(covered) - {f.value for f in ComplaintFormat}
    assert not unknown, f"expected.yml names formats that do not exist: {sorted(unknown)}"
    missing = [f.value for f in ComplaintFormat if covered.get(f.value, 0) < 1]
    assert not missing, f"formats without a corpus sample: {missing} (covered: {covered})"
    assert len(covered) == len(ComplaintFormat)


def test_every_structured_sample_states_its_cases() -> None:
    """A sample of a structured format lists its cases (IP, own type, category) in expected.yml:
    its type, not the words around it, is what is being tested."""
    free_text = {ComplaintFormat.PLAIN.value, ComplaintFormat.MIME.value, ComplaintFormat.DC_FORWARD.value}
    without = [n for n, w in EXPECTED.items() if w["format"] not in free_text and "cases" not in w]
    assert without == []
