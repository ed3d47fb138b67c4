"""The §7.2 cancellation rule, pure.

A Spamhaus SBL listing blocks the service at once; when the client is new (the
service was activated in the current calendar month) and this is the client's
only service, the service is also cancelled.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from ipsinfra.abuse.classify import Verdict
from ipsinfra.models import Client

__all__ = ["Decision", "should_cancel"]


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cancel: bool
    reason: str


def should_cancel(
    verdict: Verdict,
    client: Client,
    today: dt.date,
    *,
    service_activated: dt.date | None = None,
) -> Decision:
    """Whether §7.2 cancels the service as well as blocking it.

    ``service_activated`` is the blocked service's own activation date (a VDS's
    ``activated``); without it, the client's ``activated`` stands in.

    >>> v = Verdict(category="spamhaus_sbl", immediate=True,
    ...             deadline=dt.datetime(2025, 3, 3, tzinfo=dt.UTC), reasons=[], matched=[])
    >>> should_cancel(v, Client(id="c1", name="A", activated=dt.date(2025, 3, 1)), dt.date(2025, 3, 3)).cancel
    True
    """
    if verdict.category != "spamhaus_sbl":
        return Decision(cancel=False, reason=f"§7.2 cancels for an SBL listing only, not {verdict.category}")
    activated = service_activated or client.activated
    if activated is None:
        return Decision(cancel=False, reason="§7.2: the activation date is unknown; not cancelling")
    if activated > today:
        return Decision(
            cancel=False, reason=f"§7.2: activation {activated.isoformat()} is after today; check the record"
        )
    if (activated.year, activated.month) != (today.year, today.month):
        return Decision(
            cancel=False,
            reason=f"§7.2: activated {activated.isoformat()}, before the current month ({today:%Y-%m})",
        )
    if client.services != 1:
        return Decision(
            cancel=False, reason=f"§7.2: the client has {client.services} services, not exactly one"
        )
    return Decision(
        cancel=True,
        reason=f"§7.2: SBL listing, activated {activated.isoformat()} (this month), only service",
    )
