"""Letters (§7.1, §7.2, §7.5): who gets what, and client data only where allowed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ipsinfra.abuse import Letter, LetterKind, LetterTemplateError, classify, parse_complaint, render_letters
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
    complaint = parse_complaint((CORPUS / name).read_bytes())
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
