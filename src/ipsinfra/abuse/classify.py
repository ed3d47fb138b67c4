"""The verdict on a complaint (§7.2, §7.3): category, immediacy and deadline. Pure.

The rules are data (``rules.yml`` beside this module, loaded once).

The format's own type decides: a report case (an ARF ``Feedback-Type``, an
X-ARF ``Report-Type``, a Shadowserver report name, an ACNS notice, a Safe
Browsing list) is mapped to its category by ``format_types`` / ``report_types``
and the words around it do not change that. Keywords decide where no type is
given, or the type is one of ``general_types`` (ARF ``abuse``). Among keywords
(and among several cases of one IP) the most severe category wins, severity
being the order of ``rules.yml`` (csam, terrorism, spamhaus_sbl, malware,
botnet, exploit, virus, phishing, spam, ddos, copyright, scan, vulnerable;
nothing matched -> other).

A complaint with report cases gets a verdict per case (:attr:`Verdict.cases`);
``classify(complaint, ..., ip=x)`` is the verdict for the cases of one IP, the
one :func:`ipsinfra.abuse.handle.handle_complaint` acts on.

Example::

    >>> v = classify("Your host 192.0.2.7 serves Zeus malware", dt.datetime(2025, 3, 3, tzinfo=dt.UTC))
    >>> v.category, v.immediate, v.deadline.isoformat()
    ('malware', True, '2025-03-03T00:00:00+00:00')
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import ipaddress
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ipsinfra.abuse.formats.base import ReportCase
from ipsinfra.abuse.intake import CLASSIFY_CHARS, Complaint, ComplaintFormat, extract_reaction_hours
from ipsinfra.errors import InvalidInput
from ipsinfra.models import IPAddress

__all__ = [
    "CATEGORIES",
    "IMMEDIATE",
    "CaseVerdict",
    "Rule",
    "RuleSet",
    "Verdict",
    "classify",
    "load_rules",
]

MIN_DEFAULT_HOURS, MAX_DEFAULT_HOURS = 24, 48
OTHER = "other"


class CaseVerdict(BaseModel):
    """The verdict on one report case (one row of a report): its IP, its own type and what that means."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ip: str
    scheme: str
    report_type: str | None
    category: str
    immediate: bool
    deadline: dt.datetime
    observed_at: dt.datetime | None = None
    reason: str = ""
    evidence: str = ""


class Verdict(BaseModel):
    """What to do about a complaint and by when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str
    immediate: bool
    deadline: dt.datetime
    reasons: list[str]
    matched: list[str]
    cases: list[CaseVerdict] = Field(
        default_factory=list, description="one per report case (row) of the complaint, in its order"
    )

    @property
    def is_sbl(self) -> bool:
        return self.category == "spamhaus_sbl"


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    severity: int
    immediate: bool
    patterns: list[str]


def _union(patterns: list[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE) if patterns else None


class RuleSet:
    """Compiled rules. Build one with :func:`load_rules` (the shipped file) or from a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        try:
            self.rules = [Rule.model_validate(r) for r in data["categories"]]
            self.compiled = [
                [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in r.patterns] for r in self.rules
            ]
            self.ignore = [re.compile(p, re.IGNORECASE) for p in data.get("ignore", [])]
            # One search per match instead of one per pattern (each is linear, so is the union).
            self.any_negation = _union(data.get("negations", []))
            self.any_negation_after = _union(data.get("negations_after", []))
            self.report_types: dict[str, str] = {
                str(k).lower(): str(v) for k, v in (data.get("report_types") or {}).items()
            }
            self.format_types: dict[str, list[tuple[str, str]]] = {
                str(scheme).lower(): [(str(k).lower(), str(v)) for k, v in (types or {}).items()]
                for scheme, types in (data.get("format_types") or {}).items()
            }
            self.general_types = frozenset(str(t).lower() for t in data.get("general_types") or [])
        except (KeyError, TypeError, ValueError, re.error) as exc:
            raise InvalidInput(
                f"rules: value {type(exc).__name__}: the rule data is malformed: {exc}"
            ) from None
        severities = [r.severity for r in self.rules]
        if severities != sorted(severities, reverse=True):
            raise InvalidInput("rules.categories: value order: list categories from the most severe down")
        names = {r.name for r in self.rules}
        unknown = set(self.report_types.values()) - names
        if unknown:
            raise InvalidInput(f"rules.report_types: value {sorted(unknown)!r}: no such category")
        for scheme, pairs in self.format_types.items():
            bad = {v for _, v in pairs} - names - {OTHER}
            if bad:
                raise InvalidInput(f"rules.format_types.{scheme}: value {sorted(bad)!r}: no such category")

    @property
    def categories(self) -> list[str]:
        return [r.name for r in self.rules] + [OTHER]

    def immediate(self, category: str) -> bool:
        return any(r.name == category and r.immediate for r in self.rules)

    def rank(self, category: str) -> int:
        """0 for the most severe category; ``other`` (and anything unknown) last."""
        return next((i for i, r in enumerate(self.rules) if r.name == category), len(self.rules))

    def map_type(self, scheme: str | None, report_type: str) -> tuple[str, bool] | None:
        """The category a format's type means, and whether the type decides (False: a
        general type, text may win); None when the rules do not know it."""
        word = report_type.strip().lower()
        general = word in self.general_types
        for pattern, category in self.format_types.get((scheme or "").lower(), []):
            if fnmatch.fnmatchcase(word, pattern):
                return category, not general
        mapped = self.report_types.get(word)
        return (mapped, not general) if mapped else None


@functools.cache
def load_rules() -> RuleSet:
    """The rules shipped in the package (``ipsinfra/abuse/rules.yml``), loaded once."""
    text = resources.files("ipsinfra.abuse").joinpath("rules.yml").read_text(encoding="utf-8")
    return RuleSet(yaml.safe_load(text))


CATEGORIES: tuple[str, ...] = tuple(load_rules().categories)
IMMEDIATE: frozenset[str] = frozenset(c for c in CATEGORIES if load_rules().immediate(c))

# A clause ends at one of these characters or words.
_CLAUSE_END_CHARS = ".;:!?,\n"
_CLAUSE_END_WORD = re.compile(r"\bbut\b|\bно\b", re.IGNORECASE)
# How far back a negation is looked for. Bounded so that each match costs the
# same whatever came before it: scanning from the start of the text for every
# match was quadratic (118 s for a complaint naming 20,000 addresses).
_NEGATION_REACH = 200
# Distinct phrases kept per category (``spam\w*`` can match a million different words),
# and matches of one pattern read once its category has a (non-negated) hit.
_MAX_PHRASES = 50
_MAX_MATCHES = 500


def _negated(rules: RuleSet, text: str, start: int, end: int) -> bool:
    """Whether the clause before the match (at most ``_NEGATION_REACH`` characters back)
    or the 60 characters after it negate it."""
    clause_start = max(0, start - _NEGATION_REACH)
    clause_start = max(clause_start, *(text.rfind(c, clause_start, start) + 1 for c in _CLAUSE_END_CHARS))
    for m in _CLAUSE_END_WORD.finditer(text, clause_start, start):
        clause_start = m.end()
    before = text[clause_start:start]
    after = text[end : end + 60]
    return bool(
        (rules.any_negation is not None and rules.any_negation.search(before))
        or (rules.any_negation_after is not None and rules.any_negation_after.search(after))
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def classify(
    text: str | Complaint,
    received_at: dt.datetime,
    dc_reaction_hours: int | None = None,
    *,
    default_hours: int = 24,
    rules: RuleSet | None = None,
    ip: str | IPAddress | None = None,
) -> Verdict:
    """Classify a complaint and set its deadline.

    Args:
        text: the complaint's text, or a parsed :class:`Complaint` (its subject,
            report type and statement are read; its stated DC reaction time is
            used when ``dc_reaction_hours`` is not given). A plain text is read
            as :func:`~ipsinfra.abuse.parse_complaint` reads one: its first
            :data:`~ipsinfra.abuse.intake.CLASSIFY_CHARS` characters, and the
            reaction time it states ("within 12 hours", "в течение 6 часов") found
            by the intake's own :func:`~ipsinfra.abuse.extract_reaction_hours`, so
            the same text gets the same deadline by either door.
        received_at: when the complaint arrived; naive means UTC.
        dc_reaction_hours: the datacenter's stated reaction time; given, it wins
            over what the text states.
        default_hours: the deadline when the DC states none (§7.3: 24-48).
        ip: only the report cases of this IP decide (one verdict per IP of a
            report listing many); None: all of them, the most severe deciding,
            each case's own verdict in :attr:`Verdict.cases`.

    Immediate categories (§7.2, §7.3) get ``deadline == received_at``.

    Example::

        >>> t0 = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
        >>> classify("Spam from 192.0.2.7; please react within 12 hours.", t0).deadline.isoformat()
        '2025-03-03T12:00:00+00:00'
    """
    if not MIN_DEFAULT_HOURS <= default_hours <= MAX_DEFAULT_HOURS:
        raise InvalidInput(
            f"default_hours: value {default_hours!r}: must be {MIN_DEFAULT_HOURS}-{MAX_DEFAULT_HOURS} (§7.3)"
        )
    if dc_reaction_hours is not None and dc_reaction_hours < 0:
        raise InvalidInput(f"dc_reaction_hours: value {dc_reaction_hours!r}: must not be negative")
    rules = rules or load_rules()
    types: list[tuple[str | None, str]] = []
    cases: list[ReportCase] = []
    if isinstance(text, Complaint):
        if dc_reaction_hours is None:
            dc_reaction_hours = text.dc_reaction_hours
        cases = list(text.cases)
        if ip is not None:
            wanted = ipaddress.ip_address(str(ip))
            cases = [c for c in cases if c.ip == wanted]
        if cases:
            types = [(c.scheme, c.report_type) for c in cases if c.report_type]
        elif text.report_type:
            types = [(_SCHEME_OF_FORMAT.get(text.format), text.report_type)]
        body = text.text
    else:
        # As parse_complaint() makes a plain text its statement: stripped, and only the
        # first CLASSIFY_CHARS read (keyword rules and the reaction-time search alike).
        body = text.strip()[:CLASSIFY_CHARS]
        if dc_reaction_hours is None:
            dc_reaction_hours = extract_reaction_hours(body)
    received_at = _aware(received_at)
    hits, negated = _text_matches(rules, body)

    category, reasons = _decide(rules, types, hits)
    if negated:
        shown = sorted(negated)
        more = f" and {len(shown) - _MAX_PHRASES} more" if len(shown) > _MAX_PHRASES else ""
        reasons.append(f"ignored negated mentions: {', '.join(shown[:_MAX_PHRASES])}{more}")
    immediate, deadline, why = _deadline(rules, category, received_at, dc_reaction_hours, default_hours)
    reasons.append(why)

    per_case: list[CaseVerdict] = []
    for case in cases:
        one = [(case.scheme, case.report_type)] if case.report_type else []
        case_category, case_reasons = _decide(rules, one, hits)
        case_immediate, case_deadline, _ = _deadline(
            rules, case_category, received_at, dc_reaction_hours, default_hours
        )
        per_case.append(
            CaseVerdict(
                ip=str(case.ip),
                scheme=case.scheme,
                report_type=case.report_type,
                category=case_category,
                immediate=case_immediate,
                deadline=case_deadline,
                observed_at=case.observed_at,
                reason=case_reasons[0],
                evidence=case.evidence,
            )
        )

    matched = [f"{name}:{phrase}" for name in (r.name for r in rules.rules) for phrase in hits.get(name, ())]
    return Verdict(
        category=category,
        immediate=immediate,
        deadline=deadline,
        reasons=reasons,
        matched=matched,
        cases=per_case,
    )


# Whose vocabulary a complaint-level report type is, when the complaint has no cases.
_SCHEME_OF_FORMAT = {ComplaintFormat.ARF: "arf", ComplaintFormat.XARF: "xarf"}


def _decide(
    rules: RuleSet, types: Sequence[tuple[str | None, str]], hits: Mapping[str, tuple[str, ...]]
) -> tuple[str, list[str]]:
    """The category and why: a deciding type first, then keywords, then a general type."""
    deciding: list[tuple[str, str]] = []  # (category, reason)
    general: list[tuple[str, str]] = []
    for scheme, word in types:
        mapped = rules.map_type(scheme, word)
        if mapped is None:
            continue
        category, decides = mapped
        via = f" ({scheme})" if scheme else ""
        (deciding if decides else general).append((category, f"report type {word!r}{via} means {category}"))
    keyword = next((r.name for r in rules.rules if r.name in hits), None)
    reasons: list[str] = []
    if deciding:
        category, reason = min(deciding, key=lambda d: rules.rank(d[0]))
        reasons.append(reason)
        others = sorted({c for c, _ in deciding if c != category}, key=rules.rank)
        if others:
            reasons.append(f"other rows of the report (less severe): {', '.join(others)}")
        if keyword is not None and keyword != category:
            reasons.append(f"the text also names {keyword}; the report's own type decides")
        return category, reasons
    if keyword is not None:
        reasons.append(f"matched {keyword}: {', '.join(repr(p) for p in hits[keyword][:5])}")
        others = [name for name in (r.name for r in rules.rules) if name in hits and name != keyword]
        if others:
            reasons.append(f"also matched (less severe): {', '.join(others)}")
        return keyword, reasons
    if general:
        category, reason = min(general, key=lambda d: rules.rank(d[0]))
        return category, [reason]
    return OTHER, ["no category rule matched"]


def _deadline(
    rules: RuleSet,
    category: str,
    received_at: dt.datetime,
    dc_reaction_hours: int | None,
    default_hours: int,
) -> tuple[bool, dt.datetime, str]:
    """(immediate, deadline, why) for ``category`` (§7.2, §7.3)."""
    if rules.immediate(category):
        section = "§7.2" if category == "spamhaus_sbl" else "§7.3"
        return True, received_at, f"{section}: {category} needs an immediate reaction"
    if dc_reaction_hours is not None:
        return (
            False,
            received_at + dt.timedelta(hours=dc_reaction_hours),
            f"§7.3: the datacenter's stated reaction time, {dc_reaction_hours} h",
        )
    return (
        False,
        received_at + dt.timedelta(hours=default_hours),
        f"§7.3: no stated reaction time; default {default_hours} h",
    )


def _scan_text(rules: RuleSet, body: str) -> tuple[Mapping[str, tuple[str, ...]], frozenset[str]]:
    """The keyword hits per category (distinct phrases, in order) and the negated mentions.

    Called through :func:`_text_matches`, its cache: a report of many cases is
    classified once per IP over the same text. (Undecorated, so mutation testing
    reaches it; read-only results, so a cached answer cannot be changed.)
    """
    cleaned = body
    for pattern in rules.ignore:
        cleaned = pattern.sub(" ", cleaned)

    hits: dict[str, list[str]] = {}
    seen_phrases: dict[str, set[str]] = {}
    negated: set[str] = set()
    for rule, patterns in zip(rules.rules, rules.compiled, strict=True):
        for pattern in patterns:
            for count, m in enumerate(pattern.finditer(cleaned)):
                if count >= _MAX_MATCHES and rule.name in hits:
                    break  # the category is decided; more of the same only costs time
                phrase = m.group(0).strip()
                if _negated(rules, cleaned, m.start(), m.end()):
                    negated.add(f"{rule.name}:{phrase}")
                    continue
                found = hits.setdefault(rule.name, [])
                seen = seen_phrases.setdefault(rule.name, set())
                if phrase.lower() not in seen and len(seen) < _MAX_PHRASES:  # a set, not a list scan
                    seen.add(phrase.lower())
                    found.append(phrase)
    return MappingProxyType({k: tuple(v) for k, v in hits.items()}), frozenset(negated)


_text_matches = functools.lru_cache(maxsize=8)(_scan_text)
