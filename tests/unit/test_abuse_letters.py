"""Letters (§7.1, §7.2, §7.5): who gets what, and client data only where allowed."""

from __future__ import annotations

import datetime as dt
import email
import email.utils
from pathlib import Path

import pytest

from ipsinfra.abuse import (
    AddressError,
    Letter,
    LetterKind,
    LetterTemplateError,
    classify,
    draft_letters,
    parse_complaint,
    render_letters,
)
from ipsinfra.abuse.headers import one_line, parse_address
from ipsinfra.abuse.letters import render
from ipsinfra.errors import InvalidInput
from ipsinfra.models import Client, Site

CORPUS = Path(__file__).resolve().parent.parent / "data" / "complaints"
CLIENT = Client(
    id="cl-4471",
    name="Ivan Petrovich Sidorov",
    address="ul. Primernaya 1, Moscow",
    email="ivan@client.example",
    activated=dt.date(2025, 3, 1),
    services=1,
)
DC_SITE = Site(name="fra1", dc="DC Example", dc_abuse_email="abuse@dc.example.net")
MSK_SITE = Site(name="msk1", dc="Our Moscow", location="Moscow", own_network=True)
SERVER = "VPS1234(34.56)"
PRIVATE = [CLIENT.name, CLIENT.address, "ivan@client.example", CLIENT.id, SERVER]
NOW = dt.datetime(2025, 3, 8, 16, 30, tzinfo=dt.UTC)


def letters_for(name: str, site: Site, cancelled: bool, lang: str = "en") -> list[Letter]:
    raw = (CORPUS / name).read_bytes()
    # The samples carry no Received: of ours: say the mailbox got each when its Date says.
    sent = email.utils.parsedate_to_datetime(email.message_from_bytes(raw)["Date"])
    complaint = parse_complaint(raw, mailbox_date=sent)
    verdict = classify(complaint, complaint.received_at)
    return render_letters(
        complaint,
        verdict,
        server_name=SERVER,
        client=CLIENT,
        site=site,
        cancelled=cancelled,
        abuse_from="abuse@ourhost.example.net",
        lang=lang,
        now=NOW,
    )


def by_kind(letters: list[Letter]) -> dict[LetterKind, Letter]:
    return {letter.kind: letter for letter in letters}


def test_sbl_at_a_dc_site_ticket_reply_and_dc_notice() -> None:
    letters = by_kind(letters_for("07_sbl_notice.eml", DC_SITE, cancelled=True))
    assert set(letters) == {LetterKind.CLIENT_TICKET, LetterKind.COMPLAINANT_REPLY, LetterKind.DC_NOTICE}
    ticket = letters[LetterKind.CLIENT_TICKET]
    assert ticket.to == "ivan@client.example"
    assert "immediate" in ticket.subject and "SBL545123" in ticket.body
    assert "Spam support hosting" in ticket.body  # §7.1: the complaint's text
    notice = letters[LetterKind.DC_NOTICE]
    assert notice.to == "abuse@dc.example.net"
    assert "CANCELLED" in notice.body and "cancelled" in notice.subject
    for item in (CLIENT.name, CLIENT.address, "ivan@client.example"):
        assert item in notice.body
    reply = letters[LetterKind.COMPLAINANT_REPLY]
    assert reply.to == "sbl-notify@spamhaus.example"
    assert reply.in_reply_to == "<SBL545123.1741449851@spamhaus.example>"


def test_own_network_writes_to_spamhaus_with_client_details() -> None:
    letters = by_kind(letters_for("07_sbl_notice.eml", MSK_SITE, cancelled=False))
    assert LetterKind.DC_NOTICE not in letters
    spamhaus = letters[LetterKind.SPAMHAUS]
    assert spamhaus.sender == "abuse@ourhost.example.net"
    assert CLIENT.name in spamhaus.body and CLIENT.address in spamhaus.body
    assert "cancelled" not in spamhaus.body


@pytest.mark.parametrize("name", ["07_sbl_notice.eml", "08_dc_forward_en_12h.eml", "23_dmca_copyright.eml"])
@pytest.mark.parametrize("site", [DC_SITE, MSK_SITE])
def test_complainant_reply_has_no_client_data(name: str, site: Site) -> None:
    letters = by_kind(letters_for(name, site, cancelled=True))
    reply = letters[LetterKind.COMPLAINANT_REPLY]
    for item in PRIVATE:
        assert item not in reply.body and item not in reply.subject


def test_non_sbl_complaint_gets_deadline_and_no_dc_notice() -> None:
    letters = by_kind(letters_for("08_dc_forward_en_12h.eml", DC_SITE, cancelled=False))
    assert set(letters) == {LetterKind.CLIENT_TICKET, LetterKind.COMPLAINANT_REPLY}
    ticket = letters[LetterKind.CLIENT_TICKET]
    assert "2025-03-10 00:00 UTC" in ticket.body and "12 hours" in ticket.body
    assert letters[LetterKind.COMPLAINANT_REPLY].to == "abuse@dc.example.net"


def test_reply_to_is_honoured() -> None:
    letters = by_kind(letters_for("23_dmca_copyright.eml", DC_SITE, cancelled=False))
    assert letters[LetterKind.COMPLAINANT_REPLY].to == "case-5521@copyright-agent.example"


def test_russian_ticket() -> None:
    ticket = by_kind(letters_for("09_dc_forward_ru_koi8_qp_6h.eml", DC_SITE, False, lang="ru"))[
        LetterKind.CLIENT_TICKET
    ]
    assert ticket.lang == "ru" and "Здравствуйте, Ivan Petrovich Sidorov!" in ticket.body
    assert "6 ч." in ticket.body and "Пересылаемое сообщение" in ticket.body


def test_strict_undefined_catches_missing_fields() -> None:
    with pytest.raises(LetterTemplateError, match="'server_name' is undefined"):
        render("dc_notice.en.txt.j2", {"complaint": None, "target_ips": []})


def test_missing_addresses_are_input_errors() -> None:
    with pytest.raises(InvalidInput, match=r"site\.dc_abuse_email: value None"):
        letters_for("07_sbl_notice.eml", Site(name="x1", dc="X"), cancelled=False)
    complaint = parse_complaint((CORPUS / "07_sbl_notice.eml").read_bytes())
    with pytest.raises(InvalidInput, match=r"client\.email: value None"):
        render_letters(
            complaint,
            classify(complaint, complaint.received_at),
            server_name=SERVER,
            client=CLIENT.model_copy(update={"email": None}),
            site=DC_SITE,
            cancelled=False,
            abuse_from="abuse@ourhost.example.net",
        )


# --------------------------------------------------------------------------- hostile complaints (issue 18)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Re: spam\r\nBcc: victim@evil.test", "Re: spam Bcc: victim@evil.test"),
        ("a\u2028b\u2029c\u0085d\x7fe\x00f\x1bg\x9bh", "a b c d e f g h"),
        ("=?utf-8?q?spam=0ABcc:_victim@evil.test?=", "spam Bcc: victim@evil.test"),
        ("=?utf-8?b?PT91dGYtOD9xP3NwYW09MEFCY2M6X3g/PQ==?=", "spam Bcc: x"),  # an encoded word in one
        ("=?koi8-r?b?6dfBzg==?= - жалоба", "Иван - жалоба"),
        ("plain   subject ", "plain subject"),
    ],
)
def test_one_line_decodes_then_removes_controls(text: str, expected: str) -> None:
    assert one_line(text) == expected
    assert one_line(expected) == expected  # a fixed point: nothing left for the policy to decode


def test_addresses_are_parsed_and_rerendered_never_pasted() -> None:
    assert str(parse_address("Ivan <IVAN@client.example>", field="to")) == "Ivan <IVAN@client.example>"
    assert (
        str(parse_address("=?koi8-r?b?6dfBzg==?= <i@client.example>", field="to"))
        == "Иван <i@client.example>"
    )
    crlf_name = (
        "=?utf-8?q?Iv=0D=0Aan?= <i@client.example>"  # the stdlib refuses it: so do we, naming the field
    )
    for bad in (
        "<",
        '"',
        "a@",
        "‹",
        "a@b.example, c@d.example",
        "x@y.example\r\nBcc: v@evil.test",
        "",
        crlf_name,
    ):
        with pytest.raises(AddressError, match="to: value"):
            parse_address(bad, field="to")


def test_draft_letters_reports_the_bad_letter_and_keeps_the_others() -> None:
    complaint = parse_complaint((CORPUS / "07_sbl_notice.eml").read_bytes())
    drafts = draft_letters(
        complaint,
        classify(complaint, complaint.received_at),
        server_name=SERVER,
        client=CLIENT.model_copy(update={"email": None}),  # no ticket possible
        site=Site(name="x1", dc="X"),  # no DC abuse address either
        cancelled=False,
        abuse_from="abuse@ourhost.example.net",
    )
    assert [x.kind for x in drafts.letters] == [LetterKind.COMPLAINANT_REPLY]
    assert len(drafts.problems) == 2
    assert "client_ticket: client.email: value None" in drafts.problems[0]
    assert "dc_notice: site.dc_abuse_email: value None" in drafts.problems[1]


def test_handle_writes_no_letter_past_the_block_by_raising(tmp_path: Path) -> None:
    """A letter that cannot be drafted is in the result; it never raises past the work done."""
    from ipsinfra.abuse.handle import handle_complaint
    from ipsinfra.hypervisors import DriverPool
    from tests.unit.fleetkit import fleet, node, vds

    f = fleet(
        node("kvm1", "192.0.2.10"), vds=(vds("VPS1234(34.56)", "kvm1", ips=["203.0.113.45"], client="c1"),)
    )
    raw = (CORPUS / "01_spam_plain_en.eml").read_bytes()
    with DriverPool(f.nodes) as pool:
        result = handle_complaint(raw, f, pool, abuse_from="abuse@ourhost.example.net", check=True)
    assert [s.action for s in result.services if s.server] == ["deadline"]
    assert [x.kind for x in result.letters] == [LetterKind.COMPLAINANT_REPLY]  # the complainant still hears
    assert result.letter_problems and "client.email: value None" in result.letter_problems[0]
