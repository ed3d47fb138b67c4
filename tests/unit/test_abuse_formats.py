"""Issue 21: complaint formats — the format's own type decides, one report is many cases,
and attachments are decompressed within bounds (a zip bomb is a refusal, not a blow-up)."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import time
import tracemalloc
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from ipsinfra.abuse import (
    ComplaintTooComplex,
    ComplaintTooLarge,
    IntakeLimits,
    MalformedComplaint,
    RuleSet,
    classify,
    load_rules,
    parse_complaint,
)
from ipsinfra.abuse.formats.archive import Budget, expand
from ipsinfra.abuse.formats.arf import source_ip_from_received
from ipsinfra.abuse.formats.base import FormatRejected, parse_time
from ipsinfra.abuse.formats.csvreport import parse_csv, report_type_of
from ipsinfra.abuse.formats.netcraft import parse_netcraft
from ipsinfra.abuse.formats.projecthoneypot import parse_projecthoneypot
from ipsinfra.abuse.formats.safebrowsing import parse_safebrowsing_text
from ipsinfra.abuse.formats.spamhaus import parse_spamhaus
from ipsinfra.abuse.intake import ComplaintFormat
from ipsinfra.errors import InvalidInput

T0 = dt.datetime(2025, 3, 5, 12, 0, tzinfo=dt.UTC)
SCAN_DNS_HEADER = '"timestamp","severity","ip","protocol","port","hostname","tag","asn","geo"\n'


BODY = "Please find attached the report. It covers botnet drones and malware infections.\n"


def report_mail(
    filename: str, data: bytes, maintype: str = "application", subtype: str = "zip", body: str = BODY
) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Shadowserver Autoreports <autoreports@shadowserver.example>"
    msg["To"] = "abuse@ourhost.example.net"
    msg["Subject"] = "[Shadowserver Report] 2025-03-05"
    msg["Date"] = "Wed, 05 Mar 2025 11:02:19 +0000"
    msg.set_content(body)
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def scan_rows(ips: list[str]) -> bytes:
    rows = "".join(
        f'"2025-03-05 03:12:44","medium","{ip}","udp",53,,"openresolver",64496,"NL"\n' for ip in ips
    )
    return (SCAN_DNS_HEADER + rows).encode()


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


# --------------------------------------------------------------------------- one report, many cases


@pytest.mark.parametrize(
    ("filename", "wrap", "subtype"),
    [
        ("2025-03-05-scan_dns-x-asn.csv", lambda b: b, "csv"),
        ("2025-03-05-scan_dns-x-asn.csv.gz", gzip.compress, "gzip"),
        ("2025-03-05-scan_dns-x-asn.csv.zip", lambda b: zipped({"2025-03-05-scan_dns-x-asn.csv": b}), "zip"),
    ],
    ids=["plain", "gz", "zip"],
)
def test_every_shadowserver_row_is_a_case_plain_gz_or_zip(filename: str, wrap: object, subtype: str) -> None:
    ips = ["192.0.2.10", "192.0.2.11", "198.51.100.7", "2001:db8::53"]
    maintype = "text" if subtype == "csv" else "application"
    raw = report_mail(filename, wrap(scan_rows(ips)), maintype, subtype)  # type: ignore[operator]
    complaint = parse_complaint(raw)
    assert complaint.format is ComplaintFormat.SHADOWSERVER
    assert [str(c.ip) for c in complaint.cases] == ips
    assert [str(i) for i in complaint.ips] == ips
    assert {c.report_type for c in complaint.cases} == {"scan_dns"}
    assert complaint.cases[0].observed_at == dt.datetime(2025, 3, 5, 3, 12, 44, tzinfo=dt.UTC)
    verdict = classify(complaint, complaint.received_at)
    # the body says "botnet" and "malware"; the report's own type decides
    assert verdict.category == "vulnerable" and not verdict.immediate, verdict.reasons
    assert "the text also names malware; the report's own type decides" in verdict.reasons
    assert [c.category for c in verdict.cases] == ["vulnerable"] * 4


def test_a_row_of_its_own_type_gets_its_own_verdict() -> None:
    csv_text = (
        "timestamp,report_type,ip,port\n"
        "2025-03-05 01:00:00,event4_sinkhole,192.0.2.1,80\n"
        "2025-03-05 02:00:00,scan_ssh,192.0.2.2,22\n"
        "2025-03-05 03:00:00,event4_honeypot_ddos_target,192.0.2.3,0\n"
    )
    complaint = parse_complaint(report_mail("export.csv", csv_text.encode(), "text", "csv"))
    assert complaint.format is ComplaintFormat.SHADOWSERVER  # a report_type column: their vocabulary
    verdict = classify(complaint, complaint.received_at)
    assert [(c.ip, c.category, c.immediate) for c in verdict.cases] == [
        ("192.0.2.1", "botnet", True),
        ("192.0.2.2", "vulnerable", False),
        ("192.0.2.3", "other", False),
    ]
    assert verdict.category == "botnet"
    assert classify(complaint, complaint.received_at, ip="192.0.2.2").category == "vulnerable"
    assert classify(complaint, complaint.received_at, ip="192.0.2.3").category == "other"


def test_a_generic_csv_reads_its_type_column() -> None:
    csv_text = "ip,type,first_seen\n203.0.113.5,phishing,2025-03-05T01:00:00Z\n203.0.113.6,weird,\n"
    complaint = parse_complaint(report_mail("feed.csv", csv_text.encode(), "text", "csv"))
    assert complaint.format is ComplaintFormat.CSV_REPORT
    verdict = classify(complaint, complaint.received_at)
    # an unknown type says nothing: the text decides that row (the body names malware)
    assert [(c.ip, c.report_type, c.category) for c in verdict.cases] == [
        ("203.0.113.5", "phishing", "phishing"),
        ("203.0.113.6", "weird", "malware"),
    ]


def test_report_rows_are_capped_and_the_cut_is_reported() -> None:
    ips = [f"198.51.100.{i}" for i in range(1, 21)]
    raw = report_mail("2025-03-05-scan_dns-x.csv", scan_rows(ips), "text", "csv")
    complaint = parse_complaint(raw, limits=IntakeLimits(max_cases=5))
    assert [str(c.ip) for c in complaint.cases] == ips[:5]
    assert any("max_cases" in note for note in complaint.truncated)


def test_a_csv_without_an_ip_column_is_no_report() -> None:
    complaint = parse_complaint(
        report_mail("invoice.csv", b"item,price\nwidget,3\n", "text", "csv", "Spam from 203.0.113.9.")
    )
    assert complaint.cases == () and [str(i) for i in complaint.ips] == ["203.0.113.9"]
    assert classify(complaint, complaint.received_at).category == "spam"


def test_shadowserver_file_names_and_times() -> None:
    assert report_type_of("2024-07-04-dns_openresolver-123-sample-asn.csv") == "dns_openresolver"
    assert report_type_of("2020-04-03-scan_ics-sample-asn-delayed.csv") == "scan_ics"
    assert report_type_of("report.csv") is None
    assert parse_time("2025-03-05 03:12:44") == dt.datetime(2025, 3, 5, 3, 12, 44, tzinfo=dt.UTC)
    assert parse_time("Tue, 04 Mar 2025 11:40:12 +0000") == dt.datetime(2025, 3, 4, 11, 40, 12, tzinfo=dt.UTC)
    assert parse_time("yesterday") is None
    [case] = parse_csv(
        "2025-03-05-event4_sinkhole-x.csv", "timestamp,src_ip,dst_ip\n,192.0.2.9,203.0.113.1\n", 9
    )
    assert str(case.ip) == "192.0.2.9" and case.report_type == "event4_sinkhole"  # src, not the sinkhole


def test_arf_source_from_the_top_received_only() -> None:
    assert (
        str(source_ip_from_received(["from a.example (a.example [192.0.2.1]) by mx.example"])) == "192.0.2.1"
    )
    assert str(source_ip_from_received(["from [IPv6:2001:db8::25] by mx.example; date"])) == "2001:db8::25"
    # the top one is the reporter's own MTA; lower ones are the sender's claims
    chain = ["from x.example (x.example [198.51.100.5]) by mx", "from [192.0.2.250] by x.example"]
    assert str(source_ip_from_received(chain)) == "198.51.100.5"
    assert source_ip_from_received(["by mx.example with ESMTP id 1 from [192.0.2.1]"]) is None
    assert source_ip_from_received([]) is None


# --------------------------------------------------------------------------- the type decides


def test_type_decides_text_only_without_a_type() -> None:
    rules = load_rules()
    assert rules.map_type("shadowserver", "scan_dns") == ("vulnerable", True)
    assert rules.map_type("shadowserver", "event4_honeypot_ddos_target") == ("other", True)
    assert rules.map_type("shadowserver", "event6_sinkhole_http") == ("botnet", True)
    assert rules.map_type("safebrowsing", "1") == ("phishing", True)
    assert rules.map_type("acns", "bittorrent") == ("copyright", True)
    assert rules.map_type("arf", "abuse") == ("spam", False)  # general: a keyword may win
    assert rules.map_type("xarf", "openservice") == ("vulnerable", True)
    assert rules.map_type("shadowserver", "harvesting") == ("spam", True)  # the flat map
    assert rules.map_type("cleanmx", "JS/Decdec_psc") == ("malware", True)
    assert rules.map_type("arf", "no-such-type") is None


def test_format_types_name_known_categories() -> None:
    base = {"categories": [{"name": "a", "severity": 1, "immediate": False, "patterns": ["x"]}]}
    with pytest.raises(InvalidInput) as exc:
        RuleSet({**base, "format_types": {"csv": {"x*": "nope"}}})
    assert str(exc.value) == "rules.format_types.csv: value ['nope']: no such category"
    ok = RuleSet({**base, "format_types": {"csv": {"x*": "other", "y": "a"}}})
    assert ok.map_type("csv", "XY") == ("other", True)


# --------------------------------------------------------------------------- other formats


def test_xarf_json_in_an_arf_envelope() -> None:
    doc = {
        "Version": "3",
        "Report": {
            "ReportClass": "Activity",
            "ReportType": "PortScan",
            "Date": "2025-03-05T10:00:00Z",
            "SourceIp": "2001:db8::7",
        },
    }
    raw = (
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b1"\n'
        "From: XARF <reports@xarf.example>\nSubject: XARF\nMIME-Version: 1.0\n\n"
        "--b1\nContent-Type: text/plain\n\nThe human readable description: malware found.\n"
        "--b1\nContent-Type: message/feedback-report\n\nFeedback-Type: xarf\nUser-Agent: X/1\nVersion: 1\n"
        "--b1\nContent-Type: application/json; name=xarf.json\n\n"
        f"{json.dumps(doc)}\n--b1--\n"
    )
    complaint = parse_complaint(raw, received_at=T0)
    assert complaint.format is ComplaintFormat.XARF and complaint.report_type == "portscan"
    assert [str(i) for i in complaint.ips] == ["2001:db8::7"]
    verdict = classify(complaint, T0)
    assert verdict.category == "scan" and not verdict.immediate, verdict.reasons  # not the text's malware


def test_acns_doctype_is_refused_before_parsing() -> None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        "<Infringement><Source><IP_Address>&lol2;</IP_Address></Source></Infringement>"
    )
    raw = f"From: p2p@agent.example\nSubject: Notice\nDate: Wed, 05 Mar 2025 11:00:00 +0000\n\n{laughs}\n"
    with pytest.raises(ComplaintTooComplex, match="DOCTYPE or ENTITY declaration is refused"):
        parse_complaint(raw)


def test_acns_without_an_address_is_malformed() -> None:
    raw = (
        "From: p2p@agent.example\nSubject: Notice\nDate: Wed, 05 Mar 2025 11:00:00 +0000\n\n"
        "<Infringement><Source><IP_Address>n/a</IP_Address></Source></Infringement>\n"
    )
    with pytest.raises(MalformedComplaint, match="Source/IP_Address value 'n/a'"):
        parse_complaint(raw)


def test_deep_json_is_refused() -> None:
    deep = "{" + '"a":[' * 5000 + "]" * 5000 + "}"
    raw = report_mail("xarf.json", deep.encode(), "application", "json")
    with pytest.raises(ComplaintTooComplex, match="JSON nested too deep"):
        parse_complaint(raw)


# --------------------------------------------------------------------------- bounded decompression


def _bounded(raw: bytes) -> tuple[Exception, float, float]:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        parse_complaint(raw)
    except Exception as exc:
        outcome = exc
    else:
        raise AssertionError("the bomb was accepted")
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    return outcome, seconds, peak


def test_a_zip_bomb_is_refused_without_expanding_it() -> None:
    bomb = zipped({"2025-03-05-scan_dns-x.csv": b"0" * (64 * 1024 * 1024)})  # 64 MiB in ~64 KB
    assert len(bomb) < 128 * 1024
    outcome, seconds, peak = _bounded(report_mail("report.zip", bomb))
    assert isinstance(outcome, ComplaintTooLarge), outcome
    assert "max_compression_ratio" in str(outcome) and "zip bomb is refused" in str(outcome)
    # a zip member stops at ratio x its compressed size: ~13 MB here, never the 64 MiB
    assert seconds < 2 and peak < 40, (seconds, peak)


def test_a_gzip_bomb_is_refused_without_expanding_it() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    outcome, seconds, peak = _bounded(
        report_mail("2025-03-05-scan_dns-x.csv.gz", bomb, "application", "gzip")
    )
    assert isinstance(outcome, ComplaintTooLarge), outcome
    assert "max_compression_ratio" in str(outcome)
    assert seconds < 2 and peak < 40, (seconds, peak)


def test_attachments_past_the_total_size_are_refused() -> None:
    data = scan_rows([f"192.0.2.{i}" for i in range(1, 200)])
    raw = report_mail("2025-03-05-scan_dns-x.csv", data, "text", "csv")
    with pytest.raises(ComplaintTooLarge, match=r"max_attachment_bytes"):
        parse_complaint(raw, limits=IntakeLimits(max_attachment_bytes=1000))


def test_too_many_archive_members_are_refused_before_reading() -> None:
    many = zipped({f"f{i}.csv": b"ip\n192.0.2.1\n" for i in range(101)})
    with pytest.raises(ComplaintTooComplex, match=r"members>100: .*max_archive_members"):
        parse_complaint(report_mail("many.zip", many))


@pytest.mark.parametrize(
    ("name", "data", "why"),
    [
        ("r.csv.gz", gzip.compress(b"ip\n192.0.2.1\n" * 100)[:-20], "the gzip data ends early"),
        ("r.zip", b"PK\x03\x04" + b"\0" * 40, "not a readable zip"),
        ("r.csv.gz", b"\x1f\x8bnot gzip at all", "not readable gzip"),
    ],
    ids=["truncated-gzip", "broken-zip", "not-gzip"],
)
def test_broken_archives_are_malformed(name: str, data: bytes, why: str) -> None:
    with pytest.raises(MalformedComplaint, match=why):
        parse_complaint(report_mail(name, data))


def test_budget_counts_across_attachments() -> None:
    budget = Budget(max_bytes=100, max_ratio=100, max_members=10)
    assert expand("a.csv", b"x" * 60, budget) == [("a.csv", b"x" * 60)]
    with pytest.raises(FormatRejected) as exc:
        expand("b.csv", b"y" * 60, budget)
    assert exc.value.kind == "large"


def test_an_unreadable_csv_or_json_attachment_is_evidence_with_a_note() -> None:
    raw = report_mail("events.json", b'{"a": 1}\n{"b": 2}\n', "application", "json", "Spam from 203.0.113.9.")
    complaint = parse_complaint(raw)
    assert [str(i) for i in complaint.ips] == ["203.0.113.9"] and complaint.cases == ()
    assert any("events.json" not in n and "not JSON; read as evidence only" in n for n in complaint.truncated)
    huge_field = b"ip,x\n192.0.2.1," + b"a" * 200_000 + b"\n"  # past the csv module's field limit
    raw = report_mail("r.csv", huge_field, "text", "csv", "Spam from 203.0.113.9.")
    complaint = parse_complaint(raw)
    assert complaint.cases == () and any("not readable CSV" in n for n in complaint.truncated)


# --------------------------------------------------------------------------- notifiers (issue 21, part 2)

CORPUS_DIR = Path(__file__).resolve().parent.parent / "data" / "complaints"

NETCRAFT_BODY = (
    "An IP address in your network is taking part in a brute force attack.\n\n"
    "Date\tSource IP\tTarget IP\n"
    "2025-03-06 23:29:58\t203.0.113.147\t198.51.100.0/24\n"
    "2025-03-06 23:24:30\t203.0.113.147\t198.51.100.0/24\n"
    "2025-03-06 23:20:00\t203.0.113.148\t198.51.100.7\n\n"
    "Netcraft Issue Number: 31415926\n"
)


def plain_mail(subject: str, body: str, sender: str = "someone@notifier.example") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "abuse@ourhost.example.net"
    msg["Subject"] = subject
    msg["Date"] = "Thu, 06 Mar 2025 23:30:41 +0000"
    msg.set_content(body)
    return msg.as_bytes()


def test_netcraft_reports_the_source_column_never_the_sensor() -> None:
    cases = parse_netcraft("Issue 31415926: Brute force attack at 203.0.113.147", NETCRAFT_BODY, 10)
    assert [(str(c.ip), c.report_type) for c in cases] == [
        ("203.0.113.147", "brute force attack"),
        ("203.0.113.148", "brute force attack"),
    ]
    assert cases[0].observed_at == dt.datetime(2025, 3, 6, 23, 29, 58, tzinfo=dt.UTC)  # the latest event
    complaint = parse_complaint(
        plain_mail("Issue 31415926: Brute force attack at 203.0.113.147", NETCRAFT_BODY)
    )
    assert complaint.format is ComplaintFormat.NETCRAFT
    assert [str(t) for t in (*complaint.ips, *complaint.networks)] == ["203.0.113.147", "203.0.113.148"]
    assert classify(complaint, T0).category == "scan"


def test_netcraft_needs_its_issue_line_and_a_matching_subject() -> None:
    subject = "Issue 31415926: Brute force attack at 203.0.113.147"
    assert parse_netcraft(subject, NETCRAFT_BODY.replace("Netcraft Issue Number", "Ticket"), 10) == []
    assert parse_netcraft("Issue 27182818: Brute force attack at 203.0.113.147", NETCRAFT_BODY, 10) == []
    assert parse_netcraft("Brute force attack at 203.0.113.147", NETCRAFT_BODY, 10) == []
    # Without the marker it is free text: the words decide, and the table's sensor range is read too.
    complaint = parse_complaint(plain_mail(subject, NETCRAFT_BODY.replace("Netcraft Issue Number", "Ticket")))
    assert complaint.format is ComplaintFormat.PLAIN and complaint.cases == ()
    assert "198.51.100.0/24" in [str(n) for n in complaint.networks]


def test_netcraft_without_a_table_reports_the_subject_address() -> None:
    body = "We have discovered a mail server sending fraudulent mail.\nNetcraft Issue Number: 12345678\n"
    cases = parse_netcraft("Issue 12345678: Server involved in fraud at 192.0.2.61", body, 10)
    assert [(str(c.ip), c.report_type) for c in cases] == [("192.0.2.61", "server involved in fraud")]
    assert load_rules().map_type("netcraft", "server involved in fraud") == ("phishing", True)


PHP_BODY = (
    "Project Honey Pot Monitor\n\n"
    "192.0.2.90 (H)\n  - Mar 8, 2025 21:14:03\n"
    "198.51.100.91 (R)\n  - 2025-03-08 23:40:52\n"
)


def test_projecthoneypot_letters_are_its_types() -> None:
    cases = parse_projecthoneypot(PHP_BODY, 10)
    assert [(str(c.ip), c.report_type) for c in cases] == [
        ("192.0.2.90", "harvester"),
        ("198.51.100.91", "rule breaker"),
    ]
    assert cases[0].observed_at == dt.datetime(2025, 3, 8, 21, 14, 3, tzinfo=dt.UTC)
    rules = load_rules()
    assert rules.map_type("projecthoneypot", "harvester") == ("spam", True)
    assert rules.map_type("projecthoneypot", "rule breaker") == ("other", True)  # a robots.txt breaker
    assert parse_projecthoneypot(PHP_BODY, 1) == cases[:1]
    assert parse_projecthoneypot(PHP_BODY.replace("Project Honey Pot", "Our honeypots"), 10) == []


PHP_FREE = (
    "Project Honey Pot - Monitor\n\n"
    "IPs Engaged In Harvesting On Your Network:\n192.0.2.90\n\n"
    "IPs Engaged In Email Spam On Your Network:\nnone\n\n"
    "IPs Engaged In Dictionary Attacks On Your Network:\n198.51.100.92\n2001:db8:92::1\n\n"
    "Other Potentially Suspicious IPs On Your Network:\n203.0.113.93\n\n"
    "192.0.2.250 is named after the lists: no type\n"
)


def test_projecthoneypot_free_notice_headings_are_its_types() -> None:
    cases = parse_projecthoneypot(PHP_FREE, 10)
    assert [(str(c.ip), c.report_type) for c in cases] == [
        ("192.0.2.90", "harvester"),
        ("198.51.100.92", "dictionary attacker"),
        ("2001:db8:92::1", "dictionary attacker"),
        ("203.0.113.93", "suspicious"),
    ]
    assert load_rules().map_type("projecthoneypot", "suspicious") == ("other", True)
    assert parse_projecthoneypot(PHP_FREE.replace("Project Honey Pot", "Honeypots R Us"), 10) == []


SB_TEXT = (
    "Google Safe Browsing Alerts for Network Administrators\n"
    "hxxp://before-any-heading.example/ (192.0.2.1)\n"
    "Social engineering\n"
    "hxxp://secure-login.bank.example/signin/ (203.0.113.52)\n"
    "http://no-address.example/x\n"
    "Malicious software (2)\n"
    "hxxp://203.0.113.53/files/invoice.exe\n"
    "http://cdn.example/u.js [2001:db8:53::1]\n"
)


def test_safebrowsing_text_headings_are_the_list_types() -> None:
    cases = parse_safebrowsing_text(SB_TEXT, 10)
    assert [(str(c.ip), c.report_type) for c in cases] == [
        ("203.0.113.52", "1"),
        ("203.0.113.53", "4"),
        ("2001:db8:53::1", "4"),
    ]
    assert parse_safebrowsing_text(SB_TEXT.replace("Safe Browsing", "Web Scanner"), 10) == []


SBL_TEXT = (
    "Ref: SBL633210\n192.0.2.240/29 is listed on the Spamhaus Combined Spam Sources (CSS)\n\n"
    "Hosts: 192.0.2.242, 192.0.2.245 and the upstream relay 198.51.100.1\n"
)


def test_spamhaus_listing_type_is_each_cases_type() -> None:
    listing = parse_spamhaus(SBL_TEXT, 10)
    assert listing is not None and listing.kind == "css" and listing.ref == "SBL633210"
    # 198.51.100.1 is outside the listed range: not the listing's
    assert [(str(c.ip), c.report_type) for c in listing.cases] == [
        ("192.0.2.242", "css"),
        ("192.0.2.245", "css"),
    ]
    assert [str(n) for n in listing.networks] == ["192.0.2.240/29"]
    drop = parse_spamhaus("Ref: SBL100200\n198.51.100.0/24 is listed on the Spamhaus DROP list\n", 10)
    assert drop is not None and drop.kind == "drop" and drop.cases == []
    sbl = parse_spamhaus("203.0.113.45/32 is listed on the Spamhaus Block List (SBL)\n", 10)
    assert sbl is not None and sbl.kind == "sbl" and [str(c.ip) for c in sbl.cases] == ["203.0.113.45"]
    rules = load_rules()
    assert {rules.map_type("spamhaus", k) for k in ("sbl", "css", "drop")} == {("spamhaus_sbl", True)}


@pytest.mark.parametrize(
    "text",
    [
        "192.0.2.7 is listed on the Spamhaus XBL\n",  # exploits: botnet, not an SBL listing
        "192.0.2.7 is listed on the Spamhaus PBL\n",  # policy
        "192.0.2.7 is listed in SBL-XBL\n",  # the old combined zone
        "192.0.2.7 is listed on the Composite Blocking List\n",
    ],
)
def test_other_lists_are_not_spamhaus_listings(text: str) -> None:
    assert parse_spamhaus(text, 10) is None


def test_a_network_only_drop_notice_keeps_its_range_and_is_sbl() -> None:
    body = "Ref: SBL100200\n198.51.100.0/24 is listed on the Spamhaus DROP (Don't Route Or Peer) list\n"
    complaint = parse_complaint(plain_mail("SBL100200: 198.51.100.0/24", body, "sbl@spamhaus.example"))
    assert complaint.cases == () and [str(n) for n in complaint.networks] == ["198.51.100.0/24"]
    assert complaint.report_type == "drop" and complaint.format is ComplaintFormat.SBL_NOTICE
    verdict = classify(complaint, T0)
    assert verdict.category == "spamhaus_sbl" and verdict.immediate


def test_xarf_fields_in_an_attached_text_file_are_read() -> None:
    fields = (
        "Report-Type: web-attack\nSource-Type: ipv4\nSource: 198.51.100.140\n"
        "Date: 'Tue, 11 Mar 2025 15:19:44 +0000'\n"  # WebIron quotes its Date
    )
    raw = report_mail(
        "arf_report1.txt", fields.encode(), "text", "plain", "Attacks from our customers' view."
    )
    complaint = parse_complaint(raw)
    assert complaint.format is ComplaintFormat.XARF
    assert [(str(c.ip), c.report_type) for c in complaint.cases] == [("198.51.100.140", "web-attack")]
    assert complaint.cases[0].observed_at == dt.datetime(2025, 3, 11, 15, 19, 44, tzinfo=dt.UTC)
    uri = fields.replace("Source-Type: ipv4", "Source-Type: uri").replace(
        "198.51.100.140", "http://x.example/"
    )
    complaint = parse_complaint(report_mail("report.txt", uri.encode(), "text", "plain", "From 203.0.113.9."))
    assert complaint.cases == () and [str(i) for i in complaint.ips] == ["203.0.113.9"]


def test_abusehub_rows_carry_their_feed_and_time() -> None:
    text = (
        "report_type,src_ip,event_date,event_time\n"
        "Shadowserver Botnet Drone,192.0.2.210,2025-03-11,02:14:55\n"
        "ACM,192.0.2.211,2025-03-11,04:02:10\n"
    )
    cases = parse_csv("abusehubcsv-2025-03-11.csv", text, 10)
    assert [(c.scheme, c.report_type) for c in cases] == [
        ("abusehub", "shadowserver botnet drone"),
        ("abusehub", "acm"),
    ]
    assert cases[0].observed_at == dt.datetime(2025, 3, 11, 2, 14, 55, tzinfo=dt.UTC)
    assert load_rules().map_type("abusehub", "acm") is None  # unknown feed: the words decide


def test_an_outgoing_filter_arf_names_the_sending_account() -> None:
    raw = (CORPUS_DIR / "41_spamexperts_arf.eml").read_bytes()
    case = parse_complaint(raw).cases[0]
    assert "smtp.auth=newsletter@shop.example" in case.evidence
