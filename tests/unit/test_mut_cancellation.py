"""cancellation: the one reason the mutation run (issue 23) found unchecked."""

from __future__ import annotations

import datetime as dt

from ipsinfra.abuse.cancellation import Decision, should_cancel
from ipsinfra.abuse.classify import Verdict
from ipsinfra.models import Client

SBL = Verdict(
    category="spamhaus_sbl",
    immediate=True,
    deadline=dt.datetime(2026, 3, 3, tzinfo=dt.UTC),
    reasons=[],
    matched=[],
)


def test_an_unknown_activation_date_never_cancels() -> None:
    client = Client(id="c1", name="A", services=1)
    assert should_cancel(SBL, client, dt.date(2026, 3, 3)) == Decision(
        cancel=False, reason="§7.2: the activation date is unknown; not cancelling"
    )
