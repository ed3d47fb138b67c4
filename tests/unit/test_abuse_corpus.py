"""The complaint corpus (tests/data/complaints) through parse_complaint + classify."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from ipsinfra.abuse import classify, parse_complaint

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
