"""Abuse complaints (§7): intake, verdict, the §7.2 cancellation rule, DNSBL look-ups,
letters and mail. Everything here is pure or protocol-level; blocking lives elsewhere.

Example::

    from ipsinfra.abuse import parse_complaint, classify, should_cancel
    complaint = parse_complaint(raw_bytes)
    verdict = classify(complaint, complaint.received_at)
"""

from __future__ import annotations

from ipsinfra.abuse.cancellation import Decision, should_cancel
from ipsinfra.abuse.classify import CATEGORIES, IMMEDIATE, CaseVerdict, RuleSet, Verdict, classify, load_rules
from ipsinfra.abuse.dnsbl import (
    BlockDecision,
    DnsblQueryFailed,
    DnsblResult,
    check,
    decide_block,
    decode,
)
from ipsinfra.abuse.formats import ReportCase
from ipsinfra.abuse.headers import AddressError
from ipsinfra.abuse.intake import (
    Complaint,
    ComplaintFormat,
    ComplaintRejected,
    ComplaintTooComplex,
    ComplaintTooLarge,
    IntakeLimits,
    MalformedComplaint,
    extract_ips,
    extract_reaction_hours,
    parse_complaint,
)
from ipsinfra.abuse.letters import (
    Letter,
    LetterDrafts,
    LetterKind,
    LetterTemplateError,
    draft_letters,
    render_letters,
)
from ipsinfra.abuse.mail import Delivery, LetterError, MailError, SendReport, SmtpConfig, send

__all__ = [
    "CATEGORIES",
    "IMMEDIATE",
    "AddressError",
    "BlockDecision",
    "CaseVerdict",
    "Complaint",
    "ComplaintFormat",
    "ComplaintRejected",
    "ComplaintTooComplex",
    "ComplaintTooLarge",
    "Decision",
    "Delivery",
    "DnsblQueryFailed",
    "DnsblResult",
    "IntakeLimits",
    "Letter",
    "LetterDrafts",
    "LetterError",
    "LetterKind",
    "LetterTemplateError",
    "MailError",
    "MalformedComplaint",
    "ReportCase",
    "RuleSet",
    "SendReport",
    "SmtpConfig",
    "Verdict",
    "check",
    "classify",
    "decide_block",
    "decode",
    "draft_letters",
    "extract_ips",
    "extract_reaction_hours",
    "load_rules",
    "parse_complaint",
    "render_letters",
    "send",
    "should_cancel",
]
