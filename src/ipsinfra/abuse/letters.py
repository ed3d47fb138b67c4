"""The letters a complaint produces (§7.1, §7.2, §7.5), rendered from Jinja2 templates.

Templates live in ``ipsinfra/abuse/templates`` and are written the way Ansible
users write theirs (``trim_blocks``, ``| default(...)``, ``| join``); undefined
variables raise (StrictUndefined) instead of rendering as empty.

Client data (name, address, e-mail, id, our server name) goes ONLY into the
datacenter notice and the letter to Spamhaus; the answer to the complainant
carries none of it.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Callable
from typing import Any

import jinja2
from pydantic import BaseModel, ConfigDict

from ipsinfra.abuse.classify import Verdict
from ipsinfra.abuse.headers import one_line
from ipsinfra.abuse.intake import Complaint
from ipsinfra.errors import InvalidInput, IpsinfraError
from ipsinfra.models import Client, Site

__all__ = [
    "SPAMHAUS_ADDRESS",
    "Letter",
    "LetterDrafts",
    "LetterKind",
    "LetterTemplateError",
    "draft_letters",
    "render",
    "render_letters",
]

# Where our own-network SBL letters go (§7.2); pass ``spamhaus_to`` to change it.
SPAMHAUS_ADDRESS = "sbl-removals@spamhaus.org"


class LetterTemplateError(IpsinfraError):
    """A template could not be rendered (a missing variable, a syntax error)."""


class LetterKind(enum.StrEnum):
    CLIENT_TICKET = "client_ticket"
    COMPLAINANT_REPLY = "complainant_reply"
    DC_NOTICE = "dc_notice"
    SPAMHAUS = "spamhaus"


class Letter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    to: str
    subject: str
    body: str
    kind: LetterKind
    sender: str
    in_reply_to: str | None = None
    lang: str = "en"


@functools.cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("ipsinfra.abuse", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,  # Ansible's template module default
        keep_trailing_newline=True,
        autoescape=False,  # plain-text mail, not HTML
    )


def render(template: str, context: dict[str, Any]) -> str:
    """Render one template. Raises LetterTemplateError naming the template and the problem."""
    try:
        return _env().get_template(template).render(**context)
    except jinja2.UndefinedError as exc:
        raise LetterTemplateError(f"template {template!r}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise LetterTemplateError(f"template {template!r}: {type(exc).__name__}: {exc}") from None


def _fmt(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


class LetterDrafts(BaseModel):
    """The letters for one complaint, and the ones that could not be drafted (one line each)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    letters: list[Letter]
    problems: list[str]


def render_letters(
    complaint: Complaint,
    verdict: Verdict,
    *,
    server_name: str,
    client: Client,
    site: Site,
    cancelled: bool,
    abuse_from: str,
    lang: str = "en",
    now: dt.datetime | None = None,
    dc_name: str | None = None,
    spamhaus_to: str = SPAMHAUS_ADDRESS,
) -> list[Letter]:
    """The letters for one complaint, in the order to send them.

    ``now`` is when the service was blocked (default: now).

    * the client's ticket (§7.1): the complaint and the deadline, ``lang`` "en" or "ru";
    * the answer to the complainant (§7.5) when the complaint has an address;
    * for an SBL listing (§7.2): the datacenter notice with the client's details
      (to ``site.dc_abuse_email``), or, for our own network (``site.own_network``),
      the letter to Spamhaus from ``abuse_from``.

    Raises:
        InvalidInput: a letter's address is missing (client e-mail, DC abuse address).
        LetterTemplateError: a template failed.

    :func:`draft_letters` is the same without raising: what fails is reported and
    the other letters are still drafted (what :func:`ipsinfra.abuse.handle.handle_complaint` uses).
    """
    if lang not in ("en", "ru"):
        raise InvalidInput(f"lang: value {lang!r}: 'en' or 'ru'")
    letters: list[Letter] = []
    for draft in _drafts(
        complaint,
        verdict,
        server_name=server_name,
        client=client,
        site=site,
        cancelled=cancelled,
        abuse_from=abuse_from,
        lang=lang,
        now=now,
        dc_name=dc_name,
        spamhaus_to=spamhaus_to,
    ):
        letters.append(draft())
    return letters


def draft_letters(
    complaint: Complaint,
    verdict: Verdict,
    *,
    server_name: str,
    client: Client,
    site: Site,
    cancelled: bool,
    abuse_from: str,
    lang: str = "en",
    now: dt.datetime | None = None,
    dc_name: str | None = None,
    spamhaus_to: str = SPAMHAUS_ADDRESS,
) -> LetterDrafts:
    """:func:`render_letters`, each letter on its own: one that cannot be drafted (a
    missing address, a template error) is reported in ``problems`` and the others
    are still drafted. Never raises for a letter."""
    if lang not in ("en", "ru"):
        lang = "en"
    letters: list[Letter] = []
    problems: list[str] = []
    for draft in _drafts(
        complaint,
        verdict,
        server_name=server_name,
        client=client,
        site=site,
        cancelled=cancelled,
        abuse_from=abuse_from,
        lang=lang,
        now=now,
        dc_name=dc_name,
        spamhaus_to=spamhaus_to,
    ):
        try:
            letters.append(draft())
        except IpsinfraError as exc:
            problems.append(f"{server_name}: {draft.__name__}: {exc}")
    return LetterDrafts(letters=letters, problems=problems)


def _drafts(
    complaint: Complaint,
    verdict: Verdict,
    *,
    server_name: str,
    client: Client,
    site: Site,
    cancelled: bool,
    abuse_from: str,
    lang: str,
    now: dt.datetime | None,
    dc_name: str | None,
    spamhaus_to: str,
) -> list[Callable[[], Letter]]:
    """One callable per letter to write, in order; each raises only for its own letter."""
    now = now or dt.datetime.now(dt.UTC)
    hours = round((verdict.deadline - complaint.received_at).total_seconds() / 3600)
    targets = [str(x) for x in (*complaint.ips, *complaint.networks)] or ["(no address named)"]
    base: dict[str, Any] = {
        "complaint": complaint,
        "verdict": verdict,
        "target_ips": targets,
        "deadline": _fmt(verdict.deadline),
        "received": _fmt(complaint.received_at),
        "hours": hours,
        "abuse_from": abuse_from,
        "now": _fmt(now),
        "section": "7.2" if verdict.category == "spamhaus_sbl" else "7.3",
        "cancelled": cancelled,
        "reference": complaint.sbl_ref or complaint.id,
    }
    with_client = {**base, "client": client, "server_name": server_name, "site": site, "dc_name": dc_name}
    with_client["activated"] = client.activated.isoformat() if client.activated else "(unknown)"
    drafts: list[Callable[[], Letter]] = []

    def client_ticket() -> Letter:
        if not client.email:
            raise InvalidInput(
                f"client.email: value None: client {client.id!r} has no address for the ticket"
            )
        when = "immediate action" if verdict.immediate else f"react by {_fmt(verdict.deadline)}"
        subject = {
            "en": f"Abuse complaint: {server_name} ({verdict.category}) - {when}",
            "ru": f"Жалоба (abuse): {server_name} ({verdict.category}) - "
            + ("немедленно" if verdict.immediate else f"срок {_fmt(verdict.deadline)}"),
        }[lang]
        return Letter(
            to=client.email,
            subject=subject,
            body=render(f"client_ticket.{lang}.txt.j2", with_client),
            kind=LetterKind.CLIENT_TICKET,
            sender=abuse_from,
            lang=lang,
        )

    drafts.append(client_ticket)

    if complaint.answer_to:
        answer_to = complaint.answer_to

        def complainant_reply() -> Letter:
            return Letter(
                to=answer_to,
                subject=_re(complaint.subject or "Your abuse report"),
                body=render("complainant_reply.en.txt.j2", base),  # no client data in this context
                kind=LetterKind.COMPLAINANT_REPLY,
                sender=abuse_from,
                in_reply_to=complaint.message_id,
            )

        drafts.append(complainant_reply)

    if verdict.category == "spamhaus_sbl":
        ref = complaint.sbl_ref or "SBL listing"
        if site.own_network:

            def spamhaus() -> Letter:
                return Letter(
                    to=spamhaus_to,
                    subject=f"{ref}: {', '.join(targets)} blocked"
                    + (", service cancelled" if cancelled else ""),
                    body=render("spamhaus.en.txt.j2", with_client),
                    kind=LetterKind.SPAMHAUS,
                    sender=abuse_from,
                )

            drafts.append(spamhaus)
        else:

            def dc_notice() -> Letter:
                if not site.dc_abuse_email:
                    raise InvalidInput(
                        f"site.dc_abuse_email: value None: site {site.name!r} needs the DC's abuse address "
                        "(§7.2)"
                    )
                return Letter(
                    to=site.dc_abuse_email,
                    subject=f"{ref}: {server_name} blocked" + (" and cancelled" if cancelled else ""),
                    body=render("dc_notice.en.txt.j2", with_client),
                    kind=LetterKind.DC_NOTICE,
                    sender=abuse_from,
                )

            drafts.append(dc_notice)
    return drafts


def _re(subject: str) -> str:
    subject = one_line(subject)  # the complaint's text: one line, whatever built the Complaint
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"
