"""Node and site outages (§5.1): an internal ticket, a notice to each affected client,
a line for the shift hand-over; and a "resolved" notice once the node answers again.

:func:`notices` is decided from an :class:`~ipsinfra.audit.AuditReport` (a node
that did not answer is a ``node_reachable`` finding), the fleet inventory
(which VDS, hence which clients, a node carries) and what the journal
remembers: an open outage is kept in the journal state ``outage:<node>``
with the clients already notified, so nothing is sent twice for the same
outage. It reads the journal and writes nothing. :func:`process` renders,
sends through :func:`ipsinfra.abuse.mail.send` (SMTP, or an outbox folder) and
only then records what was delivered: a client whose letter failed is
notified on the next audit.

A *site* is down when every node the fleet has there (two or more) is
unreachable in the same audit: the incident says so, and the clients are told
the datacenter has a problem.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from ipsinfra.abuse.letters import Letter, LetterKind
from ipsinfra.abuse.mail import SendReport, SmtpConfig, send
from ipsinfra.audit.findings import AuditReport, NodeAudit
from ipsinfra.errors import InvalidInput, IpsinfraError
from ipsinfra.inventory import Fleet
from ipsinfra.journal import Journal
from ipsinfra.models import Node, Site

__all__ = [
    "DEFAULT_SENDER",
    "AffectedService",
    "ClientNotice",
    "Incident",
    "OutageNotices",
    "OutageTemplateError",
    "notices",
    "process",
    "state_key",
]

DEFAULT_SENDER = "support@ipsinfra.invalid"
CHECK = "node_reachable"


class OutageTemplateError(IpsinfraError):
    """An outage template could not be rendered (a missing variable, a syntax error)."""


def state_key(node: str) -> str:
    """The journal state key of a node's outage."""
    return f"outage:{node}"


class AffectedService(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    node: str
    client: str | None = None
    ips: list[str] = Field(default_factory=list)


class Incident(BaseModel):
    """A node found down by this audit and not yet known as down: the internal ticket."""

    model_config = ConfigDict(frozen=True)

    node: str
    site: str
    dc: str
    since: dt.datetime
    reason: str
    site_down: bool = False
    services: list[AffectedService] = Field(default_factory=list)
    clients: list[str] = Field(default_factory=list, description="clients with a service on the node")
    no_address: list[str] = Field(default_factory=list, description="clients without an e-mail on record")
    text: str = Field(description="the internal incident ticket")


class ClientNotice(BaseModel):
    """One letter to one client, for one or more nodes of this audit."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["outage", "resolved"]
    client: str
    nodes: list[str]
    services: list[str]
    letter: Letter


class OutageNotices(BaseModel):
    """What this audit means for outages: new incidents, notices, resolutions, hand-over lines."""

    model_config = ConfigDict(frozen=True)

    now: dt.datetime
    opened: list[Incident] = Field(default_factory=list)
    ongoing: list[str] = Field(default_factory=list, description="nodes still down, clients told already")
    resolved: list[str] = Field(default_factory=list, description="nodes answering again")
    notices: list[ClientNotice] = Field(default_factory=list)
    handover: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    sent: SendReport | None = Field(default=None, description="set by process()")

    @property
    def letters(self) -> list[Letter]:
        return [n.letter for n in self.notices]

    @property
    def incident_text(self) -> str:
        """Every new incident's ticket, for the internal ticket system / the hand-over."""
        return "\n\n".join(i.text for i in self.opened)


# --------------------------------------------------------------- templates


@functools.cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("ipsinfra", "templates/outage"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # plain-text mail
    )


def render(template: str, context: Mapping[str, Any]) -> str:
    """Render one outage template; OutageTemplateError names the template and the problem."""
    try:
        return _env().get_template(template).render(**context)
    except jinja2.UndefinedError as exc:
        raise OutageTemplateError(f"template {template!r}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise OutageTemplateError(f"template {template!r}: {type(exc).__name__}: {exc}") from None


def _fmt(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------- deciding


def _down(audit: NodeAudit) -> str | None:
    """Why the node is down (the finding's message), or None when it answered."""
    for finding in audit.findings:
        if finding.check == CHECK and not finding.fixed:
            return finding.message
    return None if audit.reachable else f"node {audit.node} did not answer"


def _services(fleet: Fleet, node: str) -> list[AffectedService]:
    return [
        AffectedService(name=v.name, node=node, client=v.client, ips=[str(ip) for ip in v.ips])
        for v in fleet.vds_on(node)
        if not v.cancelled and not v.blocked  # not provided anyway: nothing to tell about it
    ]


def _site(fleet: Fleet, node: Node) -> Site:
    return fleet.sites.get(node.site) or Site(name=node.site, dc=node.site)


def _open_state(journal: Journal | None, node: str) -> dict[str, Any] | None:
    if journal is None:
        return None
    state = journal.get_state(state_key(node))
    return state if state and state.get("status") == "open" else None


def notices(
    report: AuditReport,
    fleet: Fleet,
    journal: Journal | None,
    *,
    now: dt.datetime | None = None,
    sender: str = DEFAULT_SENDER,
    lang: str = "en",
) -> OutageNotices:
    """What to send and hand over after ``report``. Reads the journal; writes nothing.

    * a node down and not known as down -> an :class:`Incident` and one notice
      per affected client (a client with services on several such nodes gets
      one letter listing them all);
    * a node down and known -> nothing new, except for affected clients not
      yet notified (a failed delivery, a VDS added meanwhile);
    * a node known as down that answers again -> one "resolved" notice per
      client that was notified.

    Nodes not in the report (an audit of a subset) are left as they are.
    """
    if lang != "en":
        raise InvalidInput(f"lang: value {lang!r}: outage notices exist in 'en'")
    now = now or dt.datetime.now(dt.UTC)
    # a node not checked for a configuration error (config_error) is neither down nor back
    audits = {a.node: a for a in report.nodes if a.node in fleet.nodes and not a.config_error}
    down = {name: why for name, a in audits.items() if (why := _down(a)) is not None}
    site_down: dict[str, list[str]] = {}
    for site_name in {fleet.nodes[n].site for n in down}:
        members = sorted(n.name for n in fleet.nodes.values() if n.site == site_name)
        if len(members) >= 2 and all(m in down for m in members):
            site_down[site_name] = members

    opened: list[Incident] = []
    ongoing: list[str] = []
    resolved: list[str] = []
    problems: list[str] = []
    handover: list[str] = []
    # client -> (node -> services) for new outage notices and for resolved ones
    to_tell: dict[str, dict[str, list[AffectedService]]] = {}
    to_resolve: dict[str, dict[str, list[str]]] = {}
    since_of: dict[str, dt.datetime] = {}

    for name in sorted(down):
        node = fleet.nodes[name]
        site = _site(fleet, node)
        services = _services(fleet, name)
        clients = sorted({s.client for s in services if s.client})
        no_address = [c for c in clients if c not in fleet.clients or not fleet.clients[c].email]
        state = _open_state(journal, name)
        notified = set((state or {}).get("notified") or {})
        since = dt.datetime.fromisoformat(state["since"]) if state and state.get("since") else now
        since_of[name] = since
        for s in services:
            if s.client and s.client not in notified and s.client not in no_address:
                to_tell.setdefault(s.client, {}).setdefault(name, []).append(s)
        unowned = [s.name for s in services if not s.client]
        if unowned:
            problems.append(f"{name}: VDS without a client on record: {', '.join(unowned)}")
        problems += [
            f"{name}: client {c} has no e-mail on record; notify them by ticket/phone" for c in no_address
        ]
        where = f"site {site.name} ({site.dc}) DOWN, " if site.name in site_down else ""
        if state is None:
            title = (
                f"site {site.name} ({site.dc}) down: node {name} unreachable"
                if site.name in site_down
                else f"node {name} ({site.name}/{site.dc}) unreachable"
            )
            text = render(
                f"incident.{lang}.txt.j2",
                {
                    "title": title,
                    "since": _fmt(since),
                    "site_down": site.name in site_down,
                    "site": site,
                    "site_nodes": site_down.get(site.name, []),
                    "node": node,
                    "reason": down[name],
                    "services": services,
                    "clients": clients,
                    "no_address": no_address,
                },
            )
            opened.append(
                Incident(
                    node=name,
                    site=site.name,
                    dc=site.dc,
                    since=since,
                    reason=down[name],
                    site_down=site.name in site_down,
                    services=services,
                    clients=clients,
                    no_address=no_address,
                    text=text,
                )
            )
            handover.append(
                f"§5.1 OUTAGE {where}node {name} unreachable since {_fmt(since)}: {len(services)} VDS of "
                f"{len(clients)} client(s) affected ({', '.join(clients) or 'none'}); internal incident "
                "opened, clients notified; next: check the node at the DC (console/IPMI)"
            )
        else:
            ongoing.append(name)
            handover.append(
                f"§5.1 ongoing: {where}node {name} unreachable since {_fmt(since)}; "
                f"clients already notified: {', '.join(sorted(notified)) or 'none'}"
            )

    for name in sorted(audits):
        if name in down:
            continue
        state = _open_state(journal, name)
        if state is None:
            continue
        resolved.append(name)
        since = dt.datetime.fromisoformat(state["since"]) if state.get("since") else now
        since_of[name] = since
        told: Mapping[str, list[str]] = state.get("notified") or {}
        for told_client, told_services in told.items():
            if told_client in fleet.clients and fleet.clients[told_client].email:
                to_resolve.setdefault(told_client, {})[name] = list(told_services)
        minutes = max(0, round((now - since).total_seconds() / 60))
        handover.append(
            f"§5.1 RESOLVED: node {name} answers again after {minutes} min (down since {_fmt(since)}); "
            f"resolved notice to {', '.join(sorted(told)) or 'nobody'}; run the reboot check (§5.2)"
        )

    letters: list[ClientNotice] = []
    for client_id in sorted(to_tell):
        client = fleet.clients[client_id]
        by_node = to_tell[client_id]
        affected = [s for node_services in by_node.values() for s in node_services]
        sites = {fleet.nodes[n].site for n in by_node}
        dcs = sorted({_site(fleet, fleet.nodes[n]).dc for n in by_node if fleet.nodes[n].site in site_down})
        since = min(since_of[n] for n in by_node)
        body = render(
            f"client_notice.{lang}.txt.j2",
            {
                "client": client,
                "services": affected,
                "since": _fmt(since),
                "site_down": bool(sites & set(site_down)),
                "dc_names": dcs,
                "sender": sender,
            },
        )
        names = ", ".join(s.name for s in affected)
        letters.append(
            ClientNotice(
                kind="outage",
                client=client_id,
                nodes=sorted(by_node),
                services=[s.name for s in affected],
                letter=Letter(
                    to=str(client.email),
                    subject=f"Service disruption: {names}",
                    body=body,
                    kind=LetterKind.CLIENT_TICKET,
                    sender=sender,
                ),
            )
        )
    for client_id in sorted(to_resolve):
        client = fleet.clients[client_id]
        by_node_names = to_resolve[client_id]
        names_list = [s for node_services in by_node_names.values() for s in node_services]
        services_now = [
            AffectedService(
                name=n, node=node, ips=[str(ip) for ip in fleet.vds[n].ips] if n in fleet.vds else []
            )
            for node, node_services in by_node_names.items()
            for n in node_services
        ]
        since = min(since_of[n] for n in by_node_names)
        body = render(
            f"client_resolved.{lang}.txt.j2",
            {
                "client": client,
                "services": services_now,
                "since": _fmt(since),
                "now": _fmt(now),
                "sender": sender,
            },
        )
        letters.append(
            ClientNotice(
                kind="resolved",
                client=client_id,
                nodes=sorted(by_node_names),
                services=names_list,
                letter=Letter(
                    to=str(client.email),
                    subject=f"Resolved: {', '.join(names_list)} available again",
                    body=body,
                    kind=LetterKind.CLIENT_TICKET,
                    sender=sender,
                ),
            )
        )
    return OutageNotices(
        now=now,
        opened=opened,
        ongoing=ongoing,
        resolved=resolved,
        notices=letters,
        handover=handover,
        problems=problems,
    )


# --------------------------------------------------------------- sending


def process(
    report: AuditReport,
    fleet: Fleet,
    journal: Journal,
    *,
    smtp: SmtpConfig | None = None,
    outbox: Path | None = None,
    now: dt.datetime | None = None,
    sender: str = DEFAULT_SENDER,
    actor: str | None = None,
) -> OutageNotices:
    """The audit's §5.1 hook: decide (:func:`notices`), send, then remember what was delivered.

    Call it after :func:`ipsinfra.audit.run` with the same fleet and journal.
    A client counts as notified only when its letter was delivered (SMTP, or
    written to the outbox); the others are tried again on the next audit.
    Raises InvalidInput when there is something to send and neither ``smtp``
    nor ``outbox`` is given (before anything is recorded).
    """
    decided = notices(report, fleet, journal, now=now, sender=sender)
    if decided.notices and smtp is None and outbox is None:
        raise InvalidInput("smtp: value None: configure SMTP or give an outbox folder for the outage notices")
    sent = send(decided.letters, smtp=smtp, outbox=outbox) if decided.notices else SendReport(deliveries=[])
    delivered: dict[tuple[str, str], bool] = {}
    for notice, delivery in zip(decided.notices, sent.deliveries, strict=True):
        delivered[(notice.kind, notice.client)] = delivery.via in ("smtp", "outbox")
    now = decided.now

    for incident in decided.opened:
        _remember_open(journal, incident.node, incident.since, incident.reason, incident.site_down, {}, now)
        journal.record(
            "outage.open",
            incident.node,
            result="ok",
            after={
                "site": incident.site,
                "site_down": incident.site_down,
                "services": [s.name for s in incident.services],
                "clients": incident.clients,
            },
            detail=incident.text,
            actor=actor,
        )
    for notice in decided.notices:
        ok = delivered[(notice.kind, notice.client)]
        journal.record(
            f"outage.notice.{notice.kind}",
            notice.client,
            result="ok" if ok else "failed",
            after={"nodes": notice.nodes, "services": notice.services, "to": notice.letter.to},
            detail=notice.letter.subject,
            actor=actor,
        )
        if notice.kind != "outage" or not ok:
            continue
        for node in notice.nodes:
            state = journal.get_state(state_key(node)) or {}
            told = dict(state.get("notified") or {})
            told[notice.client] = [
                s for s in notice.services if fleet.vds.get(s) and fleet.vds[s].node == node
            ]
            journal.set_state(state_key(node), {**state, "notified": told})
    for node in decided.resolved:
        state = journal.get_state(state_key(node)) or {}
        journal.set_state(state_key(node), {**state, "status": "resolved", "resolved": now.isoformat()})
        journal.record(
            "outage.resolved", node, result="ok", detail=f"answers again at {_fmt(now)}", actor=actor
        )
    return decided.model_copy(update={"sent": sent})


def _remember_open(
    journal: Journal,
    node: str,
    since: dt.datetime,
    reason: str,
    site_down: bool,
    notified: Mapping[str, Iterable[str]],
    now: dt.datetime,
) -> None:
    journal.set_state(
        state_key(node),
        {
            "status": "open",
            "since": since.isoformat(),
            "opened": now.isoformat(),
            "reason": reason,
            "site_down": site_down,
            "notified": {c: list(s) for c, s in notified.items()},
        },
    )
